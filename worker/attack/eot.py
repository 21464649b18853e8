"""Differentiable image transforms for expectation over transformation (EOT), in TensorFlow.

All functions take float32 RGB batches ``(B, H, W, 3)`` with values in ``[0, 255]``, work with
dynamic ``H``/``W`` inside ``tf.function`` and are differentiable w.r.t. the images.

``diff_jpeg`` mirrors a baseline JPEG save + load as Pillow does it with libjpeg(-turbo):
JFIF RGB->YCbCr, 4:2:0 chroma subsampling (2x2 average), edge-replicated padding to whole
MCUs, 8x8 DCT-II, quantisation with the IJG tables scaled exactly like ``jpeg_quality_scaling``
(``force_baseline``), then dequantisation, IDCT, libjpeg's "fancy" (triangle) chroma upsampling
and YCbCr->RGB. Every integer rounding libjpeg does (colour conversion, downsampling, coefficient
quantisation, IDCT output, upsampling) is done in the forward pass with a straight-through
estimator (identity gradient), so forward values track Pillow closely while gradients flow.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

# IJG standard tables (libjpeg jcparam.c), natural (row-major) order.
_LUMA_Q = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    dtype=np.int32,
)
_CHROMA_Q = np.array(
    [
        [17, 18, 24, 47, 99, 99, 99, 99],
        [18, 21, 26, 66, 99, 99, 99, 99],
        [24, 26, 56, 99, 99, 99, 99, 99],
        [47, 66, 99, 99, 99, 99, 99, 99],
        [99, 99, 99, 99, 99, 99, 99, 99],
        [99, 99, 99, 99, 99, 99, 99, 99],
        [99, 99, 99, 99, 99, 99, 99, 99],
        [99, 99, 99, 99, 99, 99, 99, 99],
    ],
    dtype=np.int32,
)


def _dct_matrix() -> np.ndarray:
    """Orthonormal 8-point DCT-II matrix ``D`` (coefficients = D @ block @ D.T)."""
    d = np.zeros((8, 8), dtype=np.float64)
    for k in range(8):
        scale = math.sqrt(1 / 8) if k == 0 else math.sqrt(2 / 8)
        for n in range(8):
            d[k, n] = scale * math.cos(math.pi * (2 * n + 1) * k / 16)
    return d.astype(np.float32)


_DCT = _dct_matrix()
_DCT2 = np.kron(_DCT, _DCT)  # acts on row-major flattened 8x8 blocks

# JFIF colour conversion (libjpeg jccolor.c / jdcolor.c).
_RGB_TO_YCC = np.array(
    [
        [0.299, 0.587, 0.114],
        [-0.168735892, -0.331264108, 0.5],
        [0.5, -0.418687589, -0.081312411],
    ],
    dtype=np.float32,
)
_YCC_TO_RGB = np.array(
    [
        [1.0, 0.0, 1.402],
        [1.0, -0.344136286, -0.714136286],
        [1.0, 1.772, 0.0],
    ],
    dtype=np.float32,
)


# Float32 slack when emulating libjpeg's integer rounding of exact halves.
_EPS = 1e-3


def _ste(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """Forward ``y``, backward identity w.r.t. ``x``."""
    return x + tf.stop_gradient(y - x)


def _round_ste(x: tf.Tensor, eps: float = 0.0) -> tf.Tensor:
    """Round half away from zero (as libjpeg's quantiser) with a straight-through gradient.

    ``eps`` widens the halfway point so that exact halves computed in float32 as x.4999999 still
    round away from zero, as libjpeg's integer arithmetic does.
    """
    return _ste(x, tf.sign(x) * tf.floor(tf.abs(x) + (0.5 + eps)))


def _floor_ste(x: tf.Tensor) -> tf.Tensor:
    """``floor`` with a straight-through gradient (libjpeg's ``>>`` on biased integers)."""
    return _ste(x, tf.floor(x))


def _column_parity(x: tf.Tensor) -> tf.Tensor:
    """(1, 1, W, 1) float tensor: 0 on even columns of ``x``, 1 on odd ones."""
    cols = tf.range(tf.shape(x)[2]) % 2
    return tf.cast(tf.reshape(cols, [1, 1, -1, 1]), tf.float32)


def quality_to_tables(quality: int | tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """IJG luma/chroma quantisation tables (8x8 float32) for ``quality``, as libjpeg scales them.

    ``jpeg_quality_scaling``: q clamped to 1..100; scale = 5000/q if q < 50 else 200 - 2q
    (integer maths); entry = (base * scale + 50) / 100 clamped to 1..255 (baseline).
    """
    q = tf.cast(tf.round(tf.cast(quality, tf.float32)), tf.int32)
    q = tf.clip_by_value(q, 1, 100)
    scale = tf.where(q < 50, 5000 // q, 200 - 2 * q)

    def table(base: np.ndarray) -> tf.Tensor:
        entries = (tf.constant(base) * scale + 50) // 100
        return tf.cast(tf.clip_by_value(entries, 1, 255), tf.float32)

    return table(_LUMA_Q), table(_CHROMA_Q)


def _pad_edge(x: tf.Tensor, height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """Pad (B, h, w, C) to (B, height, width, C) by repeating the last row/column."""
    h = tf.shape(x)[1]
    w = tf.shape(x)[2]
    rows = tf.minimum(tf.range(height), h - 1)
    cols = tf.minimum(tf.range(width), w - 1)
    return tf.gather(tf.gather(x, rows, axis=1), cols, axis=2)


def _blocks_roundtrip(plane: tf.Tensor, qtable: tf.Tensor) -> tf.Tensor:
    """DCT -> quantise -> dequantise -> IDCT of (B, H, W, C) planes, H and W multiples of 8.

    Values are level-shifted samples (centred on 0). The 2-D DCT of each block is one matmul
    with the 64x64 Kronecker product ``D (x) D`` on row-major flattened blocks.
    """
    shape = tf.shape(plane)
    b, h, w, c = shape[0], shape[1], shape[2], shape[3]
    blocks = tf.reshape(plane, [b, h // 8, 8, w // 8, 8, c])
    blocks = tf.reshape(tf.transpose(blocks, [0, 1, 3, 5, 2, 4]), [-1, 64])
    coef = tf.matmul(blocks, tf.constant(_DCT2.T))
    q = tf.reshape(qtable, [1, 64])
    coef = _round_ste(coef / q, _EPS) * q
    out = tf.matmul(coef, tf.constant(_DCT2))
    out = tf.transpose(tf.reshape(out, [b, h // 8, w // 8, c, 8, 8]), [0, 1, 4, 2, 5, 3])
    return tf.reshape(out, [b, h, w, c])


def _upsample2_fancy(x: tf.Tensor, axis: int) -> tf.Tensor:
    """libjpeg's triangle upsampling by 2 along ``axis`` (1 or 2), edges replicated."""
    n = tf.shape(x)[axis]
    first = tf.gather(x, [0], axis=axis)
    last = tf.gather(x, [n - 1], axis=axis)
    padded = tf.concat([first, x, last], axis=axis)
    prev = tf.gather(padded, tf.range(0, n), axis=axis)
    nxt = tf.gather(padded, tf.range(2, n + 2), axis=axis)
    even = 0.75 * x + 0.25 * prev
    odd = 0.75 * x + 0.25 * nxt
    return _interleave(even, odd, axis)


def _interleave(even: tf.Tensor, odd: tf.Tensor, axis: int) -> tf.Tensor:
    """Interleave two equally shaped tensors along ``axis`` (1 or 2)."""
    shape = tf.shape(even)
    dims = [shape[0], shape[1], shape[2], shape[3]]
    dims[axis] = 2 * dims[axis]
    return tf.reshape(tf.stack([even, odd], axis=axis + 1), dims)


def _upsample_chroma(chroma: tf.Tensor) -> tf.Tensor:
    """2x2 chroma upsampling as libjpeg(-turbo) decodes 4:2:0 with ``do_fancy_upsampling``.

    libjpeg-turbo only uses the triangle filter when the subsampled plane is wider than 2
    samples; otherwise it replicates each sample into a 2x2 box.
    """

    def fancy() -> tf.Tensor:
        return _upsample2_fancy(_upsample2_fancy(chroma, 1), 2)

    def box() -> tf.Tensor:
        return _interleave(*(2 * [_interleave(chroma, chroma, 1)]), 2)

    return tf.cond(tf.shape(chroma)[2] > 2, fancy, box)


def diff_jpeg(images: tf.Tensor, quality: int | tf.Tensor) -> tf.Tensor:
    """Differentiable approximation of a Pillow JPEG save (4:2:0) + load at ``quality``.

    ``images``: float32 (B, H, W, 3) in [0, 255], any H/W >= 1. Returns the same shape, clipped
    to [0, 255]. ``quality`` may be a Python int or a scalar tensor (int or float, rounded).
    """
    images = tf.convert_to_tensor(images, tf.float32)
    shape = tf.shape(images)
    h, w = shape[1], shape[2]
    hp = (h + 15) // 16 * 16
    wp = (w + 15) // 16 * 16
    luma_q, chroma_q = quality_to_tables(quality)

    # Encoder: colour conversion to integer samples (jccolor.c rounds Y halves up and Cb/Cr
    # halves down), MCU padding by edge replication.
    ycc = tf.tensordot(images, tf.constant(_RGB_TO_YCC.T), axes=1)
    ycc = ycc + tf.constant([0.5 + _EPS, 128.5 - _EPS, 128.5 - _EPS])
    ycc = tf.clip_by_value(_floor_ste(ycc), 0.0, 255.0)
    # libjpeg pads the full-size samples to whole MCUs horizontally, but vertically only to an
    # even row count before downsampling; the subsampled rows are then repeated to the MCU.
    y = _pad_edge(ycc[..., :1], hp, wp)
    he = (h + 1) // 2 * 2
    chroma = _pad_edge(ycc[..., 1:], he, wp)
    b = tf.shape(chroma)[0]
    chroma = tf.reduce_sum(tf.reshape(chroma, [b, he // 2, 2, wp // 2, 2, 2]), axis=[2, 4])
    # jcsample.c h2v2_downsample: (sum + bias) >> 2, bias alternating 1, 2 along a row.
    chroma = _floor_ste((chroma + 1.0 + _column_parity(chroma)) / 4.0)
    chroma = _pad_edge(chroma, hp // 2, wp // 2)

    # Quantisation round trip in the DCT domain; IDCT output is rounded and range-limited.
    y = _blocks_roundtrip(y - 128.0, luma_q) + 128.0
    chroma = _blocks_roundtrip(chroma - 128.0, chroma_q) + 128.0
    y = _round_ste(tf.clip_by_value(y, 0.0, 255.0))
    chroma = _round_ste(tf.clip_by_value(chroma, 0.0, 255.0))

    # Decoder: fancy upsampling only sees the real chroma samples (ceil(H/2) x ceil(W/2)).
    chroma = chroma[:, : (h + 1) // 2, : (w + 1) // 2, :]
    chroma = _upsample_chroma(chroma)[:, :h, :w, :]
    # jdsample.c h2v2_fancy_upsample: (16 * value + 8) >> 4 on even columns, + 7 on odd ones
    # (16 * value is an exact integer in float32; a no-op for the box filter).
    chroma = _floor_ste((16.0 * chroma + 8.0 - _column_parity(chroma)) / 16.0)
    ycc = tf.concat([y[:, :h, :w, :], chroma], axis=-1) - tf.constant([0.0, 128.0, 128.0])
    rgb = tf.tensordot(ycc, tf.constant(_YCC_TO_RGB.T), axes=1)
    return tf.clip_by_value(_floor_ste(rgb + 0.5), 0.0, 255.0)


def gaussian_blur(images: tf.Tensor, sigma: tf.Tensor, radius: int) -> tf.Tensor:
    """Separable Gaussian blur with a fixed ``radius``; ``sigma`` ~ 0 gives the identity."""
    taps = tf.range(-radius, radius + 1, dtype=tf.float32)
    safe = tf.maximum(sigma, 1e-3)
    kernel = tf.exp(-0.5 * tf.square(taps / safe))
    kernel = kernel / tf.reduce_sum(kernel)
    identity = tf.one_hot(radius, 2 * radius + 1, dtype=tf.float32)
    kernel = tf.where(sigma < 1e-3, identity, kernel)
    channels = images.shape[-1] or 3
    k_rows = tf.tile(tf.reshape(kernel, [-1, 1, 1, 1]), [1, 1, channels, 1])
    k_cols = tf.tile(tf.reshape(kernel, [1, -1, 1, 1]), [1, 1, channels, 1])
    h = tf.shape(images)[1]
    w = tf.shape(images)[2]
    # Edge-replicated borders, any image size (tf.pad's reflect modes need size > radius).
    rows = tf.clip_by_value(tf.range(-radius, h + radius), 0, h - 1)
    cols = tf.clip_by_value(tf.range(-radius, w + radius), 0, w - 1)
    x = tf.gather(images, rows, axis=1)
    x = tf.nn.depthwise_conv2d(x, k_rows, [1, 1, 1, 1], "VALID")
    x = tf.gather(x, cols, axis=2)
    return tf.nn.depthwise_conv2d(x, k_cols, [1, 1, 1, 1], "VALID")


def _shift(images: tf.Tensor, dy: tf.Tensor, dx: tf.Tensor) -> tf.Tensor:
    """Translate by integer (dy, dx), filling the uncovered border with edge pixels."""
    h = tf.shape(images)[1]
    w = tf.shape(images)[2]
    rows = tf.clip_by_value(tf.range(h) - dy, 0, h - 1)
    cols = tf.clip_by_value(tf.range(w) - dx, 0, w - 1)
    return tf.gather(tf.gather(images, rows, axis=1), cols, axis=2)


def random_eot(
    images: tf.Tensor,
    rng: tf.random.Generator,
    *,
    jpeg: tuple[int, int] | None = (50, 95),
    scale: tuple[float, float] | None = (0.4, 1.0),
    blur_sigma: tuple[float, float] | None = (0.0, 1.0),
    shift: int | None = 4,
) -> tf.Tensor:
    """Apply one random transform (shared by the batch): downscale, blur, shift, JPEG.

    - ``scale``: factor ~ U(lo, hi); bilinear antialiased resize, the output stays smaller.
    - ``blur_sigma``: Gaussian sigma ~ U(lo, hi), separable, sigma 0 is the identity.
    - ``shift``: integer translation in [-shift, shift] px per axis, edge-filled.
    - ``jpeg``: ``diff_jpeg`` at an integer quality ~ U{lo..hi}.

    Pass ``None`` (or a zero ``shift``) to skip a component.
    """
    x = tf.convert_to_tensor(images, tf.float32)
    if scale is not None:
        factor = rng.uniform([], scale[0], scale[1])
        size = tf.cast(tf.shape(x)[1:3], tf.float32) * factor
        size = tf.maximum(tf.cast(tf.round(size), tf.int32), 1)
        x = tf.image.resize(x, size, method="bilinear", antialias=True)
    if blur_sigma is not None:
        sigma = rng.uniform([], blur_sigma[0], blur_sigma[1])
        radius = max(1, math.ceil(3.0 * float(blur_sigma[1])))
        x = gaussian_blur(x, sigma, radius)
    if shift:
        offsets = rng.uniform([2], -shift, shift + 1, dtype=tf.int32)
        x = _shift(x, offsets[0], offsets[1])
    if jpeg is not None:
        quality = rng.uniform([], jpeg[0], jpeg[1] + 1, dtype=tf.int32)
        x = diff_jpeg(x, quality)
    return x
