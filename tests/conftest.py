"""Shared fixtures: packaged sample photos and a small, fast protection engine."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from skimage import data  # noqa: E402

#: The astronaut's face in skimage.data.astronaut() (512x512), measured by every detector.
ASTRONAUT_FACE = (175, 55, 275, 180)


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    return data.astronaut()


@pytest.fixture(scope="session")
def no_face() -> np.ndarray:
    return data.coffee()


@pytest.fixture(scope="session")
def fast_engine():
    """Engine with the two cheapest surrogates and one evaluator (for the test profile)."""
    from worker.attack.engine import ProtectionEngine

    return ProtectionEngine(surrogates=("blazeface_full", "res10_ssd"), evaluators=("haar",))


# --- The service: real Redis, a real arq worker subprocess (issue 3) -----------------------------

#: Redis database the service tests own (flushed before and after each test that asks for it).
REDIS_TEST_DB = int(os.environ.get("DFB_TEST_REDIS_DB", "15"))


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the test database: on 127.0.0.1:6379 when it answers, else on a private
    ``redis-server`` started for this session (see ``common.redis_server``)."""
    from common.redis_server import DEFAULT_URL, ping, start_local

    if ping(DEFAULT_URL):
        return f"redis://127.0.0.1:6379/{REDIS_TEST_DB}"
    return start_local().url.rsplit("/", 1)[0] + f"/{REDIS_TEST_DB}"


@pytest.fixture
def redis_db(redis_url: str):
    """The test database, empty at the start and the end of the test; yields its URL."""
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield redis_url
    client.flushdb()
    client.close()


class ServiceWorker:
    """A ``python -m worker run`` subprocess on the test database (test engine, ``queue``);
    ``env`` adds environment variables (e.g. ``DFB_CONFIG``, ``HOME``), ``cwd`` its directory."""

    def __init__(self, redis_url: str, log, queue: str = "fast", *,
                 env: dict[str, str] | None = None, cwd=None) -> None:
        import subprocess
        import sys
        from pathlib import Path

        self.redis_url, self.log = redis_url, log
        root = Path(__file__).resolve().parents[1]
        env = {**os.environ, "REDIS_URL": redis_url, "DFB_ENGINE": "test",
               "PYTHONPATH": str(root), **(env or {})}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "worker", "run", "--queue", queue], env=env,
            stdout=log, stderr=subprocess.STDOUT, cwd=cwd or root,
        )

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def wait_ready(self, timeout: float = 180.0) -> None:
        import time

        deadline = time.monotonic() + timeout
        while "worker ready" not in self.output():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{self.output()[-3000:]}")
            time.sleep(0.2)

    def stop(self) -> int:
        self.process.terminate()
        return self.process.wait(timeout=60)


@pytest.fixture(scope="session")
def service_worker(redis_url: str, tmp_path_factory):
    """One running worker for the whole session (models loaded once); serves jobs enqueued on
    ``redis_url`` (use ``redis_db`` in the test too, for a clean database)."""
    with open(tmp_path_factory.mktemp("worker") / "worker.log", "w+b") as log:
        worker = ServiceWorker(redis_url, log)
        try:
            worker.wait_ready()
            yield worker
        finally:
            worker.stop()
