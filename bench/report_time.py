"""Time of the verification report's detectors, dlib's CNN in the process or in children.

``python -m bench.report_time [--processes 0,1,2] [PHOTO ...]`` runs every default detector
(``Verifier``) on each photo of ``../shared/faces`` named (the original, as ``find_faces`` does),
then the report on it plus uniform noise (three images), warm, for each number of detector
processes, and prints a markdown table (docs/benchmarks.md, "the report's detectors side by
side").
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench.protection import named_photos

PHOTOS = ("deepface_couple.jpg", "deepface_img18.jpg", "deepface_img20.jpg",
          "dlib_2008_001322.jpg")


def timings(processes: int, photos: list[tuple[str, np.ndarray]]) -> list[tuple[float, float]]:
    """(original s, report s) per photo with ``processes`` detector children."""
    from worker.attack.profiles import default_evaluators, default_surrogates
    from worker.attack.verify import Verifier

    verifier = Verifier(default_surrogates(), default_evaluators(), processes=processes)
    verifier.start()
    verifier.detect_all(photos[0][1][:200, :200])  # every detector has run once
    rng = np.random.default_rng(0)
    out = []
    for _, rgb in photos:
        noisy = np.clip(rgb + rng.uniform(-8, 8, rgb.shape), 0, 255).astype(np.uint8)
        started = time.perf_counter()
        found = verifier.detect_all(rgb)
        middle = time.perf_counter()
        verifier.report(rgb, noisy, found, [])
        out.append((middle - started, time.perf_counter() - middle))
    verifier.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("photos", nargs="*", default=list(PHOTOS))
    parser.add_argument("--processes", default="0,1,2", help="numbers of detector children")
    args = parser.parse_args()
    photos = named_photos(args.photos)
    counts = [int(n) for n in args.processes.split(",")]
    runs = {n: timings(n, photos) for n in counts}
    label = " / ".join("in-process" if n == 0 else f"{n} child" + ("ren" if n > 1 else "")
                       for n in counts)
    print(f"| photo | original: {label} | report: {label} |\n|---|---|---|")
    for i, (name, rgb) in enumerate(photos):
        cells = [" / ".join(f"{runs[n][i][part]:.1f}" for n in counts) + " s" for part in (0, 1)]
        print(f"| `{name}`, {rgb.shape[1]} × {rgb.shape[0]} | {cells[0]} | {cells[1]} |")
    totals = [" / ".join(f"{sum(t[part] for t in runs[n]):.1f}" for n in counts) + " s"
              for part in (0, 1)]
    print(f"| all {len(photos)} | {totals[0]} | {totals[1]} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
