"""Filter speed benchmark (issue 4): milliseconds per megapixel of every filter.

Runs every filter on 12-MP (4000x3000), 1-MP (1155x866) and 0.3-MP photos made from the packaged
astronaut sample (cropped to 4:3 and upscaled), takes the median of a few runs after a warm-up,
and writes a markdown table into the "Filters (issue 4)" section of ``--out`` (the section is
replaced, or appended when missing; the rest of the file is kept). Also times the contact sheet
of the 12-MP photo (what the ``variants`` job does after decoding).

    .venv/bin/python -m bench.filters --out docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from bench.sections import write_section

HEADER = "## Filters (issue 4)"
#: Target of issue 4.
BUDGET_MS_PER_MP = 150.0
#: 0.3 MP shows the fixed costs (the cartoon draws at up to 1280 px whatever the photo size).
SIZES = {"12 MP": (4000, 3000), "1 MP": (1155, 866), "0.3 MP": (640, 480)}


def photo(size: tuple[int, int]) -> np.ndarray:
    """The astronaut sample cropped to 4:3 and resized to ``size`` (width, height)."""
    from skimage import data

    return cv2.resize(data.astronaut()[64:448], size, interpolation=cv2.INTER_CUBIC)


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``fn`` in milliseconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def measure(repeat_large: int, repeat_small: int) -> tuple[dict[str, dict[str, float]], float]:
    """``{filter: {size label: ms per MP}}`` and the contact sheet's ms on the 12-MP photo."""
    from worker import filters
    from worker.filters import contact_sheet

    rows: dict[str, dict[str, float]] = {name: {} for name in filters.names()}
    sheet_ms = 0.0
    for label, size in SIZES.items():
        rgb = photo(size)
        megapixels = size[0] * size[1] / 1e6
        repeat = repeat_large if megapixels > 4 else repeat_small
        for name in filters.names():
            ms = median_ms(lambda n=name, img=rgb: filters.apply(n, img), repeat)
            rows[name][label] = ms / megapixels
            print(f"{label:6} {name:12} {ms / megapixels:7.1f} ms/MP", flush=True)
        if megapixels > 4:
            sheet_ms = median_ms(lambda rgb=rgb: contact_sheet.render(rgb), repeat)
    return rows, sheet_ms


def render(rows: dict[str, dict[str, float]], sheet_ms: float, argv: str) -> str:
    from worker import filters

    labels = list(SIZES)
    worst = max(v for row in rows.values() for v in row.values())
    out = [
        HEADER,
        "",
        f"Command: `.venv/bin/python -m bench.filters{' ' + argv if argv else ''}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores (OpenCV threads: "
        f"{cv2.getNumThreads()}), Python {platform.python_version()}; "
        f"{time.strftime('%Y-%m-%d')}  ",
        "Photo: the packaged astronaut sample, cropped to 4:3 and upscaled. Median of several "
        "runs after a warm-up; milliseconds per megapixel (lower is better). "
        f"Target: at most {BUDGET_MS_PER_MP:.0f} ms/MP.",
        "",
        "| filter | " + " | ".join(f"{label} (ms/MP)" for label in labels) + " | look |",
        "|---|" + "---:|" * len(labels) + "---|",
    ]
    for name, row in rows.items():
        cells = " | ".join(f"{row[label]:.1f}" for label in labels)
        out.append(f"| `{name}` | {cells} | {filters.describe(name)} |")
    verdict = "all within" if worst <= BUDGET_MS_PER_MP else "NOT all within"
    out += [
        "",
        f"Slowest: {worst:.1f} ms/MP, {verdict} the {BUDGET_MS_PER_MP:.0f} ms/MP target. "
        f"Contact sheet of the 12-MP photo (every filter, 240-px thumbnails, JPEG): "
        f"{sheet_ms:.0f} ms.",
    ]
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="bench-out/filters.md",
                        help="markdown file whose 'Filters (issue 4)' section is (re)written")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per filter at 12 MP")
    parser.add_argument("--repeat-small", type=int, default=7, help="timed runs at 1 MP")
    args = parser.parse_args()
    rows, sheet_ms = measure(args.repeat, args.repeat_small)
    argv = "" if (args.repeat, args.repeat_small) == (3, 7) else (
        f"--repeat {args.repeat} --repeat-small {args.repeat_small}")
    section = render(rows, sheet_ms, argv)
    write_section(Path(args.out), HEADER, section)
    print(section)
    print(f"wrote the '{HEADER[3:]}' section of {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
