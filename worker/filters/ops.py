"""Building blocks shared by the filters: tone curves, colour matrices, vignette, grain, scaling.

Every helper takes and returns uint8 arrays and runs as whole-image OpenCV/NumPy operations.
Smooth fields (vignettes, blurs, glow) are computed at a reduced size and upsampled, which is
invisible and keeps the filters well under 150 ms per megapixel.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Rec. 601 luma weights (what ``cv2.COLOR_RGB2GRAY`` uses).
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def curve(points: list[tuple[float, float]]) -> np.ndarray:
    """A 256-entry uint8 tone curve through ``(input, output)`` points (0..255), linear between."""
    xs, ys = zip(*sorted(points), strict=True)
    return np.clip(np.rint(np.interp(np.arange(256), xs, ys)), 0, 255).astype(np.uint8)


def s_curve(amount: float, pivot: float = 128.0) -> np.ndarray:
    """A smooth contrast curve: 0 is identity, 1 a strong S around ``pivot``."""
    x = np.arange(256, dtype=np.float64) / 255.0
    p = pivot / 255.0
    smooth = np.where(x < p, p * (x / p) ** 2, 1 - (1 - p) * ((1 - x) / (1 - p)) ** 2)
    y = x + amount * (smooth - x)
    return np.clip(np.rint(y * 255), 0, 255).astype(np.uint8)


def compose(*tables: np.ndarray) -> np.ndarray:
    """One (256,) table doing ``tables[0]``, then ``tables[1]``, …"""
    out = np.arange(256, dtype=np.uint8)
    for table in tables:
        out = table[out]
    return out


def lut(rgb: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Apply a (256,) table to every channel or a (256, 3) table per channel (R, G, B)."""
    table = np.ascontiguousarray(table, np.uint8)
    if table.ndim == 2:
        table = table.reshape(256, 1, 3)
    return cv2.LUT(rgb, table)


def channel_curves(r: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Stack three (256,) curves into one (256, 3) per-channel table."""
    return np.stack([r, g, b], axis=1)


def mix(
    rgb: np.ndarray, matrix: np.ndarray, offset: tuple[float, float, float] = (0, 0, 0)
) -> np.ndarray:
    """``out = matrix @ rgb + offset`` per pixel (3x3 matrix, rows = output R, G, B), saturated."""
    m = np.hstack([np.asarray(matrix, np.float32), np.asarray(offset, np.float32)[:, None]])
    return cv2.transform(rgb, m)


def saturation_matrix(amount: float) -> np.ndarray:
    """3x3 matrix scaling saturation around luma: 0 = gray, 1 = identity, >1 = more colourful."""
    gray = np.tile(LUMA, (3, 1))
    return amount * np.eye(3, dtype=np.float32) + (1 - amount) * gray


def gray(rgb: np.ndarray) -> np.ndarray:
    """(H, W) uint8 luma."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def to_rgb(gray_image: np.ndarray) -> np.ndarray:
    """(H, W) uint8 -> (H, W, 3) uint8."""
    return cv2.cvtColor(gray_image, cv2.COLOR_GRAY2RGB)


def fit(shape: tuple[int, ...], max_side: int) -> tuple[int, int]:
    """``(width, height)`` of ``shape`` shrunk (never grown) so its long side is ``max_side``."""
    h, w = shape[:2]
    scale = min(1.0, max_side / max(h, w))
    return max(1, round(w * scale)), max(1, round(h * scale))


def shrink(image: np.ndarray, max_side: int) -> np.ndarray:
    """Area-downscale so the long side is at most ``max_side`` (a copy-free no-op if smaller)."""
    size = fit(image.shape, max_side)
    if size == (image.shape[1], image.shape[0]):
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def grow(image: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Bilinear resize of ``image`` to the height and width of ``like``."""
    size = (like.shape[1], like.shape[0])
    if (image.shape[1], image.shape[0]) == size:
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)


def smooth_blur(image: np.ndarray, sigma: float, like: np.ndarray) -> np.ndarray:
    """A Gaussian blur of ``sigma`` full-size pixels, computed small and grown to ``like``."""
    h, w = like.shape[:2]
    factor = max(1.0, sigma / 3.0)  # keep about 3 px of sigma at the working size
    small = shrink(image, max(1, round(max(h, w) / factor)))
    s = sigma * max(small.shape[:2]) / max(h, w)
    return grow(cv2.GaussianBlur(small, (0, 0), max(s, 0.5)), like)


def vignette_mask(shape: tuple[int, ...], strength: float, radius: float = 0.85) -> np.ndarray:
    """(H, W) uint8 multiplier (255 = unchanged): darkens corners by ``strength`` (0..1).

    An elliptical falloff that follows the image's aspect; computed on a small grid and grown.
    """
    h, w = shape[:2]
    gw, gh = fit(shape, 128)
    v, u = np.meshgrid(np.linspace(-1, 1, gh), np.linspace(-1, 1, gw), indexing="ij")
    d = np.sqrt((u * u + v * v) / 2.0)  # 0 at the centre, 1 in the corners
    t = np.clip((d - (1 - radius)) / radius, 0, 1)
    fall = 1.0 - strength * t * t * (3 - 2 * t)
    small = np.clip(np.rint(fall * 255), 0, 255).astype(np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def vignette(rgb: np.ndarray, strength: float, radius: float = 0.85) -> np.ndarray:
    """Darken towards the corners."""
    mask = vignette_mask(rgb.shape, strength, radius)
    return cv2.multiply(rgb, to_rgb(mask), scale=1 / 255)


def grain(rgb: np.ndarray, amount: float, seed: int) -> np.ndarray:
    """Add fine monochrome film grain of ``amount`` grey levels (std); deterministic per seed."""
    h, w = rgb.shape[:2]
    noise = np.random.default_rng(seed).standard_normal((h, w), dtype=np.float32)
    noise *= amount
    noise += 128.0
    np.clip(noise, 0, 255, out=noise)
    return cv2.addWeighted(rgb, 1.0, to_rgb(noise.astype(np.uint8)), 1.0, -128.0)


def blend(a: np.ndarray, b: np.ndarray, weight_b: float) -> np.ndarray:
    """``(1 - weight_b) * a + weight_b * b``."""
    return cv2.addWeighted(a, 1.0 - weight_b, b, weight_b, 0.0)


def screen(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Screen blend: ``1 - (1 - a)(1 - b)``, brightens like a double exposure."""
    return cv2.bitwise_not(cv2.multiply(cv2.bitwise_not(a), cv2.bitwise_not(b), scale=1 / 255))
