"""The protection engine: optimise a perturbation that hides every face from the surrogate
ensemble, robust to JPEG and downscaling, inside a perceptual budget; then verify it.

Pipeline per photo: detect faces on the original with every detector (reference runs) →
working copy at the detectors' own resolution → momentum gradient steps (sign or soft, per
profile) on the vanishing losses of all surrogates (and the profile's feature losses,
``worker.attack.features``), each step through a random JPEG / downscale / blur / shift (EOT) →
the perturbation is upsampled to full resolution, clipped to the per-pixel budget and added
→ verification report (faces per detector before/after, after JPEG q85 and 0.5x; PSNR, SSIM).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import cv2
import numpy as np
import tensorflow as tf
from skimage import data

from common.config import load as load_config
from worker.attack import surrogates as surrogate_plugins
from worker.attack.eot import gaussian_blur, random_eot
from worker.attack.features import FEATURES, compiled_gradient
from worker.attack.masks import budget_map
from worker.attack.profiles import (
    DEFAULT_STRENGTH,
    Profile,
    default_evaluators,
    default_surrogates,
    profile_for,
)
from worker.attack.verify import Verifier, distinct_faces
from worker.detectors.base import Face

Progress = Callable[[float], None]
#: Progress from here on means the attack is done and the report is being computed.
VERIFYING = 0.9

#: Below this many pixels on the short side there is nothing a detector could find.
MIN_SIDE = 16
#: With ``Profile.extra_steps``: steps between two checks whether a surrogate still finds a face.
EXTRA_CHECK_EVERY = 4


@dataclass(frozen=True)
class Protection:
    """A protected image (RGB uint8, same size as the input) and its verification report."""

    image: np.ndarray
    report: dict


class ProtectionEngine:
    """Loads every model once; ``protect`` may then be called for any number of photos."""

    def __init__(
        self,
        surrogates: tuple[str, ...] | None = None,
        evaluators: tuple[str, ...] | None = None,
        detector_processes: int | None = None,
    ) -> None:
        """``None``: the default sets, built-ins plus the models config.toml declares, and
        ``[worker] detector_processes``."""
        surrogates = default_surrogates() if surrogates is None else surrogates
        evaluators = default_evaluators() if evaluators is None else evaluators
        self.surrogates = {name: surrogate_plugins.load(name) for name in surrogates}
        compiled = {name: _gradient_fn(s) for name, s in self.surrogates.items()}
        self._gradients = {name: fn for name, (fn, _) in compiled.items()}
        self._features = {name: compiled_gradient(cls()) for name, cls in FEATURES.items()}
        self._eot = tf.function(random_eot, reduce_retracing=True)
        # One generator, reseeded per photo: the EOT graph is traced for this object, and a
        # new one per photo would trace it again each time. (One photo at a time per engine.)
        self._rng = tf.random.Generator.from_seed(0)
        self.steps_taken = 0  # optimisation steps of the last ``perturb`` (for its report)
        self._graphs = [self._eot, *(f.value_and_grad for f in self._features.values()),
                        *(graph for _, graph in compiled.values() if graph)]
        if detector_processes is None:
            detector_processes = load_config().worker.detector_processes
        self.verifier = Verifier(surrogates, evaluators, processes=detector_processes)

    def warm_up(self, profile: Profile | None = None) -> float:
        """Start the detector processes, trace every graph ``profile`` (default: the default
        strength) uses and run every detector once: two short runs on the packaged sample at
        two sizes (the EOT graph generalises to any size after two), with one face and with
        two. Without it a worker's first photos pay for the tracing (10-35 s each on a 2-core
        CPU). Returns seconds."""
        started = time.perf_counter()
        self.verifier.start()
        # Every feature loss too: stronger profiles add them, and their graphs trace once.
        profile = replace(profile or profile_for(DEFAULT_STRENGTH), steps=2, clean_every=2,
                          features=tuple(FEATURES))
        sample = data.astronaut()
        for size, copies in (((448, 384), 1), ((384, 512), 2)):
            rgb = cv2.resize(sample, size, interpolation=cv2.INTER_AREA)
            _, found = self.find_faces(rgb)
            face = found[0] if found else Face(size[0] * 0.3, size[1] * 0.2,
                                               size[0] * 0.6, size[1] * 0.6)
            shifted = [Face(face.x0 + 8 * i, face.y0, face.x1 + 8 * i, face.y1)
                       for i in range(copies)]
            self.perturb(rgb, shifted, profile)
        return time.perf_counter() - started

    def close(self) -> None:
        """Stop the detector processes (a later photo starts them again). Call it before the
        process exits: left to the interpreter's exit, the pool's shutdown can fail noisily."""
        self.verifier.close()

    def __enter__(self) -> ProtectionEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def tracing_count(self) -> int:
        """How many graphs the engine traced so far (constant once warmed up)."""
        return sum(graph.experimental_get_tracing_count() for graph in self._graphs)

    def protect(
        self,
        rgb: np.ndarray,
        strength: int | Profile = 3,
        *,
        seed: int = 0,
        progress: Progress | None = None,
        extra_steps_until: float | None = None,
    ) -> Protection:
        """Protect one RGB uint8 photo; deterministic for a given ``seed`` (and, when the
        profile has extra steps, for an ``extra_steps_until`` never reached: a
        ``time.monotonic()`` after which the attack starts no more extra steps)."""
        profile = strength if isinstance(strength, Profile) else profile_for(strength)
        started = time.perf_counter()
        original, faces = self.find_faces(rgb)
        if min(rgb.shape[:2]) < MIN_SIDE:
            protected, steps = rgb.copy(), 0
        else:
            protected = self.perturb(rgb, faces, profile, seed=seed, progress=progress,
                                     extra_steps_until=extra_steps_until)
            steps = self.steps_taken
        if progress:  # the attack may stop before its last possible step: verifying now
            progress(VERIFYING)
        report = self.verifier.report(rgb, protected, original, faces)
        report["strength"] = profile.level
        report["steps"] = steps
        report["feature_losses"] = list(profile.features)  # detector-agnostic, no weights
        report["seconds"] = round(time.perf_counter() - started, 2)
        if progress:
            progress(1.0)
        return Protection(protected, report)

    def find_faces(self, rgb: np.ndarray) -> tuple[dict[str, list[Face]], list[Face]]:
        """Faces per detector on the original, and their union (one box per face)."""
        original = self.verifier.detect_all(rgb)
        return original, distinct_faces([f for found in original.values() for f in found])

    def perturb(
        self,
        rgb: np.ndarray,
        faces: list[Face],
        profile: Profile,
        *,
        seed: int = 0,
        progress: Progress | None = None,
        extra_steps_until: float | None = None,
    ) -> np.ndarray:
        """Return ``rgb`` plus the optimised perturbation (uint8, same size)."""
        height, width = rgb.shape[:2]
        names = self._surrogate_names(profile)
        view_side = max((self.surrogates[n].view_side for n in names), default=0)
        scale = _working_scale(height, width, faces, profile, view_side)
        work_size = (max(1, round(width * scale)), max(1, round(height * scale)))
        work = cv2.resize(rgb, work_size, interpolation=cv2.INTER_AREA) if scale < 1 else rgb
        work_faces = [Face(f.x0 * scale, f.y0 * scale, f.x1 * scale, f.y1 * scale) for f in faces]
        budget = budget_map(work, work_faces, profile)
        hints = np.asarray(
            [[f.x0 / width, f.y0 / height, f.x1 / width, f.y1 / height] for f in faces], np.float32
        ).reshape(-1, 4)
        delta = self._optimise(work, budget, hints, profile, seed, progress, extra_steps_until)

        full_budget = budget_map(rgb, faces, profile)
        if scale < 1:
            delta = cv2.resize(delta, (width, height), interpolation=cv2.INTER_CUBIC)
            delta = delta.reshape(height, width, -1)  # OpenCV drops a grey one's channel axis
        delta = np.clip(delta, -full_budget, full_budget)
        return np.clip(np.rint(rgb.astype(np.float32) + delta), 0, 255).astype(np.uint8)

    def _surrogate_names(self, profile: Profile) -> tuple[str, ...]:
        """The surrogates ``profile`` optimises against (all loaded ones when it names none)."""
        names = profile.surrogates or tuple(self.surrogates)
        missing = set(names) - set(self.surrogates)
        if missing:
            raise ValueError(f"profile needs surrogates this engine did not load: {missing}")
        return names

    def _optimise(
        self,
        work: np.ndarray,
        budget: np.ndarray,
        hints: np.ndarray,
        profile: Profile,
        seed: int,
        progress: Progress | None,
        extra_steps_until: float | None = None,
    ) -> np.ndarray:
        rng = self._rng
        rng.reset_from_seed(seed)
        base = tf.constant(work[None].astype(np.float32))
        limit = tf.constant(budget[None])
        height, width = work.shape[:2]
        low = tuple(max(1, round(side * profile.delta_scale)) for side in (height, width))
        low_limit = tf.image.resize(limit, low, "area") if low != (height, width) else limit
        low_limit = low_limit[..., : profile.channels]
        delta = tf.zeros([1, *low, profile.channels])
        velocity = tf.zeros_like(delta)
        names = self._surrogate_names(profile)
        active = [(self._gradients[name], self.surrogates[name].faces_per_step,
                   self.surrogates[name].weight) for name in names]
        faces = tf.constant(hints, tf.float32)
        references = {name: self._features[name].reference(base, faces)  # once per photo
                      for name in (profile.features if len(hints) else ())}
        quiet = self.steps_taken = 0
        fooled: set[int] = set()  # surrogates whose last computed loss was 0 on every face
        for step in range(profile.steps + profile.extra_steps):
            extra = step - profile.steps
            if extra >= 0 and extra_steps_until is not None \
                    and time.monotonic() >= extra_steps_until:
                break  # out of time for optional steps (the job must still verify in time)
            if extra >= 0 and extra % EXTRA_CHECK_EVERY == 0 and not self._still_found(
                    names, tf.clip_by_value(base + self._upsample(delta, limit), 0.0, 255.0),
                    fooled):
                break
            self.steps_taken = step + 1
            clean = step % profile.clean_every == 0
            with tf.GradientTape() as tape:
                tape.watch(delta)
                full = self._upsample(delta, limit)
                adv = tf.clip_by_value(base + full, 0.0, 255.0)
                if not clean:
                    adv = self._eot(
                        adv, rng, jpeg=profile.eot_jpeg, scale=profile.eot_scale,
                        blur_sigma=profile.eot_blur, shift=profile.eot_shift,
                    )
            seen = _balanced_gradient(active, adv, hints, step, fooled, profile.recheck_every)
            if progress:  # of the most steps it may take: below VERIFYING until done
                done = (step + 1) / (profile.steps + profile.extra_steps)
                progress(0.05 * (1 - done) + VERIFYING * done)
            # None: every surrogate is below its threshold by the margin (a skipped one counts
            # as still fooled: with ``recheck_every`` patience counts skipped steps too)
            if seen is None:
                quiet += 1
                if quiet >= profile.patience:
                    break
                continue
            quiet = 0
            for name, reference in references.items():
                _, features = self._features[name].value_and_grad(adv, reference, faces)
                seen = seen + profile.feature_weight * features
            grad = tape.gradient(adv, delta, output_gradients=seen)
            if profile.grad_blur > 0:  # translation-invariant steps transfer better (TI-FGSM)
                radius = math.ceil(2 * profile.grad_blur)
                grad = gaussian_blur(grad, tf.constant(profile.grad_blur), radius)
            grad = grad / (tf.reduce_mean(tf.abs(grad)) + 1e-12)
            velocity = profile.momentum * velocity + grad
            delta = delta - profile.step_size * (low_limit / profile.eps) * _direction(
                velocity, profile.soft_step)
            delta = _within_budget(delta, low_limit, profile.chroma)
        return self._upsample(delta, limit)[0].numpy()

    def _still_found(self, names: tuple[str, ...], image: tf.Tensor, fooled: set[int]) -> bool:
        """Whether a surrogate not already fooled by its margin scores a face on ``image``."""
        return any(float(self.surrogates[name].face_scores(image)[0]) >= 0.5
                   for index, name in enumerate(names) if index not in fooled)

    @staticmethod
    def _upsample(delta: tf.Tensor, limit: tf.Tensor) -> tf.Tensor:
        """The perturbation at the working size (bilinear from a low-resolution one), in budget."""
        if delta.shape[1:3] != limit.shape[1:3]:
            delta = tf.clip_by_value(tf.image.resize(delta, limit.shape[1:3], "bilinear"),
                                     -limit, limit)
        return delta * tf.ones_like(limit)  # broadcasts a grey perturbation to R, G, B


GradientFn = Callable[[tf.Tensor, np.ndarray], tuple[tf.Tensor, tf.Tensor]]


class _SurrogateTracesFilter(logging.Filter):
    """Drops TensorFlow's "triggered tf.function retracing" warning about the surrogates'
    gradient graphs: it counts traces per code object, so one closure per surrogate, each
    traced once at warm-up, looks like one function retraced five times. (Real retracing is
    what ``tracing_count`` and the warm-up test watch.)"""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("triggered tf.function retracing" in message
                    and "_gradient_fn.<locals>.value_and_grad" in message)


tf.get_logger().addFilter(_SurrogateTracesFilter())


def _gradient_fn(
    surrogate: surrogate_plugins.Surrogate,
) -> tuple[GradientFn, tf.types.experimental.GenericFunction | None]:
    """``(image, faces) -> (loss, gradient scaled to unit mean |g|)`` for one surrogate, compiled
    into one TensorFlow graph when the surrogate's loss is pure TensorFlow (3x faster); and that
    graph (None for an eager surrogate)."""

    def value_and_grad(image: tf.Tensor, faces: tf.Tensor | np.ndarray):
        with tf.GradientTape() as tape:
            tape.watch(image)
            loss = surrogate.loss(image, faces)
        grad = tape.gradient(loss, image)
        grad = tf.zeros_like(image) if grad is None else grad
        return loss, grad / (tf.reduce_mean(tf.abs(grad)) + 1e-12)

    if not surrogate.graph_safe:
        return value_and_grad, None
    # One graph for any photo size and number of faces: traced once, never again.
    compiled = tf.function(value_and_grad, input_signature=[
        tf.TensorSpec([None, None, None, 3], tf.float32), tf.TensorSpec([None, 4], tf.float32)])
    return lambda image, faces: compiled(image, tf.constant(faces, tf.float32)), compiled


def _within_budget(delta: tf.Tensor, limit: tf.Tensor, chroma: float) -> tf.Tensor:
    """``delta`` clipped to ``limit`` and, with ``chroma`` < 1, its colour (each channel's
    departure from the pixel's mean change) to ``chroma`` times ``limit``."""
    if chroma < 1 and delta.shape[-1] > 1:
        grey = tf.reduce_mean(delta, axis=-1, keepdims=True)
        delta = grey + tf.clip_by_value(delta - grey, -chroma * limit, chroma * limit)
    return tf.clip_by_value(delta, -limit, limit)


def _direction(velocity: tf.Tensor, soft_step: float) -> tf.Tensor:
    """Per-pixel step direction in -1..1: the sign of ``velocity`` (I-FGSM), or with
    ``soft_step`` > 0 its value over ``soft_step`` times its mean magnitude, clipped: pixels
    with weak or inconsistent gradients move less, so the perturbation does not fill the
    budget where it buys nothing."""
    if soft_step <= 0:
        return tf.sign(velocity)
    scale = soft_step * tf.reduce_mean(tf.abs(velocity)) + 1e-12
    return tf.clip_by_value(velocity / scale, -1.0, 1.0)


def faces_for_step(faces: np.ndarray, limit: int, step: int) -> np.ndarray:
    """All ``faces``, or ``limit`` of them taking turns (step 0: the first ``limit``, step 1:
    the next ones, round the list), so a crowd costs a bounded amount of time and memory."""
    if limit <= 0 or len(faces) <= limit:
        return faces
    return faces[(step * limit + np.arange(limit)) % len(faces)]


def _balanced_gradient(
    active: list[tuple[GradientFn, int, float]],
    image: tf.Tensor,
    faces: np.ndarray,
    step: int,
    fooled: set[int] | None = None,
    recheck_every: int = 0,
) -> tf.Tensor | None:
    """Sum of each surrogate's normalised loss gradient w.r.t. ``image`` times its weight, so
    no detector dominates the ensemble unless weighted to; None when every loss is already 0.

    ``fooled`` (updated here) holds the indices of surrogates whose last computed loss on every
    face was 0; with ``recheck_every`` > 0 they are not run again until a recheck step (the
    last of every ``recheck_every``: with ``clean_every`` equal to it, a transformed one), so
    a detector already fooled stops costing time until it is checked again."""
    fooled = set() if fooled is None else fooled
    recheck = recheck_every <= 0 or step % recheck_every == recheck_every - 1
    total = None
    for index, (gradient, limit, weight) in enumerate(active):
        if index in fooled and not recheck:
            continue
        chosen = faces_for_step(faces, limit, step)
        loss, grad = gradient(image, chosen)
        if float(loss) <= 0.0:
            if len(chosen) == len(faces):
                fooled.add(index)
            continue
        fooled.discard(index)
        total = weight * grad if total is None else total + weight * grad
    return total


def _working_scale(
    height: int, width: int, faces: list[Face], profile: Profile, view_side: int = 0
) -> float:
    """Downscale to the detectors' working resolution and, with ``max_face_px``, to where the
    largest face has that size (but not below ``view_side``, the largest whole-photo input of
    a surrogate); keep the smallest face big enough."""
    long_side = max(height, width)
    scale = min(1.0, profile.work_side / long_side)
    if faces and profile.max_face_px > 0:
        largest = max(max(f.width, f.height) for f in faces)
        scale = min(scale, max(profile.max_face_px / max(largest, 1.0), view_side / long_side))
    if faces:
        smallest = min(max(f.width, f.height) for f in faces)
        scale = max(scale, min(1.0, profile.min_face_px / max(smallest, 1.0)))
    return scale
