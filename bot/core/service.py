"""``BotCore``: everything a chat adapter needs, opened once per bot process and shared.

Adapters (Telegram, later Discord) hold one ``BotCore`` and call into it; it owns the Redis
connection for user state and the ``JobQueue`` for jobs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from redis.asyncio import Redis

from bot.core.deepfake import ClipFlow
from bot.core.flow import ProtectFlow
from bot.core.limits import Limits
from bot.core.looks import FilterFlow
from bot.core.store import UserStore
from bot.core.users import User, UserHasher, load_salt
from bot.queue import JobQueue
from common.config import Config

TEST_PROFILE_ENV = "DFB_TEST_PROFILE"


def use_test_profile(config: Config) -> bool:
    """Whether jobs ask for the engine's fast test profile (``[bot] test_profile`` or env)."""
    env = os.environ.get(TEST_PROFILE_ENV, "").strip().lower()
    return config.bot.test_profile or env in {"1", "true", "yes"}


@dataclass
class BotCore:
    """The shared, platform-neutral bot services."""

    config: Config
    redis: Redis
    queue: JobQueue
    store: UserStore
    limits: Limits
    flow: ProtectFlow
    looks: FilterFlow  # filters: the default look and the contact sheet (issue 4)
    clips: ClipFlow    # the deepfake test clip (issue 5)

    @classmethod
    async def open(cls, redis_url: str, config: Config) -> BotCore:
        """Connect to Redis and the queue; load the deployment's user-key salt."""
        redis = Redis.from_url(redis_url)
        queue = await JobQueue.connect(redis_url)
        try:
            hasher = UserHasher(await load_salt(redis, config.privacy.settings_ttl_s))
        except BaseException:
            await queue.close()
            await redis.aclose()
            raise
        store = UserStore(redis, hasher, config)
        limits = Limits(redis, hasher, queue, config)
        flow = ProtectFlow(
            queue, store, limits, timeout_s=config.bot.result_timeout_s,
            status_interval_s=config.bot.status_interval_s,
            test_profile=use_test_profile(config),
        )
        return cls(config, redis, queue, store, limits, flow, FilterFlow(flow), ClipFlow(flow))

    async def forget(self, user: User) -> int:
        """Delete everything about ``user`` (see ``UserStore.forget``)."""
        return await self.store.forget(user)

    async def close(self) -> None:
        await self.queue.close()
        await self.redis.aclose()
