"""Detector-agnostic feature losses: push each face's own image features away from the
original's, whatever weights a detector puts on them (a feature-disruption loss, as in
FDA/ILA-style transfer attacks). A profile adds them to the surrogates' losses by name
(``Profile.features``); strength 5 adds ``hog`` (docs/benchmarks.md, "a feature-level loss":
at strengths 3 and 4 it did not pay).

``hog``: histograms of gradient orientations, the features of dlib's frontal detector (the
default of ``face_recognition``) and of every HOG + linear-SVM face detector; no detector's
weights are used, only the face's own HOG on the original.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from worker.attack.surrogates.windows import face_crops


def hog(grey: tf.Tensor, cell: int, bins: int = 18, sharpness: float = 8.0) -> tf.Tensor:
    """Felzenszwalb-style HOG of grey images (N, H, W, 1): per ``cell`` x ``cell`` block the
    gradient magnitude softly binned into ``bins`` signed orientations (weight cos^sharpness
    of the angle to each bin), normalised by the energy of the 2 x 2 cells around it and
    truncated at 0.2. Returns (N, H // cell, W // cell, bins)."""
    dx = grey[:, 1:-1, 2:, 0] - grey[:, 1:-1, :-2, 0]
    dy = grey[:, 2:, 1:-1, 0] - grey[:, :-2, 1:-1, 0]
    magnitude = tf.sqrt(dx * dx + dy * dy + 1e-2)
    angles = np.arange(bins) * (2 * math.pi / bins)
    cos = tf.constant(np.cos(angles), tf.float32)
    sin = tf.constant(np.sin(angles), tf.float32)
    alignment = (dx[..., None] * cos + dy[..., None] * sin) / magnitude[..., None]
    weights = tf.nn.relu(alignment) ** sharpness * magnitude[..., None]
    cells = tf.nn.avg_pool2d(weights, cell, cell, "VALID")
    energy = tf.reduce_sum(cells * cells, axis=-1, keepdims=True)
    block = tf.nn.avg_pool2d(energy, 2, 1, "SAME") * 4.0
    return tf.minimum(cells / tf.sqrt(block + 1.0), 0.2)


def _cosine(a: tf.Tensor, c: tf.Tensor) -> tf.Tensor:
    """Mean over the batch of the cosine similarity of ``a`` and ``c`` (each flattened)."""
    a = tf.reshape(a, [tf.shape(a)[0], -1])
    c = tf.reshape(c, [tf.shape(c)[0], -1])
    return tf.reduce_mean(
        tf.reduce_sum(a * c, 1) / (tf.norm(a, axis=1) * tf.norm(c, axis=1) + 1e-6))


class FeatureLoss:
    """Cosine similarity of each face's features on the perturbed image to the same features
    on the original, averaged over faces and feature maps. 1 = unchanged; the attack pushes
    it down. Subclasses say which crops (``sizes``, ``margin``) and which ``features``."""

    name: str
    sizes: tuple[int, ...]
    margin: float

    def features(self, grey: tf.Tensor) -> list[tf.Tensor]:
        """Feature maps of grey face crops (N, S, S, 1) in 0..255, each (N, ...)."""
        raise NotImplementedError

    def maps(self, image: tf.Tensor, faces: tf.Tensor) -> list[tf.Tensor]:
        """Every feature map of each face on ``image`` (1, H, W, 3) in 0..255, ``faces`` (N, 4)
        relative boxes: square crops of the face grown by ``margin``, block-averaged."""
        scales = (1.0 + 2 * self.margin,)
        return [fmap for size in self.sizes
                for fmap in self.features(face_crops(image, faces, scales, 1.0, (size, size)))]

    def loss(self, image: tf.Tensor, reference: list[tf.Tensor], faces: tf.Tensor) -> tf.Tensor:
        """``reference``: ``maps`` of the original (computed once per photo; its size may
        differ from ``image``'s, boxes are relative). A scalar, 1 when nothing changed."""
        total = [_cosine(a, c) for a, c in zip(self.maps(image, faces), reference, strict=True)]
        return tf.add_n(total) / len(total)


class HogDisruption(FeatureLoss):
    """HOG at three cell sizes of a 96-px face crop (the scales of a HOG detector's pyramid
    around its 80-px window): what dlib's frontal detector scores."""

    name = "hog"
    sizes = (96,)
    margin = 0.15

    def features(self, grey: tf.Tensor) -> list[tf.Tensor]:
        return [hog(grey, cell) for cell in (6, 8, 10)]


#: name -> feature loss; a profile's ``features`` names the ones its attack adds.
FEATURES: dict[str, type[FeatureLoss]] = {cls.name: cls for cls in (HogDisruption,)}


@dataclass(frozen=True)
class CompiledFeature:
    """A feature loss ready for the attack: ``reference(base, faces)`` once per photo, then
    ``value_and_grad(image, reference, faces) -> (loss, gradient w.r.t. image scaled to unit
    mean |g|)`` each step, one TensorFlow graph for any image size and number of faces."""

    reference: Callable[[tf.Tensor, tf.Tensor], list[tf.Tensor]]
    value_and_grad: tf.types.experimental.GenericFunction


def compiled_gradient(feature: FeatureLoss) -> CompiledFeature:
    """``feature`` with its per-step gradient compiled (see ``CompiledFeature``)."""
    box = tf.constant([[0.0, 0.0, 1.0, 1.0]])
    maps = [tf.TensorSpec([None, *fmap.shape[1:]], tf.float32)
            for fmap in feature.maps(tf.zeros([1, 8, 8, 3]), box)]

    @tf.function(input_signature=[
        tf.TensorSpec([None, None, None, 3], tf.float32),
        maps,
        tf.TensorSpec([None, 4], tf.float32),
    ])
    def value_and_grad(image, reference, faces):
        with tf.GradientTape() as tape:
            tape.watch(image)
            loss = feature.loss(image, reference, faces)
        grad = tape.gradient(loss, image)
        return loss, grad / (tf.reduce_mean(tf.abs(grad)) + 1e-12)

    return CompiledFeature(feature.maps, value_and_grad)
