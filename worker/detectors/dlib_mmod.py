"""dlib's MMOD CNN face detector (face_recognition's ``model="cnn"``)."""

from __future__ import annotations

from typing import ClassVar

import cv2
import dlib
import face_recognition_models
import numpy as np

from worker.detectors.base import Detector, Face


class DlibMmodDetector(Detector):
    """``dlib.cnn_face_detection_model_v1`` without upsampling.

    The CNN costs several seconds per megapixel on a CPU, so images whose longest side exceeds
    ``max_side`` are downscaled first and the boxes mapped back. dlib raises on images too
    small for its filters, so those (far below the ~80 px faces it can find) return no faces.
    """

    name: ClassVar[str] = "dlib_mmod"
    description: ClassVar[str] = "dlib MMOD CNN face detector (upsample 0)"
    upsample: ClassVar[int] = 0
    max_side: ClassVar[int] = 1024
    min_side: ClassVar[int] = 16
    holds_gil: ClassVar[bool] = True  # dlib's Python binding of its CNN never releases it

    def __init__(self) -> None:
        path = face_recognition_models.cnn_face_detector_model_location()
        self._detector = dlib.cnn_face_detection_model_v1(path)

    def detect(self, rgb: np.ndarray) -> list[Face]:
        h, w = rgb.shape[:2]
        image = np.ascontiguousarray(rgb, dtype=np.uint8)
        scale = min(1.0, self.max_side / max(h, w))
        if scale < 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        if min(image.shape[:2]) < self.min_side:
            return []
        faces = []
        for det in self._detector(image, self.upsample):
            r = det.rect
            x0, y0 = max(r.left() / scale, 0.0), max(r.top() / scale, 0.0)
            x1, y1 = min((r.right() + 1) / scale, w), min((r.bottom() + 1) / scale, h)
            if x1 > x0 and y1 > y0:
                faces.append(Face(x0, y0, x1, y1, float(det.confidence)))
        return faces
