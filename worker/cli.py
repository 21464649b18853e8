"""Command line: ``python -m worker protect [INPUT] -o OUTPUT [-s 1..5] [--report REPORT.json]``;
``python -m worker [run] [--queue fast|slow] [--burst]`` runs the queue worker;
``python -m worker filters [--sheet OUT.jpg [INPUT]]`` / ``filter NAME [INPUT] -o OUT.png``;
``python -m worker clip [INPUT] -o CLIP.mp4 [-s 1..5] [--lang ko]`` (deepfake comparison clip).

Without INPUT, protects a sample photo that ships in a package (scikit-image's public-domain
NASA portrait ``astronaut``), so the engine can be tried on a fresh machine with no files.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

SAMPLE_NAME = "astronaut (scikit-image sample, public domain)"
CONFIG = Path(__file__).resolve().parents[1] / "config.toml"


def default_strength() -> int:
    """``[engine] default_strength`` from config.toml (3 when absent)."""
    import tomllib

    if CONFIG.exists():
        return int(tomllib.loads(CONFIG.read_text()).get("engine", {}).get("default_strength", 3))
    return 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m worker", description=__doc__)
    sub = parser.add_subparsers(dest="command")  # no command: `run`
    parser.set_defaults(queue="fast", burst=False)
    run = sub.add_parser("run", help="run the queue worker (the default command)")
    run.add_argument("--queue", choices=("fast", "slow"), default="fast",
                     help="which queue to serve: fast (protection) or slow (clips)")
    run.add_argument("--burst", action="store_true", help="exit once the queue is empty")
    protect = sub.add_parser("protect", help="protect one photo and write a lossless PNG")
    protect.add_argument("input", nargs="?", help="image file (default: the packaged sample)")
    protect.add_argument("-o", "--output", default="out/protected.png", help="output PNG path")
    protect.add_argument("-s", "--strength", type=int, default=default_strength(),
                         choices=range(1, 6), metavar="1..5",
                         help="protection strength (default: config.toml, 3)")
    protect.add_argument("--report", help="write the verification report as JSON here")
    protect.add_argument("--seed", type=int, default=0, help="random seed (deterministic output)")
    protect.add_argument("--filter", help="apply this filter first (names: `filters`)")
    from worker.filters.commands import add_commands  # `filters`, `filter` (issue 4)

    add_commands(sub)
    from worker.faceswap.commands import add_command as add_clip  # `clip` (issue 5)

    add_clip(sub, default_strength())
    return parser


def sample_image_bytes() -> bytes:
    """The packaged sample photo, encoded as PNG."""
    from skimage import data

    from worker.imageio import encode_png

    return encode_png(data.astronaut())


def protect_command(args: argparse.Namespace) -> int:
    from worker.attack.engine import ProtectionEngine
    from worker.imageio import ImageError, decode_image, encode_png

    data = Path(args.input).read_bytes() if args.input else sample_image_bytes()
    try:
        decoded = decode_image(data)
    except ImageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rgb = decoded.rgb
    if args.filter:  # issue 4: filter first, so the protection is computed on what is sent
        from worker import filters

        try:
            rgb = filters.apply(args.filter, rgb)
        except filters.UnknownFilterError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    with ProtectionEngine() as engine:
        result = engine.protect(rgb, args.strength, seed=args.seed)
    report = {"input": args.input or SAMPLE_NAME, "notes": list(decoded.notes),
              "filter": args.filter, **result.report}
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(encode_png(result.image))
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(json.dumps(report, indent=2) + "\n")
    print(describe(report))
    print(f"wrote {output}" + (f" and {args.report}" if args.report else ""))
    return 0


def _on_faces(report: dict) -> str:
    if report.get("face_ssim") is None:
        return ""
    return (f" (on the faces: SSIM {report['face_ssim']:.3f}, PSNR {report['face_psnr']:.1f} dB,"
            f" colour difference ΔE00 {report['face_delta_e']:.1f})")


def describe(report: dict) -> str:
    """A few human lines about a report."""
    lines = [
        f"strength {report['strength']}: {report['faces']} face(s) on the original; "
        f"SSIM {report['ssim']:.3f}, PSNR {report['psnr']:.1f} dB{_on_faces(report)}, "
        f"{report['seconds']:.1f} s",
        f"{'detector':16} {'role':10} original protected jpeg85 half",
    ]
    for name, row in report["detectors"].items():
        lines.append(
            f"{name:16} {row['role']:10} {row['original']:8} {row['protected']:9} "
            f"{row['jpeg85']:6} {row['half']:4}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    if args.command in (None, "run"):
        from worker.service import run

        logging.getLogger("worker.service").setLevel(logging.INFO)  # arq's INFO lines show args
        return run(args.queue, burst=args.burst)
    if args.command == "protect":
        return protect_command(args)
    if args.command == "clip":
        from worker.faceswap.commands import run as clip_command

        return clip_command(args)
    if args.command in ("filters", "filter"):
        from worker.filters.commands import run as filter_command

        return filter_command(args)
    return 2
