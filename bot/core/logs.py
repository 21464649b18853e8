"""Keeping secrets (bot tokens, webhook secrets) out of every log line, for any chat adapter."""

from __future__ import annotations

import logging


class Redact(logging.Filter):
    """Replaces secrets in every formatted log record (HTTP clients log URLs with the token)."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(s in message for s in self.secrets):
            for secret in self.secrets:
                message = message.replace(secret, "[redacted]")
            record.msg, record.args = message, None
        return True


def redact_logs(*secrets: str, handlers: list[logging.Handler] | None = None) -> None:
    """Redact ``secrets`` at ``handlers`` (default: every root handler, e.g. the launcher's
    ``basicConfig`` one)."""
    redact = Redact(list(secrets))
    for handler in logging.getLogger().handlers if handlers is None else handlers:
        handler.addFilter(redact)
