"""Filters in the Telegram bot end to end (issue 4): ``/filter`` → contact sheet with a keyboard
of looks → a pick comes back protected; the 🎨 button under every result; ``/filter NAME`` as the
default look for new photos, ``/filter off``; unknown names. The real PTB bot polls the fake Bot
API server, with real Redis and a real arq worker subprocess (test engine)."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from bot.core import looks
from common import filters as common_filters
from tests import test_telegram as e2e
from tests.fake_telegram import Call, FakeTelegram
from tests.test_telegram import _buttons, _decode, _reply, _result
from worker import filters
from worker.attack.profiles import TEST_PROFILE
from worker.imageio import decode_image

pytestmark = pytest.mark.asyncio(loop_scope="module")
#: The end-to-end fixtures of ``test_telegram`` (module-scoped: a bot of this module's own).
fake, redis, bot, photo_sizes = e2e.fake, e2e.redis, e2e.bot, e2e.photo_sizes
SHEET_TIMEOUT = 30.0


async def _sheet(fake: FakeTelegram, user: int, since: float) -> Call:
    """The contact sheet: a photo with a keyboard (the preview has none)."""
    return await fake.wait_for(
        lambda c: c.chat_id == user and c.method == "sendPhoto" and c.status == 200
        and "reply_markup" in c.params,
        SHEET_TIMEOUT, since,
    )


def _token(result: Call) -> str:
    """The remembered photo's token, from a result's 🎨 button."""
    data = next(d for label, d in _buttons(result).items() if "🎨" in label)
    assert data.startswith("v:")
    return data.split(":")[1]


async def test_filter_without_a_photo_asks_for_one(bot, fake: FakeTelegram) -> None:
    user, since = 2001, time.monotonic()
    fake.send_text(user, "/filter")
    await _reply(fake, user, since, "Send me a photo first")
    fake.send_text(user, "/filter", lang="ko")
    await _reply(fake, user, since, "먼저 사진을 보내 주세요")
    assert not fake.calls_to("sendPhoto", user, since)


async def test_contact_sheet_then_a_pick_comes_back_protected(bot, fake: FakeTelegram,
                                                              photo_sizes) -> None:
    user, since = 2002, time.monotonic()
    fake.send_photo(user, photo_sizes)
    first = await _result(fake, user, since)
    token = _token(first)
    assert "Filter" not in first.params["caption"]

    since = time.monotonic()
    fake.send_text(user, "/filter")
    sheet = await _sheet(fake, user, since)
    buttons = _buttons(sheet)
    assert list(buttons.values()) == [f"f:{token}:{name}" for name in filters.names()]
    assert list(buttons) == [filters.label(name, "en") for name in filters.names()]
    rows = sheet.params["reply_markup"]["inline_keyboard"]
    assert len(rows) > 1 and all(str(user) not in data for data in buttons.values())
    assert _decode(sheet.files["photo"]).shape[1] > 480  # a grid of thumbnails
    assert "strength 3" in sheet.params["caption"] and "Natural" in sheet.params["caption"]
    print(f"\n/filter → contact sheet: {sheet.at - since:.2f} s")

    since = time.monotonic()
    fake.press(user, sheet.result["message_id"], buttons["Sepia"])
    document = await _result(fake, user, since)
    assert document.filenames["document"] == "protected.png"
    protected = _decode(document.files["document"])
    original = decode_image(photo_sizes[-1][0]).rgb
    sepia = filters.apply("sepia", original)
    assert protected.shape == original.shape == (512, 512, 3)
    assert np.abs(protected.astype(int) - original.astype(int)).max() > 4 * TEST_PROFILE.eps
    assert np.abs(protected.astype(int) - sepia.astype(int)).max() <= TEST_PROFILE.eps
    caption = document.params["caption"]
    assert "Filter: Sepia" in caption and "strength 3" in caption and "SSIM" in caption
    redo = _buttons(document)
    assert sorted(redo.values()) == [f"r:{token}:2:sepia", f"r:{token}:4:sepia", f"v:{token}",
                                     f"x:{token}"]  # and 🎭 deepfake test (issue 5)

    since = time.monotonic()  # weaker/stronger keep the filter
    fake.press(user, document.result["message_id"], f"r:{token}:4:sepia")
    stronger = await _result(fake, user, since)
    assert "strength 4" in stronger.params["caption"]
    assert "Filter: Sepia" in stronger.params["caption"]
    assert f"r:{token}:5:sepia" in _buttons(stronger).values()


async def test_the_filters_button_under_a_result(bot, fake: FakeTelegram, photo_sizes) -> None:
    user, since = 2003, time.monotonic()
    fake.send_photo(user, photo_sizes, lang="ko")
    first = await _result(fake, user, since)
    filters_button = next(label for label in _buttons(first) if "🎨" in label)
    assert filters_button == "🎨 필터"

    since = time.monotonic()
    fake.press(user, first.result["message_id"], _buttons(first)[filters_button], lang="ko")
    sheet = await _sheet(fake, user, since)
    buttons = _buttons(sheet)
    assert "세피아" in buttons and "흑백" in buttons  # labels in the user's language

    since = time.monotonic()
    fake.press(user, sheet.result["message_id"], buttons["흑백"], lang="ko")
    document = await _result(fake, user, since)
    protected = _decode(document.files["document"]).astype(int)
    channels = np.abs(protected - protected.mean(axis=2, keepdims=True))
    assert np.median(channels) <= TEST_PROFILE.eps  # black & white, up to the perturbation
    assert "필터: 흑백" in document.params["caption"]

    since = time.monotonic()  # a token that names no remembered photo asks for it again
    fake.press(user, first.result["message_id"], "v:expired-token")
    await _reply(fake, user, since, "send it again")
    fake.press(user, sheet.result["message_id"], "f:expired-token:sepia")
    await _reply(fake, user, since, "send it again")


async def test_default_filter_applies_to_new_photos_until_off(bot, fake: FakeTelegram,
                                                              photo_sizes) -> None:
    user, since = 2004, time.monotonic()
    fake.send_text(user, "/filter sepia")
    await _reply(fake, user, since, "Filter set to Sepia")
    fake.send_photo(user, photo_sizes)
    document = await _result(fake, user, since)
    assert "Filter: Sepia" in document.params["caption"]
    protected = _decode(document.files["document"])
    sepia = filters.apply("sepia", decode_image(photo_sizes[-1][0]).rgb)
    assert np.abs(protected.astype(int) - sepia.astype(int)).max() <= TEST_PROFILE.eps
    assert any(data.endswith(":sepia") for data in _buttons(document).values())

    since = time.monotonic()  # the sheet names the default; a pick does not change it
    fake.send_text(user, "/filter")
    sheet = await _sheet(fake, user, since)
    assert "Look for new photos: Sepia" in sheet.params["caption"]

    since = time.monotonic()
    fake.send_text(user, "/filter Film-Noir")
    await _reply(fake, user, since, "Filter set to Film noir")
    fake.send_text(user, "/filter off")
    await _reply(fake, user, since, "Filter off")
    fake.send_photo(user, photo_sizes)
    document = await _result(fake, user, since)
    assert "Filter" not in document.params["caption"]
    assert not any(data.count(":") == 3 for data in _buttons(document).values())

    since = time.monotonic()
    fake.send_text(user, "/filter vintage")
    await _reply(fake, user, since, "Filter set to Vintage")
    fake.send_text(user, "/filter natural")
    await _reply(fake, user, since, "Filter off")


async def test_unknown_filter_names(bot, fake: FakeTelegram, photo_sizes) -> None:
    user, since = 2005, time.monotonic()
    fake.send_text(user, "/filter glitter")
    message = await _reply(fake, user, since, "I don't know the filter \"glitter\"")
    assert all(name in message for name in common_filters.FILTERS)
    assert "Film noir" in message and "/filter off" in message
    fake.send_text(user, "/filter glitter", lang="ko")
    korean = await _reply(fake, user, since, "필터는 없습니다")
    assert "sepia" in korean and "세피아" in korean

    since = time.monotonic()  # the worker refuses a name it does not know (forged button)
    fake.send_photo(user, photo_sizes)
    first = await _result(fake, user, since)
    assert "Filter" not in first.params["caption"]  # the unknown name was not saved
    since = time.monotonic()
    fake.press(user, first.result["message_id"], f"f:{_token(first)}:glitter")
    await _reply(fake, user, since, "I don't know that filter", timeout=SHEET_TIMEOUT)
    assert not fake.calls_to("sendDocument", user, since)


async def test_a_sheet_waiting_in_the_queue_says_so(bot, fake: FakeTelegram, photo_sizes,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # The job ahead takes about a second with the test engine: a notice after the product's
    # 2 s would race its end (it did, on a fast machine), so the notice comes sooner here.
    monkeypatch.setattr(looks, "QUEUE_NOTICE_S", 0.2)
    user, other, since = 2006, 2007, time.monotonic()
    fake.send_photo(user, photo_sizes)
    await _result(fake, user, since)

    since = time.monotonic()  # one worker, one job at a time: the sheet waits behind this one
    fake.send_photo(other, photo_sizes)
    await fake.wait_for(lambda c: c.chat_id == other and "Protecting" in c.text,
                        e2e.JOB_TIMEOUT, since)
    fake.send_text(user, "/filter")
    status = await fake.wait_for(lambda c: c.chat_id == user and c.method == "sendMessage",
                                 SHEET_TIMEOUT, since)
    assert status.text == "⏳ In the queue (place 1)…"
    await _sheet(fake, user, since)
    done = await fake.wait_for(lambda c: c.chat_id == user and c.method == "editMessageText",
                               SHEET_TIMEOUT, since)
    assert done.params["message_id"] == status.result["message_id"]
    assert done.text.startswith("✅ Done in")
    await _result(fake, other, since)


async def test_every_key_has_a_ttl(bot, fake: FakeTelegram, redis) -> None:
    user, since = 2008, time.monotonic()
    fake.send_text(user, "/filter warm")
    await _reply(fake, user, since, "Filter set to Warm")
    await asyncio.sleep(0.5)  # let the last jobs' bookkeeping settle
    keys = [key async for key in redis.scan_iter()]
    assert any(key.endswith(b":settings") for key in keys)
    assert keys and {key: ttl for key in keys if (ttl := await redis.ttl(key)) == -1} == {}
