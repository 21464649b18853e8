"""Queue overhead benchmark: submit → worker start → result in the bot's hands, without the engine.

The real path of a protection request is measured: ``bot.queue.JobQueue.submit`` (enqueue + wake
token), a ``worker.service.ServiceWorker`` subprocess with the service's settings (serializer,
``after_job_end`` notification), and ``JobQueue.wait``. Only the job function differs: an echo
job, registered in this benchmark's worker only, returns the request's bytes as the "PNG" at
once. Redis is a private ``redis-server`` on loopback. For contrast, one row uses arq's stock
worker and result polling (every 0.5 s, arq's defaults) instead of the wake-ups.

    .venv/bin/python -m bench.queue --out docs/benchmarks.md   # replaces only its own section
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

from bench.sections import write_section
from common import jobs
from common.jobs import ProtectRequest, ProtectResult

SECTION = "## Queue overhead (issue 3)"
ROOT = Path(__file__).resolve().parents[1]


async def echo(ctx: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """Stands in for ``protect``: no engine, the input bytes come back as the result."""
    started = time.time()
    return ProtectResult(
        request["request_id"], png=request["image"], report={"start": started, "end": time.time()}
    ).to_dict()


def serve(redis_url: str, plain: bool) -> None:
    """A worker process for the benchmark (``--serve``): the service's settings, echo job."""
    from arq.worker import Worker, get_kwargs

    from worker.service import ServiceWorker, redis_settings, settings_for

    async def ready(ctx: dict[str, Any]) -> None:
        await ctx["redis"].incr("dfb:bench:ready")

    kwargs = {**get_kwargs(settings_for("fast")), "functions": [_named(echo, jobs.PROTECT)],
              "on_startup": ready, "on_shutdown": None, "redis_settings": redis_settings(redis_url)}
    if plain:  # arq's stock worker: its default poll_delay, no wake-up, no done notification
        kwargs.update(poll_delay=0.5, after_job_end=None)
    (Worker if plain else ServiceWorker)(**kwargs).run()


def _named(coroutine: Any, name: str) -> Any:
    from arq.worker import func

    return func(coroutine, name=name)


async def measure(
    redis_url: str, jobs_n: int, payload: int, burst: int, poll: float
) -> dict[str, float]:
    """``jobs_n`` sequential jobs (latency), then ``burst`` jobs submitted at once (throughput);
    the waiter re-checks every ``poll`` seconds unless the worker's notification wakes it."""
    from bot.queue import JobQueue

    queue = await JobQueue.connect(redis_url)
    image = os.urandom(payload)
    total, pickup, back = [], [], []
    try:
        for i in range(jobs_n + 5):  # 5 warm-up jobs
            request = ProtectRequest(uuid.uuid4().hex, image)
            started = time.time()
            await queue.submit(request)
            result = await queue.wait(request.request_id, timeout=30, poll=poll)
            done = time.time()
            assert result.ok and len(result.png) == payload, result.error_detail
            await queue.discard(request.request_id)
            if i >= 5:
                total.append(done - started)
                pickup.append(result.report["start"] - started)
                back.append(done - result.report["end"])
        requests = [ProtectRequest(uuid.uuid4().hex, image) for _ in range(burst)]
        started = time.time()
        await asyncio.gather(*(queue.submit(r) for r in requests))
        results = await asyncio.gather(
            *(queue.wait(r.request_id, timeout=60, poll=poll) for r in requests)
        )
        elapsed = time.time() - started
        assert all(r.ok for r in results)
    finally:
        await queue.close()
    ms = [1000 * t for t in sorted(total)]
    return {
        "p50": statistics.median(ms), "p95": ms[int(0.95 * (len(ms) - 1))], "max": ms[-1],
        "pickup": 1000 * statistics.median(pickup), "back": 1000 * statistics.median(back),
        "rate": burst / elapsed,
    }


def run_case(redis_url: str, workers: int, plain: bool, jobs_n: int, payload: int,
             burst: int) -> dict[str, float]:
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "bench.queue", "--serve", redis_url] + (
        ["--plain"] if plain else [])
    processes = [subprocess.Popen(command, env=env, cwd=ROOT) for _ in range(workers)]
    try:
        deadline = time.monotonic() + 60
        while int(client.get("dfb:bench:ready") or 0) < workers:
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise RuntimeError("benchmark workers did not start")
            time.sleep(0.05)
        return asyncio.run(measure(redis_url, jobs_n, payload, burst, 0.5 if plain else 1.0))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        client.flushdb()
        client.close()


def render(rows: list[tuple[str, int, int, dict[str, float]]], args: argparse.Namespace) -> str:
    lines = [
        SECTION, "",
        f"Command: `.venv/bin/python -m bench.queue --jobs {args.jobs}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores (shared), Python "
        f"{platform.python_version()}; private redis-server on loopback; {date.today()}", "",
        "Per job, from `JobQueue.submit` to `JobQueue.wait` returning the result, with an echo "
        "job instead of the engine (so this is all queue: pickling, Redis, wake-up, result "
        f"pickup). {args.jobs} sequential jobs per row after 5 warm-up ones; *pickup* = submit → "
        "job function starts, *return* = job function ends → result in the waiter's hands; "
        f"*burst* = {args.burst} jobs submitted at once, jobs per second until all results are in.",
        "",
        "| worker | workers | payload in / out | p50 ms | p95 ms | max ms | pickup ms (p50) "
        "| return ms (p50) | burst jobs/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, workers, payload, r in rows:
        size = f"{payload // 1024} KiB" if payload < 1 << 20 else f"{payload >> 20} MiB"
        lines.append(
            f"| {name} | {workers} | {size} | {r['p50']:.1f} | {r['p95']:.1f} | {r['max']:.1f} "
            f"| {r['pickup']:.1f} | {r['back']:.1f} | {r['rate']:.0f} |"
        )
    service = [r for name, _, _, r in rows if name.startswith("service")]
    worst = max(r["p50"] for r in service)
    lines += [
        "",
        f"Target (issue 3): at most 20 ms per job on loopback — the service's worst p50 here is "
        f"{worst:.1f} ms. Producers push a wake-up token after enqueueing and workers push a "
        "done token once the result is stored, so neither side waits for a polling interval "
        "(arq's stock polling costs about half a second per side, last row); what is left is "
        "pickling and moving the bytes. A second worker does not make one job faster; the burst "
        "column varies from run to run on this shared 2-core machine. Real throughput is set "
        "by the engine's seconds per photo: each worker process adds one engine.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="bench-out/queue.md")
    parser.add_argument("--jobs", type=int, default=200, help="sequential jobs per row")
    parser.add_argument("--burst", type=int, default=100, help="jobs submitted at once")
    parser.add_argument("--serve", metavar="REDIS_URL", help=argparse.SUPPRESS)
    parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.plain)
        return 0

    from common.redis_server import start_local

    server = start_local()
    rows = []
    try:
        cases = [("service (wake-up)", 1, 1024), ("service (wake-up)", 2, 1024),
                 ("service (wake-up)", 1, 1 << 20), ("service (wake-up)", 2, 1 << 20),
                 ("arq stock (poll 0.5 s)", 1, 1024)]
        for name, workers, payload in cases:
            plain = name.startswith("arq")
            jobs_n = min(args.jobs, 40) if plain else args.jobs
            result = run_case(server.url, workers, plain, jobs_n, payload,
                              min(args.burst, 20) if plain else args.burst)
            rows.append((name, workers, payload, result))
            print(f"{name} x{workers} {payload} B: " + ", ".join(
                f"{k} {v:.1f}" for k, v in result.items()), flush=True)
    finally:
        server.stop()
    section = render(rows, args)
    write_section(Path(args.out), SECTION, section)
    print(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
