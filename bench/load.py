"""Load benchmark (issue 7): many users sending photos at once through the fake Bot API.

Everything but Telegram is real: a private ``redis-server``, ``--workers`` worker processes
(``python -m worker run``, ``DFB_ENGINE=test``), and the PTB bot in a process of its own (the
repo's config with the fast test profile) polling ``tests.fake_telegram.FakeTelegram`` in this
process. ``--users`` users each send ``--photos`` small face photos, one every ``--gap``
seconds, the users' first photos spread over one second.

Every photo must get exactly one answer: "📥 Got it…" followed by the protected PNG (or a
clear failure message), or a refusal (one photo at a time per user, the global queue cap, the
hourly quota). Reported: answers of each kind, silent or doubly answered photos (must be 0),
time from sending a photo to its PNG (p50/p95/max), the longest the fast queue got (its sorted
set, sampled every 20 ms) against ``[limits] max_queue``, and the bot process's memory (RSS)
before, at its peak and after. The bot is stopped with SIGTERM at the end (its exit code shows
a graceful stop).

    .venv/bin/python -m bench.load --out docs/benchmarks.md   # replaces only its own section
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

from bench.sections import write_section

SECTION = "## Load (issue 7)"
ROOT = Path(__file__).resolve().parents[1]
FIRST_USER = 900_001


def serve_bot(base: str, redis_url: str) -> None:
    """The bot process (``--serve-bot``): the real application, polling the fake at ``base``
    until SIGTERM (PTB's ``run_polling``: in-flight handlers finish first)."""
    import logging

    from telegram import Update

    from bot.handlers.telegram import build_application
    from common.config import load
    from tests.fake_telegram import TOKEN

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    config = load()
    config = replace(config, bot=replace(config.bot, test_profile=True))
    app = build_application(TOKEN, redis_url, config, f"{base}/bot", f"{base}/file/bot")
    app.run_polling(poll_interval=0.0, timeout=1, allowed_updates=Update.ALL_TYPES)


def photos(size: int, count: int) -> list[bytes]:
    """``count`` slightly different JPEG crops around the astronaut's face, ``size`` px."""
    import cv2
    from PIL import Image
    from skimage import data

    image = data.astronaut()
    out = []
    for i in range(count):
        dx, dy = 4 * (i % 5), 3 * (i % 7)
        crop = image[10 + dy:250 + dy, 105 + dx:345 + dx]
        buffer = io.BytesIO()
        Image.fromarray(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)).save(
            buffer, "JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MiB (Linux ``/proc``; 0 elsewhere)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@dataclass
class Samples:
    """What the samplers saw while the load ran."""

    queue_max: int = 0
    rss: list[float] = field(default_factory=list)


async def sample(redis_url: str, bot_pid: int, samples: Samples, stop: asyncio.Event) -> None:
    from redis.asyncio import Redis

    from common.jobs import FAST_QUEUE

    redis = Redis.from_url(redis_url)
    last_rss = 0.0
    try:
        while not stop.is_set():
            samples.queue_max = max(samples.queue_max, int(await redis.zcard(FAST_QUEUE)))
            if time.monotonic() - last_rss >= 0.5:
                samples.rss.append(rss_mb(bot_pid))
                last_rss = time.monotonic()
            await asyncio.sleep(0.02)
    finally:
        await redis.aclose()


def classify(texts: dict[str, str], message: str) -> str:
    """The kind of a bot message that answers a photo: admitted, a refusal or a failure."""
    if message == texts["status_received"]:
        return "admitted"
    for key in ("one_at_a_time", "busy"):
        if message == texts[key]:
            return key
    if message.startswith(texts["quota"].split("{")[0]):
        return "quota"
    failures = [v for k, v in texts.items() if k.startswith("error_")]
    return "failed" if message in failures else "other"


@dataclass
class UserView:
    """One user's photos and the bot's answers, in order."""

    sent: list[float]
    answers: list[tuple[float, str]] = field(default_factory=list)  # (at, kind)
    ends: list[tuple[float, str]] = field(default_factory=list)     # (at, "result"/"failed")


def collect(fake, users: list[int], sent: dict[int, list[float]]) -> dict[int, UserView]:
    from bot.core.i18n import EN

    views = {u: UserView(sent[u]) for u in users}
    for call in fake.calls:
        view = views.get(call.chat_id)
        if view is None or call.status != 200:
            continue
        if call.method == "sendDocument":
            view.ends.append((call.at, "result"))
        elif call.method == "sendMessage":
            kind = classify(EN, call.text)
            if kind == "failed" or "went wrong" in call.text:
                view.ends.append((call.at, "failed"))
            else:
                view.answers.append((call.at, kind))
    return views


def summarise(views: dict[int, UserView]) -> dict[str, object]:
    """Counts per answer kind, silent/duplicate photos, and the time to each PNG (its photo:
    the one whose "Got it" it follows; a user's photos are answered in order)."""
    kinds: Counter[str] = Counter()
    silent = doubled = unfinished = extra_ends = 0
    latencies: list[float] = []
    firsts: list[float] = []  # photo → its first answer ("Got it" or a refusal)
    per_user: Counter[int] = Counter()
    for view in views.values():
        answers = sorted(view.answers)
        silent += max(0, len(view.sent) - len(answers))
        doubled += max(0, len(answers) - len(view.sent))
        ends = sorted(view.ends)
        admitted = [(at, i) for i, (at, kind) in enumerate(answers) if kind == "admitted"]
        unfinished += max(0, len(admitted) - len(ends))
        extra_ends += max(0, len(ends) - len(admitted))
        for (_, i), (end_at, end_kind) in zip(admitted, ends, strict=False):
            kinds[end_kind] += 1
            if end_kind == "result" and i < len(view.sent):
                latencies.append(end_at - view.sent[i])
        for i, (at, kind) in enumerate(answers):
            if kind != "admitted":
                kinds[kind] += 1
            if i < len(view.sent):
                firsts.append(at - view.sent[i])
        per_user[sum(1 for _, k in ends if k == "result")] += 1
    latencies.sort()
    firsts.sort()

    def pct(q: float, values: list[float] = latencies) -> float:
        if not values:
            return float("nan")
        return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]

    return {
        "kinds": kinds, "silent": silent, "doubled": doubled, "unfinished": unfinished,
        "extra_ends": extra_ends, "per_user": per_user, "p50": pct(0.50), "p95": pct(0.95),
        "max": latencies[-1] if latencies else float("nan"),
        "first_p50": pct(0.50, firsts), "first_p95": pct(0.95, firsts),
        "first_max": firsts[-1] if firsts else float("nan"),
        "mean": statistics.fmean(latencies) if latencies else float("nan"),
    }


async def run_load(args: argparse.Namespace, redis_url: str, folder: Path) -> dict[str, object]:
    from common.config import load
    from tests.conftest import ServiceWorker
    from tests.fake_telegram import FakeTelegram

    config = load()
    fake = FakeTelegram()
    await fake.start()
    logs = [open(folder / f"worker{i}.log", "w+b") for i in range(args.workers)]  # noqa: SIM115
    workers = [ServiceWorker(redis_url, log) for log in logs]
    bot_log = open(folder / "bot.log", "w+b")  # noqa: SIM115
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    bot = subprocess.Popen(
        [sys.executable, "-m", "bench.load", "--serve-bot", f"http://127.0.0.1:{fake.port}",
         "--redis", redis_url], cwd=ROOT, env=env, stdout=bot_log, stderr=subprocess.STDOUT)
    stop, samples = asyncio.Event(), Samples()
    sampler: asyncio.Task | None = None
    try:
        for worker in workers:
            await asyncio.to_thread(worker.wait_ready)
        # The bot is up once it answered a /start (its post_init opened Redis).
        probe = time.monotonic()
        fake.send_text(FIRST_USER - 1, "/start")
        await fake.wait_for(lambda c: c.method == "sendMessage" and c.chat_id == FIRST_USER - 1,
                            60, probe)
        await asyncio.sleep(1.0)
        rss_before = rss_mb(bot.pid)
        sampler = asyncio.create_task(sample(redis_url, bot.pid, samples, stop))
        images = photos(args.size, 16)
        users = [FIRST_USER + i for i in range(args.users)]
        sent: dict[int, list[float]] = {u: [] for u in users}
        schedule = sorted((i * args.gap + n / args.users, n, i)
                          for n in range(args.users) for i in range(args.photos))
        started = time.monotonic()
        for offset, n, i in schedule:
            await asyncio.sleep(max(0.0, started + offset - time.monotonic()))
            user = users[n]
            image = images[(n * args.photos + i) % len(images)]
            sent[user].append(time.monotonic())
            fake.send_photo(user, [(image, args.size, args.size)])
        send_s = time.monotonic() - started

        def done() -> bool:
            views = collect(fake, users, sent)
            for view in views.values():
                admitted = sum(1 for _, k in view.answers if k == "admitted")
                if len(view.answers) < len(view.sent) or len(view.ends) < admitted:
                    return False
            return True

        deadline = time.monotonic() + args.timeout
        while not done() and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        finished_s = time.monotonic() - started
        await asyncio.sleep(3.0)  # a late duplicate would show up here
        stop.set()
        await sampler
        rss_after = rss_mb(bot.pid)
        bot.send_signal(signal.SIGTERM)
        bot_exit = await asyncio.to_thread(bot.wait, 60)
        summary = summarise(collect(fake, users, sent))
        summary.update(
            send_s=send_s, finished_s=finished_s, timed_out=time.monotonic() > deadline,
            queue_max=samples.queue_max,
            rss_before=rss_before, rss_peak=max(samples.rss or [rss_before]),
            rss_after=rss_after, bot_exit=bot_exit, max_queue=config.limits.max_queue,
            per_hour=config.limits.jobs_per_hour, photos_total=args.users * args.photos,
        )
        return summary
    finally:
        stop.set()
        if sampler is not None and not sampler.done():
            sampler.cancel()
        if bot.poll() is None:
            bot.kill()
            bot.wait()
        for worker in workers:
            if worker.process.poll() is None:
                worker.stop()
        for log in [*logs, bot_log]:
            log.close()
        await fake.stop()


def render(s: dict[str, object], args: argparse.Namespace) -> str:
    kinds: Counter[str] = s["kinds"]  # type: ignore[assignment]
    per_user: Counter[int] = s["per_user"]  # type: ignore[assignment]
    cores = os.cpu_count()
    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    spread = ", ".join(f"{n} result{'s' if n != 1 else ''}: {c}"
                       for n, c in sorted(per_user.items()))
    lines = [
        SECTION,
        "",
        f"Machine: {platform.machine()}, {cores} CPU cores (shared; load average "
        f"{load1:.1f} at the end), Python {platform.python_version()}; private redis-server on "
        f"loopback; {args.workers} worker processes (test engine), the bot in its own process "
        f"(test profile), the fake Bot API; {date.today().isoformat()}  ",
        f"`python -m bench.load --users {args.users} --photos {args.photos} --workers "
        f"{args.workers} --size {args.size} --out docs/benchmarks.md`",
        "",
        f"{args.users} users × {args.photos} photos ({args.size} px faces; a user's photos "
        f"{args.gap:g} s apart, the users' first photos within one second): all "
        f"{s['photos_total']} sent in {s['send_s']:.1f} s; every photo answered after "
        f"{s['finished_s']:.0f} s.",
        "",
        "| Measure | Value |",
        "|---|---|",
        f"| photos answered with the protected PNG | {kinds['result']} |",
        f"| … with a failure message | {kinds['failed']} |",
        f"| refused: one photo at a time per user | {kinds['one_at_a_time']} |",
        f"| refused: busy (queue cap {s['max_queue']}) | {kinds['busy']} |",
        f"| refused: hourly quota ({s['per_hour']}/h) | {kinds['quota']} |",
        f"| other answers | {kinds['other']} |",
        f"| photos never answered / answered twice | {s['silent']} / {s['doubled']} |",
        f"| admitted jobs with no end / extra ends | {s['unfinished']} / {s['extra_ends']} |",
        f"| users by PNGs received | {spread} |",
        f"| time to the PNG p50 / p95 / max | {s['p50']:.1f} / {s['p95']:.1f} / "
        f"{s['max']:.1f} s |",
        f"| time to the first answer (\"Got it\" or a refusal) p50 / p95 / max | "
        f"{s['first_p50']:.2f} / {s['first_p95']:.2f} / {s['first_max']:.2f} s |",
        f"| fast queue, longest (waiting + running) | {s['queue_max']} (cap "
        f"{s['max_queue']}) |",
        f"| bot RSS before / peak / after | {s['rss_before']:.0f} / {s['rss_peak']:.0f} / "
        f"{s['rss_after']:.0f} MiB |",
        f"| bot exit code after SIGTERM | {s['bot_exit']} |",
    ]
    per_min = 60 * kinds["result"] / max(1e-9, float(s["finished_s"]))  # type: ignore[arg-type]
    lines += ["", f"Throughput {per_min:.0f} photos/min with {args.workers} workers: the time to "
              "the PNG is mostly waiting in the queue, and grows with the jobs admitted at once "
              "(a worker runs one job at a time)."]
    if s["queue_max"] > s["max_queue"]:  # type: ignore[operator]
        lines += ["", f"The queue cap did not hold: {s['queue_max']} jobs queued at once for a cap "
                  f"of {s['max_queue']} (every photo of the burst passed the length check before "
                  "the first one was enqueued)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="bench-out/load.md")
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--photos", type=int, default=3, help="photos per user")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--size", type=int, default=128, help="photo side in pixels")
    parser.add_argument("--gap", type=float, default=1.0, help="seconds between a user's photos")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds to wait for every answer")
    parser.add_argument("--serve-bot", metavar="BASE", help=argparse.SUPPRESS)
    parser.add_argument("--redis", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.serve_bot:
        serve_bot(args.serve_bot, args.redis)
        return 0

    from common.redis_server import start_local

    server = start_local()
    try:
        with tempfile.TemporaryDirectory(prefix="dfb-load-") as folder:
            summary = asyncio.run(run_load(args, server.url, Path(folder)))
    finally:
        server.stop()
    section = render(summary, args)
    write_section(Path(args.out), SECTION, section)
    print(section)
    problems = [name for name in ("silent", "doubled", "unfinished", "extra_ends")
                if summary[name]]
    if summary["timed_out"] or problems:
        print(f"FAILED: {', '.join(problems) or 'timed out'}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
