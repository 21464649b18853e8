"""Who a user is to the core: a platform-neutral reference and the Redis keys kept about them.

Redis never holds a raw platform user id: every per-user key is under
``dfb:u:<HMAC-SHA256(salt, "platform:id")[:32]>:``, so ``/forget`` can find them all by prefix.
The salt is per deployment: ``DFB_USER_SALT`` from the environment, else a random one kept in
Redis (with a TTL refreshed whenever a setting is written, shared by every bot process).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass

from redis.asyncio import Redis

from common.jobs import KEY_PREFIX

SALT_ENV = "DFB_USER_SALT"
SALT_KEY = f"{KEY_PREFIX}bot:salt"
USER_PREFIX = f"{KEY_PREFIX}u:"


@dataclass(frozen=True)
class User:
    """A chat user: ``platform`` ("telegram", "discord"), its user id, and a catalogue name."""

    platform: str
    id: int | str
    lang: str = "en"


@dataclass(frozen=True)
class UserKeys:
    """The Redis keys of one user (all under ``prefix``)."""

    prefix: str

    @property
    def settings(self) -> str:
        return f"{self.prefix}settings"

    @property
    def photo(self) -> str:
        return f"{self.prefix}photo"

    @property
    def inflight(self) -> str:
        return f"{self.prefix}inflight"

    @property
    def quota(self) -> str:
        return f"{self.prefix}quota"

    @property
    def requests(self) -> str:
        return f"{self.prefix}requests"


class UserHasher:
    """Turns a ``User`` into its ``UserKeys`` with the deployment's salt."""

    def __init__(self, salt: bytes) -> None:
        if len(salt) < 16:
            raise ValueError("the user key salt must be at least 16 bytes")
        self._salt = salt

    def digest(self, user: User) -> str:
        message = f"{user.platform}:{user.id}".encode()
        return hmac.new(self._salt, message, hashlib.sha256).hexdigest()[:32]

    def keys(self, user: User) -> UserKeys:
        return UserKeys(f"{USER_PREFIX}{self.digest(user)}:")


async def load_salt(redis: Redis, ttl_s: int) -> bytes:
    """The deployment's salt: ``DFB_USER_SALT``, else the shared random one in Redis."""
    if env := os.environ.get(SALT_ENV):
        return env.encode()
    await redis.set(SALT_KEY, secrets.token_hex(32), ex=ttl_s, nx=True)
    salt = await redis.getex(SALT_KEY, ex=ttl_s)
    if salt is None:  # expired between the two calls: try once more
        return await load_salt(redis, ttl_s)
    return salt if isinstance(salt, bytes) else str(salt).encode()
