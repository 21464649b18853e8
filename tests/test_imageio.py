"""worker.imageio: every input is generated here (no third-party files)."""

from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageFile

from worker.imageio import (
    Decoded,
    ImageError,
    decode_image,
    encode_jpeg,
    encode_png,
    jpeg_roundtrip,
    resize,
)

# --------------------------------------------------------------------------------------------
# helpers


def _photo(h: int = 96, w: int = 64) -> np.ndarray:
    """A smooth, asymmetric RGB test picture."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255 * xx / max(w - 1, 1)
    g = 255 * yy / max(h - 1, 1)
    b = 128 + 100 * np.sin(xx / 7.0) * np.cos(yy / 5.0)
    return np.clip(np.dstack([r, g, b]), 0, 255).round().astype(np.uint8)


def _save(im: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload)
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _png(width: int, height: int, bit_depth: int, color_type: int, raw: bytes) -> bytes:
    """A hand-made PNG: IHDR with any dimensions, one IDAT with ``raw`` (filtered rows)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(raw))
        + _chunk(b"IEND", b"")
    )


def _png_chunk_types(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, kinds = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kinds.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    return kinds


def _code(data: bytes, **kwargs) -> str:
    with pytest.raises(ImageError) as info:
        decode_image(data, **kwargs)
    assert info.value.message and str(info.value) == info.value.message
    return info.value.code


def _swapped_primaries_profile() -> bytes:
    """lcms' sRGB profile with red and green primaries swapped and a non-sRGB name."""
    icc = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    (count,) = struct.unpack(">I", icc[128:132])
    entries = {}
    for i in range(count):
        start = 132 + 12 * i
        entries[bytes(icc[start : start + 4])] = start
    r, g = entries[b"rXYZ"], entries[b"gXYZ"]
    icc[r + 4 : r + 12], icc[g + 4 : g + 12] = icc[g + 4 : g + 12], icc[r + 4 : r + 12]
    name = "sRGB".encode("utf-16-be")
    pos = icc.find(name)
    icc[pos : pos + len(name)] = "Swap".encode("utf-16-be")
    return bytes(icc)


# --------------------------------------------------------------------------------------------
# rejections


def test_empty() -> None:
    assert _code(b"") == "empty"


@pytest.mark.parametrize(
    "data",
    [
        np.random.default_rng(0).bytes(4096),
        b"Hello, this is a plain text message and not a photo.\n" * 20,
        b"\x00" * 100,
        b"RIFF\x10\x00\x00\x00WAVEfmt " + b"\x00" * 20,
    ],
    ids=["random", "text", "zeros", "wav"],
)
def test_not_an_image(data: bytes) -> None:
    assert _code(data) == "not_an_image"


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64, "HEIC"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "PDF"),
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>', "SVG"),
        (b"\xef\xbb\xbf  <svg width='10' height='10'></svg>", "SVG"),
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + b"\x00" * 64, "video"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01" + b"\x00" * 64, "video"),
        (b"8BPS\x00\x01" + b"\x00" * 64, "PSD"),
    ],
    ids=["heic", "pdf", "svg", "svg-bom", "mp4", "webm", "psd"],
)
def test_unsupported_format(data: bytes, detail: str) -> None:
    with pytest.raises(ImageError) as info:
        decode_image(data)
    assert info.value.code == "unsupported_format"
    assert info.value.detail is not None and detail in info.value.detail
    assert detail.split()[0] in info.value.message


def test_off_allowlist_pillow_formats_are_unsupported() -> None:
    im = Image.fromarray(_photo(32, 32))
    assert _code(_save(im, "ICO")) == "unsupported_format"
    assert _code(_save(im, "JPEG2000")) == "unsupported_format"
    assert _code(_save(im, "PPM")) == "unsupported_format"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP"])
@pytest.mark.parametrize("fraction", [0.2, 0.5, 0.9])
def test_truncated(fmt: str, fraction: float) -> None:
    im = Image.fromarray(_photo(128, 128))
    if fmt == "GIF":
        im = im.convert("P")
    data = _save(im, fmt, **({"progressive": True} if fmt == "JPEG" else {}))
    assert _code(data[: int(len(data) * fraction)]) == "truncated"


def test_truncated_even_if_pillow_flag_was_switched_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    data = _save(Image.fromarray(_photo(128, 128)), "JPEG")
    assert _code(data[: len(data) // 2]) == "truncated"
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored


def test_corrupt_png_checksum() -> None:
    data = bytearray(_save(Image.fromarray(_photo()), "PNG"))
    idat = data.find(b"IDAT")
    data[idat + 10] ^= 0xFF
    assert _code(bytes(data)) in ("corrupt", "truncated")


@pytest.mark.parametrize(
    ("width", "height", "max_pixels"),
    [
        (50_000, 50_000, 50_000_000),  # above 2x Pillow's limit: DecompressionBombError
        (10_000, 10_000, 50_000_000),  # above Pillow's limit: DecompressionBombWarning
        (8_000, 8_000, 50_000_000),  # our own limit
        (50_000, 50_000, 10**12),  # a caller's higher limit does not disable Pillow's
        (100, 100, 9_999),
    ],
)
def test_too_many_pixels_checked_before_decoding(width: int, height: int, max_pixels: int) -> None:
    # 1-bit grey IHDR with a tiny IDAT: decoding it would allocate width*height bytes.
    data = _png(width, height, 1, 0, b"\x00" * 16)
    assert len(data) < 200
    start = time.perf_counter()
    assert _code(data, max_pixels=max_pixels) == "too_many_pixels"
    assert time.perf_counter() - start < 0.5


def test_zero_size_png_is_too_small() -> None:
    assert _code(_png(0, 10, 8, 0, b"")) == "too_small"
    assert _code(_png(10, 0, 8, 0, b"")) == "too_small"


# --------------------------------------------------------------------------------------------
# accepted inputs


def _ok(data: bytes, **kwargs) -> Decoded:
    out = decode_image(data, **kwargs)
    assert out.rgb.dtype == np.uint8 and out.rgb.ndim == 3 and out.rgb.shape[2] == 3
    assert out.rgb.flags.c_contiguous and out.rgb.flags.writeable
    return out


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "TIFF", "WEBP"])
def test_lossless_formats_roundtrip_exactly(fmt: str) -> None:
    rgb = _photo()
    kwargs = {"lossless": True} if fmt == "WEBP" else {}
    out = _ok(_save(Image.fromarray(rgb), fmt, **kwargs))
    assert out.format == fmt and out.notes == ()
    np.testing.assert_array_equal(out.rgb, rgb)


@pytest.mark.parametrize("fmt", ["JPEG", "AVIF"])
def test_lossy_formats(fmt: str) -> None:
    rgb = _photo()
    out = _ok(_save(Image.fromarray(rgb), fmt, quality=90))
    assert out.format == fmt and out.notes == ()
    assert np.abs(out.rgb.astype(int) - rgb).mean() < 4


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (1, 3000), (3000, 1)])
def test_tiny_and_extreme_aspect(size: tuple[int, int]) -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (*size, 3), dtype=np.uint8)
    out = _ok(_save(Image.fromarray(rgb), "PNG"))
    np.testing.assert_array_equal(out.rgb, rgb)


def test_max_pixels_is_inclusive() -> None:
    _ok(_save(Image.fromarray(_photo(10, 10)), "PNG"), max_pixels=100)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animated_first_frame(fmt: str) -> None:
    frames = [Image.new("RGB", (40, 30), c) for c in ("red", "lime", "blue")]
    kwargs = {"lossless": True} if fmt == "WEBP" else {}
    data = _save(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, **kwargs)
    out = _ok(data)
    assert "animated_first_frame" in out.notes
    assert out.rgb.shape == (30, 40, 3)
    np.testing.assert_array_equal(out.rgb[15, 20], [255, 0, 0])


def test_multipage_tiff_first_page() -> None:
    pages = [Image.new("RGB", (20, 10), c) for c in ("red", "lime")]
    out = _ok(_save(pages[0], "TIFF", save_all=True, append_images=pages[1:]))
    assert out.notes == ("multipage_first_page",)
    np.testing.assert_array_equal(out.rgb[5, 5], [255, 0, 0])


def test_cmyk_jpeg() -> None:
    rgb = _photo()
    out = _ok(_save(Image.fromarray(rgb).convert("CMYK"), "JPEG", quality=95))
    assert out.format == "JPEG" and "cmyk_converted" in out.notes
    assert np.abs(out.rgb.astype(int) - rgb).mean() < 4


def test_16bit_grayscale_png_keeps_gradient() -> None:
    ramp = np.linspace(0, 65535, 256).round().astype(np.uint16)
    data = _save(Image.fromarray(np.tile(ramp, (4, 1))), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I;16")
    out = _ok(data)
    assert set(out.notes) == {"16bit_reduced", "grayscale_expanded"}
    row = out.rgb[0, :, 0].astype(int)
    np.testing.assert_array_equal(row, np.round(ramp / 257.0).astype(int))  # scaled, not clipped
    assert row[0] == 0 and row[-1] == 255 and np.all(np.diff(row) >= 0)
    assert len(np.unique(row)) == 256


def test_16bit_rgb_png_keeps_gradient() -> None:
    ramp = np.linspace(0, 65535, 256).round().astype(np.uint16)
    pixels = np.stack([ramp, ramp[::-1], np.full_like(ramp, 32896)], axis=-1)  # (256, 3)
    row = b"\x00" + pixels.astype(">u2").tobytes()
    out = _ok(_png(256, 4, 16, 2, row * 4))
    assert "16bit_reduced" in out.notes
    expected = np.round(pixels / 257.0)
    assert np.abs(out.rgb[0].astype(int) - expected).max() <= 1
    assert out.rgb[0, -1].tolist() == [255, 0, 128]
    assert len(np.unique(out.rgb[0, :, 0])) == 256


def test_palette_with_transparency_over_white() -> None:
    im = Image.new("P", (10, 10), 0)
    im.putpalette([255, 0, 0, 0, 0, 255])
    im.putpixel((0, 0), 1)
    for fmt in ("PNG", "GIF"):
        out = _ok(_save(im, fmt, transparency=0))
        assert set(out.notes) == {"palette_converted", "alpha_flattened"}
        assert out.rgb[5, 5].tolist() == [255, 255, 255]
        assert out.rgb[0, 0].tolist() == [0, 0, 255]


def test_palette_without_transparency() -> None:
    im = Image.fromarray(_photo()).convert("P")
    out = _ok(_save(im, "PNG"))
    assert out.notes == ("palette_converted",)
    np.testing.assert_array_equal(out.rgb, np.asarray(im.convert("RGB")))


def test_rgba_and_la_flattened_over_white() -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, :2, 3] = 255
    rgba[:, 2:, 3] = 0
    out = _ok(_save(Image.fromarray(rgba), "PNG"))
    assert out.notes == ("alpha_flattened",)
    assert out.rgb[0, 0].tolist() == [200, 0, 0] and out.rgb[0, 3].tolist() == [255, 255, 255]

    la = Image.merge("LA", [Image.new("L", (4, 4), 0), Image.new("L", (4, 4), 128)])
    out = _ok(_save(la, "PNG"))
    assert set(out.notes) == {"grayscale_expanded", "alpha_flattened"}
    assert out.rgb[0, 0].tolist() == [127, 127, 127]


def test_opaque_rgba_has_no_note() -> None:
    out = _ok(_save(Image.new("RGBA", (3, 3), (10, 20, 30, 255)), "PNG"))
    assert out.notes == () and out.rgb[1, 1].tolist() == [10, 20, 30]


@pytest.mark.parametrize("mode", ["L", "1"])
def test_grayscale_expanded(mode: str) -> None:
    im = Image.fromarray(_photo()[..., 1]).convert(mode)
    out = _ok(_save(im, "PNG"))
    assert out.notes == ("grayscale_expanded",)
    gray = np.asarray(im.convert("L"))
    for c in range(3):
        np.testing.assert_array_equal(out.rgb[..., c], gray)


# Where stored pixel (row, col) ends up for each EXIF orientation (numpy ops on the stored array).
_ORIENT = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation(orientation: int) -> None:
    stored = _photo(48, 32)
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = _ok(_save(Image.fromarray(stored), "PNG", exif=exif))
    expected = _ORIENT[orientation](stored)
    np.testing.assert_array_equal(out.rgb, expected)
    assert ("exif_rotated" in out.notes) == (orientation != 1)


def test_orientation_6_jpeg_comes_back_rotated() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    out = _ok(_save(Image.fromarray(_photo(96, 64)), "JPEG", exif=exif))
    assert out.rgb.shape == (64, 96, 3) and out.notes == ("exif_rotated",)


def test_icc_profile_applied_and_srgb_left_alone() -> None:
    red = Image.new("RGB", (8, 8), (255, 0, 0))
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    out = _ok(_save(red, "PNG", icc_profile=srgb))
    assert out.notes == () and out.rgb[0, 0].tolist() == [255, 0, 0]
    out = _ok(_save(red, "PNG", icc_profile=_swapped_primaries_profile()))
    assert out.notes == ("icc_converted",)
    r, g, b = out.rgb[0, 0].tolist()
    assert g > 200 and r < 60 and b < 60  # "red" in the swapped space is sRGB green


def test_broken_icc_profile_is_ignored() -> None:
    out = _ok(_save(Image.new("RGB", (4, 4), (1, 2, 3)), "PNG", icc_profile=b"junk" * 40))
    assert out.notes == () and out.rgb[0, 0].tolist() == [1, 2, 3]


# --------------------------------------------------------------------------------------------
# encoders


def _gps_jpeg(rgb: np.ndarray) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x0110] = "PhoneModel"
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = _save(Image.fromarray(rgb), "JPEG", quality=92, exif=exif, icc_profile=srgb)
    with Image.open(io.BytesIO(data)) as check:  # the input really carries GPS and ICC
        assert check.getexif().get_ifd(0x8825)[1] == "N"
        assert check.info.get("icc_profile")
    return data


def test_png_output_has_no_metadata() -> None:
    rgb = _photo()
    decoded = _ok(_gps_jpeg(rgb))
    png = encode_png(decoded.rgb)
    assert b"GPS" not in png and b"PhoneMaker" not in png and b"Exif" not in png
    assert _png_chunk_types(png) == [b"IHDR", b"IDAT", b"IEND"]
    with Image.open(io.BytesIO(png)) as im:
        assert im.mode == "RGB" and im.format == "PNG"
        assert not im.getexif() and "icc_profile" not in im.info and "exif" not in im.info
        assert not getattr(im, "text", {})
        np.testing.assert_array_equal(np.asarray(im), decoded.rgb)


def test_png_ihdr_is_8bit_rgb() -> None:
    png = encode_png(_photo(5, 7))
    width, height, depth, color_type = struct.unpack(">IIBB", png[16:26])
    assert (width, height, depth, color_type) == (7, 5, 8, 2)


def test_encoders_reject_bad_arrays() -> None:
    with pytest.raises(ValueError):
        encode_png(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError):
        encode_png(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError):
        encode_jpeg(_photo(), 0)
    with pytest.raises(ValueError):
        resize(_photo(), 0)


def test_encoders_accept_non_contiguous() -> None:
    rgb = _photo()[:, ::-1]
    with Image.open(io.BytesIO(encode_png(rgb))) as im:
        np.testing.assert_array_equal(np.asarray(im), rgb)


def test_jpeg_encode_and_roundtrip() -> None:
    rgb = _photo()
    data = encode_jpeg(rgb, 85)
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "JPEG" and im.size == (64, 96)
        assert im.layer[0][1:3] == (2, 2)  # luma 2x2: 4:2:0 chroma subsampling
        assert not im.getexif() and "icc_profile" not in im.info
    back = jpeg_roundtrip(rgb, 85)
    assert back.shape == rgb.shape and back.dtype == np.uint8
    assert 0 < np.abs(back.astype(int) - rgb).mean() < 3
    assert (
        np.abs(jpeg_roundtrip(rgb, 50).astype(int) - rgb).mean()
        > np.abs(back.astype(int) - rgb).mean()
    )


@pytest.mark.parametrize(("factor", "size"), [(0.5, (48, 32)), (0.4, (38, 26)), (1.0, (96, 64))])
def test_resize(factor: float, size: tuple[int, int]) -> None:
    rgb = _photo()
    out = resize(rgb, factor)
    assert out.shape == (*size, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    small = np.asarray(Image.fromarray(rgb).resize(size[::-1], Image.Resampling.BOX), dtype=int)
    assert np.abs(out.astype(int) - small).mean() < 3


def test_resize_never_below_one_pixel() -> None:
    assert resize(np.zeros((3, 5, 3), np.uint8), 0.01).shape == (1, 1, 3)
