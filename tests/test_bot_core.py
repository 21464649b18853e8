"""The platform-neutral bot core: messages, captions, status texts, and user state and limits
in a real Redis (every key with a TTL, no raw user id in any key, ``forget`` deletes them all)."""

from __future__ import annotations

import re
import string
import time
from dataclasses import replace

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from bot.core import i18n
from bot.core.captions import DISPLAY_NAMES, report_caption
from bot.core.flow import neighbours
from bot.core.limits import Limits, Refused
from bot.core.status import StatusReporter, status_text
from bot.core.store import UserStore
from bot.core.users import SALT_KEY, User, UserHasher, load_salt
from bot.queue import JobQueue
from common.config import LimitsConfig, load
from common.jobs import FAST_QUEUE, Progress, delivered_key, progress_key
from worker import imageio

ALICE = User("telegram", 424242, "en")
BOB = User("telegram", 515151, "ko")
NOTES = ("animated_first_frame", "multipage_first_page", "exif_rotated", "cmyk_converted",
         "16bit_reduced", "grayscale_expanded", "palette_converted", "alpha_flattened",
         "icc_converted")


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


# Messages -----------------------------------------------------------------------------------------


def test_catalogues_have_the_same_keys_and_placeholders() -> None:
    assert set(i18n.KO) == set(i18n.EN)
    for key, english in i18n.EN.items():
        assert _fields(i18n.KO[key]) == _fields(english), key


def test_language_from_platform_codes() -> None:
    assert i18n.language("ko") == "ko"
    assert i18n.language("ko-KR") == "ko"
    assert i18n.language("en-US") == "en"
    assert i18n.language("fr") == "en"
    assert i18n.language(None) == "en"


def test_every_error_code_and_note_has_its_own_message() -> None:
    codes = {cls.code for cls in imageio.ImageError.__subclasses__()} | {"internal", "timeout"}
    assert codes >= {"empty", "not_an_image", "unsupported_format", "truncated", "corrupt",
                     "too_many_pixels", "too_small"}
    generic = i18n.text("en", "error_generic")
    for lang in i18n.CATALOGUES:
        messages = {i18n.error_text(lang, code) for code in codes}
        assert len(messages) == len(codes) and generic not in messages
        assert all(i18n.note_text(lang, note) for note in NOTES)
    assert i18n.error_text("en", "no_such_code") == i18n.text("en", "error_internal")
    assert "사진" in i18n.error_text("ko", "empty")


# Captions ---------------------------------------------------------------------------------------


def _row(role: str, original: int, protected: int = 0, jpeg85: int = 0, half: int = 0) -> dict:
    kept = {"protected": protected, "jpeg85": jpeg85, "half": half}
    return {"role": role, "original": original, **kept, "kept": kept}


def _report(evaluators: dict, surrogates: dict, faces: int = 1) -> dict:
    rows = {n: _row("evaluator", *c) for n, c in evaluators.items()}
    rows |= {n: _row("surrogate", *c) for n, c in surrogates.items()}
    return {"faces": faces, "ssim": 0.9712, "psnr": 38.1, "seconds": 12.4, "strength": 3,
            "face_ssim": 0.8412 if faces else None, "detectors": rows}


def test_caption_when_every_detector_lost_the_face() -> None:
    report = _report({"dlib_hog": (1,), "dlib_mmod": (1,), "haar": (1,), "lbp": (1,)},
                     {"mtcnn": (1,), "res10_ssd": (1,)})
    caption = report_caption("en", report, strength=3)
    assert caption.splitlines() == [
        "Faces hidden from 4/4 independent detectors, also after JPEG re-save and downscale.",
        "Faces hidden from 2/2 targeted detectors, also after JPEG re-save and downscale.",
        "SSIM 0.97 (on the face 0.84) · strength 3 · 12 s",
    ]


def test_caption_says_honestly_which_detectors_still_find_the_face() -> None:
    report = _report(
        {"dlib_hog": (1, 0, 1, 0), "haar": (1, 0, 0, 1), "lbp": (0,), "dlib_mmod": (1, 1, 1, 1)},
        {"mtcnn": (1,)},
    )
    caption = report_caption("en", report, strength=2, notes=["animated_first_frame"])
    assert ("Faces hidden from 2/3 independent detectors; after JPEG re-save 1/3, after "
            "downscale 1/3.") in caption
    assert "Still found by: dlib HOG, OpenCV Haar, dlib CNN." in caption
    assert "strength 2" in caption and "only the first frame" in caption
    assert "LBP" not in caption  # found no face on the original: not counted either way


def test_caption_without_a_face_and_in_korean() -> None:
    report = _report({"haar": (0,)}, {"res10_ssd": (0,)}, faces=0)
    caption = report_caption("en", report, strength=3)
    assert caption.startswith("No face found on the original")
    assert "SSIM 0.97 · strength 3" in caption  # no face boxes: no face SSIM
    korean = report_caption("ko", _report({"haar": (1,)}, {}), strength=4)
    assert "독립 검출기 1개 중 1개" in korean and "SSIM 0.97 (얼굴 0.84) · 강도 4" in korean


def test_status_texts() -> None:
    assert status_text("en", 3, Progress("queued")) == "⏳ In the queue (place 3)…"
    assert status_text("en", None, None) == "⏳ In the queue…"
    assert status_text("en", None, Progress("protecting", 0.456)) == "🛡 Protecting… 46%"
    assert status_text("ko", None, Progress("verifying", 0.95)).endswith("95%")
    assert neighbours(1) == (None, 2) and neighbours(3) == (2, 4) and neighbours(5) == (4, None)


@pytest.mark.asyncio
async def test_status_reporter_deduplicates_throttles_and_always_sends_the_end() -> None:
    sent: list[str] = []

    async def on_status(message: str) -> None:
        sent.append(message)

    reporter = StatusReporter("en", on_status, interval_s=60.0)
    await reporter.update(1, Progress("queued"))
    await reporter.update(1, Progress("queued"))
    await reporter.update(None, Progress("protecting", 0.5))  # within the interval: skipped
    await reporter.done(4.24)
    assert sent == ["⏳ In the queue (place 1)…", "✅ Done in 4.2 s"]


# User state in Redis ------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def redis(redis_db: str):
    client = Redis.from_url(redis_db)
    yield client
    await client.aclose()


@pytest_asyncio.fixture
async def hasher(redis: Redis) -> UserHasher:
    return UserHasher(await load_salt(redis, ttl_s=600))


async def _ttls(redis: Redis) -> dict[str, int]:
    return {key.decode(): await redis.ttl(key) async for key in redis.scan_iter()}


@pytest.mark.asyncio
async def test_user_keys_are_salted_hashes(redis: Redis, hasher: UserHasher) -> None:
    prefix = hasher.keys(ALICE).prefix
    assert str(ALICE.id) not in prefix and re.fullmatch(r"dfb:u:[0-9a-f]{32}:", prefix)
    assert hasher.keys(ALICE) == UserHasher(await load_salt(redis, ttl_s=600)).keys(ALICE)
    assert UserHasher(b"another-deployment-salt").keys(ALICE) != hasher.keys(ALICE)
    assert hasher.keys(User("discord", ALICE.id)) != hasher.keys(ALICE)
    assert 0 < await redis.ttl(SALT_KEY) <= 600


@pytest.mark.asyncio
async def test_settings_photo_and_forget(redis: Redis, hasher: UserHasher, redis_db: str) -> None:
    config = load()
    store = UserStore(redis, hasher, config)
    queue = await JobQueue.connect(redis_db)
    limits = Limits(redis, hasher, queue, config)
    assert await store.strength(ALICE) == config.engine.default_strength
    await store.set_strength(ALICE, 5)
    await store.set_strength(BOB, 1)
    assert (await store.strength(ALICE), await store.strength(BOB)) == (5, 1)
    with pytest.raises(ValueError):
        await store.set_strength(ALICE, 6)

    await limits.acquire(ALICE, "req-alice")
    assert await store.start_job(ALICE, "req-alice", ("tok1", b"photo one"))
    assert await store.start_job(ALICE, "req-alice", ("tok2", b"photo two"))
    assert await store.photo(ALICE, "tok2") == b"photo two"
    assert await store.photo(ALICE, "tok1") is None  # replaced: the old buttons ask again
    assert await store.photo(BOB, "tok2") is None  # another user's token finds nothing
    assert not await store.start_job(BOB, "req-alice", ("tok3", b"not bob's job"))
    await redis.set(progress_key("req-alice"), "{}", ex=60)
    await redis.set(delivered_key("req-alice"), "1", ex=60)
    await redis.zadd(FAST_QUEUE, {"req-alice": 1})
    await limits.acquire(BOB, "req-bob")
    assert await store.start_job(BOB, "req-bob", ("tok4", b"bob's photo"))

    ttls = await _ttls(redis)
    assert all(ttl > 0 for key, ttl in ttls.items() if key != FAST_QUEUE), ttls
    assert ttls[hasher.keys(ALICE).photo] <= config.privacy.photo_ttl_s
    assert ttls[hasher.keys(ALICE).settings] <= config.privacy.settings_ttl_s

    assert await store.forget(ALICE) >= 6
    left = set(await _ttls(redis))
    assert not {k for k in left if k.startswith(hasher.keys(ALICE).prefix) or "req-alice" in k}
    assert await redis.zscore(FAST_QUEUE, "req-alice") is None
    assert await store.strength(ALICE) == config.engine.default_strength
    assert await store.strength(BOB) == 1 and hasher.keys(BOB).photo in left
    # The job admitted before /forget can no longer write anything about the user.
    assert not await store.start_job(ALICE, "req-alice", ("tok5", b"photo three"))
    assert not [k async for k in redis.scan_iter(match=f"{hasher.keys(ALICE).prefix}*")]
    await queue.close()


@pytest.mark.asyncio
async def test_forget_racing_a_job_start_leaves_no_key(redis: Redis, hasher: UserHasher,
                                                       redis_db: str) -> None:
    """A photo admitted just before ``/forget`` whose ``start_job`` lands between forget's scan
    of the user's keys and its delete must not leave the photo or the request behind."""
    config = load()
    store = UserStore(redis, hasher, config)
    queue = await JobQueue.connect(redis_db)
    await Limits(redis, hasher, queue, config).acquire(ALICE, "req-race")
    scan = redis.scan_iter
    started: list[bool] = []

    async def scan_then_start(*args, **kwargs):  # the job's handler runs right after the scan
        async for key in scan(*args, **kwargs):
            yield key
        started.append(await store.start_job(ALICE, "req-race", ("tok", b"photo")))

    redis.scan_iter = scan_then_start  # type: ignore[method-assign]
    try:
        await store.forget(ALICE)
    finally:
        del redis.scan_iter
    assert started == [False]
    assert not [k async for k in redis.scan_iter(match=f"{hasher.keys(ALICE).prefix}*")]
    await queue.close()


@pytest.mark.asyncio
async def test_limits(redis: Redis, hasher: UserHasher, redis_db: str) -> None:
    config = replace(load(), limits=LimitsConfig(jobs_per_hour=2, max_queue=3))
    queue = await JobQueue.connect(redis_db)
    limits = Limits(redis, hasher, queue, config)

    await limits.acquire(ALICE, "a1")
    with pytest.raises(Refused) as refused:
        await limits.acquire(ALICE, "a2")
    assert refused.value.reason == "one_at_a_time"
    await limits.acquire(BOB, "b1")  # other users are not affected
    await limits.release(ALICE, "a2")  # not the holder: nothing happens
    assert await limits.holds(ALICE, "a1")
    await limits.release(ALICE, "a1")
    assert not await limits.holds(ALICE, "a1")

    await limits.acquire(ALICE, "a3")
    await limits.release(ALICE, "a3")
    with pytest.raises(Refused) as refused:  # a1 and a3 used the hourly quota of 2
        await limits.acquire(ALICE, "a4")
    assert refused.value.reason == "quota"
    assert refused.value.values["limit"] == 2 and 1 <= refused.value.values["minutes"] <= 60
    assert not await limits.holds(ALICE, "a4")  # a refusal holds nothing

    # Three jobs deferred by an hour (so no worker takes them) fill the queue to the cap.
    later = (time.time() + 3600) * 1000
    await redis.zadd(FAST_QUEUE, {f"deferred-{n}": later for n in range(3)})
    await limits.release(BOB, "b1")
    with pytest.raises(Refused) as refused:
        await limits.acquire(BOB, "b2")
    assert refused.value.reason == "busy"
    assert i18n.text("en", "busy") == "I'm very busy right now. Please try again in a minute."
    await queue.close()
    await redis.delete(FAST_QUEUE)
    assert all(ttl > 0 for ttl in (await _ttls(redis)).values())


@pytest.mark.asyncio
async def test_queue_cap_holds_for_a_burst_of_admissions(
    redis: Redis, hasher: UserHasher, redis_db: str
) -> None:
    """Photos arriving together all pass a queue-length check before the first one is enqueued:
    places under the cap are taken at admission, atomically, and given back on release."""
    import asyncio

    from bot.core.limits import ADMITTED_KEY

    config = replace(load(), limits=LimitsConfig(jobs_per_hour=5, max_queue=3))
    queue = await JobQueue.connect(redis_db)
    limits = Limits(redis, hasher, queue, config)
    users = [User("telegram", 7000 + n, "en") for n in range(10)]

    async def admit(user: User) -> str:
        try:
            await limits.acquire(user, f"job-{user.id}")
        except Refused as refused:
            return refused.reason
        return "admitted"

    outcomes = await asyncio.gather(*(admit(u) for u in users))
    assert sorted(outcomes) == ["admitted"] * 3 + ["busy"] * 7
    assert await redis.zcard(ADMITTED_KEY) == 3 and await redis.ttl(ADMITTED_KEY) > 0
    admitted = [u for u, o in zip(users, outcomes, strict=True) if o == "admitted"]
    await limits.release(admitted[0], f"job-{admitted[0].id}")  # its place is free again
    assert await admit(users[outcomes.index("busy")]) == "admitted"
    for user in users:
        await limits.release(user, f"job-{user.id}")
    assert not await redis.exists(ADMITTED_KEY)
    await queue.close()


def test_every_detector_has_a_display_name() -> None:
    """Reports name detectors to people: every built-in plugin has a readable name."""
    from worker.detectors import PLUGINS

    assert set(PLUGINS) <= set(DISPLAY_NAMES)
