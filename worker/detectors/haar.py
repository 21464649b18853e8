"""OpenCV's Viola-Jones Haar cascades: ``frontalface_default`` (an evaluator) and
``frontalface_alt2`` (the reference run of the ``haar_alt2`` surrogate)."""

from __future__ import annotations

from typing import ClassVar

import cv2
import numpy as np

from worker.detectors.base import Detector, Face


class HaarDetector(Detector):
    """Haar cascade on the equalised grayscale image, with the common default parameters."""

    name: ClassVar[str] = "haar"
    description: ClassVar[str] = "OpenCV Haar cascade, frontalface_default"
    scale_factor: ClassVar[float] = 1.1
    min_neighbors: ClassVar[int] = 5
    min_size: ClassVar[tuple[int, int]] = (20, 20)
    cascade_file: ClassVar[str] = "haarcascade_frontalface_default.xml"

    def __init__(self) -> None:
        path = cv2.data.haarcascades + self.cascade_file
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise FileNotFoundError(f"could not load Haar cascade {path}")

    def detect(self, rgb: np.ndarray) -> list[Face]:
        h, w = rgb.shape[:2]
        if h < self.min_size[1] or w < self.min_size[0]:
            return []
        gray = cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.uint8), cv2.COLOR_RGB2GRAY)
        boxes = self._cascade.detectMultiScale(
            cv2.equalizeHist(gray),
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=self.min_size,
        )
        return [
            Face(float(x), float(y), float(min(x + bw, w)), float(min(y + bh, h)))
            for x, y, bw, bh in boxes
        ]


class HaarAlt2Detector(HaarDetector):
    """Lienhart's ``frontalface_alt2`` cascade (tree stumps, 20x20 windows), same parameters."""

    name: ClassVar[str] = "haar_alt2"
    description: ClassVar[str] = "OpenCV Haar cascade, frontalface_alt2"
    cascade_file: ClassVar[str] = "haarcascade_frontalface_alt2.xml"
