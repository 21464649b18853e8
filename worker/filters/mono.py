"""Monochrome looks: black & white, sepia, film noir."""

from __future__ import annotations

import cv2
import numpy as np

from worker.filters import ops
from worker.filters.registry import register

#: Channel mix for black & white: a little more red than luma, which flatters skin.
_BW_MIX = np.array([[0.36, 0.52, 0.12]], np.float32)
_BW = ops.s_curve(0.15)
_SEPIA = ops.channel_curves(
    ops.curve([(0, 24), (128, 150), (255, 255)]),
    ops.curve([(0, 12), (128, 122), (255, 242)]),
    ops.curve([(0, 0), (128, 88), (255, 206)]),
)
_NOIR_MIX = np.array([[0.30, 0.60, 0.10]], np.float32)
_NOIR = ops.compose(ops.s_curve(0.9), ops.curve([(0, 0), (40, 8), (235, 255), (255, 255)]))


def _mono(rgb: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return cv2.transform(rgb, weights)


@register("bw", description="Classic black and white with gentle contrast.",
          en="Black & white", ko="흑백", aliases=("black_and_white", "mono", "grayscale"))
def bw(rgb: np.ndarray) -> np.ndarray:
    return ops.to_rgb(ops.lut(_mono(rgb, _BW_MIX), _BW))


@register("sepia", description="Warm brown monochrome, like an old print.", en="Sepia",
          ko="세피아")
def sepia(rgb: np.ndarray) -> np.ndarray:
    return ops.lut(ops.to_rgb(ops.gray(rgb)), _SEPIA)


@register("noir", description="Film noir: hard-contrast black and white with deep shadows "
          "and a dark vignette.", en="Film noir", ko="필름 누아르", aliases=("film_noir",))
def noir(rgb: np.ndarray) -> np.ndarray:
    return ops.vignette(ops.to_rgb(ops.lut(_mono(rgb, _NOIR_MIX), _NOIR)), 0.55, radius=0.9)
