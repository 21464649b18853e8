"""Contact sheet: the user's photo in every filter, as one labelled grid (a JPEG preview).

Thumbnails fit a ``THUMB`` x ``THUMB`` box (tiny images are enlarged, so even a 1x1 photo gives
a visible swatch) and sit centred in equal cells with the filter's label underneath, in reading
order (row by row), the same order as ``names``.

Korean labels need a font with Hangul. None is downloaded at run time: ``DFB_FONT`` (a .ttf/.otf/
.ttc path), fontconfig's ``fc-list :lang=ko`` and the usual system paths (Debian ``fonts-nanum``,
``fonts-noto-cjk``, macOS, Windows) are tried, and without one the sheet is labelled in English.
"""

from __future__ import annotations

import functools
import math
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from worker import filters
from worker.filters import ops
from worker.imageio import encode_jpeg

#: Longest side of a thumbnail; a cell is at least ``MIN_CELL`` wide so labels fit.
THUMB = 240
MIN_CELL = 160
LABEL_H = 30
PAD = 8
FONT_SIZE = 17
BACKGROUND = (24, 24, 28)
TEXT = (240, 240, 240)
JPEG_QUALITY = 85

HANGUL_FONTS = (
    "/usr/share/fonts/truetype/nanum/NanumGothicBold.ttf",
    "/usr/share/fonts/truetype/nanum/NanumGothic.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/unfonts-core/UnDotum.ttf",
    "/System/Library/Fonts/AppleSDGothicNeo.ttc",
    "C:/Windows/Fonts/malgun.ttf",
)
LATIN_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "DejaVuSans-Bold.ttf",  # Pillow also searches the system font folders by name
)


@dataclass(frozen=True)
class Layout:
    """Grid geometry: ``cols`` x ``rows`` cells of ``cell_w`` x ``cell_h`` (label included)."""

    cols: int
    rows: int
    thumb_w: int
    thumb_h: int
    cell_w: int
    cell_h: int

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the whole sheet."""
        return (self.cols * self.cell_w + (self.cols + 1) * PAD,
                self.rows * self.cell_h + (self.rows + 1) * PAD)

    def origin(self, index: int) -> tuple[int, int]:
        """Top-left corner of cell ``index`` (row-major)."""
        row, col = divmod(index, self.cols)
        return PAD + col * (self.cell_w + PAD), PAD + row * (self.cell_h + PAD)


def layout(shape: tuple[int, ...], count: int) -> Layout:
    """The grid for ``count`` thumbnails of an image of ``shape``: about square, in columns."""
    h, w = shape[:2]
    scale = THUMB / max(h, w)
    tw, th = max(1, round(w * scale)), max(1, round(h * scale))
    cols = max(1, math.ceil(math.sqrt(count)))
    rows = max(1, math.ceil(count / cols))
    return Layout(cols, rows, tw, th, max(tw, MIN_CELL), th + LABEL_H)


@functools.cache
def hangul_font_path() -> str | None:
    """A font file that can draw Hangul, or None (see the module docstring)."""
    candidates = [os.environ.get("DFB_FONT", "")]
    if shutil.which("fc-list"):
        try:
            found = subprocess.run(["fc-list", ":lang=ko", "file"], capture_output=True,
                                   text=True, timeout=5, check=False).stdout
            candidates += sorted(line.strip().rstrip(":") for line in found.splitlines())
        except (OSError, subprocess.SubprocessError):
            pass
    candidates += HANGUL_FONTS
    return next((c for c in candidates if c and Path(c).is_file()), None)


def _font(size: int, hangul: bool) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    paths = ([hangul_font_path()] if hangul else []) + list(LATIN_FONTS)
    for path in filter(None, paths):
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            continue
    return ImageFont.load_default(size)


def _labels(names: list[str], locale: str | None) -> tuple[list[str], bool]:
    """The labels to draw and whether they need the Hangul font."""
    korean = (locale or "").lower().startswith("ko") and hangul_font_path() is not None
    return [filters.label(n, "ko" if korean else "en") for n in names], korean


def _thumbnail(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    shrinking = size[0] < rgb.shape[1] or size[1] < rgb.shape[0]
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def render(rgb: np.ndarray, locale: str | None = None, names: list[str] | None = None) -> bytes:
    """The contact sheet of ``rgb`` in every filter of ``names`` (default: all), as JPEG bytes."""
    names = list(names) if names is not None else filters.names()
    grid = layout(rgb.shape, len(names))
    # Filter a copy twice the thumbnail size: fast, and grain/lines scale down like the photo.
    work = ops.shrink(np.ascontiguousarray(rgb), 2 * THUMB)
    sheet = Image.new("RGB", grid.size, BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    labels, korean = _labels(names, locale)
    font = _font(FONT_SIZE, korean)
    for index, (name, text) in enumerate(zip(names, labels, strict=True)):
        x, y = grid.origin(index)
        thumb = _thumbnail(filters.apply(name, work), (grid.thumb_w, grid.thumb_h))
        sheet.paste(Image.fromarray(thumb), (x + (grid.cell_w - grid.thumb_w) // 2, y))
        draw.text((x + grid.cell_w / 2, y + grid.thumb_h + LABEL_H / 2), text, fill=TEXT,
                  font=font, anchor="mm")
    return encode_jpeg(np.asarray(sheet), JPEG_QUALITY)
