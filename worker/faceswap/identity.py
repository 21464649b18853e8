"""Identity score: dlib's face-recognition ResNet descriptor distance (below 0.6: same person)."""

from __future__ import annotations

import dlib
import numpy as np

from worker.faceswap.models import face_recognizer, shape_predictor

#: dlib's usual decision threshold: descriptors closer than this are the same person.
SAME_PERSON = 0.6


def descriptor(rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The 128-d descriptor of the face whose 68 landmarks are given.

    The landmarks only locate the face: they are re-fitted on ``rgb`` itself (in their bounding
    box), so the descriptor describes what the image shows, not where the swap meant to put it.
    """
    image = np.ascontiguousarray(rgb, dtype=np.uint8)
    x0, y0 = landmarks.min(axis=0)
    x1, y1 = landmarks.max(axis=0)
    rect = dlib.rectangle(round(x0), round(y0), round(x1), round(y1))
    shape = shape_predictor()(image, rect)
    return np.asarray(face_recognizer().compute_face_descriptor(image, shape), dtype=np.float32)


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two descriptors."""
    return float(np.linalg.norm(a - b))
