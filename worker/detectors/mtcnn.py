"""MTCNN as the ``mtcnn`` package runs it (P-, R- and O-Net, default thresholds)."""

from __future__ import annotations

import numpy as np

from worker.detectors.base import Detector, Face


class MtcnnDetector(Detector):
    name = "mtcnn"
    description = "MTCNN (mtcnn 1.0 package, TensorFlow), as used by faceswap and FaceNet tools"

    def __init__(self) -> None:
        from mtcnn import MTCNN

        self._mtcnn = MTCNN()

    def detect(self, rgb: np.ndarray) -> list[Face]:
        if min(rgb.shape[:2]) < 12:
            return []
        found = self._mtcnn.detect_faces(np.ascontiguousarray(rgb), box_format="xyxy")
        return [Face(*map(float, f["box"]), score=float(f["confidence"])) for f in found]
