"""worker.attack.eot: differentiable JPEG vs Pillow's real JPEG, and the random EOT transform."""

from __future__ import annotations

import io
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402
from skimage import data  # noqa: E402

from worker.attack.eot import diff_jpeg, quality_to_tables, random_eot  # noqa: E402

SIG = [tf.TensorSpec([None, None, None, 3], tf.float32)]


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut()


def _pillow_jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float32)


def _batch(rgb: np.ndarray) -> tf.Tensor:
    return tf.constant(rgb[None].astype(np.float32))


@pytest.mark.parametrize("quality", [1, 10, 25, 49, 50, 51, 75, 85, 95, 100])
def test_quality_tables_match_pillow(quality: int) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buf, format="JPEG", quality=quality)
    with Image.open(buf) as im:
        tables = im.quantization
    luma, chroma = quality_to_tables(quality)
    np.testing.assert_array_equal(luma.numpy().astype(int).ravel(), list(tables[0]))
    np.testing.assert_array_equal(chroma.numpy().astype(int).ravel(), list(tables[1]))
    luma_t, _ = quality_to_tables(tf.constant(quality))
    np.testing.assert_array_equal(luma_t.numpy(), luma.numpy())


# Measured on this machine (Pillow 13 / libjpeg-turbo): q50 0.105, q75 0.135, q85 0.196,
# q95 0.298 mean abs difference (0..255). Remaining differences come from libjpeg's fixed-point
# ISLOW DCT/IDCT flipping a coefficient's rounding near a quantisation boundary.
@pytest.mark.parametrize("quality", [50, 75, 85, 95])
def test_diff_jpeg_matches_pillow(astronaut: np.ndarray, quality: int) -> None:
    ref = _pillow_jpeg(astronaut, quality)
    out = diff_jpeg(_batch(astronaut), quality)[0].numpy()
    assert out.shape == astronaut.shape and out.dtype == np.float32
    err = np.abs(out - ref)
    assert err.mean() < 0.5, err.mean()
    assert (err > 2).mean() < 0.02
    # The emulation is far closer to Pillow than Pillow's output is to its input.
    assert err.mean() < 0.25 * np.abs(ref - astronaut).mean()
    np.testing.assert_array_equal(out, np.round(out))
    assert out.min() >= 0 and out.max() <= 255


@pytest.mark.parametrize("size", [(101, 67), (67, 101), (1, 1), (2, 9), (17, 3), (33, 5)])
def test_diff_jpeg_odd_sizes(astronaut: np.ndarray, size: tuple[int, int]) -> None:
    rgb = np.asarray(Image.fromarray(astronaut).resize(size[::-1], Image.Resampling.BOX))
    out = diff_jpeg(_batch(rgb), 75)[0].numpy()
    assert out.shape == (*size, 3)
    assert np.abs(out - _pillow_jpeg(rgb, 75)).mean() < 1.0


def test_diff_jpeg_batch_is_per_image(astronaut: np.ndarray) -> None:
    a = astronaut[:96, :80]
    b = astronaut[200:296, 300:380]
    both = diff_jpeg(tf.constant(np.stack([a, b]).astype(np.float32)), 60).numpy()
    np.testing.assert_array_equal(both[0], diff_jpeg(_batch(a), 60)[0].numpy())
    np.testing.assert_array_equal(both[1], diff_jpeg(_batch(b), 60)[0].numpy())


def test_diff_jpeg_gradient(astronaut: np.ndarray) -> None:
    x = _batch(astronaut[:120, :90])
    weights = tf.random.stateless_normal(tf.shape(x), seed=[1, 2])
    for quality in (60, tf.constant(80), tf.constant(72.6)):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(diff_jpeg(x, quality) * weights)
        grad = tape.gradient(loss, x).numpy()
        assert np.isfinite(grad).all()
        assert (grad != 0).mean() > 0.9


def test_diff_jpeg_in_tf_function_with_dynamic_shapes(astronaut: np.ndarray) -> None:
    @tf.function(input_signature=[*SIG, tf.TensorSpec([], tf.int32)])
    def step(x: tf.Tensor, quality: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = diff_jpeg(x, quality)
            loss = tf.reduce_mean(tf.square(y - 128.0))
        return y, tape.gradient(loss, x)

    for size, quality in [((64, 48), 50), ((101, 67), 95), ((7, 5), 75)]:
        rgb = astronaut[: size[0], : size[1]]
        y, grad = step(_batch(rgb), tf.constant(quality))
        assert y.shape == (1, *size, 3) and grad.shape == (1, *size, 3)
        np.testing.assert_array_equal(y[0].numpy(), diff_jpeg(_batch(rgb), quality)[0].numpy())
        assert np.isfinite(grad.numpy()).all() and np.any(grad.numpy() != 0)
    assert step.experimental_get_tracing_count() == 1


def test_random_eot_gradient_and_sizes(astronaut: np.ndarray) -> None:
    rng = tf.random.Generator.from_seed(7)

    @tf.function(input_signature=SIG)
    def step(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = random_eot(x, rng)
            loss = tf.reduce_mean(tf.square(y - 100.0))
        return y, tape.gradient(loss, x)

    x = tf.constant(np.stack([astronaut[:101, :67], astronaut[1:102, 2:69]]).astype(np.float32))
    heights = set()
    for _ in range(6):
        y, grad = step(x)
        h, w = y.shape[1:3]
        assert 0.4 * 101 - 1 <= h <= 101 and 0.4 * 67 - 1 <= w <= 67
        assert abs(h / 101 - w / 67) < 0.03  # one factor for both axes
        heights.add(h)
        g = grad.numpy()
        assert np.isfinite(g).all() and (g != 0).mean() > 0.5
        assert float(tf.reduce_min(y)) >= 0 and float(tf.reduce_max(y)) <= 255
    assert len(heights) > 1
    assert step.experimental_get_tracing_count() == 1


def test_random_eot_components_skippable(astronaut: np.ndarray) -> None:
    rng = tf.random.Generator.from_seed(3)
    x = _batch(astronaut[:50, :40])
    none = random_eot(x, rng, jpeg=None, scale=None, blur_sigma=None, shift=None)
    np.testing.assert_array_equal(none.numpy(), x.numpy())
    sharp = random_eot(x, rng, jpeg=None, scale=None, blur_sigma=(0.0, 0.0), shift=0)
    np.testing.assert_allclose(sharp.numpy(), x.numpy(), atol=1e-3)
    blurred = random_eot(x, rng, jpeg=None, scale=None, blur_sigma=(1.0, 1.0), shift=None)
    assert blurred.shape == x.shape
    assert 0 < float(tf.reduce_mean(tf.abs(blurred - x))) < 20
    # Blurring keeps the mean (normalised kernel, edge-replicated borders).
    assert abs(float(tf.reduce_mean(blurred)) - float(tf.reduce_mean(x))) < 0.5
    jpeg = random_eot(x, rng, jpeg=(90, 90), scale=None, blur_sigma=None, shift=None)
    np.testing.assert_array_equal(jpeg.numpy(), diff_jpeg(x, 90).numpy())
    small = random_eot(x, rng, jpeg=None, scale=(0.5, 0.5), blur_sigma=None, shift=None)
    assert small.shape == (1, 25, 20, 3)


def test_random_eot_shift_moves_content() -> None:
    rng = tf.random.Generator.from_seed(11)
    x = tf.constant(np.arange(12 * 12 * 3, dtype=np.float32).reshape(1, 12, 12, 3) % 251)
    seen_shifted = False
    for _ in range(10):
        y = random_eot(x, rng, jpeg=None, scale=None, blur_sigma=None, shift=2).numpy()
        assert y.shape == x.shape
        # Interior content is a translated copy of the input by at most 2 px.
        inner = y[0, 2:-2, 2:-2]
        matches = [
            np.array_equal(inner, x.numpy()[0, 2 - dy : 10 - dy, 2 - dx : 10 - dx])
            for dy in range(-2, 3)
            for dx in range(-2, 3)
        ]
        assert sum(matches) == 1
        seen_shifted |= not np.array_equal(y, x.numpy())
    assert seen_shifted


def test_random_eot_tiny_image() -> None:
    rng = tf.random.Generator.from_seed(5)
    x = tf.fill([1, 1, 1, 3], 77.0)
    y = random_eot(x, rng)
    assert y.shape == (1, 1, 1, 3)
    assert np.all(np.abs(y.numpy() - 77.0) <= 1)
