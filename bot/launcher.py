"""``python -m bot``: the whole service on one machine.

1. Redis: ``REDIS_URL`` / ``[redis] url``, else 127.0.0.1:6379, else a private ``redis-server``.
2. Workers: ``[worker] processes`` × ``python -m worker run`` (``--workers N``; ``--no-worker``
   when the workers run elsewhere against the same Redis), plus ``slow_processes`` slow ones.
3. With ``TELEGRAM_BOT_TOKEN`` and/or ``DISCORD_BOT_TOKEN`` set: those bots, until stopped (both
   in this process: Discord on its own event loop in a thread beside Telegram's). Without
   either: the packaged sample photo (or ``--input``) is protected *through the queue and a
   worker*, the result is written to ``out/protected.png`` and ``out/report.json``, and it
   exits.

No TensorFlow in this process: the engine runs only in the worker subprocesses.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from common.config import Config, ConfigError, load
from common.jobs import Progress, ProtectRequest, ProtectResult
from common.redis_server import RedisUnavailable, die_with_parent, resolve_url

log = logging.getLogger("bot")
SAMPLE_NAME = "astronaut (scikit-image sample, public domain)"
TOKEN_HINT = (
    "To run the Telegram bot instead: create a bot with @BotFather, then\n"
    "  TELEGRAM_BOT_TOKEN=123456:ABC... make run\n"
    "and/or the Discord bot (README, \"Discord\"): DISCORD_BOT_TOKEN=... make run\n"
    "(tokens are read from the environment only, never from files or logs)."
)


@dataclass
class Workers:
    """Worker subprocesses started by this launcher (stopped by ``stop``)."""

    processes: list[subprocess.Popen] = field(default_factory=list)
    logs: list[IO[bytes]] = field(default_factory=list)

    @classmethod
    def start(cls, redis_url: str, fast: int, slow: int, *, quiet: bool) -> Workers:
        """``fast`` + ``slow`` × ``python -m worker run``; ``quiet``: their output goes to
        anonymous temporary files (shown only if a worker fails) instead of this terminal."""
        workers = cls()
        env = {**os.environ, "REDIS_URL": redis_url, "TF_CPP_MIN_LOG_LEVEL": "2"}
        for queue, count in (("fast", fast), ("slow", slow)):
            for _ in range(count):
                output = tempfile.TemporaryFile() if quiet else None  # noqa: SIM115
                workers.processes.append(subprocess.Popen(
                    [sys.executable, "-m", "worker", "run", "--queue", queue], env=env,
                    stdout=output, stderr=subprocess.STDOUT if quiet else None,
                    preexec_fn=die_with_parent,
                ))
                if output is not None:
                    workers.logs.append(output)
        return workers

    def all_exited(self) -> bool:
        return bool(self.processes) and all(p.poll() is not None for p in self.processes)

    def tail(self, chars: int = 3000) -> str:
        """The end of the (quiet) workers' output, for an error message."""
        text = []
        for output in self.logs:
            output.seek(0)
            text.append(output.read().decode(errors="replace")[-chars:])
        return "\n".join(text)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (arq finishes or requeues the job in hand), then SIGKILL after ``timeout``."""
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + timeout
        for process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for output in self.logs:
            output.close()
        if self.processes:
            codes = [p.returncode for p in self.processes]
            log.info("stopped %d worker(s), exit codes %s", len(codes), codes)


def sample_png() -> bytes:
    """The packaged sample photo (scikit-image's astronaut), as PNG bytes."""
    from PIL import Image
    from skimage import data

    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buffer, format="PNG")
    return buffer.getvalue()


async def protect_via_queue(
    redis_url: str, image: bytes, *, strength: int, test_profile: bool, timeout: float,
    workers: Workers,
) -> ProtectResult:
    """Submit one photo to the queue and wait for a worker's result, printing its progress."""
    from bot.queue import JobQueue

    queue = await JobQueue.connect(redis_url)
    request = ProtectRequest(
        f"sample-{uuid.uuid4().hex}", image, strength=strength, test_profile=test_profile
    )

    shown: set[str] = set()

    async def show(position: int | None, progress: Progress | None) -> None:
        """A line per queue position and per 10 % of progress."""
        if position is not None:
            key = line = f"queued (position {position}); workers load their models on first start"
        elif progress is not None and progress.stage != "queued":
            key = f"{progress.stage} {int(progress.fraction * 10)}"
            line = f"{progress.stage} {progress.fraction:.0%}"
        else:
            return
        if key not in shown:
            shown.add(key)
            print(line, flush=True)

    try:
        await queue.submit(request)
        waiting = asyncio.create_task(
            queue.wait(request.request_id, timeout=timeout, poll=1.0, on_update=show)
        )
        while not waiting.done():
            await asyncio.wait({waiting}, timeout=1.0)
            if not waiting.done() and workers.all_exited():
                waiting.cancel()
                codes = [p.returncode for p in workers.processes]
                raise RuntimeError(f"every worker exited (codes {codes}):\n{workers.tail()}")
        result = waiting.result()
        await queue.discard(request.request_id)
        return result
    finally:
        await queue.close()


def write_outputs(result: ProtectResult, out: Path, input_name: str) -> dict:
    """``protected.png`` and ``report.json`` (the engine's report, as the CLI writes it)."""
    out.mkdir(parents=True, exist_ok=True)
    report = {"input": input_name, "notes": result.notes, **result.report}
    (out / "protected.png").write_bytes(result.png)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def run_sample(args: argparse.Namespace, config: Config, redis_url: str, workers: Workers) -> int:
    image = Path(args.input).read_bytes() if args.input else sample_png()
    strength = args.strength or config.engine.default_strength
    print(f"no bot token: protecting {args.input or 'the sample photo'} through the "
          f"queue ({redis_url}) and {len(workers.processes) or 'remote'} worker(s)")
    result = asyncio.run(protect_via_queue(
        redis_url, image, strength=strength, test_profile=args.test_profile,
        timeout=args.timeout, workers=workers,
    ))
    if not result.ok:
        print(f"error: {result.error}: {result.error_detail}", file=sys.stderr)
        return 1
    report = write_outputs(result, Path(args.out), args.input or SAMPLE_NAME)
    from worker.cli import describe  # plain text formatting; imports no TensorFlow

    print(describe(report))
    print(f"wrote {Path(args.out) / 'protected.png'} and {Path(args.out) / 'report.json'}\n")
    print(TOKEN_HINT)
    return 0


def run_telegram(config: Config, redis_url: str) -> int:
    """The Telegram bot (python-telegram-bot), until SIGINT/SIGTERM."""
    from bot.handlers import telegram

    telegram.run_telegram(config, redis_url)
    return 0


def run_bots(config: Config, redis_url: str, *, telegram: bool, discord: bool) -> int:
    """The bots whose tokens are set, until SIGINT/SIGTERM: Discord alone on this thread, or
    beside Telegram (which keeps the main thread for its signal handling) in a thread."""
    if not discord:
        return run_telegram(config, redis_url)
    from bot.handlers import discord as discord_bot

    if not telegram:
        discord_bot.run_discord(config, redis_url)
        return 0
    thread = discord_bot.DiscordThread(config, redis_url).start()
    try:
        return run_telegram(config, redis_url)
    finally:
        thread.stop()


def _parser(config: Config) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", help="without a bot token: photo to protect (default: sample)")
    parser.add_argument("--out", default="out", help="without a bot token: output folder")
    parser.add_argument("-s", "--strength", type=int, choices=range(1, 6), metavar="1..5",
                        help="without a bot token: strength (default: config.toml)")
    parser.add_argument("--workers", type=int, default=config.worker.processes,
                        help="fast-queue worker processes to start (default: config.toml)")
    parser.add_argument("--no-worker", action="store_true",
                        help="start no worker here (they run elsewhere on the same Redis)")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="without a bot token: seconds to wait for the result")
    parser.add_argument("--test-profile", action="store_true", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = load()
    args = _parser(config).parse_args(argv)
    if args.input and not Path(args.input).is_file():
        print(f"error: no such file: {args.input}", file=sys.stderr)
        return 2
    try:
        redis_url = resolve_url()
    except RedisUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    telegram = bool(os.environ.get("TELEGRAM_BOT_TOKEN"))
    discord = bool(os.environ.get("DISCORD_BOT_TOKEN"))
    token = telegram or discord
    # Clip workers only serve the bots (the no-token sample run protects one photo).
    slow = config.worker.slow_processes if token else 0
    fast, slow = (0, 0) if args.no_worker else (args.workers, slow)
    workers = Workers.start(redis_url, fast, slow, quiet=not token)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        if token:
            return run_bots(config, redis_url, telegram=telegram, discord=discord)
        return run_sample(args, config, redis_url, workers)
    except KeyboardInterrupt:
        return 130
    except (RuntimeError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        workers.stop()


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
