"""Where the attack's own time goes: seconds per surrogate over one photo's steps.

``python -m bench.attack_time [--strength 3] [KEY=VALUE ...] [--photos PHOTO ...]``: a warm
default engine runs ``perturb`` on each photo of ``../shared/faces`` named, counting the
steps it took (fewer after an early stop, more with ``extra_steps``), and timing each
surrogate's loss-and-gradient calls and counting the steps on which its loss was 0 and those
it was not run on (``recheck_every``); ``KEY=VALUE`` overrides a profile field as in
``bench.profile_sweep``. Prints a markdown table (docs/benchmarks.md,
"the report's detectors side by side", "skipping fooled surrogates").
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from dataclasses import replace

from bench.profile_sweep import overrides
from bench.protection import named_photos

PHOTOS = ("deepface_couple.jpg", "deepface_img18.jpg", "dlib_2008_001322.jpg",
          "facerec_obama_and_biden.jpg", "deepface_img27.jpg")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("changes", nargs="*", metavar="key=value")
    parser.add_argument("--photos", nargs="+", default=list(PHOTOS))
    parser.add_argument("--strength", type=int, default=3)
    args = parser.parse_args()
    from worker.attack.engine import ProtectionEngine
    from worker.attack.profiles import profile_for

    profile = replace(profile_for(args.strength), **overrides(args.changes))
    with ProtectionEngine() as engine:
        engine.warm_up()
        # seconds, calls with loss 0, calls
        stats: dict[str, list[float]] = defaultdict(lambda: [0.0, 0, 0])
        for name, gradient in list(engine._gradients.items()):
            def timed(image, faces, gradient=gradient, name=name):
                started = time.perf_counter()
                loss, grad = gradient(image, faces)
                stats[name][1] += float(loss) <= 0.0
                stats[name][0] += time.perf_counter() - started
                stats[name][2] += 1
                return loss, grad
            engine._gradients[name] = timed
        names = list(engine._gradients)
        print(f"| photo | perturb | {' | '.join(names)} |\n|---|---|" + "---|" * len(names))
        for photo, rgb in named_photos(args.photos):
            _, faces = engine.find_faces(rgb)
            stats.clear()
            started = time.perf_counter()
            engine.perturb(rgb, faces, profile)
            steps = engine.steps_taken  # fewer after an early stop, more with extra steps
            cells = [f"{stats[n][0]:.1f}" + (f" ({stats[n][1]} zero)" if stats[n][1] else "")
                     + (f" ({skipped} skipped)" if (skipped := steps - stats[n][2]) else "")
                     for n in names]
            print(f"| `{photo}` | {time.perf_counter() - started:.1f} s, {steps} steps | "
                  f"{' | '.join(cells)} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
