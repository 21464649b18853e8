"""The protection engine on packaged photos, at the fast test profile."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import ASTRONAUT_FACE
from worker.attack.profiles import STRENGTHS, TEST_PROFILE, profile_for
from worker.detectors import load


def _inside(box, region, slack=20) -> bool:
    cx, cy = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
    x0, y0, x1, y1 = region
    return x0 - slack <= cx <= x1 + slack and y0 - slack <= cy <= y1 + slack


def test_differentiable_mtcnn_agrees_with_the_package(astronaut, no_face):
    from worker.attack.surrogates import load as load_surrogate

    surrogate = load_surrogate("mtcnn")
    package = load("mtcnn")
    found = package.detect(astronaut)
    assert len(found) == 1 and _inside(found[0], ASTRONAUT_FACE)
    assert package.detect(no_face) == []
    scores = surrogate.face_scores(tf.constant(np.stack([astronaut]).astype("float32")))
    assert float(scores[0]) > 0.8  # the package's O-Net threshold
    coffee = tf.constant(no_face[None].astype("float32"))
    assert float(surrogate.face_scores(coffee)[0]) < 0.8


def test_differentiable_mtcnn_gives_gradients(astronaut):
    from worker.attack.surrogates import load as load_surrogate

    x = tf.constant(astronaut[None, ::2, ::2].astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = load_surrogate("mtcnn").loss(x)
    grad = tape.gradient(loss, x).numpy()
    assert float(loss) > 0 and np.isfinite(grad).all() and np.abs(grad).max() > 0


def test_protection_hides_the_face_from_the_white_box_detectors(fast_engine, astronaut):
    result = fast_engine.protect(astronaut, TEST_PROFILE)
    out = result.image
    assert out.shape == astronaut.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - astronaut.astype(int)).max() <= TEST_PROFILE.eps + 1
    assert not np.array_equal(out, astronaut)
    report = result.report
    for name in TEST_PROFILE.surrogates:
        row = report["detectors"][name]
        assert row["role"] == "surrogate" and row["original"] == 1
        assert row["protected"] == 0, report
    assert report["detectors"]["haar"]["role"] == "evaluator"
    assert report["faces"] >= 1 and 0 < report["ssim"] < 1 and report["psnr"] > 20
    json.dumps(report)  # the report is plain JSON


def test_protection_is_deterministic(fast_engine, astronaut):
    crop = astronaut[:256, 96:352]
    a = fast_engine.protect(crop, TEST_PROFILE, seed=1).image
    b = fast_engine.protect(crop, TEST_PROFILE, seed=1).image
    assert np.array_equal(a, b)


def test_no_face_photo_is_protected_with_a_no_face_report(fast_engine, no_face):
    result = fast_engine.protect(no_face, TEST_PROFILE)
    assert result.report["faces"] == 0
    assert result.image.shape == no_face.shape


@pytest.mark.parametrize("shape", [(1, 1, 3), (2, 2, 3), (12, 3000, 3)])
def test_tiny_and_extreme_images(fast_engine, shape):
    rgb = np.full(shape, 128, np.uint8)
    result = fast_engine.protect(rgb, TEST_PROFILE)
    assert result.image.shape == shape and result.report["faces"] == 0


def test_strength_profiles_grow_monotonically():
    levels = [STRENGTHS[i] for i in range(1, 6)]
    assert all(a.eps < b.eps for a, b in zip(levels, levels[1:], strict=False))
    assert profile_for(3).level == 3
    with pytest.raises(ValueError):
        profile_for(9)


def test_surrogates_and_evaluators_are_disjoint():
    from worker.attack.profiles import EVALUATORS, SURROGATES
    from worker.attack.verify import Verifier

    assert not set(SURROGATES) & set(EVALUATORS)
    with pytest.raises(ValueError):
        Verifier(surrogates=("haar",), evaluators=("haar",))


BLOCK_NETWORK = """
import socket
def refuse(*a, **k):
    raise RuntimeError("network access during model loading")
socket.socket.connect = refuse
socket.create_connection = refuse
from worker.attack.profiles import SURROGATES, EVALUATORS
from worker.attack import surrogates
from worker import detectors
for name in SURROGATES:
    surrogates.load(name)
for name in SURROGATES + EVALUATORS:
    detectors.load(name)
print("loaded")
"""


def test_every_model_loads_without_network():
    done = subprocess.run(
        [sys.executable, "-c", BLOCK_NETWORK], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and "loaded" in done.stdout, done.stderr[-2000:]


def test_faces_take_turns_for_surrogates_with_a_face_limit() -> None:
    from worker.attack.engine import faces_for_step

    faces = np.arange(14 * 4, dtype=np.float32).reshape(14, 4)
    assert faces_for_step(faces, 0, 3) is faces and faces_for_step(faces, 20, 3) is faces
    seen = [faces_for_step(faces, 6, step)[:, 0] for step in range(3)]
    assert all(len(s) == 6 for s in seen)
    assert set(np.concatenate(seen)) == set(faces[:, 0])  # every face within three steps
