"""Reference detectors (dlib HOG, dlib MMOD, OpenCV Haar, scikit-image LBP) run as shipped."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from worker.detectors import Detector, Face, load
from worker.detectors.lbp import merge_boxes

EVALUATORS = ["dlib_hog", "dlib_mmod", "haar", "lbp"]
#: Where the face is in skimage.data.astronaut() (x0, y0, x1, y1).
ASTRONAUT_FACE = (175, 55, 275, 180)
#: Known extra detections on astronaut: face_recognition's HOG setting (upsample 1, threshold 0)
#: also fires weakly (score ~0.12) on the mission patch at about (126, 335, 216, 426).
EXTRA_ON_ASTRONAUT = {"dlib_hog": 1}


def iou(face: Face, box: tuple[float, float, float, float]) -> float:
    iw = min(face.x1, box[2]) - max(face.x0, box[0])
    ih = min(face.y1, box[3]) - max(face.y0, box[1])
    inter = max(iw, 0) * max(ih, 0)
    return inter / (face.width * face.height + (box[2] - box[0]) * (box[3] - box[1]) - inter)


def gray_rgb(rgb: np.ndarray) -> np.ndarray:
    return np.repeat(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)


@pytest.fixture(scope="module", params=EVALUATORS)
def detector(request: pytest.FixtureRequest) -> Detector:
    return load(request.param)


@pytest.fixture(scope="module")
def astronaut_faces(detector: Detector) -> list[Face]:
    return detector.detect(skimage.data.astronaut())


def test_registered_name(detector: Detector) -> None:
    assert detector.name in EVALUATORS and load(detector.name) is detector
    assert detector.description


def test_finds_astronaut(detector: Detector, astronaut_faces: list[Face]) -> None:
    on_face = [f for f in astronaut_faces if iou(f, ASTRONAUT_FACE) > 0.5]
    assert len(on_face) == 1
    assert len(astronaut_faces) == 1 + EXTRA_ON_ASTRONAUT.get(detector.name, 0)
    for f in astronaut_faces:
        assert 0 <= f.x0 < f.x1 <= 512 and 0 <= f.y0 < f.y1 <= 512


def test_deterministic(detector: Detector, astronaut_faces: list[Face]) -> None:
    assert detector.detect(skimage.data.astronaut()) == astronaut_faces


def test_grayscale_like_rgb(detector: Detector) -> None:
    faces = detector.detect(gray_rgb(skimage.data.astronaut()))
    assert sum(iou(f, ASTRONAUT_FACE) > 0.5 for f in faces) == 1


@pytest.mark.parametrize("image", ["coffee", "coffee_gray", "flat"])
def test_no_face(detector: Detector, image: str) -> None:
    rgb = {
        "coffee": skimage.data.coffee,
        "coffee_gray": lambda: gray_rgb(skimage.data.coffee()),
        "flat": lambda: np.full((120, 160, 3), 128, np.uint8),
    }[image]()
    assert detector.detect(rgb) == []


@pytest.mark.parametrize("shape", [(1, 1), (8, 8), (8, 400), (400, 8)])
def test_tiny(detector: Detector, shape: tuple[int, int]) -> None:
    assert detector.detect(np.zeros((*shape, 3), np.uint8)) == []


def test_merge_boxes() -> None:
    boxes = [(0, 0, 10, 10), (1, 1, 11, 11), (50, 50, 60, 60), (2, 0, 12, 10)]
    assert merge_boxes(boxes) == [(0, 0, 12, 11), (50, 50, 60, 60)]
