"""Admission: one job in flight per user, an hourly quota per user, and a global queue cap.

The in-flight lock is taken first (``SET NX`` with the job's id and a TTL, so a crashed bot
cannot lock a user out for longer than one result timeout); every later check runs while the
user holds it, so the quota needs no transaction of its own.
"""

from __future__ import annotations

from typing import Protocol

from redis.asyncio import Redis

from bot.core.users import User, UserHasher
from common.config import Config

#: Deletes the lock only if it still names this job (a newer job's lock is left alone).
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
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
            if await self.queue.queue_length() >= self.max_queue:
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
        """Free the user's slot if ``request_id`` still holds it."""
        await self.redis.eval(_RELEASE, 1, self.hasher.keys(user).inflight, request_id)

    async def holds(self, user: User, request_id: str) -> bool:
        """Whether ``request_id`` still holds the user's slot (False after ``/forget``)."""
        value = await self.redis.get(self.hasher.keys(user).inflight)
        return value is not None and value.decode() == request_id
