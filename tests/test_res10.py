"""res10 SSD: cv2.dnn reference detector and its TensorFlow surrogate."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data
import tensorflow as tf

from worker.attack.surrogates.res10 import Res10Surrogate
from worker.detectors.base import Face
from worker.detectors.res10 import INPUT_SIZE, MEAN_BGR, Res10Detector

#: Where the face is in skimage.data.astronaut() (x0, y0, x1, y1).
ASTRONAUT_FACE = (175, 55, 275, 180)


def iou(face: Face, box: tuple[float, float, float, float]) -> float:
    iw = min(face.x1, box[2]) - max(face.x0, box[0])
    ih = min(face.y1, box[3]) - max(face.y0, box[1])
    inter = max(iw, 0) * max(ih, 0)
    return inter / (face.width * face.height + (box[2] - box[0]) * (box[3] - box[1]) - inter)


@pytest.fixture(scope="module")
def detector() -> Res10Detector:
    return Res10Detector()


@pytest.fixture(scope="module")
def surrogate() -> Res10Surrogate:
    return Res10Surrogate()


@pytest.fixture(scope="module")
def grad_fn(surrogate: Res10Surrogate):
    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def loss_and_grad(images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            tape.watch(images)
            loss = surrogate.loss(images)
        return loss, tape.gradient(loss, images)

    return loss_and_grad


def small(rgb: np.ndarray) -> np.ndarray:
    """The image at the SSD's input size, so both implementations see identical pixels."""
    return cv2.resize(rgb, (INPUT_SIZE, INPUT_SIZE))


def test_detector_finds_astronaut(detector: Res10Detector) -> None:
    faces = detector.detect(skimage.data.astronaut())
    assert len(faces) == 1
    assert iou(faces[0], ASTRONAUT_FACE) > 0.5
    assert faces[0].score > 0.9


def test_detector_face_free(detector: Res10Detector) -> None:
    assert detector.detect(skimage.data.coffee()) == []


@pytest.mark.parametrize("image", ["astronaut", "coffee"])
def test_surrogate_matches_cv2(
    detector: Res10Detector, surrogate: Res10Surrogate, image: str
) -> None:
    rgb = small(getattr(skimage.data, image)())
    blob = cv2.dnn.blobFromImage(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), 1.0, None, MEAN_BGR)
    detector.net.setInput(blob)
    expected = detector.net.forward("mbox_conf_softmax").reshape(-1, 2)[:, 1]
    got = surrogate.face_probs(tf.constant(rgb[None], tf.float32)).numpy()[0]
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-3, rtol=0)


def test_loss_and_gradient(surrogate: Res10Surrogate, grad_fn) -> None:
    batch = tf.constant(skimage.data.astronaut()[None], tf.float32)  # 512x512, resized inside
    loss, grad = grad_fn(batch)
    assert loss.shape == () and float(loss) > 0
    assert np.isfinite(grad.numpy()).all() and np.abs(grad.numpy()).max() > 0
    assert float(surrogate.face_scores(batch)[0]) > 0.9


def test_any_size_and_face_free(surrogate: Res10Surrogate, grad_fn) -> None:
    coffee = tf.constant(skimage.data.coffee()[None], tf.float32)  # 400x600
    loss, grad = grad_fn(tf.concat([coffee, coffee[:, :, ::-1]], axis=0))
    assert np.isfinite(grad.numpy()).all()
    assert 0.0 <= float(loss) < 1.0  # at most a few priors inside the margin
    assert surrogate.face_scores(coffee).numpy().max() < 0.5


def test_sign_gradient_attack_hides_face(
    detector: Res10Detector, surrogate: Res10Surrogate, grad_fn
) -> None:
    clean = tf.constant(small(skimage.data.astronaut())[None], tf.float32)
    eps, step = 8.0, 1.0
    adv = clean
    for _ in range(20):
        _, grad = grad_fn(adv)
        adv = clean + tf.clip_by_value(adv - step * tf.sign(grad) - clean, -eps, eps)
        adv = tf.clip_by_value(adv, 0.0, 255.0)
    result = np.round(adv.numpy()[0]).astype(np.uint8)
    assert np.abs(result.astype(int) - small(skimage.data.astronaut())).max() <= eps
    assert float(surrogate.face_scores(tf.constant(result[None], tf.float32))[0]) < 0.5
    assert detector.detect(result) == []
