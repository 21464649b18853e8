"""Decode untrusted user images safely (in memory only) and encode protected outputs.

``decode_image`` turns the bytes a chat user sent into an ``H x W x 3`` uint8 sRGB-ish array, or
raises an :class:`ImageError` whose ``code`` the bot translates. Codes are stable:

================== ==========================================================================
code               meaning
================== ==========================================================================
``empty``          zero bytes were received
``not_an_image``   the bytes are no image format we recognise (random data, text, ...)
``unsupported_format`` a recognised format we do not decode (HEIC, SVG, PDF, video, PSD, ...);
                   ``ImageError.detail`` names the format
``truncated``      the file ends early (incomplete upload/download); never returned half-grey
``corrupt``        the image data is damaged in some other way (bad checksum, broken stream)
``too_many_pixels`` width x height exceeds ``max_pixels`` (or Pillow's decompression-bomb
                   limit); checked from the header before any pixel is decoded
``too_small``      the image declares a zero width or height
================== ==========================================================================

Accepted formats: JPEG (incl. MPO, reported as ``"JPEG"``), PNG/APNG, GIF, WebP, BMP, TIFF,
AVIF. Other Pillow plugins are never tried, so e.g. EPS (Ghostscript) cannot be reached.

``Decoded.notes`` lists what was adapted, as stable codes:
``animated_first_frame`` (animated GIF/PNG/WebP/AVIF: frame 0 kept), ``multipage_first_page``
(multi-page TIFF), ``exif_rotated`` (EXIF orientation 2-8 applied), ``cmyk_converted``,
``16bit_reduced`` (16-bit samples scaled to 8 bit), ``grayscale_expanded`` (L/1/I;16 -> RGB),
``palette_converted``, ``alpha_flattened`` (composited over white), ``icc_converted``
(embedded non-sRGB ICC profile applied, since outputs carry no profile).

Encoders write no metadata at all (no EXIF/GPS, ICC, text chunks). ``resize`` uses Pillow's
LANCZOS filter (antialiased for downscaling), a good stand-in for chat-app resizers.
"""

from __future__ import annotations

import io
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

ALLOWED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "AVIF")
_ANIMATED_FORMATS = frozenset({"GIF", "PNG", "WEBP", "AVIF"})
_ORIENTATION_TAG = 0x0112
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ImageError(Exception):
    """An input image was rejected; ``code`` is stable and machine-readable."""

    code: str = "image_error"

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class EmptyImageError(ImageError):
    code = "empty"


class NotAnImageError(ImageError):
    code = "not_an_image"


class UnsupportedFormatError(ImageError):
    code = "unsupported_format"


class TruncatedImageError(ImageError):
    code = "truncated"


class CorruptImageError(ImageError):
    code = "corrupt"


class TooManyPixelsError(ImageError):
    code = "too_many_pixels"


class TooSmallImageError(ImageError):
    code = "too_small"


@dataclass(frozen=True)
class Decoded:
    """A decoded image: ``rgb`` is (H, W, 3) uint8 C-contiguous."""

    rgb: np.ndarray
    format: str
    notes: tuple[str, ...] = ()


# --------------------------------------------------------------------------------------------
# decoding


_truncation_lock = threading.Lock()


@contextmanager
def _strict_truncation() -> Iterator[None]:
    """Make sure Pillow raises on truncated data even if someone set LOAD_TRUNCATED_IMAGES.

    The flag is a Pillow module global; it is only touched (under a lock, restored afterwards)
    when some other code switched it on, so normally nothing global changes.
    """
    if not ImageFile.LOAD_TRUNCATED_IMAGES:
        yield
        return
    with _truncation_lock:
        previous = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            yield
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = previous


def _sniff_unsupported(data: bytes) -> str | None:
    """Name a recognised-but-unsupported format from its magic bytes, or None."""
    head = data[:64]
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"):
            return "HEIC"
        if brand in (b"avif", b"avis"):
            return "AVIF"  # only reached when libavif could not decode it
        if brand.startswith(b"qt"):
            return "video (QuickTime)"
        return "video (MP4)"
    if head.startswith(b"%PDF"):
        return "PDF"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video (WebM/Matroska)"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "video (AVI)"
    if head.startswith(b"GIF8") or head.startswith(b"\xff\xd8\xff"):
        return None  # our own formats, just broken
    if head.startswith(b"8BPS"):
        return "PSD"
    if head.startswith(b"%!PS") or head.startswith(b"\xc5\xd0\xd3\xc6"):
        return "EPS"
    if head.startswith(b"\x00\x00\x01\x00") and len(head) > 6 and head[4:6] != b"\x00\x00":
        return "ICO"
    if len(head) > 2 and head[0:1] == b"P" and head[1:2] in b"1234567" and head[2:3].isspace():
        return "PNM"
    if head.startswith((b"\xff\x0a", b"\x00\x00\x00\x0cJXL ")):
        return "JPEG XL"
    if head.startswith((b"\x00\x00\x00\x0cjP  ", b"\xff\x4f\xff\x51")):
        return "JPEG 2000"
    text = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<svg", b"<?xml")) and b"<svg" in text:
        return "SVG"
    return None


def _png_declares_zero_size(data: bytes) -> bool:
    if not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR" or len(data) < 24:
        return False
    width = int.from_bytes(data[16:20], "big")
    height = int.from_bytes(data[20:24], "big")
    return width == 0 or height == 0


def _riff_truncated(data: bytes) -> bool:
    """A RIFF (WebP) file shorter than the size its header declares."""
    if not data.startswith(b"RIFF") or len(data) < 12:
        return False
    return int.from_bytes(data[4:8], "little") + 8 > len(data)


def _load_error(exc: BaseException, data: bytes = b"") -> ImageError:
    """Map an exception raised while opening or decoding to an ImageError."""
    text = str(exc).lower()
    if isinstance(exc, Image.DecompressionBombError | Image.DecompressionBombWarning):
        return TooManyPixelsError(f"The image is too large to process: {exc}")
    if (
        isinstance(exc, EOFError)
        or "truncated" in text
        or "premature" in text
        or _riff_truncated(data)
    ):
        return TruncatedImageError("The image file is incomplete (it ends early).")
    return CorruptImageError(f"The image data is damaged and cannot be decoded ({exc}).")


def _input_bit_depth_16(im: Image.Image) -> bool:
    """Whether Pillow will unpack 16-bit samples (it keeps the high byte for RGB/RGBA/LA)."""
    for tile in im.tile or ():
        args = tile.args
        rawmode = args if isinstance(args, str) else (args[0] if args else None)
        if isinstance(rawmode, str) and ";16" in rawmode:
            return True
    return False


def _to_uint8_from_16(arr: np.ndarray) -> np.ndarray:
    """Scale 0..65535 to 0..255 with rounding (x / 257)."""
    wide = np.clip(arr.astype(np.int64), 0, 65535)
    return ((wide * 255 + 32767) // 65535).astype(np.uint8)


def _flatten_alpha(rgba: np.ndarray) -> np.ndarray:
    """Composite (H, W, 4) uint8 over white."""
    rgb = rgba[..., :3].astype(np.uint32)
    alpha = rgba[..., 3:4].astype(np.uint32)
    out = (rgb * alpha + 255 * (255 - alpha) + 127) // 255
    return out.astype(np.uint8)


def _apply_icc(im: Image.Image, notes: list[str]) -> Image.Image:
    """Convert an RGB/CMYK image with an embedded non-sRGB profile to sRGB; else no change."""
    icc = im.info.get("icc_profile")
    if not icc or im.mode not in ("RGB", "CMYK"):
        return im
    try:
        from PIL import ImageCms

        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if im.mode == "RGB" and "srgb" in ImageCms.getProfileDescription(src).lower():
            return im
        out = ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
    except Exception:  # a broken or exotic profile: fall back to plain pixels
        return im
    if out is None:
        return im
    notes.append("icc_converted")
    return out


def _to_rgb(im: Image.Image, notes: list[str], was_16bit: bool) -> np.ndarray:
    """Normalise any Pillow mode to (H, W, 3) uint8, recording what was adapted."""
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        gray = _to_uint8_from_16(np.asarray(im))
        notes += ["16bit_reduced", "grayscale_expanded"]
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "F":
        raise UnsupportedFormatError(
            "Floating-point images are not supported.", detail="floating-point TIFF"
        )
    if was_16bit:
        notes.append("16bit_reduced")
    if mode == "P":
        notes.append("palette_converted")
        has_alpha = "transparency" in im.info or (
            im.palette is not None and im.palette.mode == "RGBA"
        )
        im = im.convert("RGBA" if has_alpha else "RGB")
        mode = im.mode
    elif mode == "PA":
        notes.append("palette_converted")
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode in ("1", "L", "LA", "La"):
        notes.append("grayscale_expanded")
    if "transparency" in im.info and mode in ("L", "RGB"):
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode == "CMYK":
        notes.append("cmyk_converted")
    if mode in ("RGBA", "RGBa", "LA", "La"):
        rgba = np.asarray(im.convert("RGBA"))
        if rgba[..., 3].min() < 255:
            notes.append("alpha_flattened")
            return _flatten_alpha(rgba)
        return np.ascontiguousarray(rgba[..., :3])
    if mode != "RGB":
        im = im.convert("RGB")
    return np.asarray(im)


def decode_image(data: bytes, *, max_pixels: int = 50_000_000) -> Decoded:
    """Decode an untrusted image from memory to RGB uint8, or raise :class:`ImageError`.

    Dimensions are checked against ``max_pixels`` from the header, before pixels are decoded.
    Pillow's own decompression-bomb limits (``Image.MAX_IMAGE_PIXELS``, left untouched) also
    apply: its warning is turned into an error inside a ``warnings.catch_warnings`` block, so
    the effective cap is ``min(max_pixels, Image.MAX_IMAGE_PIXELS)``.
    """
    if not data:
        raise EmptyImageError("The file is empty (0 bytes).")
    notes: list[str] = []
    with _strict_truncation(), warnings.catch_warnings():
        # Pillow warns (and above 2x its limit raises) for huge images; both mean too big here.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise TooManyPixelsError(f"The image is too large to process: {exc}") from exc
        except UnidentifiedImageError as exc:
            if _png_declares_zero_size(data):
                raise TooSmallImageError("The image has zero width or height.") from exc
            kind = _sniff_unsupported(data)
            if kind is not None:
                raise UnsupportedFormatError(
                    f"{kind} files are not supported; please send a JPEG, PNG or WebP photo.",
                    detail=kind,
                ) from exc
            ours = data.startswith((_PNG_SIGNATURE, b"GIF8", b"\xff\xd8\xff"))
            if ours or (data.startswith(b"RIFF") and data[8:12] == b"WEBP"):
                raise _load_error(exc, data) from exc
            raise NotAnImageError("This file is not an image we can read.") from exc
        except Exception as exc:  # plugins raise many types on bad headers
            raise _load_error(exc, data) from exc

        with im:
            fmt = "JPEG" if im.format == "MPO" else str(im.format)
            width, height = im.size
            if width < 1 or height < 1:
                raise TooSmallImageError("The image has zero width or height.")
            if width * height > max_pixels:
                raise TooManyPixelsError(
                    f"The image is {width}x{height} pixels; at most {max_pixels} pixels "
                    "are supported.",
                    detail=f"{width}x{height}",
                )
            try:
                frames = getattr(im, "n_frames", 1) if im.format == "TIFF" else 1
                if im.format in _ANIMATED_FORMATS and getattr(im, "is_animated", False):
                    notes.append("animated_first_frame")
                    im.seek(0)
                elif frames > 1:
                    notes.append("multipage_first_page")
                    im.seek(0)
                was_16bit = _input_bit_depth_16(im)
                im.load()
            except ImageError:
                raise
            except Exception as exc:  # decoders raise many types on bad data
                raise _load_error(exc, data) from exc

            try:
                orientation = int(im.getexif().get(_ORIENTATION_TAG, 1) or 1)
            except Exception:  # malformed EXIF: ignore it, keep pixels as stored
                orientation = 1
            if orientation in range(2, 9):
                try:
                    transposed = ImageOps.exif_transpose(im)
                except Exception:  # a failed transpose keeps the stored orientation
                    transposed = None
                if transposed is not None:
                    im = transposed
                    notes.append("exif_rotated")

            if im.mode in ("RGB", "CMYK"):
                im = _apply_icc(im, notes)
            rgb = _to_rgb(im, notes, was_16bit)

    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:  # defensive: every branch above yields (H, W, 3)
        raise CorruptImageError("The image could not be converted to RGB.")
    if not rgb.flags.writeable:
        rgb = rgb.copy()
    return Decoded(rgb=rgb, format=fmt, notes=tuple(dict.fromkeys(notes)))


# --------------------------------------------------------------------------------------------
# encoding and the re-save / resize transforms used by the verification report


def _as_rgb_image(rgb: np.ndarray) -> Image.Image:
    arr = np.asarray(rgb)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 array, got {arr.dtype} {arr.shape}")
    return Image.fromarray(np.ascontiguousarray(arr))


def encode_png(rgb: np.ndarray) -> bytes:
    """Lossless 8-bit RGB PNG with no metadata chunks (no EXIF, ICC, text, pHYs)."""
    buf = io.BytesIO()
    _as_rgb_image(rgb).save(buf, format="PNG", compress_level=6, optimize=False)
    return buf.getvalue()


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    """Baseline JPEG with Pillow's defaults (4:2:0 chroma subsampling), no metadata."""
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"JPEG quality must be 1..100, got {quality}")
    buf = io.BytesIO()
    _as_rgb_image(rgb).save(buf, format="JPEG", quality=int(quality))
    return buf.getvalue()


def jpeg_roundtrip(rgb: np.ndarray, quality: int) -> np.ndarray:
    """Save as JPEG at ``quality`` with Pillow and decode again (what chat apps do)."""
    with Image.open(io.BytesIO(encode_jpeg(rgb, quality)), formats=["JPEG"]) as im:
        return np.ascontiguousarray(np.asarray(im.convert("RGB")))


def resize(rgb: np.ndarray, factor: float) -> np.ndarray:
    """Resize by ``factor`` with Pillow LANCZOS (antialiased); sides are rounded, at least 1."""
    if not factor > 0:
        raise ValueError(f"resize factor must be positive, got {factor}")
    im = _as_rgb_image(rgb)
    size = (max(1, round(im.width * factor)), max(1, round(im.height * factor)))
    if size == im.size:
        return np.array(rgb, dtype=np.uint8, copy=True, order="C")
    return np.ascontiguousarray(np.asarray(im.resize(size, Image.Resampling.LANCZOS)))
