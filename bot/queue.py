"""The bot's side of the job queue: submit requests, follow them, collect results once.

No TensorFlow and no chat library here: results are read with ``common.jobs.loads`` (plain data
and known exceptions only). Every key written here expires.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix
from arq.jobs import JobResult, deserialize_result
from redis.exceptions import WatchError

from common import jobs
from common.config import load
from common.jobs import (
    CLIP,
    FAST_QUEUE,
    PROTECT,
    VARIANTS,
    ClipRequest,
    ClipResult,
    Progress,
    ProtectRequest,
    ProtectResult,
    VariantsRequest,
    VariantsResult,
)

OnUpdate = Callable[[int | None, Progress | None], Awaitable[None]]
Request = ProtectRequest | VariantsRequest | ClipRequest
Result = ProtectResult | VariantsResult | ClipResult
#: The result message of each job kind.
RESULT_OF: dict[str, type[Result]] = {
    PROTECT: ProtectResult, VARIANTS: VariantsResult, CLIP: ClipResult,
}

#: Seconds a wake-up token for idle workers lives (any idle worker takes it at once).
WAKE_TTL_S = 60
#: KEYS[1] queue, ARGV[1] job id, ARGV[2] in-progress key prefix -> 1-based place among the
#: waiting jobs, or 0 when the job is running or not queued.
_POSITION = """
local rank = redis.call('ZRANK', KEYS[1], ARGV[1])
if not rank or redis.call('EXISTS', ARGV[2] .. ARGV[1]) == 1 then return 0 end
local waiting = 1
if rank > 0 then
  for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, rank - 1)) do
    if redis.call('EXISTS', ARGV[2] .. id) == 0 then waiting = waiting + 1 end
  end
end
return waiting
"""


class JobQueue:
    """Producer-side client of the arq queues (one per bot process; safe to share)."""

    def __init__(
        self, redis: ArqRedis, *, expires_s: int, progress_ttl_s: int, queue_ttl_s: int
    ) -> None:
        self.redis = redis
        self.expires_s = expires_s
        self.progress_ttl_s = progress_ttl_s
        self.queue_ttl_s = queue_ttl_s
        self._position = redis.register_script(_POSITION)  # sent once, then run by its SHA

    @classmethod
    async def connect(cls, redis_url: str) -> JobQueue:
        """Connect to ``redis_url`` (retrying a few times, like the workers)."""
        worker = load().worker
        settings = RedisSettings.from_dsn(redis_url)
        redis = await create_pool(
            settings, job_serializer=jobs.dumps, job_deserializer=jobs.loads,
            default_queue_name=FAST_QUEUE, expires_extra_ms=worker.queue_expiry_s * 1000,
        )
        # A queue's sorted set outlives its newest job by as long as that job may wait and run:
        # it then holds only expired jobs, so it may expire too (every key has a TTL).
        queue_ttl_s = worker.queue_expiry_s + max(worker.fast_timeout_s, worker.slow_timeout_s) + 60
        return cls(redis, expires_s=worker.queue_expiry_s, progress_ttl_s=worker.progress_ttl_s,
                   queue_ttl_s=queue_ttl_s)

    async def submit(self, request: Request) -> bool:
        """Enqueue ``request`` under its ``request_id``; False when that job is already known
        (queued, running, or its result still kept), so a request runs once."""
        queue = jobs.QUEUE_OF[request.kind]
        job = await self.redis.enqueue_job(
            request.kind, request.to_dict(), _job_id=request.request_id, _queue_name=queue,
            _expires=self.expires_s,
        )
        if job is None:
            return False
        wake = jobs.wake_key(queue)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(jobs.progress_key(request.request_id), Progress("queued").to_json(),
                     ex=self.progress_ttl_s)
            pipe.expire(queue, self.queue_ttl_s)
            pipe.lpush(wake, b"1").ltrim(wake, 0, 63).expire(wake, WAKE_TTL_S)
            await pipe.execute()
        return True

    async def queue_length(self, queue: str = FAST_QUEUE) -> int:
        """Jobs on ``queue`` not finished yet (waiting or running): for the global cap."""
        return int(await self.redis.zcard(queue))

    async def position(self, request_id: str, queue: str = FAST_QUEUE) -> int | None:
        """1-based place among the jobs still waiting on ``queue``; None once it started (or
        finished, or is unknown). One atomic script: a job ahead finishing meanwhile must not
        make the place jump back (it did as separate reads: "place 1" then "place 2")."""
        place = await self._position(keys=[queue], args=[request_id, in_progress_key_prefix])
        return int(place) if place and int(place) > 0 else None

    async def progress(self, request_id: str) -> Progress | None:
        """The worker's latest ``Progress`` for the job (None when unknown or expired)."""
        return Progress.from_json(await self.redis.get(jobs.progress_key(request_id)))

    async def result(self, request_id: str, kind: str = PROTECT) -> Result | None:
        """The job's result if it is stored, as the ``kind``'s result message (a failed job
        becomes one with ``error`` set)."""
        raw = await self.redis.get(result_key_prefix + request_id)
        if raw is None:
            return None
        cls = RESULT_OF[kind]
        try:
            info = deserialize_result(raw, deserializer=jobs.loads)
        except Exception as exc:  # refused or damaged pickle: never crash the bot over it
            return cls(request_id, error="internal", error_detail=f"unreadable result: {exc}")
        return _from_job_result(cls, request_id, info)

    async def wait(
        self,
        request_id: str,
        *,
        timeout: float,
        poll: float = 0.5,
        on_update: OnUpdate | None = None,
        kind: str = PROTECT,
        queue: str | None = None,
    ) -> Result:
        """Follow a submitted job of ``kind`` until its result: ``on_update(position,
        progress)`` is called whenever either changes; returns the result, or one with
        ``error="timeout"`` after ``timeout`` seconds, or ``error="internal"`` when the job
        vanished without a result."""
        cls, queue = RESULT_OF[kind], queue or jobs.QUEUE_OF[kind]
        deadline = time.monotonic() + timeout
        last: tuple[int | None, Progress | None] | None = None
        done = jobs.done_key(request_id)
        while True:
            result = await self.result(request_id, kind)
            if result is not None:
                return result
            if not await self._known(request_id, queue):
                result = await self.result(request_id, kind)  # it may have finished just now
                return result or cls(request_id, error="internal",
                                     error_detail="job vanished (expired?)")
            state = (await self.position(request_id, queue), await self.progress(request_id))
            if state != last and on_update is not None:
                await on_update(*state)
            last = state
            left = deadline - time.monotonic()
            if left <= 0:
                await self.cancel(request_id, queue)  # nobody waits for it any more
                return cls(request_id, error="timeout", error_detail=f"no result after {timeout} s")
            # Wakes as soon as the worker stores the result; else re-checks every ``poll``.
            await self.redis.blpop([done], timeout=max(0.01, min(poll, left)))

    async def cancel(self, request_id: str, queue: str = FAST_QUEUE) -> bool:
        """Remove a job that no worker has started yet (with its progress); False when it
        already runs, finished or is unknown."""
        running = in_progress_key_prefix + request_id
        async with self.redis.pipeline(transaction=True) as pipe:
            await pipe.watch(running)
            if await pipe.exists(running):
                return False
            pipe.multi()
            pipe.zrem(queue, request_id)
            pipe.delete(job_key_prefix + request_id, jobs.progress_key(request_id))
            try:
                removed, _ = await pipe.execute()
            except WatchError:  # a worker took it just now
                return False
        return bool(removed)

    async def _known(self, request_id: str, queue: str) -> bool:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.exists(job_key_prefix + request_id, in_progress_key_prefix + request_id)
            pipe.zscore(queue, request_id)
            count, score = await pipe.execute()
        return bool(count) or score is not None

    async def claim_delivery(self, request_id: str, ttl: int = 3600) -> bool:
        """True for the first caller only (SET NX with a TTL): deliver the result then."""
        return bool(await self.redis.set(jobs.delivered_key(request_id), b"1", nx=True, ex=ttl))

    async def discard(self, request_id: str) -> None:
        """Delete a delivered job's result and progress now rather than at their TTL."""
        await self.redis.delete(
            result_key_prefix + request_id, jobs.progress_key(request_id), jobs.done_key(request_id)
        )

    async def close(self) -> None:
        await self.redis.close(close_connection_pool=True)


def _from_job_result(cls: type[Result], request_id: str, info: JobResult) -> Result:
    if info.success and isinstance(info.result, dict):
        try:
            return cls.from_dict(info.result)
        except (jobs.ContractError, TypeError) as exc:
            return cls(request_id, error="internal", error_detail=f"bad result: {exc}")
    if isinstance(info.result, TimeoutError):  # arq's job timeout
        return cls(request_id, error="timeout", error_detail="the job ran past its time limit")
    return cls(request_id, error="internal", error_detail=f"job failed: {info.result!r}"[:300])
