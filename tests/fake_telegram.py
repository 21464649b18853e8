"""A fake Telegram Bot API server on loopback, for end-to-end tests of the real PTB bot.

The bot under test talks to it through ``base_url``/``base_file_url``. Tests play the users:
``send_text``/``send_photo``/``send_document``/``press`` queue updates that ``getUpdates``
serves (long polling); uploaded files are kept in memory under ``files`` for ``getFile`` and
the download URL. Every Bot API call the bot makes (but ``getUpdates``) is recorded as a
``Call`` (parameters and uploaded bytes, in memory only; ``at`` is when it arrived), and
``fail`` makes the next calls of a method answer 429 with ``retry_after`` or a 5xx, as Telegram
does under flood control or outages.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TOKEN = "123456789:FAKE-test-token_for-loopback-only"
BOT_USER = {"id": 123456789, "is_bot": True, "first_name": "DeepfakeBlock", "username": "dfb_bot",
            "can_join_groups": True, "can_read_all_group_messages": False,
            "supports_inline_queries": False}
#: Parameters sent as JSON objects/arrays (PTB sends strings as they are).
JSON_PARAMS = {"reply_markup", "commands", "allowed_updates", "entities", "caption_entities",
               "reply_parameters", "link_preview_options", "scope"}
INT_PARAMS = {"chat_id", "message_id", "offset", "limit", "timeout"}


@dataclass
class Call:
    """One Bot API request the bot made."""

    method: str
    params: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)      # uploaded bytes by field name
    filenames: dict[str, str] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)
    status: int = 200
    result: Any = None                                          # what the server answered

    @property
    def chat_id(self) -> int | None:
        return self.params.get("chat_id")

    @property
    def text(self) -> str:
        return str(self.params.get("text") or self.params.get("caption") or "")


class FakeTelegram:
    """The fake server: start it, point the bot at ``base_url``, play users, assert on calls."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.updates: list[dict[str, Any]] = []
        self.injected_at: dict[int, float] = {}
        self.files: dict[str, tuple[str, bytes]] = {}      # file_id → (file_path, bytes)
        self.messages: dict[int, dict[str, Any]] = {}      # messages the bot sent, by id
        self.faults: dict[str, deque[tuple[int, int, float]]] = defaultdict(deque)
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # Server -------------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=100 * 1024 * 1024)
        app.router.add_post(f"/bot{self.token}/{{method}}", self._api)
        app.router.add_get(f"/bot{self.token}/{{method}}", self._api)
        app.router.add_get(f"/file/bot{self.token}/{{path:.+}}", self._download)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    # Playing users ------------------------------------------------------------------------------

    def send_text(self, user_id: int, text: str, lang: str = "en") -> int:
        """A private text message (a command when it starts with "/")."""
        message = self._user_message(user_id, lang, text=text)
        if text.startswith("/"):
            length = len(text.split()[0])
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        return self._inject({"message": message})

    def send_photo(self, user_id: int, sizes: list[tuple[bytes, int, int]], lang: str = "en"
                   ) -> int:
        """A compressed photo: ``sizes`` are (JPEG bytes, width, height), smallest first."""
        photo = [
            {**self.add_file(data, "photos/file.jpg"), "width": w, "height": h}
            for data, w, h in sizes
        ]
        return self._inject({"message": self._user_message(user_id, lang, photo=photo)})

    def send_document(self, user_id: int, data: bytes, *, mime: str, name: str,
                      lang: str = "en", size: int | None = None) -> int:
        """A file; ``size`` overrides the announced size (e.g. to test the 20 MB limit)."""
        doc = {**self.add_file(data, f"documents/{name}"), "mime_type": mime, "file_name": name}
        if size is not None:
            doc["file_size"] = size
        return self._inject({"message": self._user_message(user_id, lang, document=doc)})

    def send_group(self, chat_id: int, user_id: int, lang: str = "en", **content: Any) -> int:
        """A message of ``user_id`` in the group ``chat_id`` (< 0): ``text=...`` (a command when
        it starts with "/"), ``photo=[(bytes, w, h)]`` or ``document=(bytes, mime, name)``."""
        message = self._user_message(user_id, lang)
        message["chat"] = {"id": chat_id, "type": "supergroup", "title": "a group"}
        if "text" in content:
            message["text"] = text = content["text"]
            if text.startswith("/"):
                length = len(text.split()[0])
                message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        if "photo" in content:
            message["photo"] = [{**self.add_file(data, "photos/file.jpg"), "width": w,
                                 "height": h} for data, w, h in content["photo"]]
        if "document" in content:
            data, mime, name = content["document"]
            message["document"] = {**self.add_file(data, f"documents/{name}"),
                                   "mime_type": mime, "file_name": name}
        return self._inject({"message": message})

    def press(self, user_id: int, message_id: int, data: str, lang: str = "en") -> int:
        """The user presses an inline button with callback ``data`` under a bot message."""
        query = {"id": str(next(self._ids)), "from": self._user(user_id, lang),
                 "chat_instance": str(user_id), "data": data,
                 "message": self.messages[message_id]}
        return self._inject({"callback_query": query})

    def add_file(self, data: bytes, path: str) -> dict[str, Any]:
        """Store ``data`` for getFile/download; returns the file's Bot API fields."""
        n = next(self._ids)
        file_id = f"file-{n}"
        self.files[file_id] = (f"{n}/{path}", data)
        return {"file_id": file_id, "file_unique_id": f"u{n}", "file_size": len(data)}

    def fail(self, method: str, status: int = 429, retry_after: int = 1, times: int = 1,
             delay: float = 0.0) -> None:
        """The next ``times`` calls of ``method`` answer ``status`` (429: with ``retry_after``)
        after ``delay`` seconds (longer than the bot's read timeout: the bot sees a timeout)."""
        self.faults[method].extend([(status, retry_after, delay)] * times)

    # Assertions ---------------------------------------------------------------------------------

    def calls_to(self, method: str, chat_id: int | None = None, since: float = 0.0) -> list[Call]:
        return [
            c for c in self.calls
            if c.method == method and c.status == 200 and c.at >= since
            and (chat_id is None or c.chat_id == chat_id)
        ]

    def texts(self, chat_id: int, since: float = 0.0) -> list[str]:
        """Texts of messages, edits and captions the bot sent to ``chat_id``."""
        methods = {"sendMessage", "editMessageText", "sendDocument", "sendPhoto"}
        return [
            c.text for c in self.calls
            if c.method in methods and c.status == 200 and c.chat_id == chat_id and c.at >= since
        ]

    async def wait_for(self, predicate: Callable[[Call], bool], timeout: float = 30.0,
                       since: float = 0.0) -> Call:
        """The first call (made at or after ``since``) matching ``predicate``, waiting for it."""
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: self._find(predicate, since) is not None), timeout
            )
        found = self._find(predicate, since)
        assert found is not None
        return found

    def _find(self, predicate: Callable[[Call], bool], since: float) -> Call | None:
        return next((c for c in self.calls if c.at >= since and predicate(c)), None)

    # Bot API ------------------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        call = await self._record(method, request)
        if self.faults[method]:
            status, retry_after, delay = self.faults[method].popleft()
            call.status = status
            if delay:
                await asyncio.sleep(delay)
            await self._notify()
            return web.json_response(_error(status, retry_after), status=status)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            call.status = 404
            await self._notify()
            return web.json_response(_error(404, 0), status=404)
        call.result = result = await handler(call)
        await self._notify()
        return web.json_response({"ok": True, "result": result})

    async def _record(self, method: str, request: web.Request) -> Call:
        call = Call(method, {})
        if request.content_type == "application/json":
            form: Any = json.loads(await request.read() or b"{}")
        else:
            form = await request.post()
        for name, value in form.items():
            if hasattr(value, "file"):
                call.files[name] = value.file.read()
                call.filenames[name] = value.filename
            else:
                call.params[name] = _decode(name, value)
        if method != "getUpdates":
            self.calls.append(call)
        return call

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _download(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        for file_path, data in self.files.values():
            if file_path == path:
                return web.Response(body=data, content_type="application/octet-stream")
        return web.Response(status=404)

    async def _m_getMe(self, call: Call) -> dict[str, Any]:
        return BOT_USER

    async def _m_getUpdates(self, call: Call) -> list[dict[str, Any]]:
        offset = int(call.params.get("offset") or 0)
        timeout = float(call.params.get("timeout") or 0)

        def pending() -> list[dict[str, Any]]:
            return [u for u in self.updates if u["update_id"] >= offset]

        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait_for(lambda: bool(pending())), timeout)
        return pending()[: int(call.params.get("limit") or 100)]

    async def _m_getFile(self, call: Call) -> dict[str, Any]:
        file_id = call.params["file_id"]
        path, data = self.files[file_id]
        return {"file_id": file_id, "file_unique_id": file_id, "file_size": len(data),
                "file_path": path}

    async def _m_sendMessage(self, call: Call) -> dict[str, Any]:
        return self._bot_message(call, text=call.params["text"])

    async def _m_editMessageText(self, call: Call) -> dict[str, Any]:
        message = self.messages[call.params["message_id"]]
        message["text"] = call.params["text"]
        message["edit_date"] = int(time.time())
        return message

    async def _m_sendDocument(self, call: Call) -> dict[str, Any]:
        data = call.files["document"]
        doc = {**self.add_file(data, "documents/sent"), "file_name": call.filenames["document"],
               "mime_type": "image/png"}
        return self._bot_message(call, document=doc, caption=call.params.get("caption", ""))

    async def _m_sendPhoto(self, call: Call) -> dict[str, Any]:
        size = {**self.add_file(call.files["photo"], "photos/sent"), "width": 1, "height": 1}
        return self._bot_message(call, photo=[size], caption=call.params.get("caption", ""))

    async def _m_sendVideo(self, call: Call) -> dict[str, Any]:
        video = {**self.add_file(call.files["video"], "videos/sent"),
                 "width": int(call.params.get("width", 1)),
                 "height": int(call.params.get("height", 1)),
                 "duration": int(call.params.get("duration", 0)), "mime_type": "video/mp4"}
        return self._bot_message(call, video=video, caption=call.params.get("caption", ""))

    async def _m_answerCallbackQuery(self, call: Call) -> bool:
        return True

    async def _m_setMyCommands(self, call: Call) -> bool:
        return True

    async def _m_deleteWebhook(self, call: Call) -> bool:
        return True

    # Objects ------------------------------------------------------------------------------------

    def _inject(self, body: dict[str, Any]) -> int:
        update_id = next(self._ids)
        self.updates.append({"update_id": update_id, **body})
        self.injected_at[update_id] = time.monotonic()
        asyncio.get_running_loop().create_task(self._notify())
        return update_id

    @staticmethod
    def _user(user_id: int, lang: str) -> dict[str, Any]:
        return {"id": user_id, "is_bot": False, "first_name": f"user{user_id}",
                "language_code": lang}

    def _user_message(self, user_id: int, lang: str, **content: Any) -> dict[str, Any]:
        return {"message_id": next(self._ids), "date": int(time.time()),
                "chat": {"id": user_id, "type": "private", "first_name": f"user{user_id}"},
                "from": self._user(user_id, lang), **content}

    def _bot_message(self, call: Call, **content: Any) -> dict[str, Any]:
        chat_id = call.params["chat_id"]
        message = {"message_id": next(self._ids), "date": int(time.time()),
                   "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group"},
                   "from": BOT_USER, **content}
        if "reply_markup" in call.params:
            message["reply_markup"] = call.params["reply_markup"]
        self.messages[message["message_id"]] = message
        return message


def _decode(name: str, value: str) -> Any:
    if name in JSON_PARAMS:
        return json.loads(value)
    if name in INT_PARAMS:
        return int(value)
    return value


def _error(status: int, retry_after: int) -> dict[str, Any]:
    if status == 429:
        return {"ok": False, "error_code": 429,
                "description": f"Too Many Requests: retry after {retry_after}",
                "parameters": {"retry_after": retry_after}}
    if status == 404:
        return {"ok": False, "error_code": 404, "description": "Not Found"}
    return {"ok": False, "error_code": status, "description": "Bad Gateway"}
