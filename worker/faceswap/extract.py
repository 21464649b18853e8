"""Extraction, the first stage of every face-swap tool: find the face, then its landmarks.

The detector is a ``worker.detectors`` plugin that the protection never optimises against
(``worker.attack.profiles.SURROGATES`` are refused), so the clip is a black-box test. Like the
tools, the largest face is used; when the detector finds none, the swap cannot start.
"""

from __future__ import annotations

from dataclasses import dataclass

import dlib
import numpy as np

from worker import detectors
from worker.attack.profiles import SURROGATES
from worker.faceswap.models import shape_predictor

#: Detectors whose boxes the 68-point predictor was trained on (dlib's), less the surrogates:
#: dlib's MMOD CNN is one since 2026-11-30, which leaves HOG.
EXTRACTION_DETECTORS: tuple[str, ...] = tuple(
    name for name in ("dlib_hog", "dlib_mmod") if name not in SURROGATES)
DEFAULT_DETECTOR = "dlib_hog"

#: Landmark index ranges of the 68-point layout.
JAW = slice(0, 17)
LEFT_EYE = slice(36, 42)
RIGHT_EYE = slice(42, 48)


class SurrogateDetectorError(ValueError):
    """A surrogate detector was asked for: the clip would not be a black-box test."""


@dataclass(frozen=True)
class ExtractedFace:
    """The face a swap tool would take: its box, 68 landmarks (x, y) and the detector used."""

    box: tuple[float, float, float, float]
    landmarks: np.ndarray          # (68, 2) float32, pixels
    detector: str
    faces_found: int               # all faces the detector found (the largest is used)

    @property
    def eye_distance(self) -> float:
        """Pixels between the eye centres (the face's scale)."""
        left = self.landmarks[LEFT_EYE].mean(axis=0)
        right = self.landmarks[RIGHT_EYE].mean(axis=0)
        return float(np.linalg.norm(right - left))


def landmarks_in_box(rgb: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """The 68 landmarks of the face in ``box`` (x0, y0, x1, y1), as a (68, 2) float32 array."""
    rect = dlib.rectangle(*(round(v) for v in box))
    shape = shape_predictor()(np.ascontiguousarray(rgb, dtype=np.uint8), rect)
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


class FaceExtractor:
    """Detector + 68-point landmarks, as faceswap/DeepFaceLab extraction runs them."""

    def __init__(self, detector: str = DEFAULT_DETECTOR) -> None:
        if detector in SURROGATES:
            raise SurrogateDetectorError(
                f"{detector!r} is an attack surrogate; a clip must use one of "
                f"{', '.join(EXTRACTION_DETECTORS)}")
        if detector not in EXTRACTION_DETECTORS:
            raise ValueError(f"unknown clip detector {detector!r}; "
                             f"known: {', '.join(EXTRACTION_DETECTORS)}")
        self.detector_name = detector
        self._detector = detectors.load(detector)

    def extract(self, rgb: np.ndarray) -> ExtractedFace | None:
        """The largest face and its landmarks, or None when the detector finds no face."""
        faces = self._detector.detect(rgb)
        if not faces:
            return None
        face = max(faces, key=lambda f: f.width * f.height)
        box = (face.x0, face.y0, face.x1, face.y1)
        return ExtractedFace(box, landmarks_in_box(rgb, box), self.detector_name, len(faces))
