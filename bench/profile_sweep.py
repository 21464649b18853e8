"""Try one change to a strength profile and score it like the protection benchmark.

    .venv/bin/python -m bench.profile_sweep LABEL [key=value ...] [--strength 3] [--small]
        [--limit N] [--models bench/shared_models.toml [--as-declared]]

Each ``key=value`` overrides a ``worker.attack.profiles.Profile`` field (values are JSON, e.g.
``delta_scale=0.5``, ``eot_jpeg=[60,95]``). Prints one line: SSIM, PSNR, s/MP, the slowest
photo's seconds, the steps taken and, per detector, the % of faces still found on the protected
image / after JPEG q85 / after 0.5x (lower is better), and appends it to ``--log``.
``--models``: the detector models declared in that file are added as evaluators (never
optimised against: black-box columns, e.g. SCRFD and YuNet); with ``--as-declared`` each keeps
its declared role (a ``"surrogate"`` is optimised against, as in a worker with that config).
Used for the "what was tried" tables in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import replace
from pathlib import Path

from bench.protection import declared_as_evaluators, pct, photos, summarise


def overrides(pairs: list[str]) -> dict[str, object]:
    """``["steps=80", "eot_jpeg=[60,95]"]`` -> ``{"steps": 80, "eot_jpeg": (60, 95)}``."""
    out: dict[str, object] = {}
    for pair in pairs:
        key, _, raw = pair.partition("=")
        value = json.loads(raw)
        out[key] = tuple(value) if isinstance(value, list) else value
    return out


def main() -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("label")
    parser.add_argument("changes", nargs="*", metavar="key=value")
    parser.add_argument("--strength", type=int, default=3)
    parser.add_argument("--small", action="store_true", help="use shared/faces/small")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--log", default="bench-out/profile_sweep.txt")
    parser.add_argument("--models", default=None, metavar="PATH.toml",
                        help="declared ONNX detectors, added as evaluators")
    parser.add_argument("--as-declared", action="store_true",
                        help="with --models: keep each model's declared role")
    args = parser.parse_args()
    if args.as_declared and not args.models:
        parser.error("--as-declared needs --models")
    if args.models:
        os.environ["DFB_CONFIG"] = str(Path(args.models).resolve())

    from worker.attack.engine import ProtectionEngine
    from worker.attack.profiles import profile_for

    profile = replace(profile_for(args.strength), **overrides(args.changes))
    as_evaluators = args.models and not args.as_declared
    with (ProtectionEngine(*declared_as_evaluators()) if as_evaluators
          else ProtectionEngine()) as engine:
        engine.warm_up()  # as a worker starts: s/MP is a warm worker's
        reports = [(rgb, engine.protect(rgb, profile).report)
                   for _, rgb in photos(args.limit, args.small)]
    s = summarise(reports)
    slowest = max((rep["seconds"] for _, rep in reports), default=0.0)  # vs the job timeout
    cells = " ".join(
        f"{n}:{pct(s['kept'][n], 'protected')}/{pct(s['kept'][n], 'jpeg85')}/"
        f"{pct(s['kept'][n], 'half')}" for n in s["roles"])
    line = (f"{args.label} | ssim {s['ssim']:.3f} ({s['ssim_min']:.3f}) face ssim "
            f"{s['face_ssim']:.3f} ({s['face_ssim_min']:.3f}) face dE {s['face_delta_e']:.1f} "
            f"({s['face_delta_e_max']:.1f}) psnr {s['psnr']:.1f} | "
            f"{s['s_per_mp']:.1f} s/MP, slowest {slowest:.0f} s, steps {s['steps']:.1f} "
            f"(max {s['steps_max']}) | {cells}")
    print(line)
    Path(args.log).parent.mkdir(parents=True, exist_ok=True)
    with open(args.log, "a") as log:
        log.write(line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
