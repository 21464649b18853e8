"""The deepfake test in the bots (issue 5), platform-neutral: a 🎭 button under every result and
``/clip`` make a short MP4 of one face swap made from the user's remembered photo and the same
swap made from its protected version, side by side.

The flow mirrors ``FilterFlow.sheet``: the adapter calls ``flow.admit(user)`` (a clip counts
against the hourly quota: it protects the photo again), then ``ClipFlow.clip(ticket, image,
token, on_status)``, which runs a ``ClipRequest`` on the slow queue and returns a ``ClipShow``
to show once (None: nothing to show).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bot.core.flow import ProtectFlow, Ticket
from bot.core.i18n import error_text, text
from bot.core.status import OnStatus, StatusReporter, status_text
from common.jobs import CLIP, ClipRequest, ClipResult, Progress

#: Clip job stages (``worker.jobs.run_clip``) and the message key of each.
STAGE_KEYS = {"protecting": "clip_protecting", "verifying": "clip_protecting",
              "extracting": "clip_swapping", "swapping": "clip_swapping",
              "rendering": "clip_rendering"}


@dataclass(frozen=True)
class ClipShow:
    """A finished clip to show: ``result.video`` (MP4) with ``caption``; when the job failed,
    ``caption`` is the error message."""

    result: ClipResult
    caption: str

    @property
    def ok(self) -> bool:
        return self.result.ok


class _ClipStatus(StatusReporter):
    """Status lines with the clip's own stages (protecting, then making the deepfakes)."""

    async def update(self, position: int | None, progress: Progress | None) -> None:
        key = STAGE_KEYS.get(progress.stage) if progress else None
        if key is None:
            message = status_text(self.lang, position, progress)
        else:
            message = text(self.lang, key, percent=min(99, round(100 * progress.fraction)))
        await self._send(message, final=False)


def side_text(lang: str, side: dict[str, Any]) -> str:
    """What the face swap did with one photo, in words."""
    outcome = side.get("outcome", "no_face")
    distance = side.get("identity_distance")
    return text(lang, f"clip_{outcome}", distance=f"{distance:.2f}" if distance is not None
                else "-")


def clip_caption(lang: str, report: dict[str, Any]) -> str:
    """The one-message explanation under the clip."""
    strength = report.get("protection", {}).get("strength", "?")
    return text(lang, "clip_caption", original=side_text(lang, report.get("original", {})),
                protected=side_text(lang, report.get("protected", {})), strength=strength)


class ClipFlow:
    """The deepfake-test job over a ``ProtectFlow`` (its queue, store and limits)."""

    def __init__(self, flow: ProtectFlow) -> None:
        self.flow = flow

    async def clip(
        self, ticket: Ticket, image: bytes, strength: int, on_status: OnStatus
    ) -> ClipShow | None:
        """The deepfake test of the remembered photo ``image`` protected at ``strength``; None
        when there is nothing to show (``/forget`` meanwhile, or already shown)."""
        user, request_id = ticket.user, ticket.request_id
        if not await self.flow.store.start_job(user, request_id):
            return None  # tracked like any job, so /forget finds the queue's copy of the photo
        reporter = _ClipStatus(user.lang, on_status, self.flow.status_interval_s)
        request = ClipRequest(request_id, image, strength=strength, locale=user.lang,
                              test_profile=self.flow.test_profile)
        if await self.flow.queue.submit(request):
            result = await self.flow.queue.wait(
                request_id, timeout=self.flow.timeout_s, on_update=reporter.update, kind=CLIP
            )
        else:  # cannot happen with fresh uuids; never wait on someone else's job
            result = ClipResult(request_id, error="internal", error_detail="duplicate id")
        if not await self.flow.claim(user, request_id):
            return None
        if not result.ok:
            await reporter.failed()
            return ClipShow(result, error_text(user.lang, result.error))
        await reporter.done(time.monotonic() - ticket.started)
        return ClipShow(result, clip_caption(user.lang, result.report))
