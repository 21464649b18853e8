"""The ``clip`` command of ``python -m worker`` (wired in ``worker.cli``):

    python -m worker clip [INPUT] -o clip.mp4 [-s 1..5] [--lang ko] [--report REPORT.json]
    python -m worker clip INPUT --protected PROTECTED.png -o clip.mp4   # skip the protection

Protects INPUT (default: the packaged sample) and renders the deepfake comparison clip: the
same face swap made from the original (left) and from the protected photo (right).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from worker.faceswap.extract import EXTRACTION_DETECTORS


def add_command(sub: argparse._SubParsersAction, default_strength: int) -> None:
    """Add ``clip`` to ``python -m worker``'s parser."""
    clip = sub.add_parser("clip", help="protect a photo and render the deepfake comparison MP4")
    clip.add_argument("input", nargs="?", help="image file (default: the packaged sample)")
    clip.add_argument("-o", "--output", default="out/clip.mp4", help="output MP4 path")
    clip.add_argument("-s", "--strength", type=int, default=default_strength,
                      choices=range(1, 6), metavar="1..5", help="protection strength")
    clip.add_argument("--lang", default="en", help="caption language: en or ko (Hangul font)")
    clip.add_argument("--report", help="write the per-side outcome and distances as JSON here")
    clip.add_argument("--seed", type=int, default=0, help="random seed of the protection")
    clip.add_argument("--protected", help="an already protected version of INPUT: no protection")
    clip.add_argument("--detector", choices=EXTRACTION_DETECTORS,
                      help="extraction detector (default: config.toml [faceswap])")


def run(args: argparse.Namespace) -> int:
    """Run the ``clip`` command; 2 on unreadable input."""
    from common.jobs import ClipRequest
    from worker.cli import sample_image_bytes
    from worker.faceswap.settings import faceswap_config
    from worker.imageio import ImageError, decode_image

    data = Path(args.input).read_bytes() if args.input else sample_image_bytes()
    settings = faceswap_config()
    detector = args.detector or settings.detector
    if args.protected:
        from worker.faceswap.clip import make_clip

        try:
            original = decode_image(data).rgb
            protected = decode_image(Path(args.protected).read_bytes()).rgb
        except ImageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        clip = make_clip(original, protected, locale=args.lang, detector=detector,
                         swapper=settings.swapper)
        video, report = clip.video, clip.report()
    else:
        from worker.attack.engine import ProtectionEngine
        from worker.jobs import run_clip

        request = ClipRequest("cli", data, strength=args.strength, locale=args.lang,
                              seed=args.seed)
        with ProtectionEngine() as engine:
            result = run_clip(engine, request, detector=detector)
        if not result.ok:
            print(f"error: {result.error_detail or result.error}", file=sys.stderr)
            return 2
        video, report = result.video, result.report
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(video)
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(json.dumps(report, indent=2) + "\n")
    print(describe(report))
    print(f"wrote {output} ({len(video) / 1e6:.2f} MB)" + (f" and {args.report}"
                                                            if args.report else ""))
    return 0


def describe(report: dict) -> str:
    """One line per side: what the face swap did."""
    lines = [f"detector {report['detector']}, swapper {report['swapper']}, "
             f"{report['frames']} frames at {report['fps']} fps, {report['seconds']:.1f} s"]
    for side in ("original", "protected"):
        row = report[side]
        distance = row["identity_distance"]
        lines.append(f"{side:9}: {row['outcome']:12} faces {row['faces_found']}  identity "
                     + ("-" if distance is None else f"{distance:.3f}"))
    return "\n".join(lines)
