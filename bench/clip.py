"""Deepfake comparison clip benchmark (issue 5) over ``../shared/faces/small`` (or ``--all``).

For every photo: protect it at the default strength, render the comparison clip (original |
protected), and run the same face swap on the protected photo after a JPEG q85 re-save. Reports
per photo whether the extraction detector found a face, the identity distance of the swapped
faces to the user's original face (median of 8 frames; below 0.6 = same person, i.e. the
deepfake "worked"), the plain distance between the faces of the original and the protected
photo (no swap), seconds per clip and its size.

    .venv/bin/python -m bench.clip --out docs/benchmarks.md [--all] [--limit N] [--strengths 3,5]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

from bench.protection import FACES
from bench.sections import write_section

HEADER = "## Deepfake clip (issue 5)"
READING = (
    "Reading it: dlib HOG is a black-box detector here (never optimised against), so the clip "
    "shows how the protection transfers to it. Where it still finds the face, the swap carries "
    "the user's identity almost as well as from the original (the perturbation is aimed at "
    "detectors, not at landmarks or recognition); where it misses the face, the tool stops."
)


def photos(everything: bool, limit: int | None) -> list[tuple[str, np.ndarray]]:
    from worker.imageio import decode_image

    folder = FACES if everything else FACES / "small"
    files = sorted(p for p in folder.glob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    return [(p.name, decode_image(p.read_bytes()).rgb) for p in files[:limit]]


def measure(name: str, rgb: np.ndarray, engine, strength: int, detector: str) -> dict:
    """One photo: protection, the clip, and the swap after JPEG q85."""
    from worker.faceswap import identity, target
    from worker.faceswap.clip import deepfake, make_clip, work_copy
    from worker.faceswap.extract import FaceExtractor
    from worker.faceswap.swapper import make_swapper
    from worker.imageio import jpeg_roundtrip

    started = time.perf_counter()
    protected = engine.protect(rgb, strength).image
    protect_s = time.perf_counter() - started
    wall, cpu = time.perf_counter(), time.process_time()
    clip = make_clip(rgb, protected, detector=detector)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    extractor = FaceExtractor(detector)
    original, shared = work_copy(rgb), work_copy(jpeg_roundtrip(protected, 85))
    face, face_jpeg = extractor.extract(original), extractor.extract(shared)
    reference = identity.descriptor(original, face.landmarks) if face else None
    _, jpeg_distances = deepfake(shared, face_jpeg, target.frames(fps=5, seconds=1.6),
                                 make_swapper(), reference)
    face_protected = extractor.extract(work_copy(protected))
    plain = (identity.distance(reference, identity.descriptor(work_copy(protected),
                                                              face_protected.landmarks))
             if reference is not None and face_protected is not None else None)
    left, right = clip.sides
    return {
        "photo": name, "strength": strength,
        "faces": (left.faces_found, right.faces_found, face_jpeg.faces_found if face_jpeg else 0),
        "original": left.distance, "protected": right.distance,
        "jpeg85": float(np.median(jpeg_distances)) if jpeg_distances else None,
        "plain": plain, "protect_s": protect_s, "clip_s": wall, "clip_cpu_s": cpu,
        "mb": len(clip.video) / 1e6, "size": f"{clip.width}x{clip.height}",
        "frames": clip.frames, "fps": clip.fps,
    }


def _d(value: float | None) -> str:
    return "no face" if value is None else f"{value:.2f}"


def _share(rows: list[dict], key: str) -> str:
    made = sum(r[key] is not None and r[key] < 0.6 for r in rows)
    return f"{made}/{len(rows)}"


def _mean(rows: list[dict], key: str) -> str:
    values = [r[key] for r in rows if r[key] is not None]
    return f"{np.mean(values):.2f} (n={len(values)})" if values else "-"


def render(rows: list[dict], detector: str, argv: str) -> str:
    first = rows[0]
    out = [
        HEADER, "",
        f"Command: `.venv/bin/python -m bench.clip{(' ' + argv) if argv else ''}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores shared with other jobs, "
        f"Python {platform.python_version()}; {time.strftime('%Y-%m-%d')}  ",
        f"Photos: `{'shared/faces' if '--all' in argv else 'shared/faces/small'}` "
        f"({len({r['photo'] for r in rows})}); "
        f"extraction detector `{detector}` (not a surrogate); "
        f"clip {first['size']}, {first['frames']} frames at {first['fps']} fps.",
        "",
        "Identity distance: dlib face-recognition descriptor of the user's face in the original "
        "photo vs the swapped face in the output (median of 8 frames); below 0.60 the swap "
        "still looks like the user, i.e. the deepfake worked. *no face*: the extraction "
        "detector found no face, so the tool stops. *plain*: original face vs the face in the "
        "protected photo, no swap.",
        "",
        "| photo | strength | faces found (orig / prot / jpeg85) | swap from original "
        "| from protected | from protected, JPEG q85 | plain | protect s | clip s (CPU s) | MB |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| `{r['photo']}` | {r['strength']} | {' / '.join(map(str, r['faces']))} | "
            f"{_d(r['original'])} | "
            f"{_d(r['protected'])} | {_d(r['jpeg85'])} | {_d(r['plain'])} | "
            f"{r['protect_s']:.0f} | {r['clip_s']:.1f} ({r['clip_cpu_s']:.1f}) | "
            f"{r['mb']:.2f} |")
    out.append("")
    for strength in sorted({r["strength"] for r in rows}):
        level = [r for r in rows if r["strength"] == strength]
        out.append(
            f"- Strength {strength}: deepfake worked (distance < 0.60) from the original "
            f"{_share(level, 'original')}, from the protected photo {_share(level, 'protected')},"
            f" after JPEG q85 {_share(level, 'jpeg85')}; mean distance original "
            f"{_mean(level, 'original')}, protected {_mean(level, 'protected')}, JPEG q85 "
            f"{_mean(level, 'jpeg85')}.")
    out.append(
        f"- Clip: {np.mean([r['clip_s'] for r in rows]):.1f} s wall "
        f"({np.mean([r['clip_cpu_s'] for r in rows]):.1f} s CPU) per clip on top of the "
        f"protection, at most {max(r['mb'] for r in rows):.2f} MB.")
    out += ["", READING]
    return "\n".join(out) + "\n"


def main() -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="bench-out/clip.md",
                        help="markdown file whose 'Deepfake clip (issue 5)' section is written")
    parser.add_argument("--all", action="store_true", help="every photo of shared/faces")
    parser.add_argument("--limit", type=int, help="at most this many photos")
    parser.add_argument("--strengths", default="3", help="protection strengths, e.g. 3,5")
    parser.add_argument("--detector", default="dlib_hog",
                        help="extraction detector (never a surrogate)")
    args = parser.parse_args()
    selected = photos(args.all, args.limit)
    if not selected:
        print(f"skipped: no photos under {FACES} (the shared evaluation set is absent)")
        return 0
    from worker.attack.engine import ProtectionEngine

    strengths = [int(s) for s in args.strengths.split(",")]
    rows = []
    with ProtectionEngine() as engine:
        for strength in strengths:
            for name, rgb in selected:
                rows.append(measure(name, rgb, engine, strength, args.detector))
                print(rows[-1], flush=True)
    argv = " ".join(a for a in (
        "--all" if args.all else "", f"--limit {args.limit}" if args.limit else "",
        f"--strengths {args.strengths}" if args.strengths != "3" else "",
        f"--detector {args.detector}" if args.detector != "dlib_hog" else "") if a)
    section = render(rows, args.detector, argv)
    write_section(Path(args.out), HEADER, section)
    print(section)
    print(f"wrote the '{HEADER[3:]}' section of {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
