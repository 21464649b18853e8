"""The verification report: which detectors still find faces before and after protection.

Every detector runs as its own library runs it, on the original, the protected image, the
protected image re-saved as JPEG q85 and the protected image downscaled 0.5x — what a chat app
or a deepfake tool's pre-processing does to a photo. Surrogates (optimised against, white-box)
and evaluators (never seen by the attack, black-box) are reported separately by ``role``.
"""

from __future__ import annotations

import numpy as np
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from worker import detectors
from worker.detectors.base import Face
from worker.detectors.processes import DetectorProcesses
from worker.imageio import jpeg_roundtrip, resize

#: Detectors look at most at this longest side (bigger photos are analysed on a downscaled copy).
ANALYSIS_SIDE = 1600
VARIANTS = ("protected", "jpeg85", "half")


def distinct_faces(found: list[Face], overlap: float = 0.3) -> list[Face]:
    """Merge boxes from several detectors into one box per face (largest box wins)."""
    merged: list[Face] = []
    for face in sorted(found, key=lambda f: -f.width * f.height):
        if all(_overlap(face, m) < overlap for m in merged):
            merged.append(face)
    return merged


def _overlap(a: Face, b: Face) -> float:
    """Intersection over the smaller box (tight and loose boxes of one face overlap fully)."""
    iw = max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0))
    ih = max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))
    smaller = min(a.width * a.height, b.width * b.height)
    return iw * ih / smaller if smaller > 0 else 0.0


def _kept(before: list[Face], after: list[Face], scale: float) -> int:
    after = [Face(f.x0 * scale, f.y0 * scale, f.x1 * scale, f.y1 * scale) for f in after]
    return sum(any(_overlap(b, a) >= 0.3 for a in after) for b in before)


def quality(
    original: np.ndarray, protected: np.ndarray, faces: list[Face]
) -> tuple[tuple[float, float], tuple[float, float] | None]:
    """(PSNR dB, SSIM) over the whole image, and over the ``faces`` boxes only (None without
    faces). Faces are a small part of most photos and, with a margin, the only part the attack
    changes, so the whole-image numbers flatter what a person sees on the face. One SSIM map
    serves both."""
    if np.array_equal(original, protected):
        return (99.0, 1.0), ((99.0, 1.0) if faces else None)
    psnr = peak_signal_noise_ratio(original, protected, data_range=255)
    if min(original.shape[:2]) < 7:
        ssim = 1.0 - np.abs(original.astype(float) - protected).mean() / 255
        return (float(psnr), float(ssim)), ((float(psnr), float(ssim)) if faces else None)
    ssim, ssim_map = structural_similarity(
        original, protected, channel_axis=2, data_range=255, full=True)
    region = face_region(original.shape[:2], faces)
    if not region.any():
        return (float(psnr), float(ssim)), None
    error = (original[region].astype(np.float64) - protected[region]) ** 2
    face_psnr = 99.0 if not error.any() else 10 * np.log10(255.0**2 / error.mean())
    return (float(psnr), float(ssim)), (float(min(face_psnr, 99.0)),
                                        float(ssim_map[region].mean()))


def colour_difference(
    original: np.ndarray, protected: np.ndarray, faces: list[Face]
) -> float | None:
    """Mean CIEDE2000 colour difference over the ``faces`` boxes (None without faces): how
    far the colours a person sees on the face moved (about 1: just noticeable side by side;
    over 5: plainly different). SSIM, per RGB channel, does not weigh colour as the eye does."""
    region = face_region(original.shape[:2], faces)
    if not region.any():
        return None
    before, after = (rgb2lab(image[region][None]) for image in (original, protected))
    return float(deltaE_ciede2000(before, after).mean())


def face_region(shape: tuple[int, ...], faces: list[Face]) -> np.ndarray:
    """Boolean mask of the pixels inside any of ``faces`` (boxes clipped to the image)."""
    height, width = shape[:2]
    region = np.zeros((height, width), bool)
    for f in faces:
        x0, y0 = max(0, int(np.floor(f.x0))), max(0, int(np.floor(f.y0)))
        x1, y1 = min(width, int(np.ceil(f.x1))), min(height, int(np.ceil(f.y1)))
        region[y0:y1, x0:x1] = True
    return region


class Verifier:
    """Runs the surrogate and evaluator detectors (loaded once) for the report.

    With ``processes`` > 0 the detectors that hold Python's GIL (dlib's CNN) run in that many
    child processes while the others run here, on every image at once.
    """

    def __init__(
        self, surrogates: tuple[str, ...], evaluators: tuple[str, ...], processes: int = 0
    ) -> None:
        if set(surrogates) & set(evaluators):
            raise ValueError("a detector cannot be both surrogate and evaluator")
        self.roles = {n: "surrogate" for n in surrogates} | {n: "evaluator" for n in evaluators}
        self.detectors = {name: detectors.load(name) for name in self.roles}
        isolated = tuple(n for n, d in self.detectors.items() if d.holds_gil)
        self.processes = DetectorProcesses(isolated, processes) if isolated and processes else None

    def start(self) -> None:
        """Start the detector processes (if any) before the first photo."""
        if self.processes:
            self.processes.start()

    def close(self) -> None:
        """Stop the detector processes (if any)."""
        if self.processes:
            self.processes.close()

    def detect_all(self, rgb: np.ndarray) -> dict[str, list[Face]]:
        """Faces per detector, in the coordinates of ``rgb``."""
        return self.detect_many({"image": rgb})["image"]

    def detect_many(self, images: dict[str, np.ndarray]) -> dict[str, dict[str, list[Face]]]:
        """Faces per image key and detector, in the coordinates of each image."""
        views = {}
        for key, rgb in images.items():
            scale = min(1.0, ANALYSIS_SIDE / max(rgb.shape[:2]))
            views[key] = (rgb if scale == 1.0 else resize(rgb, scale), scale)
        pending = {}
        if self.processes:
            pending = {(key, name): self.processes.submit(name, view)
                       for key, (view, _) in views.items() for name in self.processes.names}
        found: dict[str, dict[str, list[Face]]] = {key: {} for key in images}
        for key, (view, _) in views.items():
            for name, detector in self.detectors.items():
                if (key, name) not in pending:
                    found[key][name] = detector.detect(view)
        for (key, name), future in pending.items():
            found[key][name] = self.processes.result(future, name, views[key][0])
        return {
            key: {name: [Face(f.x0 / scale, f.y0 / scale, f.x1 / scale, f.y1 / scale, f.score)
                         for f in found[key][name]] for name in self.roles}
            for key, (_, scale) in views.items()
        }

    def report(
        self,
        original: np.ndarray,
        protected: np.ndarray,
        found_original: dict[str, list[Face]],
        faces: list[Face],
    ) -> dict:
        """The report dict (see README, "Report format")."""
        variants = {
            "protected": protected,
            "jpeg85": jpeg_roundtrip(protected, 85),
            "half": resize(protected, 0.5) if min(protected.shape[:2]) >= 2 else protected,
        }
        found = self.detect_many(variants)
        (psnr, ssim), on_faces = quality(original, protected, faces)
        delta_e = colour_difference(original, protected, faces)
        scale_back = {"protected": 1.0, "jpeg85": 1.0, "half": 2.0}
        table = {
            name: {
                "role": role,
                "original": len(found_original[name]),
                **{v: len(found[v][name]) for v in VARIANTS},
                # faces of the original that this detector still finds (boxes matched)
                "kept": {
                    v: _kept(found_original[name], found[v][name], scale_back[v]) for v in VARIANTS
                },
            }
            for name, role in self.roles.items()
        }
        return {
            "faces": len(faces),
            "face_boxes": [[round(v, 1) for v in (f.x0, f.y0, f.x1, f.y1)] for f in faces],
            "ssim": round(ssim, 4),
            "psnr": round(psnr, 2),
            # the same over the face boxes only (None without faces): what a person looks at
            "face_ssim": None if on_faces is None else round(on_faces[1], 4),
            "face_psnr": None if on_faces is None else round(on_faces[0], 2),
            "face_delta_e": None if delta_e is None else round(delta_e, 2),
            "detectors": table,
            "summary": summarise(table),
            "size": [int(original.shape[1]), int(original.shape[0])],
        }


def summarise(table: dict[str, dict]) -> dict:
    """How many detectors that found a face on the original find none afterwards."""
    finders = [n for n, row in table.items() if row["original"] > 0]
    hidden = {v: [n for n in finders if table[n][v] == 0] for v in VARIANTS}
    return {
        "detectors_finding_original": len(finders),
        **{f"hidden_{v}": len(names) for v, names in hidden.items()},
        "hidden_everywhere": len([n for n in finders if all(table[n][v] == 0 for v in VARIANTS)]),
    }


