"""Find the service's Redis: ``REDIS_URL``, else ``[redis] url``, else 127.0.0.1:6379 when it
answers, else a private ``redis-server`` started here (no persistence, loopback only) and stopped
when this process exits.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from urllib.parse import urlparse

from common.config import load

DEFAULT_URL = "redis://127.0.0.1:6379/0"
INSTALL_HINT = (
    "no Redis answers on 127.0.0.1:6379 and there is no `redis-server` to start one.\n"
    "Install it (Debian/Ubuntu: `sudo apt-get install redis-server`; macOS: `brew install "
    "redis`), or point REDIS_URL (or [redis] url in config.toml) at a running Redis."
)


class RedisUnavailable(RuntimeError):
    """No Redis could be found or started; the message says what to do."""


def ping(url: str, timeout: float = 0.5) -> bool:
    """True when a Redis at ``url`` answers PING (raw socket; no client library needed)."""
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=timeout
        ) as sock:
            if parsed.password:
                user = parsed.username or "default"
                sock.sendall(_command("AUTH", user, parsed.password))
                if not sock.recv(64).startswith(b"+OK"):
                    return False
            sock.sendall(_command("PING"))
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _command(*parts: str) -> bytes:
    encoded = [p.encode() for p in parts]
    return b"*%d\r\n" % len(encoded) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in encoded)


@dataclass
class LocalRedis:
    """A ``redis-server`` child process on a free loopback port, without persistence."""

    port: int
    process: subprocess.Popen = field(repr=False)
    binary: str = field(default="redis-server", repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def restart(self, down_s: float = 0.0, timeout: float = 10.0) -> None:
        """Stop the server and start a fresh one on the same port after ``down_s`` seconds:
        without persistence, every key is gone (as after a crash of a cache-only Redis)."""
        self.stop()
        time.sleep(down_s)
        self.process = _spawn(self.binary, self.port)
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ping(self.url):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RedisUnavailable(
                    f"{self.binary} did not start (exit code {self.process.returncode})")
            time.sleep(0.05)


def _spawn(binary: str, port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", tempfile.gettempdir(), "--loglevel", "warning"],
        stdout=subprocess.DEVNULL, preexec_fn=die_with_parent,
    )


def start_local(binary: str | None = None, timeout: float = 10.0) -> LocalRedis:
    """Start a private ``redis-server`` (stopped at exit, and with this process on Linux)."""
    binary = binary or shutil.which("redis-server")
    if not binary:
        raise RedisUnavailable(INSTALL_HINT)
    port = free_port()
    server = LocalRedis(port, _spawn(binary, port), binary)
    atexit.register(server.stop)
    server._wait_ready(timeout)
    return server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def die_with_parent() -> None:
    """``preexec_fn``: on Linux, the child gets SIGTERM when the process that started it dies."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def resolve_url(*, start: bool = True) -> str:
    """The Redis URL to use. Configured URLs are returned as they are; otherwise the default
    local one when it answers, else (``start``) a private server's, else the default anyway."""
    configured = os.environ.get("REDIS_URL") or load().redis.url
    if configured:
        return configured
    if not start or ping(DEFAULT_URL):
        return DEFAULT_URL
    return start_local().url
