"""Discord message parts for the bot: the reply a job edits as it moves, and button views that
only the person who asked may press (``discord.ui.View``)."""

from __future__ import annotations

import io
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import discord

from bot.core.i18n import language, text

log = logging.getLogger(__name__)

#: Discord's limits: message content, embed description, buttons per row and rows per message.
CONTENT_MAX = 2000
EMBED_DESCRIPTION_MAX = 4096
ROW_MAX = 5
ROWS_MAX = 5
#: Discord's error code for an expired interaction token.
INVALID_WEBHOOK_TOKEN = 50027

Action = Callable[[discord.Interaction], Awaitable[None]]


def language_of(locale: discord.Locale | str | None) -> str:
    """The catalogue for a Discord locale (``ko`` → Korean, anything else English)."""
    return language(str(getattr(locale, "value", locale) or ""))


def attachment(data: bytes, filename: str) -> discord.File:
    """An in-memory file to upload (nothing is written to disk)."""
    return discord.File(io.BytesIO(data), filename=filename)


async def attempt(action: Awaitable[object]) -> None:
    """Run a cosmetic chat action; a failure is logged by type only."""
    try:
        await action
    except Exception as exc:
        log.warning("discord update failed: %s", type(exc).__name__)


class Reply(ABC):
    """The one message a job shows itself in: ``show`` replaces its content (and files, embed,
    buttons when given); ``content`` is what it shows now."""

    content: str = ""

    async def show(
        self, content: str, *, files: Sequence[discord.File] | None = None,
        embed: discord.Embed | None = None, view: discord.ui.View | None = None,
    ) -> None:
        """Show ``content`` (cut to Discord's limit) and, when given, these parts."""
        self.content = content[:CONTENT_MAX]
        parts: dict[str, Any] = {"content": self.content}
        if files is not None:
            parts["attachments"] = list(files)
        if embed is not None:
            parts["embed"] = embed
        if view is not None:
            parts["view"] = view
        await self._edit(parts)

    async def clear_view(self) -> None:
        """Remove the buttons (they expired)."""
        await self._edit({"view": None})

    @abstractmethod
    async def _edit(self, parts: dict[str, Any]) -> None:
        """Send or edit the message with ``parts`` (keyword arguments of an edit)."""


class InteractionReply(Reply):
    """The deferred ("thinking…") response of an interaction, edited in place. Its webhook
    token lives 15 minutes: a job that outlasts it goes on in a new message in the channel."""

    def __init__(self, interaction: discord.Interaction) -> None:
        self.interaction = interaction
        self.fallback: MessageReply | None = None

    async def _edit(self, parts: dict[str, Any]) -> None:
        if self.fallback is None:
            try:
                await self.interaction.edit_original_response(**parts)
                return
            except discord.HTTPException as exc:
                channel = self.interaction.channel
                if exc.code != INVALID_WEBHOOK_TOKEN or not isinstance(
                        channel, discord.abc.Messageable):
                    raise
                log.info("interaction token expired: going on in a new message")
                self.fallback = MessageReply(channel)
        if "content" not in parts and self.fallback.message is None:
            return  # nothing to show in a new message
        for file in parts.get("attachments", ()):
            file.reset()  # read by the failed request: from the start again
        await self.fallback._edit(parts)


class MessageReply(Reply):
    """A bot message in a channel (a DM without a command): sent on the first ``show``, then
    edited."""

    def __init__(self, channel: discord.abc.Messageable) -> None:
        self.channel = channel
        self.message: discord.Message | None = None

    async def _edit(self, parts: dict[str, Any]) -> None:
        if self.message is not None:
            self.message = await self.message.edit(**parts)
            return
        files = parts.pop("attachments", None)
        if files:
            parts["files"] = files
        if parts.get("view") is None:
            parts.pop("view", None)
        self.message = await self.channel.send(**parts)


class ActionButton(discord.ui.Button):
    """A button that runs ``action`` with the interaction of the press."""

    def __init__(self, label: str, action: Action, *, row: int,
                 style: discord.ButtonStyle = discord.ButtonStyle.secondary) -> None:
        super().__init__(label=label[:80], style=style, row=row)
        self.action = action

    async def callback(self, interaction: discord.Interaction) -> None:
        await self.action(interaction)


class OwnedView(discord.ui.View):
    """Buttons that only ``owner_id`` may press: anyone else gets a short refusal only they
    see, in their language. On timeout the buttons are removed from ``reply``."""

    def __init__(
        self, owner_id: int, reply: Reply, timeout: float,
        on_failure: Callable[[discord.Interaction, Exception], Awaitable[None]],
    ) -> None:
        super().__init__(timeout=timeout)
        self.owner_id, self.reply, self.on_failure = owner_id, reply, on_failure

    def add_rows(self, rows: Sequence[Sequence[tuple[str, Action]]]) -> OwnedView:
        """Add (label, action) buttons row by row (at most Discord's 5 × 5)."""
        for number, row in enumerate(rows[:ROWS_MAX]):
            for label, action in row[:ROW_MAX]:
                self.add_item(ActionButton(label, action, row=number))
        return self

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id == self.owner_id:
            return True
        lang = language_of(interaction.locale)
        await interaction.response.send_message(text(lang, "discord_not_yours"), ephemeral=True)
        return False

    async def on_timeout(self) -> None:
        await attempt(self.reply.clear_view())

    async def on_error(self, interaction: discord.Interaction, error: Exception,
                       item: discord.ui.Item[Any]) -> None:
        await self.on_failure(interaction, error)
