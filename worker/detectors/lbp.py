"""scikit-image's multi-block LBP frontal face cascade (``skimage.feature.Cascade``)."""

from __future__ import annotations

from typing import ClassVar

import cv2
import numpy as np
import skimage.color
import skimage.data
import skimage.feature

from worker.detectors.base import Detector, Face

Box = tuple[float, float, float, float]


def _iou(a: Box, b: Box) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area - inter)


def merge_boxes(boxes: list[Box], iou: float = 0.3) -> list[Box]:
    """Replace every group of boxes overlapping by more than ``iou`` with their union."""
    boxes = list(boxes)
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                if _iou(a, b) > iou:
                    boxes[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return boxes


class LbpDetector(Detector):
    """LBP cascade ``detect_multi_scale`` on the image downscaled to at most ``max_side``.

    The cascade reports several overlapping windows per face; those are merged so the count
    is faces. ``min_size`` is 32 px (not the cascade's 24 px window) and ``min_neighbors`` 6:
    smaller / less supported windows are mostly false positives (e.g. on astronaut's helmet).
    """

    name: ClassVar[str] = "lbp"
    description: ClassVar[str] = "scikit-image MB-LBP frontal face cascade"
    max_side: ClassVar[int] = 640
    scale_factor: ClassVar[float] = 1.2
    step_ratio: ClassVar[float] = 1.0
    min_size: ClassVar[int] = 32
    min_neighbors: ClassVar[int] = 6
    merge_iou: ClassVar[float] = 0.3

    def __init__(self) -> None:
        self._cascade = skimage.feature.Cascade(skimage.data.lbp_frontal_face_cascade_filename())

    def detect(self, rgb: np.ndarray) -> list[Face]:
        h, w = rgb.shape[:2]
        scale = min(1.0, self.max_side / max(h, w, 1))
        sh, sw = round(h * scale), round(w * scale)
        if min(sh, sw) < self.min_size:
            return []
        gray = skimage.color.rgb2gray(rgb).astype(np.float32)  # as the cascade converts it
        if scale < 1.0:
            gray = cv2.resize(gray, (sw, sh), interpolation=cv2.INTER_AREA)
        windows = self._cascade.detect_multi_scale(
            gray,
            scale_factor=self.scale_factor,
            step_ratio=self.step_ratio,
            min_size=(self.min_size, self.min_size),
            max_size=(sh, sw),
            min_neighbor_number=self.min_neighbors,
        )
        boxes = [(d["c"], d["r"], d["c"] + d["width"], d["r"] + d["height"]) for d in windows]
        return [
            Face(x0 / scale, y0 / scale, min(x1 / scale, w), min(y1 / scale, h))
            for x0, y0, x1, y1 in merge_boxes(boxes, self.merge_iou)
        ]
