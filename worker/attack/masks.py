"""Where the perturbation may go and how much: face regions times a perceptual (texture) mask."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import cv2
import numpy as np

from worker.detectors.base import Face

if TYPE_CHECKING:
    from worker.attack.profiles import Profile


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


#: scikit-image's SSIM for 0..255 images: its constant C2 (K2 = 0.03) and its 7 x 7 window.
SSIM_C2 = (0.03 * 255) ** 2
SSIM_WINDOW = 7


def ssim_budget(rgb: np.ndarray, local_ssim: float) -> np.ndarray:
    """Per-pixel amplitude (0..255 units) of a zero-mean change that keeps SSIM's contrast and
    structure term near ``local_ssim`` in every 7 x 7 window it touches. For a window of
    standard deviation s, a change of standard deviation d gives (2 s^2 + C2) / (2 s^2 + d^2 +
    C2), so d^2 = (1 / local_ssim - 1)(2 s^2 + C2): the budget grows with texture without
    bound, and a pixel gets the least any of its windows allows."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    window = (SSIM_WINDOW, SSIM_WINDOW)
    mean = cv2.blur(gray, window)
    variance = np.maximum(cv2.blur(gray * gray, window) - mean * mean, 0.0)
    allowed = np.sqrt((1.0 / local_ssim - 1.0) * (2.0 * variance + SSIM_C2))
    allowed = cv2.erode(allowed, np.ones(window, np.uint8))
    return cv2.GaussianBlur(allowed, (0, 0), 1.5).astype(np.float32)


def budget_map(rgb: np.ndarray, faces: Iterable[Face], profile: Profile) -> np.ndarray:
    """Per-pixel L-inf budget (H, W, 1) in 0..255 units of ``profile``: ``eps`` times the
    texture mask or, with ``local_ssim``, what SSIM allows there (``ssim_budget``) capped at
    ``eps``; on the face regions only (everywhere without faces)."""
    region = face_region_mask(rgb.shape[:2], faces)
    if profile.local_ssim > 0:
        return (region * np.minimum(ssim_budget(rgb, profile.local_ssim), profile.eps))[..., None]
    return (profile.eps * region * texture_mask(rgb, profile.texture_floor))[..., None]
