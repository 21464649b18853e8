"""The deepfake test in the Discord bot end to end (issues 5, 6): the 🎭 button under a result
runs the clip job on the slow queue and the same response then carries the MP4 and its
explanation. The real discord.py client against the fake Discord API, with real Redis, a fast and
a slow arq worker subprocess (test engine)."""

from __future__ import annotations

import pytest

from tests import test_discord as e2e
from tests.fake_discord import FakeDiscord
from tests.test_discord import _inject, _protect, _result
from tests.test_telegram_clip import slow_worker  # noqa: F401  (the slow queue's worker)

pytestmark = pytest.mark.asyncio(loop_scope="module")
#: The end-to-end fixtures of ``test_discord`` (module-scoped: a client of this module's own).
fake, redis, bot, photo = e2e.fake, e2e.redis, e2e.bot, e2e.photo
CLIP_TIMEOUT = 180.0


async def test_deepfake_button_sends_the_comparison_clip(bot, fake: FakeDiscord,
                                                         photo: bytes) -> None:
    user = 6001
    first = await _result(fake, _inject(bot, _protect(fake, user, photo)))
    message_id = fake.originals[first.path.split("/")[3]]
    token = _inject(bot, fake.press(user, message_id, first.buttons()["🎭 Deepfake test"]))
    video = await fake.wait_for(lambda c: token in c.path and "deepfake-test.mp4" in c.files,
                                CLIP_TIMEOUT)
    assert video.files["deepfake-test.mp4"][4:8] == b"ftyp"  # an MP4
    assert video.content.startswith("🎭 Deepfake test") and "strength 3" in video.content
    statuses = [c.content for c in fake.calls_for(token) if c.method == "PATCH"]
    assert any(s.startswith("🎭") for s in statuses)
