"""Faults (issue 7), with real worker processes on a private Redis and the real PTB bot on the
fake Bot API: a worker killed or stopped in the middle of a job, an engine that raises, Telegram
answering 429/5xx or not at all, ``/forget`` while a worker runs the job, and Redis restarted
(losing every key) while a job runs. Every user gets
exactly one result or one clear failure message; nothing is left behind.

arq's timeouts are short here (``fast_timeout_s = 20``: a dead worker's job is taken again
30 s after it started), so a crash costs seconds, not the default minutes."""

from __future__ import annotations

import asyncio
import io
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import pytest_asyncio
from arq.constants import in_progress_key_prefix, retry_key_prefix
from PIL import Image
from redis.asyncio import Redis

from bot.core.service import BotCore
from bot.core.users import SALT_KEY, User, UserHasher
from bot.handlers.telegram import CORE
from common import jobs
from common.redis_server import LocalRedis, start_local
from tests.conftest import ServiceWorker
from tests.e2e import (
    bot_config,
    delivered,
    reply,
    result,
    running_bot,
    start_worker,
    wait_until,
    write_config,
)
from tests.fake_telegram import FakeTelegram

pytestmark = pytest.mark.asyncio(loop_scope="module")
FAST_TIMEOUT_S = 20  # a job on a warm worker takes 6 s on a slow 2-core machine
MAX_TRIES = 2


class Workers:
    """Worker processes started one after another (each with its own log)."""

    def __init__(self, redis_url: str, folder: Path) -> None:
        self.redis_url, self.folder = redis_url, folder
        self.config = write_config(folder / "config.toml", worker={
            "fast_timeout_s": FAST_TIMEOUT_S, "max_tries": MAX_TRIES, "poll_delay_s": 0.2,
            "keep_result_s": 60,
        })
        self.started: list[ServiceWorker] = []

    def start(self, wait: bool = True) -> ServiceWorker:
        log = open(self.folder / f"worker{len(self.started)}.log", "w+b")  # noqa: SIM115
        worker = start_worker(self.redis_url, log, self.config)
        self.started.append(worker)
        if wait:
            worker.wait_ready()
        return worker

    @property
    def current(self) -> ServiceWorker:
        return self.started[-1]

    def stop_all(self) -> None:
        for worker in self.started:
            if worker.process.poll() is None:
                worker.stop()
            worker.log.close()


@pytest.fixture(scope="module")
def redis_server() -> Iterator[LocalRedis]:
    server = start_local()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def redis_url(redis_server: LocalRedis) -> str:
    return redis_server.url


@pytest.fixture(scope="module")
def workers(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    pool = Workers(redis_url, tmp_path_factory.mktemp("faults"))
    pool.start()
    yield pool
    pool.stop_all()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fake():
    server = FakeTelegram()
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def redis(redis_url: str):
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(fake: FakeTelegram, redis_url: str, workers: Workers):
    async with running_bot(fake, redis_url, bot_config()) as app:
        yield app


@pytest.fixture(scope="module")
def photo(astronaut: np.ndarray) -> bytes:
    """A 384-px face photo: one or two seconds for the test engine, long enough to interrupt."""
    buffer = io.BytesIO()
    Image.fromarray(cv2.resize(astronaut, (384, 384))).save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def send(fake: FakeTelegram, user: int, photo: bytes) -> float:
    since = time.monotonic()
    fake.send_photo(user, [(photo, 384, 384)])
    return since


async def running_job(redis: Redis, timeout: float = 30.0) -> str:
    """The id of the job a worker is running (its progress past decoding)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for key in [k async for k in redis.scan_iter(match=f"{in_progress_key_prefix}*")]:
            rid = key.decode().removeprefix(in_progress_key_prefix)
            progress = jobs.Progress.from_json(await redis.get(jobs.progress_key(rid)))
            if progress is not None and progress.stage == "protecting":
                return rid
        await asyncio.sleep(0.05)
    raise AssertionError("no job started")


async def try_started(redis: Redis, rid: str, number: int, timeout: float) -> None:
    """Wait until try ``number`` of job ``rid`` runs. arq raises ``arq:retry:<job id>`` as each
    try starts (after taking the in-progress key), so the counter names the try that runs; the
    in-progress key does not: a new worker takes a dead try's job within one poll of that key
    expiring and sets it again, and the job's progress still says "protecting" from the dead
    try."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        started = int(await redis.get(retry_key_prefix + rid) or 0)
        if started >= number:
            assert started == number, f"try {number} of {rid} was missed: try {started} runs"
            assert await redis.exists(in_progress_key_prefix + rid)
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"try {number} of {rid} did not start")


async def exactly_one(fake: FakeTelegram, user: int, since: float, settle: float = 1.5) -> None:
    await result(fake, user, since, timeout=90)
    await asyncio.sleep(settle)
    assert len(delivered(fake, user, since)) == 1
    assert not any("went wrong" in t for t in fake.texts(user, since))


# --- Telegram misbehaving -------------------------------------------------------------------------


async def test_telegram_429_5xx_and_timeouts_are_retried_and_nothing_is_dropped(
    bot, fake: FakeTelegram, photo: bytes
) -> None:
    user = 8001
    fake.fail("getFile", 502)                       # the download: a Bad Gateway first
    fake.fail("sendMessage", 429, retry_after=1)    # "Got it": flood control
    fake.fail("sendPhoto", 500)                     # the preview: an internal error
    fake.fail("sendDocument", 504, delay=6.0)       # the PNG: no answer within the read timeout
    fake.fail("sendDocument", 429, retry_after=1)   # … then flood control
    since = send(fake, user, photo)
    await exactly_one(fake, user, since)
    assert len(fake.calls_to("sendPhoto", user, since)) == 1
    failed = [c for c in fake.calls if c.at >= since and c.status != 200]
    assert sorted(c.method for c in failed) == [
        "getFile", "sendDocument", "sendDocument", "sendMessage", "sendPhoto"]
    assert not any(fake.faults.values())
    status = fake.calls_to("sendMessage", user, since)[0]
    assert status.text == "📥 Got it…"


async def test_telegram_down_for_good_tells_the_user_once_when_it_can(
    bot, fake: FakeTelegram, photo: bytes
) -> None:
    user, tries = 8002, 1 + bot_config().bot.max_retries
    fake.fail("getFile", 503, times=tries)  # every retry of the download fails
    since = send(fake, user, photo)
    await reply(fake, user, since, "something went wrong on my side")
    await asyncio.sleep(1.0)
    assert sum("went wrong" in t for t in fake.texts(user, since)) == 1
    assert not delivered(fake, user, since) and not any(fake.faults.values())


# --- the engine raising ---------------------------------------------------------------------------


async def test_an_engine_error_is_told_once_and_the_worker_keeps_serving(
    bot, fake: FakeTelegram, redis: Redis, workers: Workers, photo: bytes
) -> None:
    user, pid = 8003, workers.current.process.pid
    core: BotCore = bot.bot_data[CORE]
    keys = UserHasher(await redis.get(SALT_KEY)).keys(User("telegram", user))
    await redis.hset(keys.settings, "strength", 99)  # a damaged setting: the engine refuses it
    await redis.expire(keys.settings, 600)
    core.flow.test_profile = False  # so the engine sees the strength
    try:
        since = send(fake, user, photo)
        await reply(fake, user, since, "Something went wrong while protecting this photo")
    finally:
        core.flow.test_profile = True
    await asyncio.sleep(1.0)
    texts = fake.texts(user, since)
    assert sum("went wrong" in t for t in texts) == 1 and "❌ Failed" in texts
    assert not delivered(fake, user, since)
    assert "ValueError" in workers.current.output()  # logged there, never shown to the user

    await redis.hdel(keys.settings, "strength")
    since = send(fake, user, photo)
    await exactly_one(fake, user, since)
    assert workers.current.process.pid == pid and workers.current.process.poll() is None


# --- /forget while the worker runs the job -------------------------------------------------------


async def test_forget_while_a_worker_runs_the_job_leaves_no_key(
    bot, fake: FakeTelegram, redis: Redis, photo: bytes
) -> None:
    user = 8004
    keys = UserHasher(await redis.get(SALT_KEY)).keys(User("telegram", user))
    since = send(fake, user, photo)
    rid = await running_job(redis)
    fake.send_text(user, "/forget")
    await reply(fake, user, since, "everything I kept about you is deleted")
    deadline = time.monotonic() + 30
    while await redis.exists(in_progress_key_prefix + rid) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # the worker's bookkeeping after the job
    left = [k.decode() async for k in redis.scan_iter()]
    assert not [k for k in left if rid in k or k.startswith(keys.prefix)], left
    assert not delivered(fake, user, since)
    assert not any("went wrong" in t for t in fake.texts(user, since))


# --- workers stopped or killed in the middle of a job --------------------------------------------


async def test_sigterm_during_a_job_requeues_it_and_the_user_gets_one_result(
    bot, fake: FakeTelegram, redis: Redis, workers: Workers, photo: bytes
) -> None:
    user = 8005
    since = send(fake, user, photo)
    rid = await running_job(redis)
    stopping = workers.current
    stopping.process.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(stopping.process.wait, 30) == 0
    # Re-queued at once (not after the in-progress timeout): waiting, not running, not done.
    assert not await redis.exists(in_progress_key_prefix + rid)
    assert await redis.zscore(jobs.FAST_QUEUE, rid) is not None
    assert f"job {rid} try 1 cancelled" in stopping.output()
    await asyncio.to_thread(workers.start)
    await exactly_one(fake, user, since)


async def test_killed_worker_job_is_retried_once_and_delivered_once(
    bot, fake: FakeTelegram, redis: Redis, workers: Workers, photo: bytes
) -> None:
    user = 8006
    since = send(fake, user, photo)
    rid = await running_job(redis)
    workers.current.process.kill()  # SIGKILL: no clean-up at all
    await asyncio.to_thread(workers.current.process.wait, 10)
    started = time.monotonic()
    await asyncio.to_thread(workers.start)  # a supervisor restarts it
    await exactly_one(fake, user, since)
    assert time.monotonic() - started < FAST_TIMEOUT_S + 10 + 30
    assert f"{rid}" not in "".join(fake.texts(user))  # ids never reach the chat


async def test_retries_exhausted_tell_the_user_once(
    bot, fake: FakeTelegram, redis: Redis, workers: Workers, photo: bytes
) -> None:
    user = 8007
    since = send(fake, user, photo)
    rid = await running_job(redis, timeout=FAST_TIMEOUT_S + 40)
    for number in range(1, MAX_TRIES + 1):  # every try dies with its worker
        # Try 1 runs now; each next one once the dead try's in-progress key expired (30 s
        # after that try started), on the worker started after the kill.
        await try_started(redis, rid, number, timeout=FAST_TIMEOUT_S + 40)
        workers.current.process.kill()
        await asyncio.to_thread(workers.current.process.wait, 10)
        await asyncio.to_thread(workers.start)
    await reply(fake, user, since, "Something went wrong while protecting this photo",
                timeout=FAST_TIMEOUT_S + 40)
    await asyncio.sleep(1.0)
    assert sum("went wrong" in t for t in fake.texts(user, since)) == 1
    assert not delivered(fake, user, since)
    assert f"{rid}:{jobs.PROTECT} max retries {MAX_TRIES} exceeded" in workers.current.output()
    assert not await redis.exists(retry_key_prefix + rid, in_progress_key_prefix + rid)
    since = send(fake, user, photo)  # and the service goes on
    await exactly_one(fake, user, since)


# --- the bot stopped (SIGTERM) while a job runs --------------------------------------------------


async def test_bot_stop_waits_for_the_job_in_flight_and_delivers_it(
    redis: Redis, redis_url: str, workers: Workers, photo: bytes
) -> None:
    """SIGTERM to ``python -m bot`` makes PTB's ``run_polling`` stop the updater, then
    ``Application.stop`` (which awaits running handler tasks, the photo handler among them),
    then shut down: the same steps as leaving ``running_bot``. A bot of its own on a fake of its
    own, so the module's bot does not see these updates."""
    own, user = FakeTelegram(), 8010
    await own.start()
    try:
        async with running_bot(own, redis_url, bot_config()):
            since = send(own, user, photo)
            await running_job(redis)
            stopping = time.monotonic()
        # The stop returned only after the result was delivered (no re-queue needed: the bot
        # holds no job, the worker does; nothing is lost or sent twice).
        assert len(delivered(own, user, since)) == 1
        assert delivered(own, user, since)[0].at > stopping
        assert not any("went wrong" in t for t in own.texts(user, since))
    finally:
        await own.stop()

# --- Redis restarted (no persistence: the queue is lost) -----------------------------------------


def answered(fake: FakeTelegram, user: int, since: float) -> tuple[int, int]:
    """(results delivered, clear failure messages) the user got since ``since``."""
    return (len(delivered(fake, user, since)),
            sum("went wrong" in t for t in fake.texts(user, since)))


async def test_redis_restart_reports_the_lost_job_once_and_everyone_reconnects(
    bot, fake: FakeTelegram, redis: Redis, redis_server: LocalRedis, workers: Workers,
    photo: bytes,
) -> None:
    user, pid = 8008, workers.current.process.pid
    since = send(fake, user, photo)
    rid = await running_job(redis)
    # Down for a second, back empty: the job, its progress, the bot's locks and salt are gone.
    await asyncio.to_thread(redis_server.restart, 1.0)
    assert not [k async for k in redis.scan_iter(match="arq:*")]
    # The job in flight: exactly one result or exactly one clear failure, never silence.
    await fake.wait_for(
        lambda c: c.chat_id == user and c.status == 200 and (
            c.method == "sendDocument" or (c.method == "sendMessage" and "went wrong" in c.text)),
        timeout=FAST_TIMEOUT_S + 40, since=since)
    await asyncio.sleep(3.0)  # a late second answer would show up here
    assert sum(answered(fake, user, since)) == 1, fake.texts(user, since)
    assert workers.current.process.poll() is None and workers.current.process.pid == pid
    # Again once the worker is idle (blocked on Redis): it waits for Redis instead of exiting.
    assert await asyncio.to_thread(wait_until, lambda: any(
        f"protect {rid} try" in line or f"{rid}:protect failed" in line
        for line in workers.current.output().splitlines()), FAST_TIMEOUT_S + 10)
    await asyncio.to_thread(redis_server.restart, 1.0)
    await asyncio.sleep(2.0)
    assert workers.current.process.poll() is None, workers.current.output()[-2000:]
    # Worker and bot reconnected: a new photo, from another user and from the one whose job
    # was lost, is delivered exactly once.
    for who in (8009, user):
        since = send(fake, who, photo)
        await exactly_one(fake, who, since)
    assert workers.current.process.pid == pid
    assert "Redis is back" in workers.current.output()
