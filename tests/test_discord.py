"""The Discord bot end to end: the real discord.py client (command tree, views, HTTP layer) talking
to a fake Discord REST API on loopback (``tests/fake_discord.py``), with real Redis and a real
arq worker subprocess running the test engine. Gateway events are injected through the client's
own parsers; only Discord's servers are faked."""

from __future__ import annotations

import asyncio
import io
import logging
import time
from dataclasses import replace

import discord
import numpy as np
import pytest
import pytest_asyncio
import yarl
from PIL import Image
from redis.asyncio import Redis

from bot.core.files import fit_png
from bot.core.i18n import KO
from bot.handlers.discord import DiscordBot, DiscordThread, protect_logs
from common.config import load
from tests.fake_discord import TOKEN, Call, FakeDiscord
from worker.attack.profiles import TEST_PROFILE

pytestmark = pytest.mark.asyncio(loop_scope="module")
JOB_TIMEOUT = 60.0
STATUS_TIMEOUT = 10.0


def _encode(rgb: np.ndarray, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="module")
def photo(astronaut: np.ndarray) -> bytes:
    return _encode(astronaut, "JPEG", quality=95)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fake():
    server = FakeDiscord()
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
async def bot(fake: FakeDiscord, redis: Redis, redis_url: str, service_worker):
    """The client logged in to the fake API (its command tree synced there); jobs use the
    engine's fast test profile."""
    config = load()
    config = replace(config, bot=replace(config.bot, test_profile=True, status_interval_s=0.2))
    base = discord.http.Route.BASE
    discord.http.Route.BASE = fake.base
    client = DiscordBot(config, redis_url)
    try:
        await client.login(TOKEN)
        yield client
    finally:
        await client.close()
        discord.http.Route.BASE = base


def _inject(bot: DiscordBot, payload: dict) -> str:
    """Deliver an INTERACTION_CREATE as the gateway would; returns its token."""
    bot._connection.parse_interaction_create(payload)
    return payload["token"]


def _protect(fake: FakeDiscord, user: int, data: bytes, *, name: str = "photo.jpg",
             mime: str | None = "image/jpeg", **extra: object) -> dict:
    upload = fake.upload(data, name, mime)
    return fake.command(user, "protect", [{"name": "image", "type": 11, "value": upload["id"]}],
                        attachments=[upload], **extra)


def _is_result(call: Call) -> bool:
    return call.method == "PATCH" and "protected.png" in call.files


async def _result(fake: FakeDiscord, token: str, since: float = 0.0) -> Call:
    return await fake.wait_for(lambda c: token in c.path and _is_result(c), JOB_TIMEOUT, since)


async def _answer(fake: FakeDiscord, token: str) -> Call:
    """The interaction's first response (the callback)."""
    return await fake.wait_for(lambda c: token in c.path and c.path.endswith("/callback"),
                               STATUS_TIMEOUT)


async def test_start_up_syncs_the_commands_in_english_and_korean(bot, fake: FakeDiscord) -> None:
    sync = next(c for c in fake.calls if c.method == "PUT" and c.path.endswith("/commands"))
    commands = {command["name"]: command for command in sync.payload}
    assert list(commands) == ["protect", "strength", "filter", "clip", "privacy", "forget",
                              "help"]
    protect = commands["protect"]
    assert protect["description_localizations"]["ko"] == KO["cmd_protect"]
    image, strength = protect["options"]
    assert (image["name"], image["type"], image["required"]) == ("image", 11, True)
    assert (strength["type"], strength["min_value"], strength["max_value"]) == (4, 1, 5)
    assert not strength.get("required")
    choices = commands["filter"]["options"][0]["choices"]
    sepia = next(choice for choice in choices if choice["value"] == "sepia")
    assert sepia["name"] == "Sepia" and sepia["name_localizations"]["ko"] == "세피아"


async def test_photo_attachment_is_protected_end_to_end(bot, fake: FakeDiscord, astronaut,
                                                        photo: bytes) -> None:
    user = 2001
    injected = time.monotonic()
    token = _inject(bot, _protect(fake, user, photo))
    ack = await _answer(fake, token)
    assert ack.payload["type"] == 5 and ack.at - injected < 3.0  # "thinking…", in time
    result = await _result(fake, token)

    protected = _decode(result.files["protected.png"])
    original = _decode(photo)
    assert protected.shape == (512, 512, 3)
    diff = np.abs(protected.astype(int) - original.astype(int))
    assert 0 < diff.max() <= TEST_PROFILE.eps
    assert result.payload["content"].startswith("✅ Done in")

    embed = result.payload["embeds"][0]
    assert "SSIM" in embed["description"] and "strength 3" in embed["description"]
    assert embed["image"]["url"] == "attachment://preview.jpg"
    assert _decode(result.files["preview.jpg"]).shape[1] > 512 // 2
    buttons = result.buttons()
    assert list(buttons) == ["◀ Weaker (2)", "Stronger (4) ▶", "🎨 Filters", "🎭 Deepfake test"]
    assert all(str(user) not in custom_id for custom_id in buttons.values())

    edits = [c.payload.get("content") for c in fake.calls_for(token) if c.method == "PATCH"]
    assert edits[0] == "📥 Got it…" and len(edits) >= 3  # status lines, then the result


async def test_stronger_redoes_the_photo_at_the_next_level(bot, fake: FakeDiscord,
                                                           photo: bytes) -> None:
    user = 2002
    first = await _result(fake, _inject(bot, _protect(fake, user, photo)))
    message_id = fake.originals[first.path.split("/")[3]]
    stronger = first.buttons()["Stronger (4) ▶"]

    token = _inject(bot, fake.press(user, message_id, stronger))
    assert (await _answer(fake, token)).payload["type"] == 5
    second = await _result(fake, token)
    assert "strength 4" in second.payload["embeds"][0]["description"]
    assert list(second.buttons())[:2] == ["◀ Weaker (3)", "Stronger (5) ▶"]
    assert _decode(second.files["protected.png"]).shape == (512, 512, 3)


async def test_filters_button_shows_every_look_and_a_pick_protects_in_it(
    bot, fake: FakeDiscord, photo: bytes
) -> None:
    user = 2010
    first = await _result(fake, _inject(bot, _protect(fake, user, photo)))
    message_id = fake.originals[first.path.split("/")[3]]
    token = _inject(bot, fake.press(user, message_id, first.buttons()["🎨 Filters"]))
    sheet = await fake.wait_for(lambda c: token in c.path and "filters.jpg" in c.files,
                                JOB_TIMEOUT)
    assert sheet.content.startswith("🎨 Pick a look") and _decode(sheet.files["filters.jpg"]).size
    looks = sheet.buttons()
    assert {"Natural", "Sepia", "Pencil sketch"} <= set(looks) and len(looks) == 14
    rows = sheet.payload["components"]
    assert len(rows) <= 5 and all(len(row["components"]) <= 5 for row in rows)

    token = _inject(bot, fake.press(user, fake.originals[token], looks["Sepia"]))
    picked = await _result(fake, token)
    assert "🎨 Filter: Sepia" in picked.payload["embeds"][0]["description"]
    protected = _decode(picked.files["protected.png"])
    assert protected.shape == (512, 512, 3)
    assert np.abs(protected[..., 0].astype(int) - protected[..., 2].astype(int)).mean() > 10


async def test_buttons_refuse_anyone_but_the_requester(bot, fake: FakeDiscord, redis: Redis,
                                                       photo: bytes) -> None:
    owner, other = 2003, 2004
    first = await _result(fake, _inject(bot, _protect(fake, owner, photo)))
    message_id = fake.originals[first.path.split("/")[3]]
    jobs_before = {key async for key in redis.scan_iter(match="arq:job:*")}

    for label in ("Stronger (4) ▶", "🎨 Filters", "🎭 Deepfake test"):
        token = _inject(bot, fake.press(other, message_id, first.buttons()[label],
                                        locale="ko"))
        refusal = await _answer(fake, token)
        assert refusal.payload["type"] == 4
        assert refusal.payload["data"]["flags"] & 64  # ephemeral: only they see it
        assert refusal.payload["data"]["content"] == KO["discord_not_yours"]
    await asyncio.sleep(0.3)
    assert not [c for c in fake.calls_for(token) if c.method == "PATCH"]
    assert {key async for key in redis.scan_iter(match="arq:job:*")} == jobs_before


async def test_an_oversize_result_comes_back_downscaled_and_lossless(
    bot, fake: FakeDiscord, photo: bytes, monkeypatch
) -> None:
    limit = 150_000  # the protected 512×512 PNG is about 0.5 MB
    monkeypatch.setattr(bot, "config", replace(
        bot.config, discord=replace(bot.config.discord, upload_limit_bytes=limit)))
    result = await _result(fake, _inject(bot, _protect(fake, 2005, photo)))

    png = result.files["protected.png"]
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) <= limit
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and max(image.size) < 512
        width, height = image.size
    content = result.payload["content"]
    assert f"downscaled to {width}×{height}" in content and "lossless PNG" in content
    assert "MB Discord lets me upload" in content
    assert "preview.jpg" in result.files  # the small preview still fits


async def test_fit_png_keeps_a_fitting_png_and_never_goes_lossy() -> None:
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)  # incompressible
    png = _encode(noise, "PNG")
    assert fit_png(png, len(png)).png is png  # fits: the very same bytes

    fitted = fit_png(png, len(png) // 3)
    assert fitted is not None and fitted.scaled and len(fitted.png) <= len(png) // 3
    with Image.open(io.BytesIO(fitted.png)) as image:
        assert image.format == "PNG" and image.size == (fitted.width, fitted.height)
    assert fit_png(png, 100) is None  # not even a tiny one fits: say so, send nothing


async def test_non_image_attachments_get_a_clear_message(bot, fake: FakeDiscord,
                                                         redis: Redis) -> None:
    user = 2006
    token = _inject(bot, _protect(fake, user, b"just some notes", name="notes.txt",
                                  mime="text/plain"))
    answer = await _answer(fake, token)
    assert answer.payload["type"] == 4 and answer.payload["data"]["flags"] & 64
    assert answer.payload["data"]["content"].startswith("This file is not an image")

    since = time.monotonic()
    text_file = fake.upload(b"more notes", "notes.txt", "text/plain")
    bot._connection.parse_message_create(fake.dm(user, attachments=[text_file]))
    reply = await fake.wait_for(lambda c: c.path == f"/channels/{user + 1}/messages",
                                STATUS_TIMEOUT, since)
    assert reply.payload["content"].startswith("This file is not an image")
    assert not [name for name in fake.downloads if name.endswith("notes.txt")]
    assert not [key async for key in redis.scan_iter(match="arq:job:*")]

    since = time.monotonic()  # labelled as an image but not one: the worker says so
    token = _inject(bot, _protect(fake, user, b"\x00" * 200, name="broken.jpg"))
    failed = await fake.wait_for(
        lambda c: token in c.path and "not an image I can read" in c.content, JOB_TIMEOUT, since)
    assert "protected.png" not in failed.files


async def test_an_image_sent_in_a_dm_is_protected(bot, fake: FakeDiscord, photo: bytes) -> None:
    user, since = 2007, time.monotonic()
    upload = fake.upload(photo, "IMG_0001.jpg", "image/jpeg")
    bot._connection.parse_message_create(fake.dm(user, attachments=[upload]))
    channel = f"/channels/{user + 1}/messages"
    status = await fake.wait_for(lambda c: c.method == "POST" and c.path == channel,
                                 STATUS_TIMEOUT, since)
    assert status.payload["content"] == "📥 Got it…"
    result = await fake.wait_for(lambda c: c.path.startswith(channel) and _is_result(c),
                                 JOB_TIMEOUT, since)
    assert result.path == f"{channel}/{status.result['id']}"  # the status message, edited
    assert _decode(result.files["protected.png"]).shape == (512, 512, 3)
    assert "IMG_0001" not in str(result.payload) and list(result.files) == [
        "protected.png", "preview.jpg"]


async def test_a_failure_is_told_once_and_frees_the_slot(bot, fake: FakeDiscord,
                                                         photo: bytes) -> None:
    user = 2011
    payload = _protect(fake, user, photo)
    fake.cdn.clear()  # the attachment can no longer be downloaded
    token = _inject(bot, payload)
    told = await fake.wait_for(lambda c: token in c.path and "went wrong" in c.content,
                               STATUS_TIMEOUT)
    assert told.payload["flags"] & 64 and "Error" not in told.content
    statuses = [c.content for c in fake.calls_for(token) if c.method == "PATCH"]
    assert statuses == ["📥 Got it…", "❌ Failed"]
    again = await _result(fake, _inject(bot, _protect(fake, user, photo)))  # slot released
    assert "protected.png" in again.files


async def test_buttons_are_removed_when_they_expire(bot, fake: FakeDiscord, photo: bytes,
                                                    monkeypatch) -> None:
    monkeypatch.setattr(bot, "config", replace(
        bot.config, discord=replace(bot.config.discord, view_timeout_s=1)))
    token = _inject(bot, _protect(fake, 2012, photo))
    result = await _result(fake, token)
    assert result.buttons()
    expired = await fake.wait_for(
        lambda c: token in c.path and c.payload.get("components") == [], 5.0, result.at)
    assert expired.method == "PATCH" and not expired.files and "content" not in expired.payload


async def test_a_job_that_outlasts_the_interaction_token_goes_on_in_a_new_message(
    bot, fake: FakeDiscord, photo: bytes
) -> None:
    user = 2013
    token = _inject(bot, _protect(fake, user, photo))
    await fake.wait_for(lambda c: token in c.path and c.method == "PATCH", STATUS_TIMEOUT)
    fake.expired.add(token)  # 15 minutes in the queue, say
    channel = f"/channels/{user + 1}/messages"
    result = await fake.wait_for(lambda c: c.path.startswith(channel) and _is_result(c),
                                 JOB_TIMEOUT)
    assert _decode(result.files["protected.png"]).shape == (512, 512, 3)
    assert result.buttons() and result.payload["embeds"]


async def test_strength_command_and_its_buttons(bot, fake: FakeDiscord) -> None:
    user = 2008
    token = _inject(bot, fake.command(user, "strength", [{"name": "level", "type": 4,
                                                          "value": 2}]))
    assert (await _answer(fake, token)).payload["data"]["content"] == (
        "Strength set to 2. Send a photo.")

    token = _inject(bot, fake.command(user, "strength"))
    shown = await _answer(fake, token)
    buttons = shown.payload["data"]["components"][0]["components"]
    assert [b["label"] for b in buttons] == ["1", "•2•", "3", "4", "5"]
    ladder = shown.payload["data"]["content"]  # what each level costs and gives
    assert ladder.startswith("Your strength is 2.")
    assert all(f"\n{n} " in ladder for n in range(1, 6))
    message_id = fake.originals[token]
    token = _inject(bot, fake.press(user, message_id, buttons[4]["custom_id"]))
    pressed = await _answer(fake, token)
    assert pressed.payload["type"] == 7  # the message updated in place, buttons gone
    assert pressed.payload["data"]["content"].startswith("Strength set to 5")
    assert pressed.payload["data"]["components"] == []


async def test_korean_locale(bot, fake: FakeDiscord) -> None:
    user = 2009
    token = _inject(bot, fake.command(user, "help", locale="ko"))
    assert "/protect 에 이미지를 첨부하세요" in (await _answer(fake, token)).payload["data"][
        "content"]
    token = _inject(bot, fake.command(user, "privacy", locale="ko"))
    privacy = (await _answer(fake, token)).payload["data"]["content"]
    assert privacy.startswith("보관하는 정보") and "30분" in privacy
    token = _inject(bot, fake.command(user, "clip", locale="ko"))
    await fake.wait_for(lambda c: token in c.path and c.content.startswith("먼저 사진을"),
                        STATUS_TIMEOUT)
    since = time.monotonic()  # a DM without a command uses the language seen last
    bot._connection.parse_message_create(fake.dm(user, "안녕"))
    hint = await fake.wait_for(lambda c: c.path == f"/channels/{user + 1}/messages",
                               STATUS_TIMEOUT, since)
    assert hint.payload["content"] == KO["send_photo"]


async def test_every_key_has_a_ttl(bot, redis: Redis) -> None:
    await asyncio.sleep(0.3)
    keys = [key async for key in redis.scan_iter()]
    assert keys and {key: ttl for key in keys if (ttl := await redis.ttl(key)) == -1} == {}


async def test_runs_in_a_thread_beside_another_bot_and_stops(bot, fake: FakeDiscord,
                                                             redis_url: str, monkeypatch,
                                                             caplog) -> None:
    # the thread's client connects to the gateway after login: to the fake's, which keeps it
    # waiting, not to Discord's (unreachable here: the thread died at a random moment)
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY",
                        yarl.URL(fake.gateway))
    config = replace(bot.config, discord=replace(bot.config.discord, sync_commands=False))
    thread = DiscordThread(config, redis_url, TOKEN).start()
    deadline = time.monotonic() + STATUS_TIMEOUT
    while thread.bot is None or thread.bot._core is None:  # logged in, core open
        assert time.monotonic() < deadline and thread.thread.is_alive()
        await asyncio.sleep(0.05)
    assert thread.loop is not asyncio.get_running_loop()
    await asyncio.to_thread(thread.stop)
    assert not thread.thread.is_alive() and thread.bot._core is None and thread.bot.is_closed()
    assert "closing the Discord bot failed" not in caplog.text  # a clean stop warns of nothing


async def test_logs_never_show_the_token() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logging.getLogger().addHandler(handler)
    logger = logging.getLogger("tests.discord.secrets")
    try:
        protect_logs(TOKEN)
        logger.warning("login with %s failed", TOKEN)
    finally:
        logging.getLogger().removeHandler(handler)
    assert "login with [redacted] failed" in stream.getvalue() and TOKEN not in stream.getvalue()
    assert logging.getLogger("discord.http").getEffectiveLevel() > logging.DEBUG
