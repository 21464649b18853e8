"""Filters in the bots (issue 4), platform-neutral: ``/filter NAME`` (the user's default look)
and the contact sheet of a remembered photo that the user picks a look from.

The flow of a sheet mirrors ``ProtectFlow``: ``flow.admit(user, count=False)`` (it holds the
user's slot but not the hourly quota: a sheet is a sub-second job), then ``sheet(ticket, image,
token)`` runs a ``VariantsRequest`` and returns a ``Sheet`` to show once. Each button of it names
a filter id and the photo's token; the adapter protects that photo with ``ProtectFlow.run(...,
filter=...)`` at the user's strength.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from bot.core.flow import ProtectFlow, Ticket
from bot.core.i18n import error_text, text
from bot.core.status import OnStatus, StatusReporter
from bot.core.users import User
from common.filters import FILTERS, NATURAL, label, resolve
from common.jobs import VARIANTS, Progress, VariantsRequest, VariantsResult

#: Longest filter name echoed back in the "unknown filter" message.
ECHO_MAX = 40
#: A sheet still waiting in the queue after this many seconds gets a status line.
QUEUE_NOTICE_S = 2.0
#: Buttons per keyboard row when the sheet does not say how many thumbnails a row holds.
DEFAULT_COLUMNS = 4


@dataclass(frozen=True)
class Sheet:
    """A contact sheet to show (``result.sheet``, a JPEG) with ``caption`` and a keyboard of
    ``rows`` of (label, filter id) in the sheet's grid order; when the job failed, ``caption``
    is the error message and there are no rows."""

    result: VariantsResult
    token: str
    caption: str
    rows: list[list[tuple[str, str]]]

    @property
    def ok(self) -> bool:
        return self.result.ok


async def _silent(message: str) -> None:
    """No status line (the adapter did not ask for one)."""


def names_text(lang: str) -> str:
    """Every filter id people can type, with its label where that says more."""
    parts = []
    for name in FILTERS:
        human = label(name, lang)
        parts.append(name if human.lower() == name else f"{name} ({human})")
    return ", ".join(parts)


def keyboard_rows(result: VariantsResult) -> list[list[tuple[str, str]]]:
    """(label, filter id) buttons laid out like the sheet's grid (row by row)."""
    columns = result.columns if result.columns > 0 else DEFAULT_COLUMNS
    labels = result.labels if len(result.labels) == len(result.names) else result.names
    buttons = list(zip(labels, result.names, strict=True))
    return [buttons[i:i + columns] for i in range(0, len(buttons), columns)]


class FilterFlow:
    """The default filter setting and the contact-sheet job, over a ``ProtectFlow``."""

    def __init__(self, flow: ProtectFlow) -> None:
        self.flow = flow

    async def command(self, user: User, arg: str) -> str:
        """``/filter NAME``: make NAME the default look (``off``/``natural`` turn it off);
        returns the reply, which lists the filters when NAME is unknown."""
        name = resolve(arg)
        if name is None:
            return text(user.lang, "filter_unknown", name=arg.strip()[:ECHO_MAX],
                        names=names_text(user.lang))
        await self.flow.store.set_filter(user, name)
        if name == NATURAL:
            return text(user.lang, "filter_off")
        return text(user.lang, "filter_set", label=label(name, user.lang))

    async def sheet(
        self, ticket: Ticket, image: bytes, token: str, on_status: OnStatus | None = None
    ) -> Sheet | None:
        """Render the remembered photo ``token`` (``image``) in every filter; None when
        there is nothing to show (the user said ``/forget``, or it was already shown).
        ``on_status`` hears only of a wait in the queue longer than ``QUEUE_NOTICE_S`` (the job
        itself takes under a second), and then of the end."""
        user, request_id = ticket.user, ticket.request_id
        if not await self.flow.store.start_job(user, request_id):
            return None  # tracked like any job, so /forget finds the queue's copy of the photo
        reporter = StatusReporter(user.lang, on_status or _silent, self.flow.status_interval_s)
        waiting: list[int] = []  # the latest queue position while it has not started

        async def queued(position: int | None, progress: Progress | None) -> None:
            waiting[:] = [position] if position else []
            if position and time.monotonic() - ticket.started >= QUEUE_NOTICE_S:
                await reporter.update(position, None)

        async def notice() -> None:
            await asyncio.sleep(QUEUE_NOTICE_S)
            if waiting:
                await reporter.update(waiting[0], None)

        request = VariantsRequest(request_id, image, locale=user.lang)
        if await self.flow.queue.submit(request):
            notifier = asyncio.create_task(notice())
            try:
                result = await self.flow.queue.wait(
                    request_id, timeout=self.flow.timeout_s, on_update=queued, kind=VARIANTS
                )
            finally:
                notifier.cancel()
        else:  # cannot happen with fresh uuids; never wait on someone else's job
            result = VariantsResult(request_id, error="internal", error_detail="duplicate id")
        if not await self.flow.claim(user, request_id):
            return None
        if reporter.last_text is not None:  # a status line was shown: close it
            seconds = time.monotonic() - ticket.started
            await (reporter.done(seconds) if result.ok else reporter.failed())
        if not result.ok:
            return Sheet(result, token, error_text(user.lang, result.error), [])
        strength, current = await self.flow.store.defaults(user)
        caption = text(user.lang, "filters_pick", strength=strength,
                       current=label(current or NATURAL, user.lang))
        return Sheet(result, token, caption, keyboard_rows(result))
