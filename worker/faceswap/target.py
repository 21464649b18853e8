"""The moving target face: a few seconds of smooth head motion made from one still photo.

The still is scikit-image's ``astronaut`` (a NASA public-domain portrait that ships in the
package). Every frame is the still seen through a homography (zoom, small rotation, pan and a
slight perspective tilt that loop smoothly); the target's landmarks are found once on the still
and moved by the same homography, as a tracker would report them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np
from skimage import data

from worker.faceswap.extract import ExtractedFace, FaceExtractor

FPS = 20
SECONDS = 4.0
#: Side of each (square) target frame in pixels.
SIZE = 432
#: Side of the region of the still one frame shows (at the smallest zoom), in still pixels.
VIEW_SIDE = 300
#: Where the face centre sits in a frame, as fractions of ``SIZE``.
FACE_AT = (0.5, 0.42)


@dataclass(frozen=True)
class TargetFrame:
    """One frame of the target sequence and the target face's 68 landmarks in it."""

    image: np.ndarray              # (SIZE, SIZE, 3) uint8 RGB
    landmarks: np.ndarray          # (68, 2) float32


def motion(t: float, centre: tuple[float, float]) -> np.ndarray:
    """The 3x3 homography from the still to the frame at ``t`` in [0, 1) (one smooth loop),
    keeping the still's point ``centre`` (the face) near ``FACE_AT``."""
    phase = 2 * math.pi * t
    zoom = SIZE / VIEW_SIDE * (1.0 + 0.15 * (1 - math.cos(phase)) / 2)
    angle = math.radians(5.0 * math.sin(phase))
    pan = np.array([10.0 * math.sin(phase), 6.0 * math.sin(2 * phase)])
    tilt = 0.00025 * math.sin(phase + 0.8)                 # perspective: a slight head turn
    to_origin = np.array([[1, 0, -centre[0]], [0, 1, -centre[1]], [0, 0, 1]], dtype=np.float64)
    cos, sin = math.cos(angle) * zoom, math.sin(angle) * zoom
    rotate = np.array([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]], dtype=np.float64)
    perspective = np.array([[1, 0, 0], [0, 1, 0], [tilt, 0, 1]], dtype=np.float64)
    frame_centre = np.array([FACE_AT[0] * SIZE + pan[0], FACE_AT[1] * SIZE + pan[1]])
    to_frame = np.array([[1, 0, frame_centre[0]], [0, 1, frame_centre[1]], [0, 0, 1]])
    return to_frame @ perspective @ rotate @ to_origin


def transform_points(homography: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``points`` (N, 2) mapped by a 3x3 homography."""
    moved = cv2.perspectiveTransform(points.reshape(-1, 1, 2).astype(np.float64), homography)
    return moved.reshape(-1, 2).astype(np.float32)


def still() -> np.ndarray:
    """The target still (RGB uint8)."""
    return data.astronaut()


@cache
def still_face(detector: str = "dlib_hog") -> ExtractedFace:
    """The target's face on the still, found once per process."""
    face = FaceExtractor(detector).extract(still())
    if face is None:  # a broken install, not a user error
        raise RuntimeError("the target still has no detectable face")
    return face


def frame_count(fps: int = FPS, seconds: float = SECONDS) -> int:
    return round(fps * seconds)


def frames(fps: int = FPS, seconds: float = SECONDS) -> list[TargetFrame]:
    """The whole target sequence."""
    image, landmarks = still(), still_face().landmarks
    centre = tuple(landmarks.mean(axis=0))
    count = frame_count(fps, seconds)
    sequence = []
    for index in range(count):
        homography = motion(index / count, centre)
        warped = cv2.warpPerspective(image, homography, (SIZE, SIZE), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REFLECT)
        sequence.append(TargetFrame(warped, transform_points(homography, landmarks)))
    return sequence
