"""Protection efficacy / quality / speed benchmark over ``../shared/faces`` (or the sample).

For every strength profile (and two baselines of uniform random noise: filling the default
strength's per-pixel budget, and at that strength's PSNR on each photo) it protects each photo
and reports, per detector, the share of the faces that detector found on the original that it
still finds on the protected image, after JPEG q85 and after a 0.5x downscale; plus SSIM (whole
photo, and face boxes only), PSNR, seconds per megapixel (of an engine warmed up as a worker
starts: ``ProtectionEngine.warm_up``) and peak RSS.

    .venv/bin/python -m bench.protection --out docs/benchmarks.md [--strengths 1,3,5] [--limit N]

With ``--models PATH.toml`` (``[[detectors.models]]`` entries, as in config.toml) each strength
gets two rows: built-in surrogates only (every declared model reported as an evaluator), and
built-in + the declared surrogates (issue 8: what an operator's SCRFD/RetinaFace files add).
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import platform
import resource
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.sections import write_section

FACES = Path(__file__).resolve().parents[1] / ".." / "shared" / "faces"
VARIANTS = ("protected", "jpeg85", "half")


def photos(limit: int | None, small: bool) -> list[tuple[str, np.ndarray]]:
    from worker.imageio import decode_image

    folder = FACES / "small" if small else FACES
    files = sorted(p for p in folder.glob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if not files:
        from skimage import data

        return [("astronaut (packaged sample)", data.astronaut())]
    return [(p.name, decode_image(p.read_bytes()).rgb) for p in files[:limit]]


def named_photos(names: list[str]) -> list[tuple[str, np.ndarray]]:
    """The photos of ``../shared/faces`` with these file names (those present there), or the
    packaged sample when none is."""
    from worker.imageio import decode_image

    found = [(name, decode_image((FACES / name).read_bytes()).rgb)
             for name in names if (FACES / name).is_file()]
    if found:
        return found
    from skimage import data

    return [("astronaut (packaged sample)", data.astronaut())]


def photo_source(small: bool) -> str:
    """Where ``photos`` took the photos from, for the table's header."""
    if not FACES.is_dir():
        return "the packaged sample"
    return "`../shared/faces/small`" if small else "`../shared/faces`"


def noise_baseline(
    engine, rgb: np.ndarray, level: int, seed: int, psnr: float | None = None
) -> dict:
    """Uniform random noise filling the same per-pixel budget the attack may use; with
    ``psnr``, the same noise scaled to that PSNR (the attack's on this photo: the same
    energy on the same pixels, so a comparison at equal visibility rather than equal L-inf)."""
    from worker.attack.masks import budget_map
    from worker.attack.profiles import profile_for

    profile = profile_for(level)
    started = time.perf_counter()
    original, faces = engine.find_faces(rgb)
    budget = budget_map(rgb, faces, profile)
    noise = np.random.default_rng(seed).uniform(-1, 1, rgb.shape).astype(np.float32) * budget
    if psnr is not None:
        noise = scaled_to_psnr(noise, psnr)
    noisy = np.clip(np.rint(rgb + noise), 0, 255).astype(np.uint8)
    report = engine.verifier.report(rgb, noisy, original, faces)
    report["seconds"] = time.perf_counter() - started
    return report


def scaled_to_psnr(noise: np.ndarray, psnr: float) -> np.ndarray:
    """``noise`` scaled so that adding it to an image gives that PSNR (dB, 8-bit peak), before
    rounding and clipping; all-zero noise stays zero."""
    energy = float(np.mean(np.square(noise, dtype=np.float64)))
    if energy == 0:
        return noise
    return (noise * np.sqrt(255.0**2 / 10 ** (psnr / 10) / energy)).astype(noise.dtype)


def summarise(reports: list[tuple[np.ndarray, dict]]) -> dict:
    kept = defaultdict(lambda: defaultdict(int))
    roles = {}
    for _, rep in reports:
        for name, row in rep["detectors"].items():
            roles[name] = row["role"]
            kept[name]["original"] += row["original"]
            for v in VARIANTS:
                kept[name][v] += row["kept"][v]
    megapixels = sum(img.shape[0] * img.shape[1] for img, _ in reports) / 1e6
    on_faces = [r["face_ssim"] for _, r in reports if r.get("face_ssim") is not None]
    colour = [r["face_delta_e"] for _, r in reports if r.get("face_delta_e") is not None]
    return {
        "roles": roles,
        "kept": kept,
        "ssim": float(np.mean([r["ssim"] for _, r in reports])),
        "ssim_min": float(np.min([r["ssim"] for _, r in reports])),
        "psnr": float(np.mean([r["psnr"] for _, r in reports])),
        # SSIM over the face boxes only, photos with faces: what a person looks at
        "face_ssim": float(np.mean(on_faces)) if on_faces else float("nan"),
        "face_ssim_min": float(np.min(on_faces)) if on_faces else float("nan"),
        # mean CIEDE2000 colour difference over the face boxes, and the worst photo's
        "face_delta_e": float(np.mean(colour)) if colour else float("nan"),
        "face_delta_e_max": float(np.max(colour)) if colour else float("nan"),
        "s_per_mp": sum(r["seconds"] for _, r in reports) / megapixels,
        # optimisation steps per photo (none for the noise rows)
        "steps": float(np.mean([r.get("steps", 0) for _, r in reports])),
        "steps_max": max(r.get("steps", 0) for _, r in reports),
        "faces": sum(r["faces"] for _, r in reports),
    }


def pct(kept: dict, variant: str) -> str:
    return f"{100 * kept[variant] / kept['original']:.0f}" if kept["original"] else "–"


def render(rows: list[tuple[str, dict]], args: argparse.Namespace, n_photos: int) -> str:
    first = rows[0][1]
    names = list(first["roles"])
    out = [
        section_header(args),
        "",
        f"Command: `.venv/bin/python -m bench.protection {args.argv}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, {platform.python_version()}, "
        f"no GPU; {time.strftime('%Y-%m-%d')}  ",
        f"Photos: {n_photos} ({photo_source(args.small)}), "
        f"faces found on the originals (union of all detectors): {first['faces']}",
        "",
        "Cells: % of the faces a detector found on the original that it still finds on the "
        "protected image / after JPEG q85 / after 0.5x downscale. Lower is better. "
        "Surrogates are optimised against (white-box); evaluators never are (black-box). "
        "Face SSIM: SSIM over the face boxes found on the original only (the attack changes "
        "nothing else), mean over the photos with faces. Face ΔE: mean CIEDE2000 colour "
        "difference over the same boxes (about 1 is just noticeable side by side).",
        "",
        "| profile | SSIM (min) | face SSIM (min) | face ΔE (max) | PSNR dB | s/MP | "
        + " | ".join(f"{n} ({first['roles'][n][0]})" for n in names) + " |",
        "|---|---|---|---|---|---|" + "---|" * len(names),
    ]
    for label, s in rows:
        cells = [
            f"{pct(s['kept'][n], 'protected')} / {pct(s['kept'][n], 'jpeg85')} / "
            f"{pct(s['kept'][n], 'half')}"
            for n in names
        ]
        out.append(
            f"| {label} | {s['ssim']:.3f} ({s['ssim_min']:.3f}) | "
            f"{s['face_ssim']:.3f} ({s['face_ssim_min']:.3f}) | "
            f"{s['face_delta_e']:.1f} ({s['face_delta_e_max']:.1f}) | {s['psnr']:.1f} | "
            f"{s['s_per_mp']:.1f} | " + " | ".join(cells) + " |"
        )
    base = {n: s["kept"][n]["original"] for n in names}
    out += ["", "Faces found on the originals per detector: "
            + ", ".join(f"{n} {base[n]}" for n in names) + ".  "]
    peak = f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    children = children_peak_mb()
    if children:
        most = f"{max(children):.0f} MB"
        peak += (f", plus one detector process (dlib's CNN) of {most}" if len(children) == 1
                 else f", plus {len(children)} detector processes (dlib's CNN) of at most "
                 f"{most} each")
    out.append(f"Peak RSS of the benchmark process: {peak}.")
    return "\n".join(out) + "\n"


def children_peak_mb() -> list[float]:
    """Peak RSS (MB) of each running child process (the report's detector processes)."""
    peaks = []
    for child in multiprocessing.active_children():
        try:
            status = Path(f"/proc/{child.pid}/status").read_text()
        except OSError:
            continue
        peaks += [int(line.split()[1]) / 1024 for line in status.splitlines()
                  if line.startswith("VmHWM:")]
    return peaks


def main() -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="bench-out/protection.md")
    parser.add_argument("--strengths", default="1,2,3,4,5")
    parser.add_argument("--limit", type=int, default=None, help="only the first N photos")
    parser.add_argument("--small", action="store_true", help="use shared/faces/small")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--models", default=None, metavar="PATH.toml",
                        help="declared ONNX detectors: rows without and with their surrogates")
    args = parser.parse_args()
    args.argv = " ".join(
        f"{k} {v}" for k, v in [
            ("--strengths", args.strengths), ("--limit", args.limit or ""),
            ("--models", args.models or ""),
        ] if v
    ) + (" --small" if args.small else "") + (" --no-baseline" if args.no_baseline else "")
    if args.models:
        os.environ["DFB_CONFIG"] = str(Path(args.models).resolve())

    from worker.attack.engine import ProtectionEngine
    from worker.attack.profiles import DEFAULT_STRENGTH, profile_for

    setups = engine_setups(bool(args.models))
    with contextlib.ExitStack() as stack:
        engines = {label: stack.enter_context(ProtectionEngine(surrogates, evaluators))
                   for label, (surrogates, evaluators) in setups.items()}
        for engine in engines.values():  # as a worker starts: s/MP is a warm worker's
            engine.warm_up()
        images = photos(args.limit, args.small)
        rows = []
        if not args.no_baseline:
            engine = next(iter(engines.values()))
            reports = [(rgb, noise_baseline(engine, rgb, DEFAULT_STRENGTH, i))
                       for i, (_, rgb) in enumerate(images)]
            rows.append((f"random noise, strength {DEFAULT_STRENGTH} budget", summarise(reports)))
        for level in (int(s) for s in args.strengths.split(",")):
            for label, engine in engines.items():
                profile = replace(profile_for(level), surrogates=setups[label][0])
                reports = []
                for name, rgb in images:
                    rep = engine.protect(rgb, profile).report
                    reports.append((rgb, rep))
                    print(f"strength {level}{label} {name}: ssim {rep['ssim']:.3f} "
                          f"{rep['seconds']:.1f}s {rep['summary']}", flush=True)
                rows.append((f"strength {level}{label}", summarise(reports)))
                write_section(Path(args.out), section_header(args), render(rows, args, len(images)))
                first = label == next(iter(engines))
                if level == DEFAULT_STRENGTH and not args.no_baseline and first:
                    equal = [(rgb, noise_baseline(engine, rgb, level, i, psnr=rep["psnr"]))
                             for i, (rgb, rep) in enumerate(reports)]
                    rows.append((f"random noise at strength {level}'s PSNR", summarise(equal)))
                    write_section(Path(args.out), section_header(args),
                                  render(rows, args, len(images)))
    print(render(rows, args, len(images)))
    return 0


def section_header(args: argparse.Namespace) -> str:
    """This run's section of the benchmarks file (other sections are left as they are)."""
    if args.models:
        return "## Protection with declared detector models (issue 8)"
    return "## Protection (issue 2)"


def declared_as_evaluators() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(surrogates, evaluators): the built-in surrogates, and every model the config file in
    use declares added to the built-in evaluators, whatever its role (black-box columns)."""
    from worker import models
    from worker.attack.profiles import EVALUATORS, SURROGATES

    return SURROGATES, EVALUATORS + tuple(models.declared_models())


def engine_setups(with_models: bool) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """Row label suffix -> (surrogates, evaluators). With declared models: the built-in
    surrogates alone (declared models all evaluators), then with the declared surrogates."""
    from worker import models
    from worker.attack.profiles import default_evaluators, default_surrogates

    if not with_models:
        return {"": (default_surrogates(), default_evaluators())}
    extra = models.declared_names("surrogate")
    if not extra:
        raise SystemExit("--models declares no model with role = \"surrogate\"")
    return {
        ", built-in surrogates": declared_as_evaluators(),
        f", + {' + '.join(extra)} as surrogate": (default_surrogates(), default_evaluators()),
    }


if __name__ == "__main__":
    raise SystemExit(main())
