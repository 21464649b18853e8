"""Surrogate role: a declared ONNX model executed in TensorFlow (``OnnxGraph``), exact gradients.

The loss is the vanishing loss of single-stage detectors: every anchor's detection-score logit
below ``logit(threshold) - margin``, summed over anchors, at each of the model's ``loss_sizes``:
the tool's own input (e.g. SCRFD letterboxed into 640x640 as insightface does) first, then
smaller inputs (other detector sizes the tools offer), for robustness. Models that run at the
photo's own size (YuNet, RetinaFace) see it shrunk to fit an S x S canvas, top-left.

There is no conversion cache: the graph is built from the ONNX file in milliseconds, and its
TF function is traced once per input size per process (see ``docs/benchmarks.md``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import tensorflow as tf

from worker.attack.surrogates.base import Surrogate
from worker.models.families.base import Preprocessing
from worker.models.model import OnnxModel
from worker.models.onnx_tf import OnnxGraph
from worker.models.preprocess import place, to_input_tf

#: Strides of the detector heads: extra loss inputs are rounded to a multiple of this.
_ALIGN = 32


class OnnxSurrogate(Surrogate):
    """Differentiable face-score logits of every anchor of a declared ONNX model."""

    def __init__(self, model: OnnxModel, margin: float = 2.0, weight: float = 1.0) -> None:
        self.model = model
        self.name = model.name  # type: ignore[misc]  # per instance: the config's name
        self.margin = float(margin)
        self.weight = float(weight)
        self.graph = OnnxGraph(model.path, raw_scores=model.family.score_outputs())
        self.threshold_logit = math.log(model.threshold / (1.0 - model.threshold))
        self._forward: dict[tuple[int, ...], Callable[[tf.Tensor], tf.Tensor]] = {}

    @property
    def view_side(self) -> int:
        """The largest loss input's side (e.g. SCRFD's 640 canvas)."""
        return max(self.model.loss_sizes)

    def inputs(self) -> list[tuple[tuple[int, int], Preprocessing]]:
        """(canvas width, height) and preprocessing of every loss input, the tool's first."""
        prep = self.model.preprocessing
        out = []
        for side in self.model.loss_sizes:
            if prep.input_size is None:
                out.append(((side, side), replace(prep, resize="shrink", letterbox="top-left")))
                continue
            w, h = prep.input_size
            if side == max(w, h):
                out.append(((w, h), prep))
                continue
            k = side / max(w, h)
            out.append(((max(_ALIGN, round(w * k / _ALIGN) * _ALIGN),
                         max(_ALIGN, round(h * k / _ALIGN) * _ALIGN)), prep))
        return out

    def logits_of_input(self, inputs: tf.Tensor) -> tf.Tensor:
        """(B, N) logits for a preprocessed NHWC model input (see ``preprocess.to_input_tf``)."""
        return self.model.family.face_logits(self.graph(inputs), self.graph.activations)

    def logits(self, images: tf.Tensor, canvas: tuple[int, int], prep: Preprocessing
               ) -> tf.Tensor:
        """(B, N) detection-score logits for RGB [0, 255] ``images`` placed on ``canvas``."""
        images = tf.convert_to_tensor(images, tf.float32)
        placement = place(int(images.shape[1]), int(images.shape[2]), prep, canvas)
        inputs = to_input_tf(images, placement, prep)
        key = tuple(inputs.shape)
        if key not in self._forward:  # one traced function per input shape
            self._forward[key] = tf.function(self.logits_of_input, autograph=False)
        return self._forward[key](inputs)

    def loss(self, images: tf.Tensor, faces: np.ndarray | None = None) -> tf.Tensor:
        limit = self.threshold_logit - self.margin
        total = tf.constant(0.0)
        for canvas, prep in self.inputs():
            hinge = tf.nn.relu(self.logits(images, canvas, prep) - limit)
            total += tf.reduce_mean(tf.reduce_sum(hinge, axis=1))
        return total

    def face_scores(self, images: tf.Tensor) -> tf.Tensor:
        canvas, prep = self.inputs()[0]
        return tf.sigmoid(tf.reduce_max(self.logits(images, canvas, prep), axis=1))
