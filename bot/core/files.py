"""Files in and out of the chats, platform-neutral: which uploads are worth decoding, and the
best lossless PNG that fits a platform's upload limit.

A protected image is never re-encoded lossily for a chat: JPEG/WebP re-compression is exactly
what the protection has to survive, so a user who gets one should know. When the lossless PNG is
larger than a platform lets a bot upload, ``fit_png`` first recompresses it harder (same pixels),
then downscales it (Pillow LANCZOS, as the verification's "half" variant) until it fits.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

#: File names worth trying to decode (chat apps often label images as octet-stream).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".avif",
                    ".heic", ".heif")
#: Each downscale step shrinks the sides by at least this factor.
SHRINK_STEP = 0.9
#: Below this many pixels on the short side nothing useful is left to send.
MIN_SIDE = 16


def not_an_image(mime: str | None, name: str | None) -> bool:
    """Whether an upload is clearly no image (a known non-image type and no image extension);
    anything plausible, or unlabelled, goes to the worker, which has the last word."""
    mime, name = (mime or "").lower(), (name or "").lower()
    if mime.startswith("image/") or name.endswith(IMAGE_EXTENSIONS):
        return False
    return mime not in ("", "application/octet-stream")


@dataclass(frozen=True)
class FittedPng:
    """A lossless PNG of the protected image within a size limit; ``scaled`` when its pixels
    are fewer than the original's (``width`` × ``height``)."""

    png: bytes
    width: int
    height: int
    scaled: bool


def _encode(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def fit_png(png: bytes, limit: int) -> FittedPng | None:
    """The protected ``png`` itself when it fits ``limit`` bytes; else the same pixels
    recompressed; else the largest downscaled PNG that fits; None when not even a tiny one does.
    CPU-bound (seconds for large photos): call it off the event loop."""
    with Image.open(io.BytesIO(png)) as opened:  # reads the header only, until converted
        width, height = opened.size
        if len(png) <= limit:
            return FittedPng(png, width, height, scaled=False)
        image = opened.convert("RGB")
    data = _encode(image)
    if len(data) <= limit:
        return FittedPng(data, width, height, scaled=False)
    # PNG size grows about with the pixel count: aim just below the limit, then step down.
    scale = min(SHRINK_STEP, (limit / len(data)) ** 0.5 * 0.98)
    while min(width, height) * scale >= MIN_SIDE:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        data = _encode(image.resize(size, Image.Resampling.LANCZOS))
        if len(data) <= limit:
            return FittedPng(data, *size, scaled=True)
        scale *= min(SHRINK_STEP, (limit / len(data)) ** 0.5)
    return None
