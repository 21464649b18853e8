"""dlib's MMOD CNN rebuilt in TensorFlow: read from dlib's own file, faithful, and its loss hides
faces from dlib itself."""

from __future__ import annotations

import io
from pathlib import Path

import dlib
import face_recognition_models
import numpy as np
import pytest
import skimage.data
import tensorflow as tf
from PIL import Image

from worker.attack.surrogates.dlib_mmod import (
    Affine,
    Conv,
    DlibMmodSurrogate,
    ReLU,
    read_mmod_net,
)
from worker.detectors.dlib_mmod import DlibMmodDetector

#: Where the face is in skimage.data.astronaut() (x0, y0, x1, y1).
ASTRONAUT_FACE = (175, 55, 275, 180)


@pytest.fixture(scope="module")
def surrogate() -> DlibMmodSurrogate:
    return DlibMmodSurrogate()


def test_network_file_is_read_whole(surrogate: DlibMmodSurrogate) -> None:
    convs = [layer for layer in surrogate.layers if isinstance(layer, Conv)]
    affines = [layer for layer in surrogate.layers if isinstance(layer, Affine)]
    assert [c.filters.shape[-1] for c in convs] == [16, 32, 32, 45, 45, 45, 1]
    assert [c.stride for c in convs] == [2, 2, 2, 1, 1, 1, 1]
    assert convs[0].filters.shape == (5, 5, 3, 16) and convs[-1].filters.shape == (9, 9, 45, 1)
    assert len(affines) == 6 and all(np.isfinite(a.scale).all() for a in affines)
    kinds = [type(layer) for layer in surrogate.layers]
    assert kinds == [Conv, Affine, ReLU] * 6 + [Conv]
    mean = read_mmod_net(Path(face_recognition_models.cnn_face_detector_model_location())).mean_rgb
    assert np.allclose(mean, (122.782, 117.001, 104.298), atol=1e-3)  # dlib's documented means


def test_other_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a dlib MMOD"):
        read_mmod_net(Path(face_recognition_models.pose_predictor_five_point_model_location()))
    empty = tmp_path / "x.dat"
    empty.write_bytes(b"")
    with pytest.raises(ValueError):
        read_mmod_net(empty)


def test_scores_match_dlib(surrogate: DlibMmodSurrogate) -> None:
    """dlib reports the astronaut at its full-size pyramid level: the rebuild's best window
    there has dlib's confidence; on a photo without a face no window reaches dlib's 0."""
    path = face_recognition_models.cnn_face_detector_model_location()
    model = dlib.cnn_face_detection_model_v1(path)
    rgb = skimage.data.astronaut()
    found = model(rgb, 0)
    assert len(found) == 1
    best = float(tf.reduce_max(surrogate.scores(tf.constant(rgb[None], tf.float32))))
    assert abs(best - found[0].confidence) < 0.01
    assert float(surrogate.face_scores(tf.constant(rgb[None], tf.float32))[0]) > 0.9
    coffee = skimage.data.coffee()
    assert not model(coffee, 0)
    assert float(surrogate.face_scores(tf.constant(coffee[None], tf.float32))[0]) < 0.5


def test_no_face_gives_zero_loss(surrogate: DlibMmodSurrogate) -> None:
    image = tf.constant(skimage.data.coffee()[None], tf.float32)
    assert float(surrogate.loss(image, None)) == 0.0
    with tf.GradientTape() as tape:
        tape.watch(image)
        loss = surrogate.loss(image, np.zeros((0, 4), np.float32))
    grad = tape.gradient(loss, image)
    assert float(loss) == 0.0
    assert grad is None or np.isfinite(grad.numpy()).all()


def test_loss_hides_the_face_from_dlib(surrogate: DlibMmodSurrogate) -> None:
    """White-box: 30 momentum sign steps inside +-6 (of 255) and dlib no longer finds the
    astronaut, also after a JPEG q85 save. The crops move at random between steps, so the
    windows between the net's 8-pixel grid points are hidden too."""
    rgb = skimage.data.astronaut()
    detector = DlibMmodDetector()
    assert detector.detect(rgb)
    height, width = rgb.shape[:2]
    x0, y0, x1, y1 = ASTRONAUT_FACE
    faces = np.asarray([[x0 / width, y0 / height, x1 / width, y1 / height]], np.float32)
    loss_fn = tf.function(lambda image: surrogate.loss(image, faces))
    base = tf.constant(rgb[None], tf.float32)
    delta = velocity = tf.zeros_like(base)
    for _ in range(30):
        with tf.GradientTape() as tape:
            tape.watch(delta)
            loss = loss_fn(tf.clip_by_value(base + delta, 0.0, 255.0))
        grad = tape.gradient(loss, delta)
        velocity = 0.9 * velocity + grad / (tf.reduce_mean(tf.abs(grad)) + 1e-12)
        delta = tf.clip_by_value(delta - tf.sign(velocity), -6.0, 6.0)
    adv = np.clip(np.rint(rgb + delta[0].numpy()), 0, 255).astype(np.uint8)
    assert np.abs(adv.astype(int) - rgb).max() <= 6
    assert detector.detect(adv) == []
    buffer = io.BytesIO()
    Image.fromarray(adv).save(buffer, "JPEG", quality=85)
    assert detector.detect(np.asarray(Image.open(buffer).convert("RGB"))) == []


def test_windows_are_random_but_repeatable(surrogate: DlibMmodSurrogate) -> None:
    """The random scales and shifts come from the image: the same image gets the same windows
    (a protection run is repeatable), a changed one gets new draws; every draw stays in the
    scale range and near the face."""
    rgb = skimage.data.astronaut().astype(np.float32)
    height, width = rgb.shape[:2]
    x0, y0, x1, y1 = ASTRONAUT_FACE
    faces = np.asarray([[x0 / width, y0 / height, x1 / width, y1 / height]], np.float32)
    first = surrogate.windows(tf.constant(rgb[None]), faces).numpy()
    again = surrogate.windows(tf.constant(rgb[None]), faces).numpy()
    changed = surrogate.windows(tf.constant(rgb[None] + 40.0), faces).numpy()
    assert first.shape == (surrogate.draws, 4)
    assert np.array_equal(first, again) and not np.allclose(first, changed)
    sides = (first[:, 2:] - first[:, :2]) / (faces[:, 2:] - faces[:, :2])
    low, high = surrogate.scale_range
    assert (sides >= low - 1e-5).all() and (sides <= high + 1e-5).all()
    centres = (first[:, :2] + first[:, 2:]) / 2 - (faces[:, :2] + faces[:, 2:]) / 2
    assert (np.abs(centres) <= surrogate.jitter_shift * high * (faces[:, 2:] - faces[:, :2])
            + 1e-6).all()
    assert float(surrogate.loss(tf.constant(rgb[None]), faces)) == float(
        surrogate.loss(tf.constant(rgb[None]), faces))
