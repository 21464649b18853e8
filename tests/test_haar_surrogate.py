"""The soft Haar cascade surrogate: faithful to cv2.CascadeClassifier, and its loss hides faces."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data
import tensorflow as tf

from worker.attack.surrogates.haar import HaarCascadeSurrogate, read_cascade
from worker.detectors.haar import HaarAlt2Detector

#: Where the face is in skimage.data.astronaut() (x0, y0, x1, y1).
ASTRONAUT_FACE = (175, 55, 275, 180)


@pytest.fixture(scope="module")
def surrogate() -> HaarCascadeSurrogate:
    return HaarCascadeSurrogate()


def test_cascade_file_is_read_whole() -> None:
    cascade = read_cascade(__import__("pathlib").Path(cv2.data.haarcascades)
                           / HaarCascadeSurrogate.cascade_file)
    assert cascade.size == (20, 20)
    assert cascade.stage_threshold.shape == (20,)
    # Every tree of alt2 has 2 split nodes and 3 leaves.
    assert len(cascade.leaf_value) == 3 * len(cascade.node_feature) // 2
    assert np.allclose(cascade.leaf_stage.sum(axis=1), 1.0)
    # A feature is 2 or 3 rectangles: at most 12 integral-image corners, weighted.
    assert cascade.corner_index.shape == cascade.corner_weight.shape
    assert cascade.corner_index.shape[1] <= 12 and cascade.corner_index.max() < 21 * 21
    assert (np.abs(cascade.corner_weight).sum(axis=1) > 0).all()


@pytest.mark.parametrize("face_px", [18, 20, 24])
def test_hard_cascade_matches_opencv(surrogate: HaarCascadeSurrogate, face_px: int) -> None:
    """Every window OpenCV accepts at one scale (it scans every 2nd position there) is accepted
    by the rebuild at that position, and no other even position is."""
    grey = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2GRAY)
    k = face_px / 100
    small = cv2.resize(grey, None, fx=k, fy=k, interpolation=cv2.INTER_LINEAR)
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + surrogate.cascade_file)
    found = cascade.detectMultiScale(small, 1.5, 0, minSize=(20, 20), maxSize=(21, 21))
    expected = {(int(y), int(x)) for x, y, w, _ in found if w == 20}
    margins = surrogate.stage_margins(tf.constant(small[None, ..., None], tf.float32), hard=True,
                                         stride=1)
    height, width = small.shape
    passed = np.all(margins.numpy() >= 0, axis=-1).reshape(height - 19, width - 19)
    got = {(int(y), int(x)) for y, x in zip(*np.nonzero(passed), strict=True)
           if y % 2 == 0 and x % 2 == 0}
    assert expected, "OpenCV finds the astronaut at this scale"
    assert got == expected


def test_soft_loss_hides_the_face_from_opencv(surrogate: HaarCascadeSurrogate) -> None:
    rgb = skimage.data.astronaut()
    assert HaarAlt2Detector().detect(rgb)
    height, width = rgb.shape[:2]
    x0, y0, x1, y1 = ASTRONAUT_FACE
    faces = np.asarray([[x0 / width, y0 / height, x1 / width, y1 / height]], np.float32)
    base = tf.constant(rgb[None], tf.float32)
    delta = velocity = tf.zeros_like(base)
    eps = 12.0  # strength 3's budget, momentum sign steps as the engine takes them
    losses = []
    for _ in range(30):
        with tf.GradientTape() as tape:
            tape.watch(delta)
            loss = surrogate.loss(tf.clip_by_value(base + delta, 0, 255), faces)
        losses.append(float(loss))
        grad = tape.gradient(loss, delta)
        velocity = 0.9 * velocity + grad / (tf.reduce_mean(tf.abs(grad)) + 1e-12)
        delta = tf.clip_by_value(delta - 1.5 * tf.sign(velocity), -eps, eps)
    protected = np.clip(np.rint(rgb + delta.numpy()[0]), 0, 255).astype(np.uint8)
    assert losses[0] > 0 and losses[-1] < 0.5 * losses[0]
    assert np.abs(protected.astype(int) - rgb).max() <= eps
    # The face is gone at the scales the surrogate covers (windows of 0.7-1.3 faces); a small
    # cluster of sub-face windows (an eye region, ~0.3 faces) may survive: not covered.
    side = max(x1 - x0, y1 - y0)
    found = HaarAlt2Detector().detect(protected)
    assert not [f for f in found if max(f.width, f.height) >= 0.7 * side], found


def test_no_face_means_no_loss(surrogate: HaarCascadeSurrogate) -> None:
    image = tf.constant(skimage.data.astronaut()[None], tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(image)
        loss = surrogate.loss(image, np.zeros((0, 4), np.float32))
    grad = tape.gradient(loss, image)
    assert float(loss) == 0.0
    assert grad is None or np.all(np.isfinite(grad.numpy()))
