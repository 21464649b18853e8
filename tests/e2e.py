"""Helpers for the end-to-end tests of issue 7 (``test_bad_input``, ``test_faults``): a private
``redis-server``, worker subprocesses with their own config, the real PTB bot polling the fake
Bot API, and the user's view of a chat. Only Telegram's servers are faked."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from telegram.ext import Application

from bot.handlers.telegram import build_application
from common.config import Config, load
from tests.conftest import ServiceWorker
from tests.fake_telegram import Call, FakeTelegram


def write_config(path: Path, **sections: dict[str, Any]) -> Path:
    """A config.toml with only ``sections`` (every other key keeps its default)."""
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {value!r}".replace("True", "true").replace("False", "false")
                  for key, value in values.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def start_worker(redis_url: str, log: IO[bytes], config: Path, *, cwd: Path | None = None,
                 home: Path | None = None) -> ServiceWorker:
    """A ``python -m worker run`` subprocess (test engine) with ``config``; ``cwd``/``home``
    (also its ``TMPDIR``) confine where it could write."""
    env = {"DFB_CONFIG": str(config)}
    if home is not None:
        env |= {"HOME": str(home), "TMPDIR": str(home), "XDG_CACHE_HOME": str(home / ".cache")}
    return ServiceWorker(redis_url, log, env=env, cwd=cwd)


def bot_config(**bot: Any) -> Config:
    """The repo's config with the test profile, quick status edits and ``bot`` overrides."""
    config = load()
    return replace(config, bot=replace(config.bot, test_profile=True, status_interval_s=0.2,
                                       **bot))


@asynccontextmanager
async def running_bot(fake: FakeTelegram, redis_url: str, config: Config
                      ) -> AsyncIterator[Application]:
    """The real PTB application, polling ``fake``, until the block ends."""
    app = build_application(fake.token, redis_url, config, fake.base_url, fake.base_file_url)
    await app.initialize()
    await app.post_init(app)
    await app.start()
    await app.updater.start_polling(poll_interval=0.0, timeout=1)
    try:
        yield app
    finally:
        await app.updater.stop()
        await app.stop()
        await app.post_shutdown(app)
        await app.shutdown()


async def reply(fake: FakeTelegram, chat: int, since: float, contains: str,
                timeout: float = 30.0) -> Call:
    """The bot's first message/caption to ``chat`` since ``since`` that contains ``contains``."""
    methods = {"sendMessage", "sendDocument"}
    return await fake.wait_for(
        lambda c: c.chat_id == chat and c.method in methods and c.status == 200
        and contains in c.text, timeout, since,
    )


async def result(fake: FakeTelegram, chat: int, since: float, timeout: float = 60.0) -> Call:
    """The protected PNG document sent to ``chat`` since ``since``."""
    return await fake.wait_for(
        lambda c: c.chat_id == chat and c.method == "sendDocument" and c.status == 200,
        timeout, since,
    )


def delivered(fake: FakeTelegram, chat: int, since: float = 0.0) -> list[Call]:
    """Result documents the user actually received (status 200)."""
    return fake.calls_to("sendDocument", chat, since)


def listing(*roots: Path) -> dict[str, int]:
    """Every file under ``roots`` with its size (to show nothing was written there)."""
    found = {}
    for root in roots:
        for folder, _, names in os.walk(root):
            for name in names:
                path = Path(folder, name)
                found[str(path)] = path.stat().st_size if path.exists() else -1
    return found


def wait_until(predicate: Any, timeout: float, every: float = 0.1) -> bool:
    """Poll ``predicate()`` until true or ``timeout`` seconds passed; returns the last value."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()) and time.monotonic() < deadline:
        time.sleep(every)
    return bool(value)
