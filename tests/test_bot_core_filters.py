"""Filters in the platform-neutral bot core (issue 4): the bot's filter list agrees with the
worker's, the default-filter setting in Redis (same TTL as strength, cleared by ``/forget``),
``/filter NAME`` replies, the contact sheet's keyboard, captions that name the filter, and
sheets that do not use the hourly quota."""

from __future__ import annotations

from dataclasses import replace

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from bot.core import i18n
from bot.core.captions import report_caption
from bot.core.flow import ProtectFlow
from bot.core.limits import Limits, Refused
from bot.core.looks import FilterFlow, keyboard_rows, names_text
from bot.core.store import UserStore
from bot.core.users import User, UserHasher, load_salt
from bot.queue import JobQueue
from common import filters as common_filters
from common.config import LimitsConfig, load
from common.jobs import VariantsResult
from worker import filters
from worker.filters import registry

ALICE = User("telegram", 424242, "en")
BOB = User("telegram", 515151, "ko")


def test_the_bots_filter_list_agrees_with_the_worker() -> None:
    assert list(common_filters.FILTERS) == filters.names()
    for name, (english, korean) in common_filters.FILTERS.items():
        assert (filters.label(name, "en"), filters.label(name, "ko")) == (english, korean)
        assert common_filters.label(name, "ko-KR") == korean
    assert common_filters.ALIASES == registry._ALIASES
    for typed in ("Sepia", "film-noir", "black and white", "OFF", "pencil sketch", "glitter", ""):
        try:
            expected: str | None = filters.get(typed).name
        except filters.UnknownFilterError:
            expected = None
        assert common_filters.resolve(typed) == expected, typed
    assert common_filters.label("glitter") == "glitter"


def test_captions_name_the_filter_applied_before_protection() -> None:
    report = {"faces": 0, "ssim": 0.95, "seconds": 3.0, "detectors": {}, "filter": "noir"}
    lines = report_caption("en", report, strength=3).splitlines()
    assert lines[-1] == "🎨 Filter: Film noir (applied before the protection)"
    assert "🎨 필터: 필름 누아르" in report_caption("ko", report, strength=3)
    for natural in (None, "natural"):
        caption = report_caption("en", {**report, "filter": natural}, strength=3)
        assert "Filter" not in caption
    assert i18n.error_text("en", "unknown_filter") != i18n.text("en", "error_internal")
    assert "/filter" in i18n.error_text("ko", "unknown_filter")


def test_names_text_and_the_keyboard_follow_the_sheet() -> None:
    english = names_text("en")
    assert english.startswith("natural, vivid,") and "bw (Black & white)" in english
    assert "sepia (세피아)" in names_text("ko")
    names = filters.names()
    result = VariantsResult("r", names=names, labels=[n.upper() for n in names], columns=4)
    rows = keyboard_rows(result)
    assert [len(row) for row in rows] == [4, 4, 4, 2]
    assert rows[0][0] == ("NATURAL", "natural") and rows[-1][-1] == ("SKETCH", "sketch")
    unlabelled = keyboard_rows(VariantsResult("r", names=names[:5], columns=0))
    assert [len(row) for row in unlabelled] == [4, 1]
    assert unlabelled[1] == [("pastel", "pastel")]  # no labels: the ids


@pytest_asyncio.fixture
async def redis(redis_db: str):
    client = Redis.from_url(redis_db)
    yield client
    await client.aclose()


@pytest_asyncio.fixture
async def core(redis: Redis, redis_db: str):
    """A store, limits (quota 2 per hour) and the filter flow on the test database."""
    config = replace(load(), limits=LimitsConfig(jobs_per_hour=2, max_queue=50))
    hasher = UserHasher(await load_salt(redis, ttl_s=600))
    queue = await JobQueue.connect(redis_db)
    store = UserStore(redis, hasher, config)
    limits = Limits(redis, hasher, queue, config)
    flow = ProtectFlow(queue, store, limits, timeout_s=5, status_interval_s=0.1)
    yield config, hasher, flow, FilterFlow(flow)
    await queue.close()


@pytest.mark.asyncio
async def test_default_filter_setting(core, redis: Redis) -> None:
    config, hasher, flow, _ = core
    store = flow.store
    assert await store.defaults(ALICE) == (config.engine.default_strength, None)
    await store.set_filter(ALICE, "sepia")
    await store.set_strength(ALICE, 2)
    await store.set_filter(BOB, "noir")
    assert await store.defaults(ALICE) == (2, "sepia")
    assert (await store.filter(ALICE), await store.filter(BOB)) == ("sepia", "noir")
    settings = hasher.keys(ALICE).settings
    assert 0 < await redis.ttl(settings) <= config.privacy.settings_ttl_s
    with pytest.raises(ValueError):
        await store.set_filter(ALICE, "glitter")
    with pytest.raises(ValueError):
        await store.set_filter(ALICE, "Sepia")  # ids only: the command resolves what people type

    await store.set_filter(ALICE, "natural")
    assert await store.defaults(ALICE) == (2, None)  # off; the strength stays
    await store.set_filter(ALICE, "vintage")
    await store.set_filter(ALICE, None)
    assert await store.filter(ALICE) is None and await redis.ttl(settings) > 0
    await redis.hset(settings, "filter", "removed_since")  # a filter that no longer exists
    assert await store.defaults(ALICE) == (2, None)

    await store.forget(BOB)
    assert await store.defaults(BOB) == (config.engine.default_strength, None)
    assert await store.filter(ALICE) is None


@pytest.mark.asyncio
async def test_last_photo_is_the_latest_remembered_one(core) -> None:
    _, _, flow, _ = core
    store, limits = flow.store, flow.limits
    assert await store.last_photo(ALICE) is None
    await limits.acquire(ALICE, "req-1")
    assert await store.start_job(ALICE, "req-1", ("tok1", b"photo one"))
    assert await store.start_job(ALICE, "req-1")  # a button's job keeps the photo
    assert await store.last_photo(ALICE) == ("tok1", b"photo one")
    assert await store.start_job(ALICE, "req-1", ("tok2", b"photo two"))
    assert await store.last_photo(ALICE) == ("tok2", b"photo two")
    assert await store.last_photo(BOB) is None
    await store.forget(ALICE)
    assert await store.last_photo(ALICE) is None


@pytest.mark.asyncio
async def test_filter_command_replies(core) -> None:
    _, _, flow, looks = core
    assert await looks.command(ALICE, "Film-Noir") == (
        "Filter set to Film noir: every new photo gets this look, then the protection. "
        "/filter off turns it off."
    )
    assert await flow.store.filter(ALICE) == "noir"
    assert await looks.command(ALICE, "off") == "Filter off: photos are protected as they are."
    assert await flow.store.filter(ALICE) is None
    await looks.command(ALICE, "pencil")
    assert await flow.store.filter(ALICE) == "sketch"
    await looks.command(ALICE, "natural")
    assert await flow.store.filter(ALICE) is None

    unknown = await looks.command(ALICE, "glitter" * 20)
    assert unknown.startswith('I don\'t know the filter "glitterglitter') and "soft_skin" in unknown
    assert len(unknown) < len(i18n.text("en", "filter_unknown", name="", names=names_text("en"))
                              ) + 41  # the echoed name is cut short
    assert await flow.store.filter(ALICE) is None  # nothing saved
    assert "세피아" in await looks.command(BOB, "sepia")
    assert await flow.store.filter(BOB) == "sepia"


@pytest.mark.asyncio
async def test_sheets_hold_the_slot_but_not_the_quota(core) -> None:
    _, _, flow, _ = core
    for _ in range(3):
        async with flow.admit(ALICE, count=False):
            with pytest.raises(Refused) as refused:
                await flow.limits.acquire(ALICE, "another")
            assert refused.value.reason == "one_at_a_time"
    for _ in range(2):  # the quota of 2 is still whole
        async with flow.admit(ALICE):
            pass
    with pytest.raises(Refused) as refused:
        async with flow.admit(ALICE):
            pass
    assert refused.value.reason == "quota"
