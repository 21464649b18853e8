"""Protection efficacy after each filter (issue 4): every look is applied, then protected at the
default strength, and the evaluator detectors (black-box) are run on the result re-saved as
JPEG q85 — what a chat app does to it. Writes the "Filters: protection after each look
(issue 4)" section of ``--out``.

    .venv/bin/python -m bench.filter_protection --out docs/benchmarks.md [--small] [--limit N]

Photos: ``../shared/faces`` (``--small``: its 4-photo subset), else the packaged sample.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

from bench.protection import pct, photos, summarise
from bench.sections import write_section

HEADER = "## Filters: protection after each look (issue 4)"


def main() -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="bench-out/filter_protection.md")
    parser.add_argument("--small", action="store_true", help="use shared/faces/small")
    parser.add_argument("--limit", type=int, default=None, help="only the first N photos")
    args = parser.parse_args()

    from worker import filters
    from worker.attack.engine import ProtectionEngine
    from worker.attack.profiles import DEFAULT_STRENGTH

    images = photos(args.limit, args.small)
    rows = []
    with ProtectionEngine() as engine:
        for name in filters.names():
            reports = []
            for _, rgb in images:
                looked = filters.apply(name, rgb)
                reports.append((looked, engine.protect(looked, DEFAULT_STRENGTH).report))
            rows.append((name, summarise(reports)))
            print(f"{name}: done", flush=True)
    argv = " ".join(a for a in (
        "--small" if args.small else "", f"--limit {args.limit}" if args.limit else "") if a)
    names = [n for n, role in rows[0][1]["roles"].items() if role == "evaluator"]
    lines = [
        HEADER,
        "",
        f"Command: `{('.venv/bin/python -m bench.filter_protection ' + argv).strip()}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, no GPU; "
        f"{time.strftime('%Y-%m-%d')}; {len(images)} photo(s), strength {DEFAULT_STRENGTH}.",
        "",
        "Cells: % of the faces an evaluator found on the filtered photo that it still finds on "
        "the protected one after JPEG q85 (lower is better).",
        "",
        "| filter | SSIM | " + " | ".join(names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for name, s in rows:
        cells = [pct(s["kept"][n], "jpeg85") for n in names]
        lines.append(f"| {name} | {s['ssim']:.3f} | " + " | ".join(cells) + " |")
    section = "\n".join(lines) + "\n"
    write_section(Path(args.out), HEADER, section)
    print(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
