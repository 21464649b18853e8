"""Colour looks: natural, vivid, warm, cool, pastel, cinematic (curves and colour matrices)."""

from __future__ import annotations

import numpy as np

from worker.filters import ops
from worker.filters.registry import register

_VIVID = ops.s_curve(0.35)
_WARM = ops.channel_curves(
    ops.curve([(0, 0), (128, 143), (255, 255)]),
    ops.curve([(0, 0), (128, 133), (255, 252)]),
    ops.curve([(0, 0), (128, 108), (255, 232)]),
)
_COOL = ops.channel_curves(
    ops.curve([(0, 0), (128, 112), (255, 240)]),
    ops.curve([(0, 2), (128, 130), (255, 252)]),
    ops.curve([(0, 8), (128, 146), (255, 255)]),
)
_PASTEL = ops.channel_curves(
    ops.curve([(0, 62), (128, 178), (255, 255)]),
    ops.curve([(0, 56), (128, 170), (255, 250)]),
    ops.curve([(0, 66), (128, 176), (255, 255)]),
)
_CONTRAST = ops.s_curve(0.3)
_CINEMATIC = ops.channel_curves(
    ops.compose(_CONTRAST, ops.curve([(0, 0), (64, 50), (128, 132), (192, 208), (255, 255)])),
    ops.compose(_CONTRAST, ops.curve([(0, 6), (128, 128), (255, 244)])),
    ops.compose(_CONTRAST, ops.curve([(0, 22), (64, 80), (128, 122), (192, 170), (255, 224)])),
)


@register("natural", description="No filter: the photo as it is.", en="Natural", ko="원본",
          aliases=("none", "off", "original"))
def natural(rgb: np.ndarray) -> np.ndarray:
    return rgb.copy()


@register("vivid", description="Richer colours and a little more contrast.", en="Vivid",
          ko="선명하게")
def vivid(rgb: np.ndarray) -> np.ndarray:
    return ops.lut(ops.mix(rgb, ops.saturation_matrix(1.35)), _VIVID)


@register("warm", description="Golden, sunny tones (more red and yellow, less blue).",
          en="Warm", ko="따뜻하게")
def warm(rgb: np.ndarray) -> np.ndarray:
    return ops.lut(rgb, _WARM)


@register("cool", description="Crisp, cool tones (more blue, less red).", en="Cool",
          ko="시원하게")
def cool(rgb: np.ndarray) -> np.ndarray:
    return ops.lut(rgb, _COOL)


@register("pastel", description="Soft, light, low-saturation colours with lifted shadows.",
          en="Pastel", ko="파스텔")
def pastel(rgb: np.ndarray) -> np.ndarray:
    return ops.lut(ops.mix(rgb, ops.saturation_matrix(0.6)), _PASTEL)


@register("cinematic", description="Film-grade teal shadows and orange highlights, more contrast.",
          en="Cinematic", ko="시네마틱")
def cinematic(rgb: np.ndarray) -> np.ndarray:
    return ops.lut(ops.mix(rgb, ops.saturation_matrix(0.9)), _CINEMATIC)
