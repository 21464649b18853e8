"""Where the perturbation may go and how much: face regions times a perceptual (texture) mask."""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from worker.detectors.base import Face


def face_region_mask(
    shape: tuple[int, int], faces: Iterable[Face], margin: float = 0.4
) -> np.ndarray:
    """1 on every face box grown by ``margin`` of its size, feathered to 0 outside; all ones
    when there is no face (a photo with no detected face is protected everywhere)."""
    height, width = shape
    mask = np.zeros((height, width), np.float32)
    faces = list(faces)
    if not faces:
        return np.ones((height, width), np.float32)
    feather = 1.0
    for f in faces:
        grow_x, grow_y = f.width * margin, f.height * margin
        x0, x1 = int(max(0, f.x0 - grow_x)), int(min(width, f.x1 + grow_x))
        y0, y1 = int(max(0, f.y0 - grow_y * 1.2)), int(min(height, f.y1 + grow_y))
        mask[y0:y1, x0:x1] = 1.0
        feather = max(feather, 0.15 * max(f.width, f.height))
    return np.clip(cv2.GaussianBlur(mask, (0, 0), feather) * 1.5, 0.0, 1.0)


def texture_mask(rgb: np.ndarray, floor: float) -> np.ndarray:
    """Just-noticeable-difference style weight in [floor, 1]: high in texture and edges, low
    on flat regions (smooth skin, sky) where a change of the same size is easier to see."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    mean = cv2.blur(gray, (5, 5))
    std = np.sqrt(np.maximum(cv2.blur(gray * gray, (5, 5)) - mean * mean, 0.0))
    weight = np.clip(std / 12.0, 0.0, 1.0)
    # Very dark and very bright pixels hide changes better (luminance masking).
    weight = np.maximum(weight, np.clip(np.abs(mean - 128.0) / 128.0 - 0.5, 0.0, 0.5))
    weight = cv2.GaussianBlur(weight, (0, 0), 1.5)
    return (floor + (1.0 - floor) * weight).astype(np.float32)


def budget_map(rgb: np.ndarray, faces: Iterable[Face], eps: float, floor: float) -> np.ndarray:
    """Per-pixel L-inf budget (H, W, 1) in 0..255 units."""
    region = face_region_mask(rgb.shape[:2], faces)
    return (eps * region * texture_mask(rgb, floor))[..., None]
