"""dlib's HOG + linear SVM frontal face detector (face_recognition's default ``model="hog"``)."""

from __future__ import annotations

from typing import ClassVar

import dlib
import numpy as np

from worker.detectors.base import Detector, Face


class DlibHogDetector(Detector):
    """``dlib.get_frontal_face_detector()`` as ``face_recognition.face_locations`` runs it.

    One upsampling pass and dlib's default threshold 0 (so weak, low-score hits count too).
    """

    name: ClassVar[str] = "dlib_hog"
    description: ClassVar[str] = "dlib HOG frontal face detector (upsample 1)"
    upsample: ClassVar[int] = 1
    adjust_threshold: ClassVar[float] = 0.0

    def __init__(self) -> None:
        self._detector = dlib.get_frontal_face_detector()

    def detect(self, rgb: np.ndarray) -> list[Face]:
        h, w = rgb.shape[:2]
        if h == 0 or w == 0:
            return []
        rects, scores, _ = self._detector.run(
            np.ascontiguousarray(rgb, dtype=np.uint8), self.upsample, self.adjust_threshold
        )
        faces = []
        for rect, score in zip(rects, scores, strict=True):
            x0, y0 = max(rect.left(), 0), max(rect.top(), 0)
            x1, y1 = min(rect.right() + 1, w), min(rect.bottom() + 1, h)
            if x1 > x0 and y1 > y0:
                faces.append(Face(float(x0), float(y0), float(x1), float(y1), float(score)))
        return faces
