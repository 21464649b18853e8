"""The service's queue half: a real Redis, a real arq worker subprocess, the bot's JobQueue, the
``python -m bot`` launcher without a token, and the job function's error handling."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
import redis
from arq.constants import in_progress_key_prefix, result_key_prefix
from arq.worker import Retry
from PIL import Image

from bot.queue import JobQueue
from common import jobs
from common.config import load
from common.jobs import Progress, ProtectRequest
from worker.attack.profiles import TEST_PROFILE

ROOT = Path(__file__).resolve().parents[1]


def _png(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def _rid() -> str:
    return f"test-{uuid.uuid4().hex}"


def _keys_without_ttl(url: str) -> dict[str, int]:
    client = redis.Redis.from_url(url)
    try:
        return {k.decode(): client.ttl(k) for k in client.keys("*") if client.ttl(k) == -1}
    finally:
        client.close()


@pytest_asyncio.fixture
async def queue(redis_db: str):
    job_queue = await JobQueue.connect(redis_db)
    yield job_queue
    await job_queue.close()


@pytest.mark.asyncio
async def test_protect_through_queue_and_worker(service_worker, queue, redis_db, astronaut):
    request = ProtectRequest(_rid(), _png(astronaut), test_profile=True)
    updates: list[tuple[int | None, Progress | None]] = []

    async def on_update(position: int | None, progress: Progress | None) -> None:
        updates.append((position, progress))

    assert await queue.submit(request)
    result = await queue.wait(request.request_id, timeout=120, poll=0.2, on_update=on_update)
    assert result.ok, result.error_detail
    protected = np.asarray(Image.open(io.BytesIO(result.png)))
    assert protected.shape == astronaut.shape == (result.height, result.width, 3)
    diff = np.abs(protected.astype(int) - astronaut.astype(int))
    assert 0 < diff.max() <= TEST_PROFILE.eps
    assert {"detectors", "ssim", "psnr", "faces"} <= set(result.report)
    assert Image.open(io.BytesIO(result.preview)).format == "JPEG"
    stages = {p.stage for _, p in updates if p is not None}
    assert "protecting" in stages, updates
    # Progress key: final stage, and it expires.
    client = queue.redis
    assert await queue.progress(request.request_id) == Progress("done", 1.0)
    ttl = await client.ttl(jobs.progress_key(request.request_id))
    assert 0 < ttl <= load().worker.progress_ttl_s
    # The stored result does not keep the user's original image a second time.
    raw = await client.get(result_key_prefix + request.request_id)
    assert jobs.loads(raw)["a"] == ()
    assert 0 < await client.ttl(result_key_prefix + request.request_id) <= 120
    # Delivered once, and every key in the database expires.
    claims = await asyncio.gather(*(queue.claim_delivery(request.request_id) for _ in range(5)))
    assert sorted(claims) == [False] * 4 + [True]
    assert _keys_without_ttl(redis_db) == {}
    await queue.discard(request.request_id)
    assert await queue.result(request.request_id) is None


@pytest.mark.asyncio
async def test_bad_image_is_an_error_result(service_worker, queue):
    request = ProtectRequest(_rid(), b"this is not an image", test_profile=True)
    assert await queue.submit(request)
    result = await queue.wait(request.request_id, timeout=60, poll=0.2)
    assert result.error == "not_an_image" and not result.png
    assert (await queue.progress(request.request_id)).stage == "failed"


@pytest.mark.asyncio
async def test_variants_job_returns_a_contact_sheet(service_worker, queue, astronaut):
    request = jobs.VariantsRequest(_rid(), _png(astronaut[::2, ::2]))
    assert await queue.submit(request)
    result = await queue.wait(request.request_id, timeout=60, poll=0.2, kind=jobs.VARIANTS)
    assert isinstance(result, jobs.VariantsResult) and result.ok, result.error_detail
    assert Image.open(io.BytesIO(result.sheet)).format == "JPEG"
    assert len(result.names) == len(result.labels) > 1
    assert (result.width, result.height) == (256, 256)


@pytest.mark.asyncio
async def test_same_request_id_runs_once(service_worker, queue, redis_db):
    request = ProtectRequest(_rid(), b"x", test_profile=True)
    accepted = await asyncio.gather(*(queue.submit(request) for _ in range(4)))
    assert sorted(accepted) == [False, False, False, True]
    result = await queue.wait(request.request_id, timeout=60, poll=0.2)
    assert result.error == "empty" or result.error == "not_an_image"
    assert not await queue.submit(request)  # its result is still kept: still one job
    assert _keys_without_ttl(redis_db) == {}


@pytest.mark.asyncio
async def test_position_counts_only_waiting_jobs(queue):
    test_queue = "dfb:queue:test-position"
    ids = [_rid() for _ in range(3)]
    for i, rid in enumerate(ids):
        await queue.redis.enqueue_job(
            jobs.PROTECT, {}, _job_id=rid, _queue_name=test_queue, _defer_by=i / 1000 + 0.001
        )
    assert await queue.queue_length(test_queue) == 3
    assert [await queue.position(rid, test_queue) for rid in ids] == [1, 2, 3]
    await queue.redis.set(in_progress_key_prefix + ids[0], b"1", ex=10)  # a worker took it
    assert [await queue.position(rid, test_queue) for rid in ids] == [None, 1, 2]
    assert await queue.position(_rid(), test_queue) is None
    assert not await queue.cancel(ids[0], test_queue)  # running: left alone
    assert await queue.cancel(ids[1], test_queue)
    assert [await queue.position(rid, test_queue) for rid in ids] == [None, None, 1]


@pytest.mark.asyncio
async def test_wait_timeout_and_vanished_jobs(queue):
    rid = _rid()
    await queue.redis.enqueue_job(jobs.PROTECT, {}, _job_id=rid, _queue_name="dfb:queue:nobody")
    started = time.monotonic()
    result = await queue.wait(rid, timeout=0.5, poll=0.1, queue="dfb:queue:nobody")
    assert result.error == "timeout" and time.monotonic() - started < 2
    assert await queue.queue_length("dfb:queue:nobody") == 0  # the timed-out job was removed
    assert not await queue.redis.exists(f"arq:job:{rid}")
    vanished = await queue.wait(_rid(), timeout=5)
    assert vanished.error == "internal"


def test_job_pickles_are_plain_quiet_and_refuse_unknown_classes():
    from worker.service import load_job

    assert jobs.loads(jobs.dumps({"r": TimeoutError("t"), "a": (1,)}))["a"] == ()
    with pytest.raises(Exception, match="refused"):
        jobs.loads(__import__("pickle").dumps({"r": Path("/")}))
    request = ProtectRequest("rid-1", b"\xff" * 100_000).to_dict()
    (arg,) = load_job(jobs.dumps({"f": jobs.PROTECT, "a": (request,), "k": {}}))["a"]
    assert arg == request and repr(arg) == "<protect rid-1>"  # what arq logs: no image bytes


# --- The job function itself (in process, with stand-in engines) --------------------------------


class _Engine:
    """Stands in for ProtectionEngine: raises ``error`` or runs ``steps`` slow steps."""

    def __init__(self, error: BaseException | None = None, steps: int = 0) -> None:
        self.error, self.steps, self.stopped = error, steps, threading.Event()
        self.extra_steps_until: float | None = None

    def protect(self, rgb, strength, *, seed=0, progress=None, extra_steps_until=None):
        self.extra_steps_until = extra_steps_until
        if self.error is not None:
            raise self.error
        try:
            for step in range(self.steps):
                time.sleep(0.05)
                progress(step / self.steps)
        finally:
            self.stopped.set()
        raise AssertionError("not reached in these tests")


@pytest_asyncio.fixture
async def job_ctx(redis_db):
    from arq.connections import RedisSettings, create_pool

    pool = await create_pool(RedisSettings.from_dsn(redis_db))
    with ThreadPoolExecutor(max_workers=1) as executor:
        yield {"redis": pool, "executor": executor, "config": load(), "job_id": "j", "job_try": 1}
    await pool.close(close_connection_pool=True)


@pytest.mark.asyncio
async def test_transient_errors_retry_then_fail_once(job_ctx, astronaut):
    from worker import service

    request = ProtectRequest(_rid(), _png(astronaut[:64, :64]), test_profile=True).to_dict()
    job_ctx["engine"] = _Engine(MemoryError())
    with pytest.raises(Retry) as retry:
        await service.protect(job_ctx, request)
    assert retry.value.defer_score == 2000
    job_ctx["job_try"] = load().worker.max_tries
    result = jobs.ProtectResult.from_dict(await service.protect(job_ctx, request))
    assert result.error == "internal" and "MemoryError" in result.error_detail
    # A non-transient engine error is not retried (the engine is deterministic).
    job_ctx["job_try"], job_ctx["engine"] = 1, _Engine(ValueError("bug"))
    result = jobs.ProtectResult.from_dict(await service.protect(job_ctx, request))
    assert result.error == "internal"
    raw = await job_ctx["redis"].get(jobs.progress_key(result.request_id))
    assert Progress.from_json(raw).stage == "failed"


@pytest.mark.asyncio
async def test_cancelled_job_stops_the_engine_thread(job_ctx, astronaut):
    from worker import service

    engine = job_ctx["engine"] = _Engine(steps=400)  # 20 s if never stopped
    request = ProtectRequest(_rid(), _png(astronaut[:64, :64]), test_profile=True).to_dict()
    started = time.monotonic()
    with pytest.raises(TimeoutError):  # what arq's job timeout does
        await asyncio.wait_for(service.protect(job_ctx, request), 1.0)
    assert await asyncio.to_thread(engine.stopped.wait, 2.0)
    # the job told the engine when to stop taking extra steps ([worker] extra_steps_share)
    expected = started + load().worker.extra_steps_share * load().worker.fast_timeout_s
    assert engine.extra_steps_until is not None
    assert expected - 0.1 <= engine.extra_steps_until <= expected + 1.0


# --- Processes: the launcher, the CLI, Redis discovery -------------------------------------------


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("TELEGRAM_BOT_TOKEN", "DISCORD_BOT_TOKEN")}
    return {**env, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


def test_launcher_without_token_protects_sample_through_worker(redis_db, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "bot", "--test-profile", "--out", str(tmp_path / "out")],
        env=_env(REDIS_URL=redis_db, DFB_ENGINE="test"), cwd=ROOT, capture_output=True,
        text=True, timeout=240,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["input"].startswith("astronaut") and "detectors" in report
    assert Image.open(tmp_path / "out" / "protected.png").size == (512, 512)
    assert "TELEGRAM_BOT_TOKEN" in done.stdout
    assert "stopped 1 worker(s), exit codes [0]" in done.stderr
    assert _keys_without_ttl(redis_db) == {}


def test_bot_side_imports_no_tensorflow():
    code = ("import sys, bot.queue, bot.launcher, common.redis_server, worker.cli; "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    done = subprocess.run([sys.executable, "-c", code], env=_env(), cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_worker_without_jobs_for_its_queue_says_so(monkeypatch, capsys):
    from worker import service

    monkeypatch.setattr(service, "SLOW_FUNCTIONS", [])
    assert service.run("slow") == 2
    assert "no jobs run on the slow queue" in capsys.readouterr().err


def test_private_redis_server_and_install_hint(monkeypatch):
    from common import redis_server

    server = redis_server.start_local()
    try:
        assert redis_server.ping(server.url)
    finally:
        server.stop()
    assert not redis_server.ping(server.url)
    monkeypatch.setattr(redis_server.shutil, "which", lambda name: None)
    with pytest.raises(redis_server.RedisUnavailable, match="apt-get install redis-server"):
        redis_server.start_local()
    monkeypatch.setenv("REDIS_URL", "redis://elsewhere:6380/2")
    assert redis_server.resolve_url() == "redis://elsewhere:6380/2"
