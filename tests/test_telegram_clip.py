"""The deepfake test in the Telegram bot end to end (issue 5): the 🎭 button under a result and
``/clip`` run the clip job on the slow queue and send the MP4 with a one-message explanation.
The real PTB bot polls the fake Bot API server, with real Redis, a fast and a slow arq worker
subprocess (test engine)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests import test_telegram as e2e
from tests.conftest import ServiceWorker
from tests.fake_telegram import FakeTelegram
from tests.test_telegram import _buttons, _reply, _result

pytestmark = pytest.mark.asyncio(loop_scope="module")
#: The end-to-end fixtures of ``test_telegram`` (module-scoped: a bot of this module's own).
fake, redis, bot, photo_sizes = e2e.fake, e2e.redis, e2e.bot, e2e.photo_sizes
CLIP_TIMEOUT = 180.0


@pytest.fixture(scope="module", autouse=True)
def slow_worker(redis_url: str, tmp_path_factory):
    with open(tmp_path_factory.mktemp("slow") / "worker.log", "w+b") as log:
        worker = ServiceWorker(redis_url, log, queue="slow")
        try:
            worker.wait_ready()
            yield worker
        finally:
            worker.stop()


async def test_deepfake_button_sends_the_comparison_clip(bot, fake: FakeTelegram, photo_sizes,
                                                         tmp_path) -> None:
    import imageio_ffmpeg

    user, since = 5001, time.monotonic()
    fake.send_photo(user, photo_sizes)
    document = await _result(fake, user, since)
    label, data = next((label, d) for label, d in _buttons(document).items() if "🎭" in label)
    assert label == "🎭 Deepfake test" and data.startswith("x:") and str(user) not in data

    pressed = time.monotonic()
    fake.press(user, document.result["message_id"], data)
    video = await fake.wait_for(
        lambda c: c.chat_id == user and c.method == "sendVideo" and c.status == 200,
        CLIP_TIMEOUT, pressed,
    )
    caption = video.params["caption"]
    assert caption.startswith("🎭 Deepfake test") and "strength 3" in caption
    assert "Original: deepfake made" in caption  # the astronaut swapped onto the astronaut
    assert video.filenames["video"] == "deepfake-test.mp4"
    path = tmp_path / "clip.mp4"
    path.write_bytes(video.files["video"])
    frames = imageio_ffmpeg.read_frames(str(path))
    meta = next(frames)
    assert meta["codec"] == "h264" and meta["size"] == (int(video.params["width"]),
                                                        int(video.params["height"]))
    first = np.frombuffer(next(frames), np.uint8)
    assert first.size == meta["size"][0] * meta["size"][1] * 3
    status = [c.text for c in fake.calls_to("editMessageText", user, pressed)]
    assert any(t.startswith("🎭") for t in status) and status[-1].startswith("✅ Done in")


async def test_clip_command_without_a_photo_asks_for_one(bot, fake: FakeTelegram) -> None:
    user, since = 5002, time.monotonic()
    fake.send_text(user, "/clip")
    assert "Send me a photo first" in await _reply(fake, user, since, "/clip")
    fake.send_text(user, "/clip", lang="ko")
    assert "먼저 사진을" in await _reply(fake, user, since, "먼저")
