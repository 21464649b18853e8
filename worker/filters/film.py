"""Film looks: vintage (faded colours, vignette, grain) and dreamy (soft glow)."""

from __future__ import annotations

import numpy as np

from worker.filters import ops
from worker.filters.registry import register

_VINTAGE = ops.channel_curves(
    ops.curve([(0, 38), (128, 142), (255, 238)]),
    ops.curve([(0, 32), (128, 128), (255, 230)]),
    ops.curve([(0, 44), (128, 110), (255, 200)]),
)
_DREAMY = ops.curve([(0, 10), (255, 255)])
#: Seed of the vintage grain: the same photo always gets the same grain.
GRAIN_SEED = 1977


@register("vintage", description="Faded warm colours, a soft vignette and fine film grain.",
          en="Vintage", ko="빈티지")
def vintage(rgb: np.ndarray) -> np.ndarray:
    faded = ops.lut(ops.mix(rgb, ops.saturation_matrix(0.7)), _VINTAGE)
    return ops.grain(ops.vignette(faded, 0.35), 5.0, GRAIN_SEED)


@register("dreamy", description="A soft, bright glow around the highlights.", en="Dreamy",
          ko="몽환적")
def dreamy(rgb: np.ndarray) -> np.ndarray:
    glow = ops.smooth_blur(rgb, 0.015 * max(rgb.shape[:2]), rgb)
    return ops.lut(ops.blend(rgb, ops.screen(rgb, glow), 0.6), _DREAMY)
