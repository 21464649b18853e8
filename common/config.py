"""Typed configuration from ``config.toml`` (every key documented there) and the environment.

Secrets (bot tokens) come from the environment only and are never logged or stored here.
``REDIS_URL`` in the environment overrides ``[redis] url``; ``DFB_CONFIG`` points to another file.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "config.toml"


class ConfigError(ValueError):
    """config.toml has an unknown key or a value of the wrong kind."""


@dataclass(frozen=True)
class EngineConfig:
    default_strength: int = 3


@dataclass(frozen=True)
class RedisConfig:
    url: str = ""                  # empty: 127.0.0.1:6379 if it answers, else a local redis-server


@dataclass(frozen=True)
class WorkerConfig:
    max_jobs: int = 1              # jobs one worker process runs at once
    fast_timeout_s: int = 180      # a protect job running longer is abandoned and retried
    extra_steps_share: float = 0.5  # of fast_timeout_s: no extra attack step starts later
    slow_timeout_s: int = 300
    max_tries: int = 3             # attempts per job (transient errors, crashed workers)
    keep_result_s: int = 120       # results stay in Redis this long for the bot to pick up
    queue_expiry_s: int = 900      # a job not started (or retried) within this is dropped
    progress_ttl_s: int = 300      # progress keys expire this long after their last update
    poll_delay_s: float = 0.5      # idle workers re-check the queue this often (and on a wake-up)
    max_work_megapixels: float = 16.0  # bigger photos are scaled down to this before protection
    processes: int = 1             # fast-queue worker processes `python -m bot` starts
    slow_processes: int = 1        # slow-queue worker processes `python -m bot` starts
    detector_processes: int = 1    # child processes per engine for dlib's CNN (0: in-process)


@dataclass(frozen=True)
class BotConfig:
    mode: str = "polling"          # "polling" or "webhook" (Telegram)
    webhook_url: str = ""          # public HTTPS URL Telegram posts updates to (webhook mode)
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = 8443
    max_retries: int = 3           # AIORateLimiter retries after Telegram's 429 flood control
    status_interval_s: float = 1.0  # minimum seconds between edits of one status message
    result_timeout_s: int = 900    # the bot stops waiting for a job's result after this
    max_download_mb: int = 20      # Telegram's bot download limit; bigger files are refused
    test_profile: bool = False     # jobs use the fast test profile (tests; DFB_TEST_PROFILE=1)


@dataclass(frozen=True)
class DiscordConfig:
    guild_id: int = 0              # also sync the slash commands to this guild at once (testing)
    sync_commands: bool = True     # sync the slash commands with Discord at start-up
    upload_limit_bytes: int = 10485760  # the most the bot uploads in one file (Discord: 10 MiB)
    view_timeout_s: int = 840      # buttons under a result work this long (< 15 min token life)


@dataclass(frozen=True)
class LimitsConfig:
    jobs_per_hour: int = 30        # protections one user may start per hour (buttons included)
    max_queue: int = 50            # this many jobs queued or running: new photos get "busy"


@dataclass(frozen=True)
class PrivacyConfig:
    photo_ttl_s: int = 1800        # the last photo (for weaker/stronger) is deleted after this
    settings_ttl_s: int = 2592000  # a user's settings expire this long after their last use


@dataclass(frozen=True)
class Config:
    engine: EngineConfig = field(default_factory=EngineConfig)
    redis: RedisConfig = field(default_factory=RedisConfig)
    worker: WorkerConfig = field(default_factory=WorkerConfig)
    bot: BotConfig = field(default_factory=BotConfig)
    discord: DiscordConfig = field(default_factory=DiscordConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)  # sections of later features


def _section(cls: type, data: dict[str, Any], name: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise ConfigError(f"[{name}]: unknown key(s) {sorted(unknown)}")
    values = {}
    for key, value in data.items():
        default = getattr(cls(), key)
        kind = (int, float) if isinstance(default, float) else type(default)
        if default is not None and not isinstance(value, kind):
            raise ConfigError(f"[{name}] {key} must be {type(default).__name__}, got {value!r}")
        values[key] = value
    return cls(**values)


def parse(data: dict[str, Any]) -> Config:
    """Build a ``Config`` from parsed TOML (typed sections validated, others kept in ``raw``)."""
    sections = {f.name: f.type for f in fields(Config) if f.name != "raw"}
    typed = {
        name: _section(globals()[str(kind)], data.get(name, {}), name)
        for name, kind in sections.items()
    }
    config = Config(**typed, raw=data)
    if os.environ.get("REDIS_URL"):
        config = Config(**{**typed, "redis": RedisConfig(url=os.environ["REDIS_URL"])}, raw=data)
    return config


@lru_cache(maxsize=4)
def load(path: str | None = None) -> Config:
    """Load and validate config.toml (``DFB_CONFIG`` or the repo's); cached per path."""
    file = Path(path or os.environ.get("DFB_CONFIG") or DEFAULT_PATH)
    data = tomllib.loads(file.read_text()) if file.exists() else {}
    return parse(data)
