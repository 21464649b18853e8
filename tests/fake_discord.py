"""A fake Discord REST API on loopback for the Discord adapter's tests.

discord.py's HTTP layer is pointed here (``discord.http.Route.BASE``), so the real client logs in,
syncs its command tree, answers interactions, edits responses with multipart uploads and
downloads attachments, all over real HTTP. Gateway events are injected by the tests with the
client's own parsers (``ConnectionState.parse_interaction_create``/``parse_message_create``) from
payloads built here. Every request is recorded as a ``Call`` (files decoded from the multipart
body).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TOKEN = "fake-discord-token.0123456789"
APP_ID = 900_000_000_000_000_001
BOT_ID = 900_000_000_000_000_002
TIMESTAMP = "2026-01-01T00:00:00+00:00"


def user_payload(user_id: int, *, bot: bool = False) -> dict[str, Any]:
    return {"id": str(user_id), "username": f"user{user_id}", "discriminator": "0",
            "avatar": None, "global_name": None, "bot": bot}


@dataclass
class Call:
    """One request to the fake: its route, JSON payload, uploaded files and the reply."""

    method: str
    path: str
    payload: Any  # a JSON object, or a list (the command sync)
    files: dict[str, bytes]
    at: float
    result: Any = None
    query: dict[str, str] = field(default_factory=dict)

    @property
    def content(self) -> str:
        if not isinstance(self.payload, dict):  # e.g. the command list PUT at sync
            return ""
        return self.payload.get("content") or self.payload.get("data", {}).get("content") or ""

    def buttons(self) -> dict[str, str]:
        """Button label → custom_id of the components sent."""
        rows = self.payload.get("components") or []
        return {c["label"]: c["custom_id"] for row in rows for c in row.get("components", [])
                if c.get("type") == 2}


class FakeDiscord:
    """The fake API server; ``base`` is what ``Route.BASE`` becomes."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.messages: dict[int, dict[str, Any]] = {}
        self.originals: dict[str, int] = {}  # interaction token → its response message
        self.cdn: dict[str, bytes] = {}
        self.downloads: list[str] = []  # CDN paths the bot fetched
        self.expired: set[str] = set()  # interaction tokens past their 15 minutes
        self.ids = itertools.count(1_000_000_000_000_000_000)
        self.changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.url = ""

    @property
    def base(self) -> str:
        return f"{self.url}/api/v10"

    @property
    def gateway(self) -> str:
        """A websocket that accepts the client and stays silent until it closes: the client
        waits there for the gateway's HELLO (events are injected instead, see above)."""
        return f"{self.url.replace('http', 'ws', 1)}/gateway"

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        async for _ in socket:  # until the client closes it
            pass
        return socket

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/cdn/{name:.+}", self._cdn)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/api/v10/{path:.+}", self._api)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # Building inbound events ------------------------------------------------------------------

    def upload(self, data: bytes, filename: str, content_type: str | None,
               size: int | None = None) -> dict[str, Any]:
        """An attachment payload whose URL serves ``data`` from this fake's CDN."""
        attachment_id = next(self.ids)
        self.cdn[f"{attachment_id}/{filename}"] = data
        payload = {"id": str(attachment_id), "filename": filename,
                   "size": len(data) if size is None else size,
                   "url": f"{self.url}/cdn/{attachment_id}/{filename}",
                   "proxy_url": f"{self.url}/cdn/{attachment_id}/{filename}"}
        if content_type is not None:
            payload["content_type"] = content_type
        return payload

    def interaction(self, user_id: int, kind: int, data: dict[str, Any], *,
                    locale: str = "en-US", message: dict[str, Any] | None = None,
                    size_limit: int = 10 * 1024 * 1024) -> dict[str, Any]:
        """An INTERACTION_CREATE payload from ``user_id`` in their DM with the bot."""
        interaction_id = next(self.ids)
        channel = {"id": str(user_id + 1), "type": 1, "recipients": [user_payload(user_id)]}
        payload = {
            "id": str(interaction_id), "application_id": str(APP_ID), "type": kind,
            "token": f"itoken{interaction_id}", "version": 1, "locale": locale,
            "attachment_size_limit": size_limit, "channel_id": channel["id"],
            "channel": channel, "user": user_payload(user_id), "data": data,
            "app_permissions": "0", "entitlements": [], "context": 1,
            "authorizing_integration_owners": {"0": str(user_id)},
        }
        if message is not None:
            payload["message"] = message
        return payload

    def command(self, user_id: int, name: str, options: list[dict[str, Any]] | None = None, *,
                attachments: list[dict[str, Any]] = (), **extra: Any) -> dict[str, Any]:
        data: dict[str, Any] = {"id": str(next(self.ids)), "name": name, "type": 1,
                                "options": options or []}
        if attachments:
            data["resolved"] = {"attachments": {a["id"]: a for a in attachments}}
        return self.interaction(user_id, 2, data, **extra)

    def press(self, user_id: int, message_id: int, custom_id: str, **extra: Any
              ) -> dict[str, Any]:
        """A button press on the bot's message ``message_id``."""
        data = {"custom_id": custom_id, "component_type": 2}
        return self.interaction(user_id, 3, data, message=self.messages[message_id], **extra)

    def dm(self, user_id: int, content: str = "", attachments: list[dict[str, Any]] = ()
           ) -> dict[str, Any]:
        """A MESSAGE_CREATE payload: ``user_id`` writes to the bot in their DM."""
        return {"id": str(next(self.ids)), "channel_id": str(user_id + 1),
                "author": user_payload(user_id), "content": content, "timestamp": TIMESTAMP,
                "edited_timestamp": None, "tts": False, "mention_everyone": False,
                "mentions": [], "mention_roles": [], "attachments": list(attachments),
                "embeds": [], "pinned": False, "type": 0}

    # Reading what the bot did -----------------------------------------------------------------

    def calls_for(self, token_or_channel: str, since: float = 0.0) -> list[Call]:
        """Calls about one interaction (its token) or one channel (its id)."""
        return [c for c in self.calls if token_or_channel in c.path and c.at >= since]

    async def wait_for(self, predicate: Callable[[Call], bool], timeout: float,
                       since: float = 0.0) -> Call:
        """The first call since ``since`` that matches, waiting up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        async with self.changed:
            while True:
                for call in self.calls:
                    if call.at >= since and predicate(call):
                        return call
                left = deadline - time.monotonic()
                if left <= 0:
                    paths = [(c.method, c.path, c.content[:60]) for c in self.calls[-15:]]
                    raise AssertionError(f"no matching call within {timeout} s; last: {paths}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), left)

    # Serving ----------------------------------------------------------------------------------

    async def _cdn(self, request: web.Request) -> web.Response:
        data = self.cdn.get(request.match_info["name"])
        self.downloads.append(request.match_info["name"])
        return web.Response(body=data) if data is not None else web.Response(status=404)

    async def _read(self, request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        if not request.can_read_body:
            return {}, {}
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            files = {part.filename: part.file.read() for name, part in form.items()
                     if name.startswith("files[")}
            return json.loads(str(form.get("payload_json") or "{}")), files
        return await request.json(), {}

    async def _api(self, request: web.Request) -> web.Response:
        payload, files = await self._read(request)
        path = "/" + request.match_info["path"]
        call = Call(request.method, path, payload, files, time.monotonic(),
                    query=dict(request.query))
        if any(token in path for token in self.expired):
            call.result = {"message": "Invalid Webhook Token", "code": 50027}
            await self._record(call)
            return web.Response(status=401, body=json.dumps(call.result).encode(),
                                headers={"Content-Type": "application/json"})
        call.result = self._answer(request.method, path.split("/")[1:], payload, files)
        await self._record(call)
        if call.result is None:
            return web.Response(status=204)
        # discord.py reads JSON only under exactly this content type (no charset), as Discord sends
        return web.Response(body=json.dumps(call.result).encode(),
                            headers={"Content-Type": "application/json"})

    async def _record(self, call: Call) -> None:
        async with self.changed:
            self.calls.append(call)
            self.changed.notify_all()

    def _answer(self, method: str, parts: list[str], payload: dict[str, Any],
                files: dict[str, bytes]) -> Any:
        match method, parts:
            case "GET", ["users", "@me"]:
                return user_payload(BOT_ID, bot=True)
            case "GET", ["oauth2", "applications", "@me"]:
                return {"id": str(APP_ID), "name": "DeepfakeBlock", "description": "",
                        "icon": None, "bot_public": True, "bot_require_code_grant": False,
                        "owner": user_payload(1), "verify_key": "0" * 64, "flags": 0}
            case "PUT", ["applications", _, *_, "commands"]:
                return [{**command, "id": str(next(self.ids)), "application_id": str(APP_ID),
                         "version": "1"} for command in payload]
            case "POST", ["interactions", _, token, "callback"]:
                return self._callback(token, payload, files)
            case "PATCH", ["webhooks", _, token, "messages", "@original"]:
                return self._edit(self.originals[token], payload, files)
            case "POST", ["webhooks", _, token]:
                return self._message(int(payload.get("channel_id", 0)), payload, files)
            case "POST", ["channels", channel, "messages"]:
                return self._message(int(channel), payload, files)
            case "PATCH", ["channels", _, "messages", message]:
                return self._edit(int(message), payload, files)
        raise web.HTTPNotFound()

    def _callback(self, token: str, payload: dict[str, Any], files: dict[str, bytes]
                  ) -> dict[str, Any]:
        kind, data = payload["type"], payload.get("data") or {}
        interaction = {"id": token.removeprefix("itoken"), "type": 2}
        if kind in (4, 5):  # a message (or "thinking…") that answers the interaction
            message = self._message(0, {**data, "content": data.get("content", "")}, files)
            self.originals[token] = int(message["id"])
            interaction |= {"response_message_id": message["id"],
                            "response_message_loading": kind == 5,
                            "response_message_ephemeral": bool(data.get("flags", 0) & 64)}
            return {"interaction": interaction, "resource": {"type": kind, "message": message}}
        if kind == 7:  # the button's message updated in place
            return {"interaction": interaction, "resource": {"type": kind}}
        return {"interaction": interaction, "resource": {"type": kind}}

    def _message(self, channel_id: int, payload: dict[str, Any], files: dict[str, bytes]
                 ) -> dict[str, Any]:
        message_id = next(self.ids)
        message = {"id": str(message_id), "channel_id": str(channel_id),
                   "author": user_payload(BOT_ID, bot=True), "content": "",
                   "timestamp": TIMESTAMP, "edited_timestamp": None, "tts": False,
                   "mention_everyone": False, "mentions": [], "mention_roles": [],
                   "attachments": [], "embeds": [], "pinned": False, "type": 0,
                   "components": [], "flags": payload.get("flags", 0)}
        self.messages[message_id] = message
        return self._edit(message_id, payload, files)

    def _edit(self, message_id: int, payload: dict[str, Any], files: dict[str, bytes]
              ) -> dict[str, Any]:
        message = self.messages[message_id]
        for key in ("content", "embeds", "components"):
            if key in payload:
                message[key] = payload[key] or ([] if key != "content" else "")
        if "attachments" in payload or files:
            message["attachments"] = [
                {"id": str(next(self.ids)), "filename": name, "size": len(data),
                 "url": f"{self.url}/cdn/out/{name}", "proxy_url": f"{self.url}/cdn/out/{name}"}
                for name, data in files.items()
            ]
        message["edited_timestamp"] = TIMESTAMP
        return dict(message)
