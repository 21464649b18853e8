"""The deepfake test's platform-neutral texts (issue 5): captions and status lines."""

from __future__ import annotations

import asyncio

import pytest

from bot.core.deepfake import _ClipStatus, clip_caption, side_text
from common.jobs import Progress

REPORT = {"protection": {"strength": 4},
          "original": {"outcome": "same_person", "identity_distance": 0.3149},
          "protected": {"outcome": "no_face", "identity_distance": None}}


def test_caption_tells_both_sides_in_both_languages():
    english = clip_caption("en", REPORT)
    assert "strength 4" in english and "looks like you (identity distance 0.31" in english
    assert "Protected: no face found, so the deepfake failed." in english
    korean = clip_caption("ko", REPORT)
    assert "강도 4" in korean and "0.31" in korean and "딥페이크 실패" in korean


@pytest.mark.parametrize("outcome", ["same_person", "other_person", "no_face", "unscored"])
@pytest.mark.parametrize("lang", ["en", "ko"])
def test_every_outcome_has_words(outcome, lang):
    distance = None if outcome in ("no_face", "unscored") else 0.71
    words = side_text(lang, {"outcome": outcome, "identity_distance": distance})
    assert words and "{" not in words and ("0.71" in words) == (distance is not None)


def test_status_lines_follow_the_clip_stages():
    sent: list[str] = []

    async def on_status(message: str) -> None:
        sent.append(message)

    async def run() -> None:
        reporter = _ClipStatus("en", on_status, interval_s=0.0)
        await reporter.update(2, None)
        await reporter.update(None, Progress("protecting", 0.2))
        await reporter.update(None, Progress("swapping", 0.61))
        await reporter.update(None, Progress("rendering", 0.96))
        await reporter.done(12.3)

    asyncio.run(run())
    assert sent == ["⏳ In the queue (place 2)…", "🎭 Protecting your photo for the deepfake "
                    "test… 20%", "🎭 Making the deepfakes… 61%", "🎭 Rendering the video… 96%",
                    "✅ Done in 12 s"]
