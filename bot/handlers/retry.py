"""Telegram requests that survive Telegram's bad moments: 429 flood control (``retry_after``,
PTB's ``AIORateLimiter``) and, on top of it, 5xx answers and timeouts, retried with backoff.

A request Telegram refused for what it is (``BadRequest``, ``Forbidden``) is never retried. A
timed-out request may have reached Telegram after all, so a retry can show a message twice;
that is preferred to a result that is never delivered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.error import BadRequest, NetworkError
from telegram.ext import AIORateLimiter

log = logging.getLogger(__name__)

#: Endpoints whose failures PTB already handles itself (the updater's long poll).
NOT_RETRIED = frozenset({"getUpdates", "get_updates"})


def backoff_s(attempt: int) -> float:
    """Seconds before retry ``attempt`` (1, 2, ...): 0.5, 1, 2, 4 … capped at 8."""
    return float(min(8.0, 0.5 * 2 ** (attempt - 1)))


class RetryingRateLimiter(AIORateLimiter):
    """``AIORateLimiter`` (429s, Telegram's rate limits) plus ``network_retries`` retries of
    requests that failed with a 5xx or a timeout (PTB's ``NetworkError`` but ``BadRequest``)."""

    def __init__(self, *, max_retries: int, network_retries: int | None = None) -> None:
        super().__init__(max_retries=max_retries)
        self.network_retries = max_retries if network_retries is None else network_retries

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        attempt = 0
        while True:
            try:
                return await super().process_request(
                    callback, args, kwargs, endpoint, data, rate_limit_args
                )
            except BadRequest:
                raise
            except NetworkError as exc:
                attempt += 1
                if endpoint in NOT_RETRIED or attempt > self.network_retries:
                    raise
                log.warning("Telegram %s failed (%s), retry %d of %d", endpoint,
                            type(exc).__name__, attempt, self.network_retries)
                await asyncio.sleep(backoff_s(attempt))
