"""OpenCV's res10 300x300 SSD face detector rebuilt in TensorFlow (confidence path only).

The network is interpreted from its own ``deploy.prototxt`` with the raw Caffe blobs that
``cv2.dnn`` reads (``layer.blobs`` before any forward pass, so no fused weights), which keeps
the rebuild layer-for-layer identical to what ``worker.detectors.res10`` runs. Only the layers
that feed the ``*_mbox_conf`` heads are built; boxes, priors and NMS are not needed for the loss.
Internally tensors are NHWC; the heads' ``Permute(0,2,3,1)`` + ``Flatten`` + ``Concat`` +
``Reshape(0,-1,2)`` then reduce to an NHWC reshape, giving caffe's prior order exactly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import tensorflow as tf

from worker.attack.surrogates.base import Surrogate
from worker.detectors.res10 import INPUT_SIZE, MEAN_BGR, load_net, model_files

Message = dict[str, list[Any]]
_TOKEN = re.compile(r'#[^\n]*|"[^"]*"|[{}]|[^\s{}:"#]+')
_BN_EPS = 1e-5  # caffe BatchNormParameter default (the prototxt sets none)
_NORM_EPS = 1e-10  # caffe NormalizeParameter default


def parse_prototxt(text: str) -> Message:
    """Parse protobuf text format into ``{field: [values or nested messages]}``."""
    tokens = [t for t in _TOKEN.findall(text) if not t.startswith("#")]
    pos = 0

    def message() -> Message:
        nonlocal pos
        out: Message = {}
        while pos < len(tokens) and tokens[pos] != "}":
            key = tokens[pos]
            pos += 1
            if tokens[pos] == "{":
                pos += 1
                value: Any = message()
                pos += 1  # closing brace
            else:
                value = _scalar(tokens[pos])
                pos += 1
            out.setdefault(key, []).append(value)
        return out

    return message()


def _scalar(token: str) -> Any:
    if token.startswith('"'):
        return token[1:-1]
    for kind in (int, float):
        try:
            return kind(token)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(token, token)


def _get(msg: Message, key: str, default: Any = None) -> Any:
    return msg.get(key, [default])[0]


class Res10Surrogate(Surrogate):
    """Differentiable res10 SSD class scores for every one of its 8892 prior boxes."""

    graph_safe = True

    name: ClassVar[str] = "res10_ssd"
    threshold: ClassVar[float] = 0.5

    def __init__(self, margin: float = 2.0) -> None:
        self.margin = float(margin)
        prototxt, _ = model_files()
        layers = parse_prototxt(prototxt.read_text())["layer"]
        net = load_net()
        self._heads = self._conf_heads(layers)
        self._steps = []  # (layer, op) for every layer the heads depend on, in order
        for layer in self._needed(layers, self._heads):
            blobs = [b.astype(np.float32) for b in net.getLayer(_get(layer, "name")).blobs]
            self._steps.append((layer, self._op(layer, blobs)))
        # hinge threshold on the face-minus-background logit (prob 0.5 <-> logit 0)
        self._threshold_logit = math.log(self.threshold / (1.0 - self.threshold))

    # -- graph construction -------------------------------------------------------------------

    @staticmethod
    def _conf_heads(layers: list[Message]) -> list[str]:
        """Blob names of the per-scale confidence convolutions, in ``mbox_conf`` concat order."""
        by_top = {_get(layer, "top"): layer for layer in layers}
        concat = next(layer for layer in layers if _get(layer, "name") == "mbox_conf")
        heads = []
        for blob in concat["bottom"]:
            while by_top[blob]["type"][0] in ("Flatten", "Permute"):
                blob = _get(by_top[blob], "bottom")
            heads.append(blob)
        return heads

    @staticmethod
    def _needed(layers: list[Message], targets: list[str]) -> list[Message]:
        """The layers (in prototxt order) that the ``targets`` blobs depend on."""
        wanted, keep = set(targets), []
        for layer in reversed(layers):
            if wanted & set(layer.get("top", [])):
                keep.append(layer)
                wanted |= set(layer.get("bottom", []))
        return keep[::-1]

    def _op(self, layer: Message, blobs: list[np.ndarray]) -> Callable[..., tf.Tensor]:
        """A TF function of the layer's bottom tensors (NHWC) implementing the caffe layer."""
        kind = _get(layer, "type")
        if kind == "Convolution":
            p = _get(layer, "convolution_param")
            if _get(p, "group", 1) != 1:
                raise NotImplementedError("grouped convolution")
            kernel = tf.constant(blobs[0].transpose(2, 3, 1, 0))  # OIHW -> HWIO
            bias = tf.constant(blobs[1].ravel()) if len(blobs) > 1 else None
            pad, stride = _get(p, "pad", 0), _get(p, "stride", 1)
            dilation = _get(p, "dilation", 1)

            if dilation != 1 and stride != 1:
                raise NotImplementedError("strided dilated convolution")

            def conv(x: tf.Tensor) -> tf.Tensor:
                x = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
                if dilation != 1:  # space-to-batch: TF's plain CPU kernels have no dilated
                    y = tf.nn.atrous_conv2d(x, kernel, dilation, "VALID")  # backprop (no oneDNN)
                else:
                    y = tf.nn.conv2d(x, kernel, stride, "VALID")
                return y if bias is None else y + bias

            return conv
        if kind == "BatchNorm":
            mean, var, factor = (b.ravel() for b in blobs)
            factor = 1.0 / factor[0] if factor[0] != 0 else 0.0
            eps = _get(_get(layer, "batch_norm_param", {}), "eps", _BN_EPS)
            scale = 1.0 / np.sqrt(var * factor + eps)
            return self._affine(scale, -mean * factor * scale)
        if kind == "Scale":
            bias = blobs[1].ravel() if len(blobs) > 1 else 0.0
            return self._affine(blobs[0].ravel(), bias)
        if kind == "ReLU":
            slope = _get(_get(layer, "relu_param", {}), "negative_slope", 0.0)
            return (lambda x: tf.nn.leaky_relu(x, slope)) if slope else tf.nn.relu
        if kind == "Eltwise":
            op = _get(_get(layer, "eltwise_param", {}), "operation", "SUM")
            if op != "SUM" or "coeff" in _get(layer, "eltwise_param", {}):
                raise NotImplementedError(f"Eltwise {op} with coefficients")
            return lambda *xs: tf.add_n(list(xs))
        if kind == "Pooling":
            return self._max_pool(_get(layer, "pooling_param"))
        if kind == "Normalize":
            p = _get(layer, "norm_param")
            if _get(p, "across_spatial", True) or _get(p, "channel_shared", True):
                raise NotImplementedError("Normalize across spatial / channel shared")
            gamma = tf.constant(blobs[0].ravel())
            eps = _get(p, "eps", _NORM_EPS)
            return lambda x: (
                x * tf.math.rsqrt(tf.reduce_sum(tf.square(x), axis=-1, keepdims=True) + eps) * gamma
            )
        raise NotImplementedError(f"caffe layer type {kind!r}")

    @staticmethod
    def _affine(scale: np.ndarray, shift: np.ndarray | float) -> Callable[[tf.Tensor], tf.Tensor]:
        a = tf.constant(np.asarray(scale, np.float32))
        b = tf.constant(np.asarray(shift, np.float32))
        return lambda x: x * a + b

    @staticmethod
    def _max_pool(p: Message) -> Callable[[tf.Tensor], tf.Tensor]:
        """Caffe max pooling: output size rounds *up*, so pad the bottom/right as needed."""
        if _get(p, "pool", "MAX") != "MAX":
            raise NotImplementedError("only MAX pooling")
        k, s, pad = _get(p, "kernel_size"), _get(p, "stride", 1), _get(p, "pad", 0)

        def pool(x: tf.Tensor) -> tf.Tensor:
            pads = []
            for size in x.shape[1:3]:  # static: the graph always sees 300x300
                out = -(-(size + 2 * pad - k) // s) + 1
                if pad and (out - 1) * s >= size + pad:
                    out -= 1
                pads.append([pad, (out - 1) * s + k - size - pad])
            x = tf.pad(x, [[0, 0], *pads, [0, 0]], constant_values=x.dtype.min)
            return tf.nn.max_pool2d(x, k, s, "VALID")

        return pool

    # -- forward ------------------------------------------------------------------------------

    @staticmethod
    def preprocess(images: tf.Tensor) -> tf.Tensor:
        """RGB [0, 255] (B, H, W, 3) -> the SSD's 300x300 BGR mean-subtracted input."""
        x = tf.image.resize(
            tf.cast(images, tf.float32), [INPUT_SIZE, INPUT_SIZE], "bilinear", antialias=True
        )
        return x[..., ::-1] - tf.constant(MEAN_BGR, tf.float32)

    def logits(self, images: tf.Tensor) -> tf.Tensor:
        """Class logits (background, face) per prior box, shape (B, 8892, 2)."""
        blobs = {"data": self.preprocess(images)}
        for layer, op in self._steps:
            blobs[_get(layer, "top")] = op(*(blobs[b] for b in layer["bottom"]))
        batch = tf.shape(images)[0]
        return tf.concat([tf.reshape(blobs[h], [batch, -1, 2]) for h in self._heads], axis=1)

    def face_probs(self, images: tf.Tensor) -> tf.Tensor:
        """Softmax face probability per prior box, shape (B, 8892)."""
        return tf.nn.softmax(self.logits(images), axis=-1)[..., 1]

    def face_scores(self, images: tf.Tensor) -> tf.Tensor:
        return tf.reduce_max(self.face_probs(images), axis=-1)

    @property
    def view_side(self) -> int:
        return INPUT_SIZE

    def loss(self, images: tf.Tensor, faces: np.ndarray | None = None) -> tf.Tensor:
        logits = self.logits(images)
        margin_logit = logits[..., 1] - logits[..., 0]
        hinge = tf.nn.relu(margin_logit - (self._threshold_logit - self.margin))
        return tf.reduce_mean(tf.reduce_sum(hinge, axis=-1))
