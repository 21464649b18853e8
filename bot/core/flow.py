"""The protect flow every chat adapter follows:

1. ``admit(user)`` before downloading anything: the in-flight slot, queue cap and quota
   (``Refused`` carries the message key); the slot is released when the block ends.
2. ``run(ticket, image, ...)``: remember the photo for the buttons, submit a ``ProtectRequest``
   with a fresh ``request_id``, follow it (status texts via ``on_status``), then claim delivery so
   a result is shown once, even with several bot processes or a re-delivered job.
3. The adapter shows the ``Outcome``: the PNG, the preview and ``caption`` (or ``caption`` alone,
   the error message, when the job failed). ``None`` means: show nothing (already delivered, or
   the user said ``/forget`` meanwhile).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

from bot.core.captions import report_caption
from bot.core.i18n import error_text, text
from bot.core.limits import Limits
from bot.core.status import OnStatus, StatusReporter
from bot.core.store import UserStore, new_token
from bot.core.users import User
from common.filters import NATURAL
from common.jobs import (
    PROTECT,
    Progress,
    ProtectRequest,
    ProtectResult,
    VariantsRequest,
    VariantsResult,
)

log = logging.getLogger(__name__)

OnStatusUpdate = Callable[[int | None, Progress | None], Awaitable[None]]


class Queue(Protocol):
    """The parts of ``bot.queue.JobQueue`` the flow uses."""

    async def submit(self, request: ProtectRequest | VariantsRequest) -> bool: ...
    async def queue_length(self) -> int: ...
    async def wait(
        self, request_id: str, *, timeout: float, on_update: OnStatusUpdate | None = None,
        kind: str = PROTECT,
    ) -> ProtectResult | VariantsResult: ...
    async def claim_delivery(self, request_id: str) -> bool: ...
    async def discard(self, request_id: str) -> None: ...


@dataclass(frozen=True)
class Ticket:
    """An admitted job: its user, its ``request_id`` and when it was admitted."""

    user: User
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Outcome:
    """A finished job to show: ``caption`` is the report (ok) or the error message;
    ``filter`` the look it was asked for (None: natural), kept by the weaker/stronger buttons."""

    result: ProtectResult
    strength: int
    token: str
    seconds: float
    caption: str
    filter: str | None = None

    @property
    def ok(self) -> bool:
        return self.result.ok


def neighbours(level: int) -> tuple[int | None, int | None]:
    """The weaker and stronger levels next to ``level`` (None at the ends of 1..5)."""
    return (level - 1 if level > 1 else None, level + 1 if level < 5 else None)


class ProtectFlow:
    """Admission, submission, progress and at-most-once delivery of protect jobs."""

    def __init__(
        self,
        queue: Queue,
        store: UserStore,
        limits: Limits,
        *,
        timeout_s: float,
        status_interval_s: float,
        test_profile: bool = False,
    ) -> None:
        self.queue, self.store, self.limits = queue, store, limits
        self.timeout_s = timeout_s
        self.status_interval_s = status_interval_s
        self.test_profile = test_profile

    @asynccontextmanager
    async def admit(self, user: User, *, count: bool = True) -> AsyncIterator[Ticket]:
        """Hold the user's one job slot for the block, or raise ``Refused``; ``count=False``
        for cheap jobs that do not use the hourly quota (the filter contact sheet)."""
        ticket = Ticket(user)
        await self.limits.acquire(user, ticket.request_id, count=count)
        try:
            yield ticket
        finally:
            await self.limits.release(user, ticket.request_id)

    async def run(
        self,
        ticket: Ticket,
        image: bytes,
        *,
        strength: int,
        on_status: OnStatus,
        token: str | None = None,
        filter: str | None = None,
    ) -> Outcome | None:
        """Protect ``image`` (``token`` names an already remembered photo, for the buttons),
        after the look ``filter`` (a ``common.filters`` id; None: natural)."""
        user, request_id = ticket.user, ticket.request_id
        filter = None if filter == NATURAL else filter
        photo = None
        if token is None:  # a new photo (the buttons pass the token of a remembered one)
            token = new_token()
            photo = (token, image)
        if not await self.store.start_job(user, request_id, photo):
            return None  # the user said /forget since being admitted
        reporter = StatusReporter(user.lang, on_status, self.status_interval_s)
        request = ProtectRequest(
            request_id, image, strength=strength, filter=filter, test_profile=self.test_profile
        )
        if await self.queue.submit(request):
            result = await self.queue.wait(
                request_id, timeout=self.timeout_s, on_update=reporter.update
            )
        else:  # cannot happen with fresh uuids; never wait on someone else's job
            result = ProtectResult(request_id, error="internal", error_detail="duplicate id")
        if not await self.claim(user, request_id):
            return None
        seconds = time.monotonic() - ticket.started
        if result.ok:
            await reporter.done(seconds)
            caption = report_caption(user.lang, result.report, strength, result.notes)
        else:
            log.info("job %s failed: %s (%s)", request_id, result.error, result.error_detail)
            await reporter.failed()
            caption = error_text(user.lang, result.error)
        return Outcome(result, strength, token, seconds, caption, filter)

    async def claim(self, user: User, request_id: str) -> bool:
        """Whether this process shows the finished job ``request_id``: the user still holds
        its slot (no ``/forget`` meanwhile) and no one delivered it yet. Its result is
        deleted from Redis either way (it lives on in memory only)."""
        if not await self.limits.holds(user, request_id):
            log.info("job %s: user forgot meanwhile, result dropped", request_id)
            await self.queue.discard(request_id)
            return False
        if not await self.queue.claim_delivery(request_id):
            log.info("job %s: already delivered", request_id)
            return False
        await self.queue.discard(request_id)
        return True

    async def protect(
        self,
        user: User,
        load_image: Callable[[], Awaitable[bytes]],
        *,
        strength: int,
        on_status: OnStatus,
        deliver: Callable[[Outcome], Awaitable[None]],
        token: str | None = None,
        filter: str | None = None,
    ) -> None:
        """One photo, start to end, for an adapter: ``admit`` (``Refused`` comes before any
        status), "received", fetch the image only then, ``run``, and ``deliver`` the outcome
        (if there is one to show) while still holding the user's slot. A failure before the
        delivery puts "failed" in the status line and propagates."""
        async with self.admit(user) as ticket:
            await on_status(text(user.lang, "status_received"))
            try:
                image = await load_image()
                outcome = await self.run(ticket, image, strength=strength, on_status=on_status,
                                         token=token, filter=filter)
            except Exception:
                try:
                    await on_status(text(user.lang, "status_failed"))
                except Exception as exc:  # cosmetic: the failure itself propagates
                    log.warning("status update failed: %s", type(exc).__name__)
                raise
            if outcome is not None:
                await deliver(outcome)
