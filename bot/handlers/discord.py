"""The Discord bot: discord.py 2 slash commands, attachments and buttons, thin over ``bot.core``.

``/protect image:<attachment> [strength]``, ``/strength``, ``/filter``, ``/clip``, ``/privacy``,
``/forget`` and ``/help`` (descriptions in English and Korean), and in a DM an image sent without
a command. Every interaction is acknowledged at once (``defer(thinking=True)``); that response is
then edited with the status line and finally carries the protected PNG (``protected.png``, never
the user's file name), the report as an embed with the before/after preview, and buttons
(weaker/stronger, 🎨 filters, 🎭 deepfake test) that only the person who asked may press. A PNG
above the upload limit comes back downscaled, still lossless, with a message saying so.

Images are read into memory only; nothing about them or their senders is logged. The token comes
from ``DISCORD_BOT_TOKEN`` only and is redacted from every log line. Gateway intents: ``guilds``
and ``dm_messages``, neither privileged (the content and attachments of DMs to the bot arrive
without the message-content intent).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from functools import partial
from typing import cast

import discord
from discord import app_commands
from discord.app_commands import Choice, locale_str

from bot.core.files import fit_png, not_an_image
from bot.core.flow import Outcome, neighbours
from bot.core.i18n import DEFAULT, EN, text
from bot.core.limits import Refused
from bot.core.logs import redact_logs
from bot.core.service import BotCore
from bot.core.store import STRENGTHS
from bot.core.users import User
from bot.handlers.discord_views import (
    EMBED_DESCRIPTION_MAX,
    Action,
    InteractionReply,
    MessageReply,
    OwnedView,
    Reply,
    attachment,
    attempt,
    language_of,
)
from common.config import Config, ConfigError, load
from common.filters import FILTERS, label
from common.redis_server import resolve_url

log = logging.getLogger(__name__)

TOKEN_ENV = "DISCORD_BOT_TOKEN"
PLATFORM = "discord"
#: Users whose language is remembered for DMs without a command (which carry no locale).
LOCALES_KEPT = 10_000
EMBED_COLOUR = discord.Colour.blurple()


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f}".rstrip("0").rstrip(".")


def _text(key: str) -> locale_str:
    """A command or option description: English, translated by ``Texts``."""
    return locale_str(EN[key], key=key)


class Texts(app_commands.Translator):
    """Command and option descriptions and filter names from ``bot.core.i18n``, so Discord
    shows them in Korean to Korean clients."""

    async def translate(self, string: locale_str, locale: discord.Locale,
                        context: app_commands.TranslationContextTypes) -> str | None:
        lang = language_of(locale)
        if lang == DEFAULT:
            return None
        if key := string.extras.get("key"):
            return text(lang, key)
        if look := string.extras.get("filter"):
            return label(look, lang)
        return None


class DiscordBot(discord.Client):
    """The client: the command tree, the shared ``BotCore`` (opened in ``setup_hook``) and DM
    photos."""

    def __init__(self, config: Config, redis_url: str) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        intents.dm_messages = True
        # No voice here: no warnings about voice libraries that are not installed.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        super().__init__(intents=intents)
        self.config, self.redis_url = config, redis_url
        self.tree = Tree(self)
        for command in COMMANDS:
            self.tree.add_command(command)
        self._core: BotCore | None = None
        self.locales: OrderedDict[int, str] = OrderedDict()

    @property
    def core(self) -> BotCore:
        assert self._core is not None, "setup_hook opens the core before any event"
        return self._core

    async def setup_hook(self) -> None:
        self._core = await BotCore.open(self.redis_url, self.config)
        await self.tree.set_translator(Texts())
        if self.config.discord.sync_commands:
            await self.sync_commands()

    async def sync_commands(self) -> None:
        """Register the slash commands: in the configured guild only (they appear at once;
        for development), else globally."""
        guild_id = self.config.discord.guild_id
        if guild_id:
            guild = discord.Object(id=guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
        else:
            synced = await self.tree.sync()
        log.info("synced %d slash commands%s", len(synced), " to the guild" if guild_id else "")

    async def close(self) -> None:
        await super().close()
        core, self._core = self._core, None
        if core is not None:
            await core.close()

    def user_of(self, person: discord.abc.User, locale: discord.Locale | None = None) -> User:
        """The core's ``User``; a locale (interactions have one, DMs do not) is remembered in
        memory for the person's next DM."""
        if locale is not None:
            self.locales[person.id] = language_of(locale)
            self.locales.move_to_end(person.id)
            while len(self.locales) > LOCALES_KEPT:
                self.locales.popitem(last=False)
        return User(PLATFORM, person.id, self.locales.get(person.id, DEFAULT))

    def upload_limit(self, interaction: discord.Interaction | None = None) -> int:
        """The most bytes one uploaded file may have here."""
        limit = self.config.discord.upload_limit_bytes
        allowed = interaction.filesize_limit if interaction is not None else 0
        return min(limit, allowed) if allowed else limit

    def upload_refusal(self, user: User, mime: str | None, name: str | None,
                       size: int) -> str | None:
        """Why an attachment is not even downloaded (None: it may be an image)."""
        if not_an_image(mime, name):
            return text(user.lang, "not_an_image_document")
        max_mb = self.config.bot.max_download_mb
        if size > max_mb * 1024 * 1024:
            return text(user.lang, "discord_too_big", max_mb=max_mb)
        return None

    async def on_message(self, message: discord.Message) -> None:
        """A DM without a command: its first attachment is protected at the user's default
        strength and look; other DMs get a hint."""
        if message.guild is not None or message.author.bot:
            return
        user = self.user_of(message.author)
        if not message.attachments:
            await message.channel.send(text(user.lang, "send_photo"))
            return
        upload = message.attachments[0]
        if refusal := self.upload_refusal(user, upload.content_type, upload.filename,
                                          upload.size):
            await message.channel.send(refusal)
            return
        level, look = await self.core.store.defaults(user)
        reply = MessageReply(message.channel)
        await _protect(self, reply, user, message.author.id, upload.read, level, None, look,
                       self.upload_limit())

    async def on_error(self, event_method: str, /, *args: object, **kwargs: object) -> None:
        """A failed event handler (a DM photo): logged by type and place, the user told once."""
        log.exception("discord event %s failed", event_method)
        message = args[0] if args and isinstance(args[0], discord.Message) else None
        if message is not None:
            lang = self.locales.get(message.author.id, DEFAULT)
            await attempt(message.channel.send(text(lang, "error_generic")))


class Tree(app_commands.CommandTree):
    """The command tree; a failed command is logged and the user told once, generically."""

    async def on_error(self, interaction: discord.Interaction,
                       error: app_commands.AppCommandError) -> None:
        await on_failure(interaction, error)


async def on_failure(interaction: discord.Interaction, error: Exception) -> None:
    """Log a failed command or button (no content, no user data) and tell the user, privately."""
    log.error("discord interaction failed", exc_info=error)
    message = text(language_of(interaction.locale), "error_generic")
    if interaction.response.is_done():
        await attempt(interaction.followup.send(message, ephemeral=True))
    else:
        await attempt(interaction.response.send_message(message, ephemeral=True))


def _bot(interaction: discord.Interaction) -> DiscordBot:
    return cast(DiscordBot, interaction.client)


def _user(interaction: discord.Interaction) -> User:
    return _bot(interaction).user_of(interaction.user, interaction.locale)


def _view(bot: DiscordBot, owner_id: int, reply: Reply) -> OwnedView:
    return OwnedView(owner_id, reply, bot.config.discord.view_timeout_s, on_failure)


# The protect flow ------------------------------------------------------------------------------


async def _protect(
    bot: DiscordBot, reply: Reply, user: User, owner_id: int,
    load_image: Callable[[], Awaitable[bytes]], level: int, token: str | None,
    look: str | None, limit: int,
) -> None:
    """Protect one photo, showing every step in ``reply`` (``ProtectFlow.protect``)."""
    try:
        await bot.core.flow.protect(
            user, load_image, strength=level, on_status=reply.show, token=token, filter=look,
            deliver=partial(_deliver, bot, reply, user, owner_id, limit=limit),
        )
    except Refused as refused:
        await reply.show(text(user.lang, refused.reason, **refused.values))


async def _deliver(bot: DiscordBot, reply: Reply, user: User, owner_id: int, outcome: Outcome,
                   *, limit: int) -> None:
    """The result: the lossless PNG that fits, the report embed with the preview, buttons."""
    if not outcome.ok:
        await reply.show(outcome.caption)
        return
    result, lang = outcome.result, user.lang
    fitted = await asyncio.to_thread(fit_png, result.png, limit)
    if fitted is None:
        await reply.show(text(lang, "discord_result_too_big", limit_mb=_mb(limit)))
        return
    lines = [reply.content]
    if fitted.scaled:
        lines.append(text(lang, "discord_resized", size_mb=_mb(len(result.png)),
                          limit_mb=_mb(limit), width=fitted.width, height=fitted.height))
    embed = discord.Embed(title=text(lang, "discord_report_title"), colour=EMBED_COLOUR,
                          description=outcome.caption[:EMBED_DESCRIPTION_MAX])
    files = [attachment(fitted.png, "protected.png")]
    if result.preview and len(result.preview) <= limit:
        files.append(attachment(result.preview, "preview.jpg"))
        embed.set_image(url="attachment://preview.jpg")
        embed.set_footer(text=text(lang, "preview_caption"))
    await reply.show("\n\n".join(lines), files=files, embed=embed,
                     view=result_view(bot, reply, lang, owner_id, outcome))


def result_view(bot: DiscordBot, reply: Reply, lang: str, owner_id: int,
                outcome: Outcome) -> OwnedView:
    """Weaker/stronger (same photo, same look), then 🎨 filters and 🎭 deepfake test."""
    token, look = outcome.token, outcome.filter
    levels = [
        (text(lang, key, level=target), partial(redo, token=token, level=target, look=look))
        for key, target in zip(("button_weaker", "button_stronger"), neighbours(outcome.strength),
                               strict=True)
        if target is not None
    ]
    more: list[tuple[str, Action]] = [
        (text(lang, "button_filters"), partial(filters_button, token=token)),
        (text(lang, "button_clip"), partial(clip_button, token=token)),
    ]
    return _view(bot, owner_id, reply).add_rows([levels, more] if levels else [more])


async def _remembered(interaction: discord.Interaction, reply: Reply, token: str
                      ) -> bytes | None:
    """The remembered photo ``token``; when it expired, the reply asks for it again."""
    user = _user(interaction)
    image = await _bot(interaction).core.store.photo(user, token)
    if image is None:
        await reply.show(text(user.lang, "send_again"))
    return image


async def redo(interaction: discord.Interaction, *, token: str, level: int,
               look: str | None) -> None:
    """Weaker/stronger, or a look picked from the sheet: the remembered photo again."""
    await interaction.response.defer(thinking=True)
    bot, user, reply = _bot(interaction), _user(interaction), InteractionReply(interaction)
    image = await _remembered(interaction, reply, token)
    if image is None:
        return

    async def cached() -> bytes:
        return image

    await _protect(bot, reply, user, interaction.user.id, cached, level, token, look,
                   bot.upload_limit(interaction))


async def filters_button(interaction: discord.Interaction, *, token: str) -> None:
    await interaction.response.defer(thinking=True)
    reply = InteractionReply(interaction)
    if (image := await _remembered(interaction, reply, token)) is not None:
        await _show_sheet(interaction, reply, token, image)


async def clip_button(interaction: discord.Interaction, *, token: str) -> None:
    await interaction.response.defer(thinking=True)
    reply = InteractionReply(interaction)
    if (image := await _remembered(interaction, reply, token)) is not None:
        await _show_clip(interaction, reply, image)


async def _show_sheet(interaction: discord.Interaction, reply: Reply, token: str,
                      image: bytes) -> None:
    """The contact sheet of a remembered photo, with a button per look."""
    bot, user = _bot(interaction), _user(interaction)
    try:
        async with bot.core.flow.admit(user, count=False) as ticket:
            sheet = await bot.core.looks.sheet(ticket, image, token, reply.show)
    except Refused as refused:
        await reply.show(text(user.lang, refused.reason, **refused.values))
        return
    if sheet is None:
        return
    if not sheet.ok:
        await reply.show(sheet.caption)
        return
    level = await bot.core.store.strength(user)
    buttons = [(name, look) for row in sheet.rows for name, look in row]
    width = max(1, min(len(sheet.rows[0]) if sheet.rows else 1, 5))
    rows = [
        [(name, partial(redo, token=token, level=level, look=look))
         for name, look in buttons[i:i + width]]
        for i in range(0, len(buttons), width)
    ]
    await reply.show(sheet.caption, files=[attachment(sheet.result.sheet, "filters.jpg")],
                     view=_view(bot, interaction.user.id, reply).add_rows(rows))


async def _show_clip(interaction: discord.Interaction, reply: Reply, image: bytes) -> None:
    """The deepfake test of a remembered photo at the user's strength, as an MP4."""
    bot, user = _bot(interaction), _user(interaction)
    try:
        async with bot.core.flow.admit(user) as ticket:
            await reply.show(text(user.lang, "status_received"))
            level = await bot.core.store.strength(user)
            shown = await bot.core.clips.clip(ticket, image, level, reply.show)
    except Refused as refused:
        await reply.show(text(user.lang, refused.reason, **refused.values))
        return
    if shown is None:
        return
    limit = bot.upload_limit(interaction)
    if not shown.ok or len(shown.result.video) > limit:
        await reply.show(shown.caption if not shown.ok
                         else text(user.lang, "discord_result_too_big", limit_mb=_mb(limit)))
        return
    await reply.show(shown.caption, files=[attachment(shown.result.video, "deepfake-test.mp4")])


# Slash commands --------------------------------------------------------------------------------


@app_commands.command(name="protect", description=_text("cmd_protect"))
@app_commands.describe(image=_text("opt_image"), strength=_text("opt_strength"))
async def protect_command(interaction: discord.Interaction, image: discord.Attachment,
                          strength: app_commands.Range[int, 1, 5] | None = None) -> None:
    bot, user = _bot(interaction), _user(interaction)
    if refusal := bot.upload_refusal(user, image.content_type, image.filename, image.size):
        await interaction.response.send_message(refusal, ephemeral=True)
        return
    await interaction.response.defer(thinking=True)
    level, look = await bot.core.store.defaults(user)
    await _protect(bot, InteractionReply(interaction), user, interaction.user.id, image.read,
                   strength or level, None, look, bot.upload_limit(interaction))


@app_commands.command(name="strength", description=_text("cmd_strength"))
@app_commands.describe(level=_text("opt_level"))
async def strength_command(interaction: discord.Interaction,
                           level: app_commands.Range[int, 1, 5] | None = None) -> None:
    """``/strength 1..5`` sets the default; ``/strength`` alone shows it with 1..5 buttons."""
    bot, user = _bot(interaction), _user(interaction)
    if level is not None:
        await bot.core.store.set_strength(user, level)
        await interaction.response.send_message(text(user.lang, "strength_set", level=level),
                                                ephemeral=True)
        return
    current = await bot.core.store.strength(user)
    row = [(f"•{n}•" if n == current else str(n), partial(_set_strength, level=n))
           for n in STRENGTHS]
    await interaction.response.send_message(
        text(user.lang, "strength_current", level=current), ephemeral=True,
        view=_view(bot, interaction.user.id, InteractionReply(interaction)).add_rows([row]),
    )


async def _set_strength(interaction: discord.Interaction, *, level: int) -> None:
    user = _user(interaction)
    await _bot(interaction).core.store.set_strength(user, level)
    await interaction.response.edit_message(content=text(user.lang, "strength_set", level=level),
                                            view=None)


@app_commands.command(name="filter", description=_text("cmd_filter"))
@app_commands.describe(name=_text("opt_filter"))
@app_commands.choices(name=[Choice(name=locale_str(english, filter=look), value=look)
                            for look, (english, _korean) in FILTERS.items()])
async def filter_command(interaction: discord.Interaction, name: str | None = None) -> None:
    """``/filter``: the contact sheet of the last photo; ``/filter name``: the default look."""
    bot, user = _bot(interaction), _user(interaction)
    if name is not None:
        reply = await bot.core.looks.command(user, name)
        await interaction.response.send_message(reply, ephemeral=True)
        return
    await interaction.response.defer(thinking=True)
    reply = InteractionReply(interaction)
    last = await bot.core.store.last_photo(user)
    if last is None:
        await reply.show(text(user.lang, "filter_no_photo"))
        return
    await _show_sheet(interaction, reply, *last)


@app_commands.command(name="clip", description=_text("cmd_clip"))
async def clip_command(interaction: discord.Interaction) -> None:
    """``/clip``: the deepfake test of the last photo."""
    await interaction.response.defer(thinking=True)
    reply, user = InteractionReply(interaction), _user(interaction)
    last = await _bot(interaction).core.store.last_photo(user)
    if last is None:
        await reply.show(text(user.lang, "clip_no_photo"))
        return
    await _show_clip(interaction, reply, last[1])


@app_commands.command(name="privacy", description=_text("cmd_privacy"))
async def privacy_command(interaction: discord.Interaction) -> None:
    privacy, lang = _bot(interaction).config.privacy, _user(interaction).lang
    await interaction.response.send_message(
        text(lang, "privacy", photo_minutes=privacy.photo_ttl_s // 60,
             settings_days=privacy.settings_ttl_s // 86400), ephemeral=True,
    )


@app_commands.command(name="forget", description=_text("cmd_forget"))
async def forget_command(interaction: discord.Interaction) -> None:
    user = _user(interaction)
    await _bot(interaction).core.forget(user)
    await interaction.response.send_message(text(user.lang, "forgot"), ephemeral=True)


@app_commands.command(name="help", description=_text("cmd_help"))
async def help_command(interaction: discord.Interaction) -> None:
    bot, user = _bot(interaction), _user(interaction)
    strength = await bot.core.store.strength(user)
    await interaction.response.send_message(
        text(user.lang, "discord_help", max_mb=bot.config.bot.max_download_mb, strength=strength),
        ephemeral=True,
    )


COMMANDS = (protect_command, strength_command, filter_command, clip_command, privacy_command,
            forget_command, help_command)


# Running ---------------------------------------------------------------------------------------


def protect_logs(*secrets: str) -> None:
    """Keep the token out of logs: discord.py's HTTP debug lines (URLs with interaction tokens)
    off, and the secrets redacted at every root handler."""
    logging.getLogger("discord.http").setLevel(logging.INFO)
    logging.getLogger("discord.webhook").setLevel(logging.INFO)
    redact_logs(*secrets)


def _token(token: str) -> str:
    token = token or os.environ.get(TOKEN_ENV, "")
    if not token:
        raise ConfigError(f"{TOKEN_ENV} is not set")
    protect_logs(token)
    return token


def run_discord(config: Config | None = None, redis_url: str = "", token: str = "") -> None:
    """Run the Discord bot until stopped (blocking). The token defaults to
    ``DISCORD_BOT_TOKEN``; ``redis_url`` to the configured one."""
    config = config or load()
    token = _token(token)
    bot = DiscordBot(config, redis_url or resolve_url(start=False))
    try:
        bot.run(token, log_handler=None)
    except discord.LoginFailure:
        raise ConfigError(f"Discord refused {TOKEN_ENV} (reset it in the developer portal)"
                          ) from None


class DiscordThread:
    """The Discord bot on its own event loop in a thread, beside another bot that owns the
    main thread (python-telegram-bot's ``run_polling``)."""

    def __init__(self, config: Config, redis_url: str, token: str = "") -> None:
        self.config, self.redis_url, self.token = config, redis_url, _token(token)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.bot: DiscordBot | None = None
        self.thread = threading.Thread(target=self._run, name="discord", daemon=True)

    def start(self) -> DiscordThread:
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception:
            log.exception("the Discord bot stopped")

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.bot = DiscordBot(self.config, self.redis_url)
        async with self.bot:
            await self.bot.start(self.token)

    def stop(self, timeout: float = 10.0) -> None:
        """Close the client (and its core) and wait for the thread."""
        if self.loop is not None and self.bot is not None and not self.loop.is_closed():
            try:
                asyncio.run_coroutine_threadsafe(self.bot.close(), self.loop).result(timeout)
            except concurrent.futures.CancelledError:
                pass  # start() returned and the loop ended first (its exit closes the client)
            except Exception as exc:
                log.warning("closing the Discord bot failed: %s", type(exc).__name__)
        self.thread.join(timeout)
