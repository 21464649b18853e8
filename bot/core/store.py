"""What the bot keeps about a user in Redis, each key with a TTL: settings (strength, filter),
the last photo (for the weaker/stronger and filter buttons; bytes in Redis only, never on
disk) and the ids of their recent jobs (so ``forget`` can also delete the queue's copies of
their photos and results).
"""

from __future__ import annotations

import secrets

from arq.constants import (
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
    retry_key_prefix,
)
from redis.asyncio import Redis
from redis.exceptions import WatchError

from bot.core.users import SALT_KEY, User, UserHasher, UserKeys
from common.config import Config
from common.filters import FILTERS, NATURAL
from common.jobs import (
    FAST_QUEUE,
    SLOW_QUEUE,
    cancel_key,
    delivered_key,
    done_key,
    progress_key,
)

STRENGTHS = range(1, 6)


def new_token() -> str:
    """A short random name for a remembered photo, carried by the result's buttons instead of
    anything personal."""
    return secrets.token_urlsafe(6)


class UserStore:
    """Per-user state under ``dfb:u:<hash>:`` (see ``bot.core.users``)."""

    def __init__(self, redis: Redis, hasher: UserHasher, config: Config) -> None:
        self.redis = redis
        self.hasher = hasher
        self.default_strength = config.engine.default_strength
        self.photo_ttl_s = config.privacy.photo_ttl_s
        self.settings_ttl_s = config.privacy.settings_ttl_s
        # A job's keys outlive the bot's wait for it by the result's keep time at most.
        self.requests_ttl_s = config.bot.result_timeout_s + config.worker.keep_result_s + 60
        # A cancelled job's worker deletes the mark once the job ends; else it outlives the job.
        self.cancel_ttl_s = (
            max(config.worker.fast_timeout_s, config.worker.slow_timeout_s)
            * config.worker.max_tries + 60
        )

    def keys(self, user: User) -> UserKeys:
        return self.hasher.keys(user)

    async def strength(self, user: User) -> int:
        """The user's default strength (the configured default when unset)."""
        raw = await self.redis.hget(self.keys(user).settings, "strength")
        return int(raw) if raw is not None else self.default_strength

    async def set_strength(self, user: User, level: int) -> None:
        if level not in STRENGTHS:
            raise ValueError(f"strength must be 1..5, got {level!r}")
        key = self.keys(user).settings
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, "strength", level).expire(key, self.settings_ttl_s)
            pipe.expire(SALT_KEY, self.settings_ttl_s)  # keep the salt as long as any setting
            await pipe.execute()

    async def filter(self, user: User) -> str | None:
        """The user's default filter id (issue 4), None for natural."""
        return (await self.defaults(user))[1]

    async def set_filter(self, user: User, name: str | None) -> None:
        """Make ``name`` (a ``common.filters`` id) the user's default filter; None or
        ``natural`` turns it off. Kept like the strength, with the same TTL."""
        if name is not None and name not in FILTERS:
            raise ValueError(f"unknown filter {name!r}")
        key = self.keys(user).settings
        async with self.redis.pipeline(transaction=True) as pipe:
            if name is None or name == NATURAL:
                pipe.hdel(key, "filter")
            else:
                pipe.hset(key, "filter", name)
            pipe.expire(key, self.settings_ttl_s).expire(SALT_KEY, self.settings_ttl_s)
            await pipe.execute()

    async def defaults(self, user: User) -> tuple[int, str | None]:
        """The user's (strength, filter) for a new photo, in one read; a filter no longer
        known (renamed since it was saved) counts as natural."""
        level, name = await self.redis.hmget(self.keys(user).settings, ["strength", "filter"])
        look = name.decode() if name is not None else None
        return (
            int(level) if level is not None else self.default_strength,
            look if look in FILTERS and look != NATURAL else None,
        )

    async def start_job(
        self, user: User, request_id: str, photo: tuple[str, bytes] | None = None
    ) -> bool:
        """While ``request_id`` holds the user's slot (``Limits``), atomically track the job (so
        ``forget`` finds the queue's keys of it) and keep ``photo`` = (token, bytes) as the
        user's last photo, replacing the previous one. False when the slot is gone: the user
        said ``/forget`` meanwhile, and nothing was written."""
        keys = self.keys(user)
        async with self.redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(keys.inflight)
                held = await pipe.get(keys.inflight)
                if held is None or held.decode() != request_id:
                    return False
                pipe.multi()
                if photo is not None:
                    pipe.delete(keys.photo)
                    pipe.hset(keys.photo, mapping={"token": photo[0], "image": photo[1]})
                    pipe.expire(keys.photo, self.photo_ttl_s)
                pipe.sadd(keys.requests, request_id).expire(keys.requests, self.requests_ttl_s)
                await pipe.execute()
            except WatchError:
                return False
        return True

    async def photo(self, user: User, token: str) -> bytes | None:
        """The last photo if it is still the one ``token`` names (else None: expired/replaced)."""
        stored, image = await self.redis.hmget(self.keys(user).photo, ["token", "image"])
        if stored is None or image is None or stored.decode() != token:
            return None
        return bytes(image)

    async def last_photo(self, user: User) -> tuple[str, bytes] | None:
        """The user's last photo as (token, bytes), or None when expired or never sent."""
        token, image = await self.redis.hmget(self.keys(user).photo, ["token", "image"])
        if token is None or image is None:
            return None
        return token.decode(), bytes(image)

    async def forget(self, user: User) -> int:
        """Delete every key about the user now, including queued jobs and results of their
        recent requests; a job a worker is running is marked cancelled (``cancel_key``): the
        worker stops it and deletes its keys when it ends. Returns how many keys were deleted."""
        keys = self.keys(user)
        # Free the slot first: a request between its slot and ``start_job`` then writes nothing
        # (its WATCH fails), so the scan below sees every key a request of theirs will write.
        freed = int(await self.redis.delete(keys.inflight))
        own = [key async for key in self.redis.scan_iter(match=f"{keys.prefix}*", count=200)]
        request_ids = [rid.decode() for rid in await self.redis.smembers(keys.requests)]
        for rid in request_ids:  # mark first, so the worker never stores what is deleted next
            if await self.redis.exists(in_progress_key_prefix + rid):
                await self.redis.set(cancel_key(rid), b"1", ex=self.cancel_ttl_s)
        related = [
            key
            for rid in request_ids
            for key in (
                job_key_prefix + rid, result_key_prefix + rid, retry_key_prefix + rid,
                in_progress_key_prefix + rid, progress_key(rid), delivered_key(rid),
                done_key(rid),
            )
        ]
        async with self.redis.pipeline(transaction=True) as pipe:
            if request_ids:
                pipe.zrem(FAST_QUEUE, *request_ids).zrem(SLOW_QUEUE, *request_ids)
            if own or related:
                pipe.delete(*own, *related)
            results = await pipe.execute()
        return freed + (int(results[-1]) if own or related else 0)
