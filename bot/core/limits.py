"""Admission: one job in flight per user, an hourly quota per user, and a global queue cap.

The in-flight lock is taken first (``SET NX`` with the job's id and a TTL, so a crashed bot
cannot lock a user out for longer than one result timeout); every later check runs while the
user holds it, so the quota needs no transaction of its own.

The queue cap counts jobs as they are admitted, not only once enqueued: a burst of photos all
pass a length check before the first download ends and its job is enqueued. Each admitted job
holds a place in ``ADMITTED_KEY`` (a sorted set of request ids scored by when the place lapses,
taken atomically under the cap by a script) until its slot is released.
"""

from __future__ import annotations

import time
from typing import Protocol

from redis.asyncio import Redis

from bot.core.users import User, UserHasher
from common.config import Config

#: Deletes the lock only if it still names this job (a newer job's lock is left alone).
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
#: Places in the global cap: a sorted set of admitted request ids, scored by expiry time.
ADMITTED_KEY = "dfb:admitted"
#: Drops lapsed places, then takes one for ARGV[4] if fewer than ARGV[3] are taken.
_ADMIT = """
redis.call('zremrangebyscore', KEYS[1], '-inf', ARGV[1])
if redis.call('zcard', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('zadd', KEYS[1], ARGV[2], ARGV[4])
redis.call('expire', KEYS[1], ARGV[5])
return 1
"""
QUOTA_WINDOW_S = 3600


class QueueLength(Protocol):
    async def queue_length(self) -> int: ...


class Refused(Exception):
    """The user may not start a job now: ``reason`` is an i18n key, ``values`` its fields."""

    def __init__(self, reason: str, values: dict[str, int] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.values = values or {}


class Limits:
    """Checks and records the limits in Redis (shared by every bot process)."""

    def __init__(
        self, redis: Redis, hasher: UserHasher, queue: QueueLength, config: Config
    ) -> None:
        self.redis, self.hasher, self.queue = redis, hasher, queue
        self.per_hour = config.limits.jobs_per_hour
        self.max_queue = config.limits.max_queue
        self.lock_ttl_s = config.bot.result_timeout_s + 60

    async def acquire(self, user: User, request_id: str, *, count: bool = True) -> None:
        """Take the user's in-flight slot for ``request_id`` and count it (unless ``count`` is
        False: cheap jobs such as the filter contact sheet), or raise ``Refused``
        (``one_at_a_time``, ``busy`` or ``quota``) holding nothing."""
        keys = self.hasher.keys(user)
        if not await self.redis.set(keys.inflight, request_id, nx=True, ex=self.lock_ttl_s):
            raise Refused("one_at_a_time")
        try:
            if await self.queue.queue_length() >= self.max_queue or not await self._place(
                request_id
            ):
                raise Refused("busy")
            if not count:
                return
            used = int(await self.redis.get(keys.quota) or 0)
            if used >= self.per_hour:
                ttl = await self.redis.ttl(keys.quota)
                minutes = max(1, -(-max(ttl, 0) // 60))
                raise Refused("quota", {"limit": self.per_hour, "minutes": minutes})
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.set(keys.quota, 0, ex=QUOTA_WINDOW_S, nx=True).incr(keys.quota)
                await pipe.execute()
        except BaseException:
            await self.release(user, request_id)
            raise

    async def release(self, user: User, request_id: str) -> None:
        """Free the user's slot if ``request_id`` still holds it, and its place in the cap."""
        await self.redis.eval(_RELEASE, 1, self.hasher.keys(user).inflight, request_id)
        await self.redis.zrem(ADMITTED_KEY, request_id)

    async def _place(self, request_id: str) -> bool:
        """Take a place under the global cap for ``request_id`` (False: all taken). A place
        lapses with the user's lock, should its bot crash before releasing it."""
        now = time.time()
        return bool(await self.redis.eval(
            _ADMIT, 1, ADMITTED_KEY, now, now + self.lock_ttl_s, self.max_queue, request_id,
            self.lock_ttl_s,
        ))

    async def holds(self, user: User, request_id: str) -> bool:
        """Whether ``request_id`` still holds the user's slot (False after ``/forget``)."""
        value = await self.redis.get(self.hasher.keys(user).inflight)
        return value is not None and value.decode() == request_id
