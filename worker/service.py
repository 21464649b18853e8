"""The arq worker service: ``settings_for("fast")`` (``protect``, ``variants``) and
``settings_for("slow")`` (``clip``, issue 5), run by ``ServiceWorker``
(``python -m worker run [--queue slow]``).

Models load once per process and their graphs are traced (``on_startup``); each job's
TensorFlow work runs in a one-thread executor, so arq's heartbeats, progress writes and other
jobs' bookkeeping never wait for it.
Progress goes to ``common.jobs.progress_key`` (JSON, short TTL). Every key arq writes expires:
queued jobs after ``[worker] queue_expiry_s``, results after ``keep_result_s``.

Errors: bad input is a normal result with an error code (``worker.jobs``). Transient failures
(memory, OS, Redis) are retried with backoff up to ``max_tries``; after that, and for any other
exception (the engine is deterministic for a request's seed, so a retry would fail the same
way), the job returns ``ProtectResult(error="internal")`` so the user is told once.
``DFB_ENGINE=test`` loads the small test engine (two surrogates, one evaluator).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from arq.connections import RedisSettings
from arq.constants import result_key_prefix, retry_key_prefix
from arq.worker import Retry, Worker, func, get_kwargs
from redis.exceptions import RedisError

from common import jobs
from common.config import Config, load
from common.redis_server import resolve_url

log = logging.getLogger(__name__)

#: Exceptions worth another try on a later attempt (possibly another worker / machine).
TRANSIENT: tuple[type[BaseException], ...] = (MemoryError, OSError, RedisError, ConnectionError)
#: TensorFlow errors that mean "out of resources now", matched by name to keep this module light.
TRANSIENT_TF = {"ResourceExhaustedError", "UnavailableError"}
#: Seconds between health-check writes (``<queue>:health-check``, TTL one interval more).
HEALTH_CHECK_S = 10
#: How often the latest progress is written to Redis while a job runs (seconds).
PROGRESS_EVERY_S = 0.25


class JobCancelled(Exception):
    """Raised inside the engine thread (from its progress callback) once the job was cancelled
    (arq timeout or worker shutdown), so the thread stops within one optimisation step."""


def build_engine() -> Any:
    """The protection engine, models loaded and graphs traced (``warm_up``) before the first
    job; ``DFB_ENGINE=test`` gives the fast one, warmed up for the test profile."""
    from worker.attack.engine import ProtectionEngine
    from worker.attack.profiles import TEST_PROFILE

    if os.environ.get("DFB_ENGINE", "").lower() == "test":
        engine = ProtectionEngine(surrogates=("blazeface_full", "res10_ssd"), evaluators=("haar",))
        seconds = engine.warm_up(TEST_PROFILE)
    else:
        engine = ProtectionEngine()
        seconds = engine.warm_up()
    log.warning("engine warmed up in %.1f s", seconds)
    return engine


def preload_faceswap() -> None:
    """Validate ``[faceswap]`` and load the clip's networks (a slow worker's start-up)."""
    from worker.faceswap import models, target
    from worker.faceswap.settings import faceswap_config

    faceswap_config()
    models.preload()
    target.still_face()


def backoff_s(job_try: int) -> float:
    """Seconds before attempt ``job_try + 1``: 2, 4, 8 … capped at 60."""
    return float(min(60, 2**job_try))


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT) or type(exc).__name__ in TRANSIENT_TF


async def startup(ctx: dict[str, Any]) -> None:
    """Load the models once, in the executor thread that will run every job of this process."""
    ctx["executor"] = executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine")
    ctx["engine"] = await asyncio.get_running_loop().run_in_executor(executor, build_engine)
    log.warning("worker ready (engine %s)", os.environ.get("DFB_ENGINE") or "full")


async def shutdown(ctx: dict[str, Any]) -> None:
    executor = ctx.get("executor")
    if executor is not None:
        executor.shutdown(wait=True, cancel_futures=True)
    engine = ctx.get("engine")
    if engine is not None:
        engine.close()


async def notify_done(ctx: dict[str, Any]) -> None:
    """arq ``after_job_end``: the result is stored now; wake the bot waiting for it, or, when
    the user said ``/forget`` meanwhile (``cancel_key``), delete every key of the job."""
    key = jobs.done_key(ctx["job_id"])
    try:
        if await ctx["redis"].exists(jobs.cancel_key(ctx["job_id"])):
            await forget_job(ctx["redis"], ctx["job_id"])
            return
        async with ctx["redis"].pipeline(transaction=True) as pipe:
            pipe.rpush(key, b"1").expire(key, 60)
            await pipe.execute()
    except RedisError:  # the waiter falls back to polling
        log.warning("could not notify job %s done", ctx["job_id"])


async def forget_job(redis: Any, job_id: str) -> None:
    """Delete what this job left in Redis: its result, progress, wake-up and cancel mark."""
    await redis.delete(
        result_key_prefix + job_id, retry_key_prefix + job_id, jobs.progress_key(job_id),
        jobs.done_key(job_id), jobs.cancel_key(job_id),
    )
    log.info("job %s cancelled by its user: its keys are deleted", job_id)


class _ProgressRelay:
    """Progress from the engine thread, written to Redis by the event loop at most every
    ``PROGRESS_EVERY_S`` (only when it changed), each write with a fresh TTL."""

    def __init__(self, redis: Any, request_id: str, ttl_s: int) -> None:
        self.redis, self.key, self.ttl_s = redis, jobs.progress_key(request_id), ttl_s
        self.cancel = jobs.cancel_key(request_id)
        self.latest = jobs.Progress("decoding", 0.0)
        self.written: jobs.Progress | None = None
        self.cancelled = threading.Event()

    def update(self, stage: str, fraction: float) -> None:
        """Called in the engine thread."""
        if self.cancelled.is_set():
            raise JobCancelled
        self.latest = jobs.Progress(stage, max(0.0, min(1.0, fraction)))

    async def write(self, progress: jobs.Progress | None = None) -> None:
        progress = progress or self.latest
        if progress == self.written:
            return
        try:
            await self.redis.set(self.key, progress.to_json(), ex=self.ttl_s)
            self.written = progress
        except RedisError:  # progress is cosmetic: never fail a job for it
            log.warning("progress write failed for %s", self.key)

    async def pump(self) -> None:
        """Write progress until cancelled; stop the engine once the user said ``/forget``."""
        while True:
            try:
                if await self.redis.exists(self.cancel):
                    self.cancelled.set()
                    return
            except RedisError:
                log.warning("cancel check failed for %s", self.key)
            await self.write()
            await asyncio.sleep(PROGRESS_EVERY_S)


async def protect(ctx: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """arq job: one ``ProtectRequest`` dict in, one ``ProtectResult`` dict out."""
    return await _serve(ctx, request, jobs.ProtectRequest, jobs.ProtectResult)


async def variants(ctx: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """arq job: one ``VariantsRequest`` dict in, one ``VariantsResult`` (contact sheet) out."""
    return await _serve(ctx, request, jobs.VariantsRequest, jobs.VariantsResult)


async def clip(ctx: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """arq job (slow queue): one ``ClipRequest`` dict in, one ``ClipResult`` (MP4) out."""
    return await _serve(ctx, request, jobs.ClipRequest, jobs.ClipResult)


async def _serve(
    ctx: dict[str, Any], request: dict[str, Any], request_cls: type, result_cls: type
) -> dict[str, Any]:
    """Run one job off the event loop, relaying its progress; errors become results."""
    from worker import jobs as work

    config: Config = ctx["config"]
    request_id = str(request.get("request_id", "")) if isinstance(request, dict) else ""
    try:
        req = request_cls.from_dict(request)
    except (jobs.ContractError, TypeError) as exc:
        log.error("job %s: bad request: %s", ctx["job_id"], exc)
        return result_cls(request_id or ctx["job_id"], error="internal",
                          error_detail=f"contract: {exc}").to_dict()
    relay = _ProgressRelay(ctx["redis"], req.request_id, config.worker.progress_ttl_s)
    if request_cls is jobs.ProtectRequest:  # TensorFlow: the engine's own thread
        executor, call = ctx["executor"], partial(work.run_protect, ctx["engine"], req)
    elif request_cls is jobs.ClipRequest:  # protects first: the engine's thread too
        executor, call = ctx["executor"], partial(work.run_clip, ctx["engine"], req)
    else:  # no TensorFlow: never waits behind an engine job
        executor, call = None, partial(work.run_variants, req)
    pump = asyncio.create_task(relay.pump())
    started = time.perf_counter()
    try:
        result = await asyncio.get_running_loop().run_in_executor(executor, call, relay.update)
    except asyncio.CancelledError:  # arq timeout or shutdown: arq records/requeues it
        relay.cancelled.set()
        log.warning("job %s try %d cancelled", req.request_id, ctx.get("job_try", 1))
        raise
    except JobCancelled:  # the user said /forget: nobody gets this; after_job_end cleans up
        result = result_cls(req.request_id, error="cancelled", error_detail="forgotten")
    except Exception as exc:
        detail = _retry_or_detail(ctx, req.request_id, exc, config.worker.max_tries)
        result = result_cls(req.request_id, error="internal", error_detail=detail)
    finally:
        pump.cancel()
    if not relay.cancelled.is_set():
        await relay.write(jobs.Progress("done" if result.ok else "failed", 1.0))
    log.info("job %s %s try %d: %s in %.2f s", req.kind, req.request_id, ctx.get("job_try", 1),
             result.error or "ok", time.perf_counter() - started)
    return result.to_dict()


def _retry_or_detail(ctx: dict[str, Any], request_id: str, exc: Exception, max_tries: int) -> str:
    """Raise arq's ``Retry`` (with backoff) for a transient error with tries left; otherwise
    log the failure and return its detail for the ``internal`` result."""
    job_try = int(ctx.get("job_try", 1))
    if is_transient(exc) and job_try < max_tries:
        log.warning("job %s try %d: %s, retrying", request_id, job_try, type(exc).__name__)
        raise Retry(defer=backoff_s(job_try)) from exc
    log.exception("job %s failed on try %d", request_id, job_try)
    return f"{type(exc).__name__}: {exc}"[:300]


class _QuietRequest(dict):
    """A job's argument dict whose repr is short: arq formats every job's arguments for its log
    line, which for a 10 MB photo would be a 40 MB string (and image bytes in a log)."""

    def __repr__(self) -> str:
        return f"<{self.get('kind')} {self.get('request_id')}>"


def load_job(raw: bytes) -> dict[str, Any]:
    """The worker's arq ``job_deserializer``: ``common.jobs.loads``, quiet argument dicts."""
    envelope = jobs.loads(raw)
    if "r" not in envelope:
        envelope["a"] = tuple(_QuietRequest(a) if isinstance(a, dict) else a for a in envelope["a"])
    return envelope


def redis_settings(url: str | None = None) -> RedisSettings:
    """arq connection settings for ``url`` (default: ``REDIS_URL``, config, 127.0.0.1:6379)."""
    settings = RedisSettings.from_dsn(url or resolve_url(start=False))
    settings.conn_retries = 30  # a worker may start before Redis (compose): wait up to ~30 s
    return settings


#: Jobs of the slow queue: deepfake comparison clips (issue 5). A queue with no jobs refuses
#: to start with a clear message.
SLOW_FUNCTIONS: list[Callable[..., Any]] = [func(clip, name=jobs.CLIP)]


def settings_for(queue: str, config: Config | None = None) -> type:
    """arq ``WorkerSettings`` of the ``"fast"`` or ``"slow"`` queue, from config.toml."""
    config = config or load()
    worker = config.worker
    functions, queue_name, timeout_s = {
        "fast": ([func(protect, name=jobs.PROTECT), func(variants, name=jobs.VARIANTS)],
                 jobs.FAST_QUEUE, worker.fast_timeout_s),
        "slow": (list(SLOW_FUNCTIONS), jobs.SLOW_QUEUE, worker.slow_timeout_s),
    }[queue]

    async def on_startup(ctx: dict[str, Any]) -> None:
        ctx["config"] = config
        await startup(ctx)
        if queue == "slow":  # the clip's dlib networks, and its config checked at start-up
            await asyncio.get_running_loop().run_in_executor(ctx["executor"], preload_faceswap)

    return type(f"{queue.title()}WorkerSettings", (), {
        "__doc__": f"arq WorkerSettings of the {queue} queue.",
        "functions": functions,
        "queue_name": queue_name,
        "max_jobs": worker.max_jobs,
        "job_timeout": timeout_s,
        "max_tries": worker.max_tries,
        "keep_result": worker.keep_result_s,
        "expires_extra_ms": worker.queue_expiry_s * 1000,
        "poll_delay": worker.poll_delay_s,
        "health_check_interval": HEALTH_CHECK_S,
        "job_serializer": staticmethod(jobs.dumps),
        "job_deserializer": staticmethod(load_job),
        "on_startup": staticmethod(on_startup),
        "on_shutdown": staticmethod(shutdown),
        "after_job_end": staticmethod(notify_done),
        "log_results": False,  # results hold image bytes; ``protect`` logs what matters
    })


class ServiceWorker(Worker):
    """arq's worker, but an idle one blocks on the queue's wake list (``common.jobs.wake_key``)
    instead of sleeping ``poll_delay``: a job starts as soon as it is enqueued, and an idle
    worker costs one blocking Redis call per ``poll_delay`` (the fallback for deferred retries)."""

    def __init__(self, *args: Any, poll_delay: float = 0.5, **kwargs: Any) -> None:
        super().__init__(*args, poll_delay=0, **kwargs)
        self.idle_wait_s = max(0.01, float(poll_delay))
        self.slot_freed = asyncio.Event()
        self.outage_s = 0.0  # the current wait between looks while Redis is unreachable

    def _release_sem_dec_counter_on_complete(self) -> None:
        super()._release_sem_dec_counter_on_complete()
        self.slot_freed.set()

    async def _poll_iteration(self) -> None:
        try:
            await self._poll_once()
        except (RedisError, OSError) as exc:  # Redis restarted or unreachable: wait for it
            await self._redis_down(exc)
            return
        if self.outage_s:
            log.warning("Redis is back: serving again")
            self.outage_s = 0.0

    async def _redis_down(self, exc: BaseException) -> None:
        """Keep the process (its models and running jobs) through a Redis outage: the next
        iteration reconnects; look again after 0.5, 1, 2 … 5 s."""
        if not self.outage_s:
            log.warning("Redis unreachable (%s: %s): retrying until it is back",
                        type(exc).__name__, exc)
        self.outage_s = min(5.0, max(0.5, 2 * self.outage_s))
        await asyncio.sleep(self.outage_s)

    async def _poll_once(self) -> None:
        await super()._poll_iteration()
        if self.job_counter < self.max_jobs and self.allow_pick_jobs:
            await self.pool.blpop([jobs.wake_key(self.queue_name)], timeout=self.idle_wait_s)
        else:  # busy: look again as soon as a job ends
            self.slot_freed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.slot_freed.wait(), self.idle_wait_s)


def run(queue: str = "fast", *, burst: bool = False, redis_url: str | None = None) -> int:
    """Run a worker for ``queue`` until stopped (or, with ``burst``, until the queue is empty)."""
    settings = settings_for(queue)
    if not settings.functions:
        print(f"error: no jobs run on the {queue} queue yet; nothing to serve", file=sys.stderr)
        return 2
    worker = ServiceWorker(
        **get_kwargs(settings), redis_settings=redis_settings(redis_url), burst=burst
    )
    worker.run()
    return 0


FastWorkerSettings = settings_for("fast")  # `arq worker.service.FastWorkerSettings` works too
