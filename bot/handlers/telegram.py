"""The Telegram bot: python-telegram-bot 22 handlers, thin over ``bot.core``.

One small ``async def`` per command and update kind, wired by ``build_application`` (as in
PTB's examples); ``run_telegram`` runs it (polling, or a webhook that checks Telegram's secret
token). Photos and image documents are downloaded into memory only; the result comes back as
``protected.png`` (never the user's file name), a before/after preview and the report, with
weaker/stronger, 🎨 filter and 🎭 deepfake-test buttons whose callback data is a random token and
a level or a filter id, nothing personal; the deepfake test (``/clip``) comes back as an MP4.
The bot token and webhook secret come from the environment and are redacted from every log line.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.core.files import not_an_image
from bot.core.flow import Outcome, neighbours
from bot.core.i18n import language, text
from bot.core.limits import Refused
from bot.core.logs import redact_logs
from bot.core.service import BotCore
from bot.core.store import STRENGTHS
from bot.core.users import User
from bot.handlers.retry import RetryingRateLimiter
from common.config import Config, ConfigError, load
from common.redis_server import resolve_url

log = logging.getLogger(__name__)

TOKEN_ENV = "TELEGRAM_BOT_TOKEN"
WEBHOOK_SECRET_ENV = "TELEGRAM_WEBHOOK_SECRET"
CORE = "core"
#: Telegram's limits: captions, and documents a bot may send.
CAPTION_MAX = 1024
SEND_DOCUMENT_MAX = 50 * 1024 * 1024
COMMANDS = ("start", "help", "strength", "filter", "clip", "privacy", "forget")
PRIVATE = filters.ChatType.PRIVATE

Context = ContextTypes.DEFAULT_TYPE


def _core(context: Context) -> BotCore:
    return context.application.bot_data[CORE]


def _user(update: Update) -> User:
    person = update.effective_user
    assert person is not None  # every handler below is for updates sent by a user
    return User("telegram", person.id, language(person.language_code))


async def _say(update: Update, context: Context, key: str, **values: object) -> Message:
    lang = _user(update).lang
    return await context.bot.send_message(update.effective_chat.id, text(lang, key, **values))


# Commands -------------------------------------------------------------------------------------


async def start(update: Update, context: Context) -> None:
    await _say(update, context, "start")


async def help_command(update: Update, context: Context) -> None:
    core = _core(context)
    strength = await core.store.strength(_user(update))
    await _say(update, context, "help", max_mb=core.config.bot.max_download_mb, strength=strength)


async def privacy(update: Update, context: Context) -> None:
    config = _core(context).config.privacy
    await _say(
        update, context, "privacy", photo_minutes=config.photo_ttl_s // 60,
        settings_days=config.settings_ttl_s // 86400,
    )


async def forget(update: Update, context: Context) -> None:
    await _core(context).forget(_user(update))
    await _say(update, context, "forgot")


async def strength(update: Update, context: Context) -> None:
    """``/strength N`` sets the default; ``/strength`` alone shows a 1..5 keyboard."""
    user, core = _user(update), _core(context)
    if not context.args:
        current = await core.store.strength(user)
        buttons = [
            InlineKeyboardButton(f"•{n}•" if n == current else str(n), callback_data=f"s:{n}")
            for n in STRENGTHS
        ]
        await update.effective_message.reply_text(
            text(user.lang, "strength_current", level=current),
            reply_markup=InlineKeyboardMarkup([buttons]),
        )
        return
    arg = context.args[0]
    if len(context.args) != 1 or not arg.isdecimal() or int(arg) not in STRENGTHS:
        await _say(update, context, "strength_invalid")
        return
    await core.store.set_strength(user, int(arg))
    await _say(update, context, "strength_set", level=int(arg))


async def strength_button(update: Update, context: Context) -> None:
    """A press on the ``/strength`` keyboard (callback data ``s:N``)."""
    query, user = update.callback_query, _user(update)
    level = int(query.data.split(":")[1])
    await _core(context).store.set_strength(user, level)
    await _try(query.answer())
    # A second quick press would edit to the same text, which Telegram refuses: harmless.
    await _try(query.edit_message_text(text(user.lang, "strength_set", level=level)))


async def filter_command(update: Update, context: Context) -> None:
    """``/filter``: the contact sheet of the last photo; ``/filter NAME``: the default look."""
    core, user = _core(context), _user(update)
    if context.args:
        reply = await core.looks.command(user, " ".join(context.args))
        await context.bot.send_message(update.effective_chat.id, reply)
        return
    last = await core.store.last_photo(user)
    if last is None:
        await _say(update, context, "filter_no_photo")
        return
    await _show_sheet(update, context, *last)


async def unknown_command(update: Update, context: Context) -> None:
    await _say(update, context, "unknown_command")


async def other_message(update: Update, context: Context) -> None:
    await _say(update, context, "send_photo")


# Photos ---------------------------------------------------------------------------------------


async def photo(update: Update, context: Context) -> None:
    """A compressed photo: protect its largest size (the last ``PhotoSize``)."""
    largest = update.effective_message.photo[-1]
    await _protect_upload(update, context, largest.file_id, largest.file_size)


async def document(update: Update, context: Context) -> None:
    """A file: images are protected byte-exact; anything else gets a clear message."""
    doc = update.effective_message.document
    if not_an_image(doc.mime_type, doc.file_name):
        await _say(update, context, "not_an_image_document")
        return
    await _protect_upload(update, context, doc.file_id, doc.file_size)


async def redo_button(update: Update, context: Context) -> None:
    """Weaker/stronger under a result (callback data ``r:<token>:<level>[:<filter>]``): the
    same photo in the same look at another level."""
    await _try(update.callback_query.answer())
    _, token, level, *look = update.callback_query.data.split(":")
    await _protect_remembered(update, context, token, int(level), look[0] if look else None)


async def filters_button(update: Update, context: Context) -> None:
    """🎨 under a result (callback data ``v:<token>``): that photo's contact sheet."""
    await _try(update.callback_query.answer())
    token = update.callback_query.data.split(":")[1]
    image = await _core(context).store.photo(_user(update), token)
    if image is None:
        await _say(update, context, "send_again")
        return
    await _show_sheet(update, context, token, image)


async def pick_button(update: Update, context: Context) -> None:
    """A look picked under a contact sheet (``f:<token>:<filter>``), at the user's strength."""
    await _try(update.callback_query.answer())
    _, token, look = update.callback_query.data.split(":")
    level = await _core(context).store.strength(_user(update))
    await _protect_remembered(update, context, token, level, look)


async def clip_command(update: Update, context: Context) -> None:
    """``/clip``: the deepfake test of the last photo (issue 5)."""
    last = await _core(context).store.last_photo(_user(update))
    if last is None:
        await _say(update, context, "clip_no_photo")
        return
    await _show_clip(update, context, last[1])


async def clip_button(update: Update, context: Context) -> None:
    """🎭 under a result (callback data ``x:<token>``): that photo's deepfake test."""
    await _try(update.callback_query.answer())
    token = update.callback_query.data.split(":")[1]
    image = await _core(context).store.photo(_user(update), token)
    if image is None:
        await _say(update, context, "send_again")
        return
    await _show_clip(update, context, image)


async def _show_clip(update: Update, context: Context, image: bytes) -> None:
    """Run the deepfake test of a remembered photo at the user's strength and send the MP4."""
    core, user, chat_id = _core(context), _user(update), update.effective_chat.id
    try:
        async with core.flow.admit(user) as ticket:
            status = await _say(update, context, "status_received")

            async def on_status(message: str) -> None:
                await status.edit_text(message)

            level = await core.store.strength(user)
            shown = await core.clips.clip(ticket, image, level, on_status)
    except Refused as refused:
        await _say(update, context, refused.reason, **refused.values)
        return
    if shown is None:
        return
    if not shown.ok:
        await context.bot.send_message(chat_id, shown.caption)
        return
    result = shown.result
    await context.bot.send_video(
        chat_id, result.video, caption=shown.caption[:CAPTION_MAX], filename="deepfake-test.mp4",
        width=result.width, height=result.height, duration=round(result.seconds),
        supports_streaming=True,
    )


async def _protect_remembered(
    update: Update, context: Context, token: str, level: int, look: str | None
) -> None:
    """Protect the remembered photo ``token`` again (or ask for it when it has expired)."""
    image = await _core(context).store.photo(_user(update), token)
    if image is None:
        await _say(update, context, "send_again")
        return

    async def cached() -> bytes:
        return image

    await _protect(update, context, cached, level, token, look)


class _StatusLine:
    """``OnStatus`` for a chat: the first message is sent, later ones edit it."""

    def __init__(self, context: Context, chat_id: int) -> None:
        self.context, self.chat_id = context, chat_id
        self.message: Message | None = None

    async def __call__(self, text: str) -> None:
        if self.message is None:
            self.message = await self.context.bot.send_message(self.chat_id, text)
        else:
            await self.message.edit_text(text)


async def _show_sheet(update: Update, context: Context, token: str, image: bytes) -> None:
    """Send the contact sheet of the remembered photo ``token`` with a button per look (and a
    status line only while it waits in the queue)."""
    core, user, chat_id = _core(context), _user(update), update.effective_chat.id
    on_status = _StatusLine(context, chat_id)

    try:
        async with core.flow.admit(user, count=False) as ticket:
            sheet = await core.looks.sheet(ticket, image, token, on_status)
    except Refused as refused:
        await _say(update, context, refused.reason, **refused.values)
        return
    if sheet is None:
        return
    if not sheet.ok:
        await context.bot.send_message(chat_id, sheet.caption)
        return
    keyboard = [
        [InlineKeyboardButton(label, callback_data=f"f:{token}:{name}") for label, name in row]
        for row in sheet.rows
    ]
    await context.bot.send_photo(
        chat_id, sheet.result.sheet, caption=sheet.caption[:CAPTION_MAX],
        reply_markup=InlineKeyboardMarkup(keyboard),
    )


async def _protect_upload(
    update: Update, context: Context, file_id: str, size: int | None
) -> None:
    core, user = _core(context), _user(update)
    max_mb = core.config.bot.max_download_mb
    if size is not None and size > max_mb * 1024 * 1024:
        await _say(update, context, "too_big", max_mb=max_mb)
        return

    async def download() -> bytes:
        file = await context.bot.get_file(file_id)
        return bytes(await file.download_as_bytearray())

    level, look = await core.store.defaults(user)
    await _protect(update, context, download, level, None, look)


async def _protect(
    update: Update,
    context: Context,
    load_image: Callable[[], Awaitable[bytes]],
    level: int,
    token: str | None,
    look: str | None = None,
) -> None:
    """Admit, tell the user at once, fetch the image, run the job (after the filter ``look``),
    deliver the outcome once (``ProtectFlow.protect``; a failure reaches ``on_error``)."""
    core, user, chat_id = _core(context), _user(update), update.effective_chat.id
    on_status = _StatusLine(context, chat_id)

    async def deliver(outcome: Outcome) -> None:
        await _deliver(update, context, user, outcome)

    try:
        await core.flow.protect(user, load_image, strength=level, on_status=on_status,
                                deliver=deliver, token=token, filter=look)
    except Refused as refused:
        await _say(update, context, refused.reason, **refused.values)


async def _try(action: Awaitable[object]) -> None:
    """Run a cosmetic chat action; a failure is logged by type only."""
    try:
        await action
    except Exception as exc:
        log.warning("chat update failed: %s", type(exc).__name__)


async def _deliver(update: Update, context: Context, user: User, outcome: Outcome) -> None:
    chat_id = update.effective_chat.id
    if not outcome.ok:
        await context.bot.send_message(chat_id, outcome.caption)
        return
    result = outcome.result
    if len(result.png) > SEND_DOCUMENT_MAX:
        await context.bot.send_message(chat_id, text(user.lang, "result_too_big"))
        return
    if result.preview:
        await context.bot.send_photo(
            chat_id, result.preview, caption=text(user.lang, "preview_caption")
        )
    await context.bot.send_document(
        chat_id, result.png, filename="protected.png", caption=outcome.caption[:CAPTION_MAX],
        reply_markup=redo_keyboard(user.lang, outcome.token, outcome.strength, outcome.filter),
    )


def redo_keyboard(
    lang: str, token: str, level: int, look: str | None = None
) -> InlineKeyboardMarkup:
    """Weaker/stronger buttons for a result at ``level`` (none beyond 1..5) in the filter
    ``look`` (kept by both), and 🎨 Filters below them."""
    weaker, stronger = neighbours(level)
    suffix = f":{look}" if look else ""
    buttons = [
        InlineKeyboardButton(
            text(lang, key, level=target), callback_data=f"r:{token}:{target}{suffix}"
        )
        for key, target in (("button_weaker", weaker), ("button_stronger", stronger))
        if target is not None
    ]
    looks = [InlineKeyboardButton(text(lang, "button_filters"), callback_data=f"v:{token}"),
             InlineKeyboardButton(text(lang, "button_clip"), callback_data=f"x:{token}")]
    return InlineKeyboardMarkup([buttons, looks] if buttons else [looks])


# Errors, start-up, wiring -----------------------------------------------------------------------


async def on_error(update: object, context: Context) -> None:
    """Log the failure (no message content, no user data) and tell the user once, generically."""
    update_id = update.update_id if isinstance(update, Update) else None
    log.error("update %s failed", update_id, exc_info=context.error)
    if isinstance(update, Update) and update.effective_chat and update.effective_user:
        try:
            await _say(update, context, "error_generic")
        except Exception as exc:  # Telegram unreachable: nothing more to do
            log.warning("could not tell the user about the failure: %s", type(exc).__name__)


async def _open_core(application: Application, redis_url: str, config: Config) -> None:
    application.bot_data[CORE] = await BotCore.open(redis_url, config)
    for lang in ("en", "ko"):
        commands = [BotCommand(name, text(lang, f"cmd_{name}")) for name in COMMANDS]
        scope_lang = None if lang == "en" else lang
        await application.bot.set_my_commands(commands, language_code=scope_lang)


async def _close_core(application: Application) -> None:
    core = application.bot_data.pop(CORE, None)
    if core is not None:
        await core.close()


def add_handlers(application: Application) -> None:
    """Wire every command and update kind to its handler (long ones run as tasks)."""
    application.add_handlers([
        CommandHandler("start", start),
        CommandHandler("help", help_command),
        CommandHandler("strength", strength),
        CommandHandler("filter", filter_command, block=False),
        CommandHandler("clip", clip_command, block=False),
        CommandHandler("privacy", privacy),
        CommandHandler("forget", forget),
        MessageHandler(PRIVATE & filters.COMMAND, unknown_command),
        MessageHandler(PRIVATE & filters.PHOTO, photo, block=False),
        MessageHandler(PRIVATE & filters.Document.ALL, document, block=False),
        MessageHandler(PRIVATE & ~filters.COMMAND, other_message),
        CallbackQueryHandler(strength_button, pattern=r"^s:[1-5]$"),
        CallbackQueryHandler(redo_button, pattern=r"^r:[\w-]+:[1-5](:\w+)?$", block=False),
        CallbackQueryHandler(filters_button, pattern=r"^v:[\w-]+$", block=False),
        CallbackQueryHandler(pick_button, pattern=r"^f:[\w-]+:\w+$", block=False),
        CallbackQueryHandler(clip_button, pattern=r"^x:[\w-]+$", block=False),
    ])
    application.add_error_handler(on_error)


def build_application(
    token: str,
    redis_url: str,
    config: Config,
    base_url: str | None = None,
    base_file_url: str | None = None,
) -> Application:
    """The PTB ``Application`` with handlers, rate limiter and the core opened on start-up
    (``post_init``) and closed on shutdown. ``base_url``/``base_file_url`` point it at another
    Bot API server (a local one, or the tests' fake)."""
    builder = (
        ApplicationBuilder()
        .token(token)
        .rate_limiter(RetryingRateLimiter(max_retries=config.bot.max_retries))
        .concurrent_updates(True)
        .post_init(lambda app: _open_core(app, redis_url, config))
        .post_shutdown(_close_core)
    )
    if base_url:
        builder = builder.base_url(base_url)
    if base_file_url:
        builder = builder.base_file_url(base_file_url)
    application = builder.build()
    add_handlers(application)
    return application


def protect_logs(*secrets: str, handlers: list[logging.Handler] | None = None) -> None:
    """Keep secrets out of logs: quiet httpx's URL logging and redact them at ``handlers``
    (default: every root handler, e.g. the launcher's ``basicConfig`` one)."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    redact_logs(*secrets, handlers=handlers)


def run_telegram(config: Config | None = None, redis_url: str = "", token: str = "") -> None:
    """Run the Telegram bot until stopped (blocking): polling, or webhook per ``[bot] mode``.
    The token defaults to ``TELEGRAM_BOT_TOKEN``; ``redis_url`` to the configured one."""
    config = config or load()
    token = token or os.environ.get(TOKEN_ENV, "")
    secret = os.environ.get(WEBHOOK_SECRET_ENV, "")
    if not token:
        raise ConfigError(f"{TOKEN_ENV} is not set")
    protect_logs(token, secret)
    bot = config.bot
    if bot.mode not in ("polling", "webhook"):
        raise ConfigError(f'[bot] mode must be "polling" or "webhook", got {bot.mode!r}')
    if bot.mode == "webhook" and not (bot.webhook_url and secret):
        raise ConfigError(f"webhook mode needs [bot] webhook_url and {WEBHOOK_SECRET_ENV}")
    application = build_application(token, redis_url or resolve_url(start=False), config)
    if bot.mode == "polling":
        application.run_polling(allowed_updates=Update.ALL_TYPES)
        return
    application.run_webhook(
        listen=bot.webhook_listen, port=bot.webhook_port,
        url_path=urlsplit(bot.webhook_url).path.lstrip("/"), webhook_url=bot.webhook_url,
        secret_token=secret, allowed_updates=Update.ALL_TYPES,
    )
