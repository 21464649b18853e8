"""Soft skin: edge-preserving smoothing (a fast guided filter) applied on skin tones only."""

from __future__ import annotations

import cv2
import numpy as np

from worker.filters import ops
from worker.filters.registry import register

#: Guided-filter regulariser on 0..1 values: local contrast well below sqrt(EPS) is smoothed.
EPS = 0.05**2
#: How much of the smoothing the skin gets (1 = all of it; a little texture keeps it natural).
STRENGTH = 0.85
#: Skin in YCrCb (OpenCV's ranges): luma, red and blue chroma bounds.
SKIN_LOW = (40, 135, 80)
SKIN_HIGH = (255, 175, 130)


def skin_mask(rgb: np.ndarray, feather: float) -> np.ndarray:
    """(H, W) float32 in 0..1: 1 on skin-coloured pixels, feathered by ``feather`` pixels."""
    ycc = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
    mask = cv2.inRange(ycc, SKIN_LOW, SKIN_HIGH)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    mask = cv2.GaussianBlur(mask, (0, 0), max(feather, 0.5))
    return mask.astype(np.float32) / 255.0


def guided_coefficients(image: np.ndarray, radius: int, eps: float) -> tuple[np.ndarray, ...]:
    """Self-guided filter (He et al.) per channel: ``q = a * I + b`` with smooth ``a, b``."""
    k = (2 * radius + 1, 2 * radius + 1)
    mean = cv2.boxFilter(image, -1, k)
    var = cv2.boxFilter(image * image, -1, k) - mean * mean
    a = var / (var + eps)
    b = mean - a * mean
    return cv2.boxFilter(a, -1, k), cv2.boxFilter(b, -1, k)


@register("soft_skin", description="Smoother, even skin; eyes, edges and background stay sharp.",
          en="Soft skin", ko="피부 보정", aliases=("skin", "beauty"))
def soft_skin(rgb: np.ndarray) -> np.ndarray:
    # Fast guided filter: coefficients on a copy ~4 px radius, applied at full size.
    h, w = rgb.shape[:2]
    radius = max(2.0, 0.012 * min(h, w))
    factor = max(1.0, radius / 4.0)
    small = cv2.resize(rgb, (max(1, round(w / factor)), max(1, round(h / factor))),
                       interpolation=cv2.INTER_AREA)
    r = max(1, round(radius / factor))
    a, b = guided_coefficients(small.astype(np.float32) / 255.0, r, EPS)
    m = (STRENGTH * skin_mask(small, 1.5 * r))[..., None]
    a = 1.0 - m * (1.0 - a)        # a = 1, b = 0 off skin: the pixel is unchanged
    b = m * b * 255.0
    out = ops.grow(a, rgb) * rgb.astype(np.float32)
    out += ops.grow(b, rgb)
    return cv2.convertScaleAbs(out)  # q >= 0: saturate and round to uint8
