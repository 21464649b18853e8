"""Drawn looks: cartoon (flat colours with ink lines) and pencil sketch."""

from __future__ import annotations

import cv2
import numpy as np

from worker.filters import ops
from worker.filters.registry import register

#: Long side the cartoon is drawn at (lines and flat areas look the same on any photo size).
CARTOON_SIDE = 1280
#: Brightness levels of the flat colours.
CARTOON_LEVELS = 6
_STEPS = np.floor(np.arange(256) * CARTOON_LEVELS / 256) * 255 / (CARTOON_LEVELS - 1)
_QUANTISE = np.clip(np.rint(_STEPS * 0.85 + 30), 0, 255).astype(np.uint8)
_PAPER = ops.channel_curves(
    ops.curve([(0, 30), (255, 255)]),
    ops.curve([(0, 28), (255, 250)]),
    ops.curve([(0, 26), (255, 240)]),
)
_PENCIL = ops.curve([(0, 0), (150, 90), (220, 200), (255, 255)])


def _smooth_colours(small: np.ndarray) -> np.ndarray:
    """Edge-preserving flattening: repeated bilateral filtering (on a half-size copy if big)."""
    half = ops.shrink(small, max(640, max(small.shape[:2]) // 2))
    for _ in range(5):  # d = 5 runs several times faster than d = 7 in OpenCV
        half = cv2.bilateralFilter(half, 5, 60, 5)
    return ops.grow(half, small)


def _posterise(rgb: np.ndarray) -> np.ndarray:
    """Quantise brightness into ``CARTOON_LEVELS`` bands and keep each pixel's hue."""
    luma = ops.gray(rgb)
    ratio = ops.lut(luma, _QUANTISE).astype(np.float32) / np.maximum(luma, 1).astype(np.float32)
    return cv2.convertScaleAbs(rgb.astype(np.float32) * ratio[..., None])


def _ink(gray: np.ndarray) -> np.ndarray:
    """(H, W) uint8 outlines: 0 on lines, 255 elsewhere; specks smaller than a line removed."""
    side = max(gray.shape[:2])
    block = 2 * max(1, side // 120) + 1
    edges = cv2.adaptiveThreshold(cv2.medianBlur(gray, 5), 255, cv2.ADAPTIVE_THRESH_MEAN_C,
                                  cv2.THRESH_BINARY, block, 7)
    if side < 900:  # small photos: every thin line may be an eye or a mouth
        return edges
    return cv2.morphologyEx(edges, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))


@register("cartoon", description="Cartoon: flat posterised colours with dark ink outlines.",
          en="Cartoon", ko="만화", aliases=("comic",))
def cartoon(rgb: np.ndarray) -> np.ndarray:
    small = ops.shrink(rgb, CARTOON_SIDE)
    smooth = _smooth_colours(small)
    flat = _posterise(ops.mix(smooth, ops.saturation_matrix(1.3)))
    drawn = cv2.multiply(flat, ops.to_rgb(_ink(ops.gray(smooth))), scale=1 / 255)
    return ops.grow(drawn, rgb)


@register("sketch", description="Pencil sketch: grey pencil lines on warm paper.",
          en="Pencil sketch", ko="연필 스케치", aliases=("pencil", "pencil_sketch"))
def sketch(rgb: np.ndarray) -> np.ndarray:
    gray = ops.gray(rgb)
    blurred = ops.smooth_blur(cv2.bitwise_not(gray), max(1.0, max(rgb.shape[:2]) / 160), gray)
    dodge = cv2.divide(gray, cv2.bitwise_not(blurred), scale=256)
    return ops.lut(ops.to_rgb(ops.lut(dodge, _PENCIL)), _PAPER)
