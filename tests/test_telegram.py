"""The Telegram bot end to end: the real PTB Application, polling a fake Bot API server on
loopback (``tests/fake_telegram.py``), with real Redis and a real arq worker subprocess running
the test engine. Only Telegram's servers are faked."""

from __future__ import annotations

import asyncio
import io
import logging
import statistics
import time
from dataclasses import replace

import numpy as np
import pytest
import pytest_asyncio
from PIL import Image
from redis.asyncio import Redis

from bot.core.users import SALT_KEY, User, UserHasher
from bot.handlers.telegram import (
    WEBHOOK_SECRET_ENV,
    protect_logs,
    run_telegram,
)
from common.config import ConfigError, load
from tests.e2e import bot_config, running_bot
from tests.fake_telegram import TOKEN, Call, FakeTelegram
from worker.attack.profiles import TEST_PROFILE

pytestmark = pytest.mark.asyncio(loop_scope="module")
JOB_TIMEOUT = 60.0


def _encode(rgb: np.ndarray, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="module")
def photo_sizes(astronaut: np.ndarray) -> list[tuple[bytes, int, int]]:
    """A compressed photo as Telegram sends it: a thumbnail, then the largest size."""
    thumbnail = _encode(np.asarray(Image.fromarray(astronaut).resize((90, 90))), "JPEG")
    return [(thumbnail, 90, 90), (_encode(astronaut, "JPEG", quality=95), 512, 512)]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fake():
    server = FakeTelegram()
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def redis(redis_url: str):
    client = Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(fake: FakeTelegram, redis: Redis, redis_url: str, service_worker):
    """The bot, polling the fake server; jobs use the engine's fast test profile."""
    async with running_bot(fake, redis_url, bot_config()) as app:
        yield app


async def _reply(fake: FakeTelegram, user: int, since: float, contains: str,
                 timeout: float = 10.0) -> str:
    call = await fake.wait_for(
        lambda c: c.chat_id == user and c.method == "sendMessage" and contains in c.text,
        timeout, since,
    )
    return call.text


async def _result(fake: FakeTelegram, user: int, since: float) -> Call:
    return await fake.wait_for(
        lambda c: c.chat_id == user and c.method == "sendDocument" and c.status == 200,
        JOB_TIMEOUT, since,
    )


def _buttons(call: Call) -> dict[str, str]:
    rows = call.params["reply_markup"]["inline_keyboard"]
    return {button["text"]: button["callback_data"] for row in rows for button in row}


async def test_start_up_registers_commands_in_both_languages(bot, fake: FakeTelegram) -> None:
    calls = fake.calls_to("setMyCommands")
    assert {c.params.get("language_code") for c in calls} == {None, "ko"}
    names = [command["command"] for command in calls[0].params["commands"]]
    assert names == ["start", "help", "strength", "filter", "clip", "privacy", "forget"]


async def test_photo_is_protected_end_to_end(bot, fake: FakeTelegram, astronaut, photo_sizes
                                             ) -> None:
    user, since = 1001, time.monotonic()
    fake.send_photo(user, photo_sizes)
    document = await _result(fake, user, since)

    assert document.filenames["document"] == "protected.png"
    protected = _decode(document.files["document"])
    original = _decode(photo_sizes[-1][0])  # the largest size, as the worker decoded it
    assert protected.shape == (512, 512, 3)
    diff = np.abs(protected.astype(int) - original.astype(int))
    assert 0 < diff.max() <= TEST_PROFILE.eps

    caption = document.params["caption"]
    assert "SSIM" in caption and "strength 3" in caption
    assert "Faces hidden from" in caption or "No face found" in caption
    buttons = _buttons(document)
    assert sorted(buttons.values())[0].endswith(":2") and sorted(buttons.values())[1].endswith(":4")
    assert all(str(user) not in data for data in buttons.values())

    preview = fake.calls_to("sendPhoto", user, since)
    assert len(preview) == 1 and _decode(preview[0].files["photo"]).shape[1] > 512 // 2
    status = fake.calls_to("sendMessage", user, since)[0]
    edits = [c for c in fake.calls_to("editMessageText", user, since)
             if c.params["message_id"] == status.result["message_id"]]
    assert status.text == "📥 Got it…" and edits and edits[-1].text.startswith("✅ Done in")
    assert len(fake.calls_to("sendDocument", user)) == 1


async def test_stronger_redoes_the_photo_at_the_next_level(bot, fake: FakeTelegram, photo_sizes
                                                           ) -> None:
    user, since = 1002, time.monotonic()
    fake.send_photo(user, photo_sizes)
    first = await _result(fake, user, since)
    stronger = next(data for label, data in _buttons(first).items() if "Stronger" in label)
    assert stronger.endswith(":4")

    fake.fail("sendDocument", 429, retry_after=1)  # Telegram's flood control, honoured
    since = time.monotonic()
    fake.press(user, first.result["message_id"], stronger)
    second = await _result(fake, user, since)
    assert "strength 4" in second.params["caption"]
    assert sorted(_buttons(second).values())[1].endswith(":5")
    assert _decode(second.files["document"]).shape == (512, 512, 3)
    assert fake.calls_to("answerCallbackQuery", since=since)
    assert any(c.status == 429 for c in fake.calls if c.method == "sendDocument")


async def test_strength_command(bot, fake: FakeTelegram, photo_sizes) -> None:
    user, since = 1003, time.monotonic()
    for bad in ("/strength 9", "/strength abc", "/strength 0", "/strength 2 3"):
        fake.send_text(user, bad)
        await _reply(fake, user, since, "Strength must be a whole number from 1")
        since = time.monotonic()
    fake.send_text(user, "/strength")
    keyboard = await fake.wait_for(
        lambda c: c.chat_id == user and "reply_markup" in c.params, 10.0, since)
    assert list(_buttons(keyboard).values()) == [f"s:{n}" for n in range(1, 6)]
    assert "•3•" in _buttons(keyboard)
    ladder = keyboard.text  # what each level costs and gives, before choosing
    assert all(f"\n{n} " in ladder for n in range(1, 6)) and "default" in ladder

    fake.send_text(user, "/strength 2")
    await _reply(fake, user, since, "Strength set to 2")
    since = time.monotonic()
    fake.send_photo(user, photo_sizes)
    document = await _result(fake, user, since)
    assert "strength 2" in document.params["caption"]
    assert sorted(_buttons(document).values())[0].endswith(":1")

    since = time.monotonic()
    fake.press(user, keyboard.result["message_id"], "s:5")
    await fake.wait_for(lambda c: c.method == "editMessageText" and "set to 5" in c.text,
                        10.0, since)


async def test_non_images_and_oversized_files_queue_nothing(bot, fake: FakeTelegram,
                                                            redis: Redis) -> None:
    user, since = 1004, time.monotonic()
    fake.send_document(user, b"just some notes", mime="text/plain", name="notes.txt")
    await _reply(fake, user, since, "This file is not an image")
    fake.send_document(user, b"\xff\xd8 pretend", mime="image/jpeg", name="huge.jpg",
                       size=25 * 1024 * 1024)
    await _reply(fake, user, since, "larger than 20 MB")
    await asyncio.sleep(0.3)
    texts = fake.texts(user, since)
    assert len(texts) == 2 and not fake.calls_to("getFile", since=since)
    assert not [key async for key in redis.scan_iter(match="arq:job:*")]

    since = time.monotonic()  # an image document that is not an image: the worker says so
    fake.send_document(user, b"\x00" * 200, mime="image/jpeg", name="broken.jpg")
    await _reply(fake, user, since, "not an image I can read", timeout=JOB_TIMEOUT)
    assert not fake.calls_to("sendDocument", user, since)


async def test_one_job_at_a_time_per_user(bot, fake: FakeTelegram, photo_sizes) -> None:
    user, since = 1005, time.monotonic()
    fake.send_photo(user, photo_sizes)
    fake.send_photo(user, photo_sizes)
    await _reply(fake, user, since, "one at a time")
    await _result(fake, user, since)
    await asyncio.sleep(0.5)
    assert len(fake.calls_to("sendDocument", user, since)) == 1
    assert sum("one at a time" in t for t in fake.texts(user, since)) == 1


async def test_a_failure_is_told_once_without_internals(bot, fake: FakeTelegram, photo_sizes
                                                        ) -> None:
    user, since = 1006, time.monotonic()
    fake.fail("getFile", 500, times=1 + load().bot.max_retries)  # every retry fails too
    fake.send_photo(user, photo_sizes)
    await _reply(fake, user, since, "something went wrong on my side")
    await fake.wait_for(lambda c: c.chat_id == user and c.text == "❌ Failed", 10.0, since)
    texts = fake.texts(user, since)
    assert sum("went wrong" in t for t in texts) == 1
    assert not any("Traceback" in t or "Error" in t for t in texts)
    since = time.monotonic()  # the user's slot was released
    fake.send_photo(user, photo_sizes)
    await _result(fake, user, since)


async def test_help_privacy_and_unknown_commands(bot, fake: FakeTelegram) -> None:
    user, since = 1009, time.monotonic()
    fake.send_text(user, "/help")
    await _reply(fake, user, since, "now 3")
    fake.send_text(user, "/privacy")
    privacy = await _reply(fake, user, since, "What I keep")
    assert "30 minutes" in privacy and "30 days" in privacy
    fake.send_text(user, "/frobnicate")
    await _reply(fake, user, since, "I don't know that command")
    fake.send_text(user, "hello")
    await _reply(fake, user, since, "Send me a photo")


async def test_korean_user(bot, fake: FakeTelegram) -> None:
    user, since = 1007, time.monotonic()
    fake.send_text(user, "/start", lang="ko")
    await _reply(fake, user, since, "딥페이크")
    fake.send_text(user, "/strength 7", lang="ko")
    await _reply(fake, user, since, "강도는 1(약함)부터")


async def test_forget_leaves_no_key_of_the_user(bot, fake: FakeTelegram, redis: Redis,
                                                photo_sizes) -> None:
    user, since = 1008, time.monotonic()
    fake.send_text(user, "/strength 4")
    await _reply(fake, user, since, "Strength set to 4")
    fake.send_photo(user, photo_sizes)
    document = await _result(fake, user, since)

    keys = UserHasher(await redis.get(SALT_KEY)).keys(User("telegram", user))
    request_ids = [rid.decode() for rid in await redis.smembers(keys.requests)]
    mine = [k async for k in redis.scan_iter(match=f"{keys.prefix}*")]
    assert len(request_ids) == 1 and keys.photo.encode() in mine and len(mine) >= 4

    since = time.monotonic()
    fake.send_text(user, "/forget")
    await _reply(fake, user, since, "everything I kept about you is deleted")
    left = [k.decode() async for k in redis.scan_iter()]
    assert not [k for k in left if k.startswith(keys.prefix) or request_ids[0] in k]

    since = time.monotonic()  # the buttons of the old result now ask for the photo again
    fake.press(user, document.result["message_id"], next(iter(_buttons(document).values())))
    await _reply(fake, user, since, "send it again")


async def test_forget_during_a_job_drops_its_result(bot, fake: FakeTelegram, redis: Redis,
                                                    photo_sizes) -> None:
    user, other, since = 1010, 1011, time.monotonic()
    fake.send_photo(user, photo_sizes)
    await _reply(fake, user, since, "Got it")
    fake.send_text(user, "/forget")
    await _reply(fake, user, since, "everything I kept about you is deleted")
    fake.send_photo(other, photo_sizes)  # one worker, one job at a time: when this one is done,
    await _result(fake, other, since)    # the first one is too
    await asyncio.sleep(0.3)
    assert not fake.calls_to("sendDocument", user, since)
    keys = UserHasher(await redis.get(SALT_KEY)).keys(User("telegram", user))
    assert not [k async for k in redis.scan_iter(match=f"{keys.prefix}*")]


async def test_every_key_has_a_ttl_and_handlers_answer_fast(bot, fake: FakeTelegram,
                                                            redis: Redis) -> None:
    await asyncio.sleep(0.5)  # let the last jobs' bookkeeping settle
    keys = [key async for key in redis.scan_iter()]
    assert keys and {key: ttl for key in keys if (ttl := await redis.ttl(key)) == -1} == {}

    latencies = []  # photo update injected → "Got it" status message sent (paired per chat)
    photos: dict[int, list[float]] = {}
    for update in fake.updates:
        if "photo" in update.get("message", {}):
            chat = update["message"]["chat"]["id"]
            photos.setdefault(chat, []).append(fake.injected_at[update["update_id"]])
    for chat, injected in photos.items():
        statuses = [c for c in fake.calls_to("sendMessage", chat) if c.text == "📥 Got it…"]
        latencies += [call.at - at for at, call in zip(injected, statuses, strict=False)]
    median = statistics.median(latencies)
    print(f"\nhandler latency (update → status message): median {median * 1000:.1f} ms "
          f"over {len(latencies)} photos, max {max(latencies) * 1000:.1f} ms")
    assert len(latencies) >= 5 and median < 1.0


async def test_webhook_mode_needs_its_secret_and_logs_never_show_the_token(monkeypatch) -> None:
    config = load()
    webhook = replace(config, bot=replace(config.bot, mode="webhook",
                                          webhook_url="https://bot.example.org/telegram"))
    monkeypatch.delenv(WEBHOOK_SECRET_ENV, raising=False)
    with pytest.raises(ConfigError, match=WEBHOOK_SECRET_ENV):
        run_telegram(webhook, "redis://127.0.0.1:6379/15", token=TOKEN)

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    protect_logs(TOKEN, "webhook-secret", handlers=[handler])
    logger = logging.getLogger("tests.secrets")
    logger.addHandler(handler)
    try:
        logger.warning("POST %s/getUpdates failed", f"https://api.telegram.org/bot{TOKEN}")
    finally:
        logger.removeHandler(handler)
    assert "getUpdates failed" in stream.getvalue() and TOKEN not in stream.getvalue()
    assert logging.getLogger("httpx").getEffectiveLevel() >= logging.WARNING
