"""The user's status line while a job moves: queued (place) → protecting NN% → done in N s.

``StatusReporter`` turns the queue's updates into text in the user's language and passes a new
text to the adapter's ``on_status`` (which edits one chat message) only when it changed and at
most every ``interval_s`` seconds; final texts always go out. A failing edit never fails a job.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from bot.core.i18n import text
from common.jobs import Progress

log = logging.getLogger(__name__)

OnStatus = Callable[[str], Awaitable[None]]


def status_text(lang: str, position: int | None, progress: Progress | None) -> str:
    """The status line for a job at queue ``position`` (None once started) with ``progress``."""
    stage = progress.stage if progress else "queued"
    percent = round(100 * progress.fraction) if progress else 0
    if stage == "queued":
        if position:
            return text(lang, "status_queued", position=position)
        return text(lang, "status_waiting")
    if stage == "verifying":
        return text(lang, "status_verifying", percent=percent)
    if stage == "failed":
        return text(lang, "status_failed")
    return text(lang, "status_protecting", percent=min(percent, 99))


def seconds_text(seconds: float) -> str:
    """"4.2" below ten seconds, "12" above."""
    return f"{seconds:.1f}" if seconds < 10 else f"{seconds:.0f}"


class StatusReporter:
    """De-duplicates and throttles status texts for one job."""

    def __init__(self, lang: str, on_status: OnStatus, interval_s: float) -> None:
        self.lang, self.on_status, self.interval_s = lang, on_status, interval_s
        self.last_text: str | None = None
        self.last_sent = 0.0

    async def update(self, position: int | None, progress: Progress | None) -> None:
        """``JobQueue.wait``'s ``on_update``."""
        await self._send(status_text(self.lang, position, progress), final=False)

    async def done(self, seconds: float) -> None:
        await self._send(text(self.lang, "status_done", seconds=seconds_text(seconds)), True)

    async def failed(self) -> None:
        await self._send(text(self.lang, "status_failed"), final=True)

    async def _send(self, message: str, final: bool) -> None:
        now = time.monotonic()
        if message == self.last_text or (not final and now - self.last_sent < self.interval_s):
            return
        self.last_text, self.last_sent = message, now
        try:
            await self.on_status(message)
        except Exception as exc:  # cosmetic: the result still goes out
            log.warning("status update failed: %s", type(exc).__name__)
