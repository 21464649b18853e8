"""Feature-disruption losses (worker.attack.features): faithful to what they claim, and they
move a real detector that shares the features but whose weights they never see."""

from dataclasses import replace

import dlib
import numpy as np
import tensorflow as tf

from worker.attack.features import HogDisruption, compiled_gradient
from worker.attack.profiles import TEST_PROFILE

FACE = [[0.33, 0.05, 0.55, 0.4]]  # the astronaut's face, x0 y0 x1 y1 in 0..1


def _dlib_score(rgb: np.ndarray) -> float:
    """dlib's HOG detector's best face score, run as the dlib_hog evaluator runs it (upsampled
    once; its threshold is 0)."""
    _, scores, _ = dlib.get_frontal_face_detector().run(np.ascontiguousarray(rgb), 1, -1.0)
    return max(scores, default=-9.0)


def test_hog_disruption_moves_dlibs_hog_detector_more_than_noise(astronaut) -> None:
    base = tf.constant(astronaut[None].astype(np.float32))
    faces = tf.constant(FACE, tf.float32)
    feature = HogDisruption()
    reference = feature.maps(base, faces)
    assert abs(float(feature.loss(base, reference, faces)) - 1.0) < 1e-5
    noise = np.random.default_rng(0).choice([-15.0, 15.0], astronaut.shape)
    noisy = np.clip(astronaut + noise, 0, 255).astype(np.uint8)
    gradient = compiled_gradient(feature)
    delta = tf.zeros_like(base)
    for _ in range(20):
        loss, grad = gradient.value_and_grad(
            tf.clip_by_value(base + delta, 0, 255), reference, faces)
        delta = tf.clip_by_value(delta - 1.9 * tf.sign(grad), -15.0, 15.0)
    attacked = np.clip(np.rint(astronaut + delta[0].numpy()), 0, 255).astype(np.uint8)
    noisy_loss = feature.loss(tf.constant(noisy[None], tf.float32), reference, faces)
    assert float(loss) < 0.85 < float(noisy_loss)
    clean, by_noise, by_attack = map(_dlib_score, (astronaut, noisy, attacked))
    assert clean > 0.5 and by_attack < by_noise - 0.3, (clean, by_noise, by_attack)


def test_a_profile_with_a_feature_loss_stays_in_budget(fast_engine, astronaut) -> None:
    profile = replace(TEST_PROFILE, steps=4, features=("hog",))
    result = fast_engine.protect(astronaut, profile)
    out = result.image
    assert result.report["feature_losses"] == ["hog"]
    assert out.shape == astronaut.shape
    assert np.abs(out.astype(int) - astronaut.astype(int)).max() <= profile.eps + 1
