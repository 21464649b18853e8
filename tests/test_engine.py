"""The protection engine on packaged photos, at the fast test profile."""

from __future__ import annotations

import json
import math
import multiprocessing
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pytest
import tensorflow as tf
from skimage.color import deltaE_ciede2000, rgb2lab

from tests.conftest import ASTRONAUT_FACE
from worker.attack.profiles import STRENGTHS, TEST_PROFILE, profile_for
from worker.attack.verify import colour_difference, quality
from worker.detectors import load
from worker.detectors.base import Face


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
    # only the faces change, so the numbers over the face boxes are the lower, honest ones
    assert report["face_ssim"] < report["ssim"] and report["face_psnr"] < report["psnr"]
    assert report["face_delta_e"] > 0
    assert 0 < report["steps"] <= TEST_PROFILE.steps
    json.dumps(report)  # the report is plain JSON


def test_a_grey_perturbation_changes_r_g_and_b_alike(fast_engine, astronaut):
    profile = replace(TEST_PROFILE, channels=1, steps=2)  # the 512 px sample works at 256 px
    _, faces = fast_engine.find_faces(astronaut)
    out = fast_engine.perturb(astronaut, faces, profile)
    assert out.shape == astronaut.shape
    change = out.astype(int) - astronaut.astype(int)
    inside = ((out > 0) & (out < 255)).all(axis=2)  # not clipped at black or white
    assert np.abs(change).max() > 0
    assert (change[inside] == change[inside][:, :1]).all()


def test_a_chroma_limit_bounds_the_colour_of_the_change(fast_engine, astronaut):
    crop = astronaut[:256, 96:352]
    _, faces = fast_engine.find_faces(crop)
    free = fast_engine.perturb(crop, faces, replace(TEST_PROFILE, steps=8)).astype(int) - crop
    profile = replace(TEST_PROFILE, steps=8, chroma=0.2)
    change = fast_engine.perturb(crop, faces, profile).astype(int) - crop
    inside = ((crop > 40) & (crop < 215)).all(axis=2)  # nowhere near clipping at 0 or 255

    def spread(c: np.ndarray) -> np.ndarray:  # how far apart R, G and B moved
        return c.max(axis=2)[inside] - c.min(axis=2)[inside]

    assert np.abs(change).max() > 0.5 * TEST_PROFILE.eps
    assert spread(change).max() <= 2 * 0.2 * TEST_PROFILE.eps + 1
    assert spread(free).max() > 2 * 0.2 * TEST_PROFILE.eps + 1


def test_protection_is_deterministic(fast_engine, astronaut):
    crop = astronaut[:256, 96:352]
    a = fast_engine.protect(crop, TEST_PROFILE, seed=1).image
    b = fast_engine.protect(crop, TEST_PROFILE, seed=1).image
    assert np.array_equal(a, b)


def test_no_face_photo_is_protected_with_a_no_face_report(fast_engine, no_face):
    result = fast_engine.protect(no_face, TEST_PROFILE)
    assert result.report["faces"] == 0
    assert result.image.shape == no_face.shape


def test_warm_up_leaves_nothing_to_trace_for_later_photos(no_face):
    """After ``warm_up`` a photo of another size, with three faces or none, traces no graph
    (a dlib MMOD graph traced for any face count once failed on a photo without a face).
    Closing the engine stops the detector process warm-up started."""
    from worker.attack.engine import ProtectionEngine

    before = set(multiprocessing.active_children())
    with ProtectionEngine(surrogates=("blazeface_full", "dlib_mmod"),
                          evaluators=("haar",)) as engine:
        profile = replace(TEST_PROFILE, surrogates=(), steps=2)
        assert engine.warm_up(profile) > 0
        started = set(multiprocessing.active_children()) - before
        assert started  # dlib's CNN (the MMOD detector) runs in a child
        traced = engine.tracing_count()
        assert traced >= 4  # the EOT graph, the HOG feature loss and both surrogates' gradients
        rgb = np.ascontiguousarray(no_face[:300, :350])
        faces = [Face(20 + 90 * i, 40, 100 + 90 * i, 140) for i in range(3)]
        for hints in (faces, []):
            for features in ((), ("hog",)):
                protected = engine.perturb(rgb, hints, replace(profile, features=features))
                assert protected.shape == rgb.shape
        assert engine.tracing_count() == traced
    assert not started & set(multiprocessing.active_children())


def test_one_trace_per_surrogate_is_not_reported_as_retracing():
    """TensorFlow counts traces per code object: six surrogates' gradient graphs, each traced
    once, would log a "retracing" warning at every worker start; the engine drops exactly that."""
    import logging

    from worker.attack.engine import _gradient_fn
    from worker.attack.surrogates import load as load_surrogate

    messages: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    tf.get_logger().addHandler(handler)
    try:
        image = tf.zeros([1, 64, 64, 3])
        for _ in range(6):  # as many closures as an engine has compiled surrogates
            gradient, compiled = _gradient_fn(load_surrogate("blazeface_full"))
            assert compiled is not None
            gradient(image, np.zeros((0, 4), np.float32))
        tf.get_logger().warning("5 out of the last 5 calls to <function other> triggered "
                                "tf.function retracing.")
    finally:
        tf.get_logger().removeHandler(handler)
    assert not [m for m in messages if "value_and_grad" in m]
    assert [m for m in messages if "<function other>" in m]  # other functions still warn


@pytest.mark.parametrize("shape", [(1, 1, 3), (2, 2, 3), (12, 3000, 3)])
def test_tiny_and_extreme_images(fast_engine, shape):
    rgb = np.full(shape, 128, np.uint8)
    result = fast_engine.protect(rgb, TEST_PROFILE)
    assert result.image.shape == shape and result.report["faces"] == 0


def test_quality_over_the_face_boxes_counts_only_their_pixels() -> None:
    rng = np.random.default_rng(0)
    original = rng.integers(0, 256, (120, 200, 3)).astype(np.uint8)
    changed = original.copy()
    changed[20:60, 30:70] = 255 - changed[20:60, 30:70]  # a 40 x 40 box, inverted
    box, cut = Face(30, 20, 70, 60), Face(-10, 20, 70, 60)  # ``cut`` sticks out: clipped
    (psnr, ssim), (face_psnr, face_ssim) = quality(original, changed, [box])
    assert face_ssim < 0 < ssim and face_psnr < psnr
    cut_psnr, cut_ssim = quality(original, changed, [cut])[1]  # 70 x 40, 30 columns unchanged
    assert cut_psnr == pytest.approx(face_psnr + 10 * math.log10(70 / 40))
    assert face_ssim < cut_ssim < 1
    assert quality(original, changed, []) == ((psnr, ssim), None)
    assert quality(original, original, [box]) == ((99.0, 1.0), (99.0, 1.0))


def test_colour_difference_is_ciede2000_over_the_face_boxes() -> None:
    original = np.full((40, 60, 3), 128, np.uint8)
    changed = original.copy()
    changed[10:30, 10:30] = (128, 150, 128)  # half of the face box turns green
    changed[0:5, 0:5] = (255, 0, 0)          # outside it: does not count
    box = Face(10, 10, 50, 30)
    green = deltaE_ciede2000(rgb2lab(np.uint8([[[128, 128, 128]]])),
                             rgb2lab(np.uint8([[[128, 150, 128]]])))[0, 0]
    assert green > 5
    assert colour_difference(original, changed, [box]) == pytest.approx(green / 2)
    assert colour_difference(original, original, [box]) == 0
    assert colour_difference(original, changed, []) is None


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


def test_ensemble_gradient_balances_surrogates_by_their_weight() -> None:
    from worker.attack.engine import _balanced_gradient

    image = tf.zeros([1, 2, 2, 3])
    faces = np.zeros((1, 4), np.float32)

    def constant(loss: float, value: float):
        return lambda image, faces: (tf.constant(loss), tf.fill(image.shape, value))

    total = _balanced_gradient(
        [(constant(1.0, 1.0), 0, 1.0), (constant(2.0, -1.0), 0, 3.0),
         (constant(0.0, 5.0), 0, 1.0)],  # already hidden: no share of the step
        image, faces, 0)
    np.testing.assert_allclose(total.numpy(), -2.0)
    assert _balanced_gradient([(constant(0.0, 1.0), 0, 2.0)], image, faces, 0) is None


def test_fooled_surrogates_wait_for_the_recheck_step() -> None:
    from worker.attack.engine import _balanced_gradient

    image = tf.zeros([1, 2, 2, 3])
    faces = np.zeros((3, 4), np.float32)
    calls: dict[str, list[int]] = {"fooled": [], "wakes": [], "crowd": [], "seen": []}
    losses = {"fooled": [0.0] * 8, "wakes": [0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0],
              "crowd": [0.0] * 8, "seen": [1.0] * 8}

    def surrogate(name: str):
        def gradient(image, faces):
            calls[name].append(current)
            return tf.constant(losses[name][current]), tf.ones_like(image)
        return gradient

    active = [(surrogate("fooled"), 0, 1.0), (surrogate("wakes"), 0, 1.0),
              (surrogate("crowd"), 2, 1.0), (surrogate("seen"), 0, 1.0)]
    fooled: set[int] = set()
    for current in range(8):
        _balanced_gradient(active, image, faces, current, fooled, recheck_every=4)
    assert calls["fooled"] == [0, 3, 7]  # found nothing at step 0: run again on rechecks only
    assert calls["wakes"] == [0, 3, 4, 5, 7]  # a face again at step 3: every step until 0
    assert calls["crowd"] == list(range(8))  # two of three faces per step: never all fooled
    assert calls["seen"] == list(range(8))
    assert fooled == {0, 1}


def test_extra_steps_run_until_no_surrogate_finds_the_face(fast_engine, astronaut) -> None:
    """One step leaves the face found; with extra steps the attack goes on, checking every
    few steps, and stops once no surrogate finds it, well before the extra steps run out."""
    from worker.attack.engine import VERIFYING

    _, faces = fast_engine.find_faces(astronaut)

    def run(profile):
        steps: list[float] = []
        out = fast_engine.perturb(astronaut, faces, profile, progress=steps.append)
        batch = tf.constant(out[None].astype(np.float32))
        scores = [float(fast_engine.surrogates[n].face_scores(batch)[0])
                  for n in TEST_PROFILE.surrogates]
        assert fast_engine.steps_taken == len(steps)  # what the report gives as "steps"
        assert steps == sorted(steps) and steps[-1] <= VERIFYING
        return len(steps), max(scores)

    steps, score = run(replace(TEST_PROFILE, steps=1))
    assert steps == 1 and score >= 0.5
    steps, score = run(replace(TEST_PROFILE, steps=1, extra_steps=60))
    assert score < 0.5
    assert 1 < steps < 61 and (steps - 1) % 4 == 0  # stopped at a check
    # out of time (the job's extra_steps_deadline): no extra step starts, the face stays found
    fast_engine.perturb(astronaut, faces, replace(TEST_PROFILE, steps=1, extra_steps=60),
                        extra_steps_until=time.monotonic())
    assert fast_engine.steps_taken == 1
    fractions: list[float] = []
    fast_engine.protect(astronaut, replace(TEST_PROFILE, steps=1, extra_steps=60),
                        progress=fractions.append)
    # the bar never says "verifying" while extra steps run, and says it once the attack stops
    assert max(fractions[:-2]) < VERIFYING and fractions[-2:] == [VERIFYING, 1.0]


def test_soft_steps_move_weak_gradients_less_than_sign_steps() -> None:
    from worker.attack.engine import _direction

    velocity = tf.constant([4.0, -2.0, 0.5, -0.1, 0.0, 1.4])  # mean |v| 1.333
    np.testing.assert_array_equal(_direction(velocity, 0.0).numpy(), [1, -1, 1, -1, 0, 1])
    soft = _direction(velocity, 1.5).numpy()  # a full step from 2.0 on
    np.testing.assert_allclose(soft, [1.0, -1.0, 0.25, -0.05, 0.0, 0.7], atol=1e-5)


def test_working_copy_puts_the_largest_face_at_the_detectors_scale() -> None:
    """A large face is optimised where detectors look at it (the perturbation made there is
    upsampled smoothly); a small face in the same photo keeps enough pixels; nothing grows."""
    from worker.attack.engine import _working_scale
    from worker.detectors.base import Face

    profile = STRENGTHS[3]
    portrait = [Face(300, 200, 900, 900)]  # a 700-px face in a 1200 x 1200 photo
    assert _working_scale(1200, 1200, portrait, profile) == pytest.approx(
        profile.max_face_px / 700)
    crowd = [*portrait, Face(50, 50, 110, 110)]  # plus a 60-px face: it keeps 40 px
    assert _working_scale(1200, 1200, crowd, profile) == pytest.approx(
        profile.min_face_px / 60)
    assert _working_scale(300, 200, [Face(10, 10, 60, 60)], profile) == 1.0
    assert _working_scale(2400, 1200, [], profile) == pytest.approx(profile.work_side / 2400)
    # A surrogate that scales the whole photo to 640 (SCRFD) sees the face bigger: kept there.
    assert _working_scale(1200, 1200, portrait, profile, view_side=640) == pytest.approx(
        640 / 1200)


def test_mtcnn_pyramid_is_the_librarys() -> None:
    """The graph's pyramid (fixed levels, each run or skipped) runs P-Net at exactly the
    scales the library builds, for any size; with hints only where a window fits a face."""
    from mtcnn.utils.images import build_scale_pyramid

    from worker.attack.surrogates.mtcnn import MtcnnSurrogate

    surrogate = MtcnnSurrogate()
    no_faces = tf.zeros([0, 4])
    for height, width in ((12, 12), (30, 500), (375, 500), (1114, 1600), (4000, 6000)):
        scales, active = surrogate.scales(height, width, no_faces)
        library = [s for s in build_scale_pyramid(width, height, 20, 0.709)
                   if math.ceil(min(height, width) * s) >= 12]
        assert np.allclose(scales.numpy()[active.numpy()], library), (height, width)
    face = tf.constant([[0.4, 0.4, 0.6, 0.6]])  # 100 px in 500 x 500
    scales, active = surrogate.scales(500, 500, face)
    windows = 12 / scales.numpy()[active.numpy()]
    assert len(windows) and ((windows >= 40) & (windows <= 250)).all()


def test_mtcnn_crops_squares_around_each_hint() -> None:
    """R-/O-Net also see random squares around each hinted face (the library crops its own
    regressed boxes, never exactly the hint), repeatably for one seed."""
    from worker.attack.surrogates.mtcnn import MtcnnSurrogate

    hints = np.asarray([[0.25, 0.2, 0.5, 0.6], [0.6, 0.1, 0.7, 0.3]], np.float32)
    surrogate = MtcnnSurrogate()

    def jittered(seed: int) -> np.ndarray:
        return surrogate.jittered(hints, 400, 600, tf.constant([seed, 0])).numpy()

    boxes = jittered(7)
    assert boxes.shape == (2 + 2 * surrogate.draws, 4)
    assert np.array_equal(boxes[:2], hints)
    assert np.array_equal(boxes, jittered(7))
    assert not np.allclose(boxes, jittered(8))
    squares = boxes[2:].reshape(2, surrogate.draws, 4) * [600, 400, 600, 400]
    sides = squares[..., 2:] - squares[..., :2]
    assert np.allclose(sides[..., 0], sides[..., 1], atol=1e-3)  # squares, in pixels
    longest = np.asarray([0.4 * 400, 0.2 * 400])[:, None]  # each hint's longer side (px)
    low, high = surrogate.draw_scale
    side = sides[..., 0]
    assert ((side >= low * longest - 1e-3) & (side <= high * longest + 1e-3)).all()


def test_a_profile_naming_an_unloaded_surrogate_is_refused(fast_engine, astronaut) -> None:
    import dataclasses

    profile = dataclasses.replace(TEST_PROFILE, surrogates=("no_such_detector",))
    with pytest.raises(ValueError, match="did not load"):
        fast_engine.protect(astronaut, profile)
