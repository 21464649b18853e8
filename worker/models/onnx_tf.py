"""An ONNX graph re-executed node by node as TensorFlow ops, so its outputs have exact gradients.

The graph is read with ``onnx`` and its initialisers are used by name, unchanged. Calling an
``OnnxGraph`` on an NHWC float32 batch runs the nodes in their (topological) file order:

- **Static folding**: nodes whose inputs are all known while the graph is traced (initialisers,
  ``Constant``, ``Shape`` of a tensor with a static shape, and everything computed from those,
  e.g. the ``Shape → Gather → Concat → Reshape`` chains of exported heads) are evaluated with
  ``onnx.reference`` in NumPy, so shapes are plain numbers and only real tensor work reaches TF.
- **NHWC inside**: the graph is NCHW; TensorFlow's CPU kernels are NHWC (NCHW convolutions
  measured 33% slower forward+backward, and max-pool gradients do not exist in NCHW on CPU).
  4-D activations are therefore held as NHWC and tagged; convolutions, pooling, resizing,
  element-wise ops, channel concat/split and transposes map their axes, and any other op first
  transposes its input back to the graph's NCHW view.
- **Logits**: ``raw_scores`` names outputs computed by a final ``Sigmoid``/``Softmax`` (possibly
  followed by reshapes/transposes); that activation is skipped, so the outputs are the logits
  (``activations`` says which one was skipped). A saturated probability has no gradient; the
  logit always has one.

Only static input shapes are supported (trace once per input size, e.g. in a ``tf.function``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import tensorflow as tf
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

__all__ = ["OnnxGraph", "UnsupportedOnnxGraph"]

#: ONNX (logical NCHW) axis -> physical axis of a tensor held as NHWC.
_TO_NHWC_AXIS = (0, 3, 1, 2)
#: Ops that only move data around: a skipped activation may be followed by these.
_LAYOUT_OPS = {"Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Identity"}


class UnsupportedOnnxGraph(NotImplementedError):
    """The ONNX file uses an op (or an op setting) this executor does not implement."""


@dataclass(frozen=True)
class _Value:
    """A runtime tensor, or a NumPy constant known while tracing; ``nhwc``: a 4-D NCHW value
    of the ONNX graph physically held as NHWC."""

    data: tf.Tensor | np.ndarray
    nhwc: bool = False

    @property
    def static(self) -> bool:
        return isinstance(self.data, np.ndarray)

    @property
    def rank(self) -> int:
        return len(self.data.shape)


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    out = {}
    for a in node.attribute:
        value = helper.get_attribute_value(a)
        out[a.name] = value.decode() if isinstance(value, bytes) else value
    return out


class OnnxGraph:
    """A single-input float ONNX model (e.g. a face detector) as a differentiable TF function."""

    def __init__(self, path: str | Path, raw_scores: Iterable[str] = ()) -> None:
        model = onnx.load(str(path))
        graph = model.graph
        self.opset = next(
            (o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13
        )
        self.constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        inputs = [i.name for i in graph.input if i.name not in self.constants]
        if len(inputs) != 1:
            raise UnsupportedOnnxGraph(f"{path}: expected one image input, found {inputs}")
        self.input_name = inputs[0]
        dims = graph.input[[i.name for i in graph.input].index(self.input_name)]
        self.input_shape = tuple(d.dim_value or None for d in dims.type.tensor_type.shape.dim)
        self.output_names = [o.name for o in graph.output]
        self.nodes = list(graph.node)
        self.activations = self._skip_activations(list(raw_scores))
        self._check_supported(path)

    # -- construction ---------------------------------------------------------------------------

    def _skip_activations(self, names: list[str]) -> dict[str, str]:
        """Turn the final Sigmoid/Softmax of each named output into Identity; return
        {output: skipped activation ("sigmoid" or "softmax")} for those where it was possible."""
        producer = {out: i for i, n in enumerate(self.nodes) for out in n.output}
        consumers: dict[str, int] = {}
        for n in self.nodes:
            for name in n.input:
                consumers[name] = consumers.get(name, 0) + 1
        skipped = {}
        for name in names:
            chain, current = [], name
            while current in producer and self.nodes[producer[current]].op_type in _LAYOUT_OPS:
                chain.append(current)
                current = self.nodes[producer[current]].input[0]
            node_index = producer.get(current)
            if node_index is None or any(consumers.get(c, 0) > 1 for c in [current, *chain[1:]]):
                continue  # the activation's result is also used elsewhere
            node = self.nodes[node_index]
            if node.op_type not in ("Sigmoid", "Softmax") or (
                current != name and current in self.output_names
            ):
                continue
            identity = helper.make_node("Identity", [node.input[0]], list(node.output), node.name)
            self.nodes[node_index] = identity
            skipped[name] = node.op_type.lower()
        return skipped

    def _check_supported(self, path: str | Path) -> None:
        """Fail at load time, naming every op that would need TF but has no implementation."""
        static = set(self.constants)
        missing = set()
        for node in self.nodes:
            ins = [i for i in node.input if i]
            if node.op_type in ("Shape", "Constant") or all(i in static for i in ins):
                static.update(node.output)
            elif node.op_type not in _RUNTIME_OPS:
                missing.add(node.op_type)
        if missing:
            raise UnsupportedOnnxGraph(f"{path}: ONNX ops not supported in TF: {sorted(missing)}")

    # -- execution ------------------------------------------------------------------------------

    def __call__(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        """Run on NHWC float32 ``images`` (the model's input already normalised, channels in the
        model's order); returns every graph output by name, in the graph's own layout."""
        images = tf.convert_to_tensor(images, tf.float32)
        if not images.shape.is_fully_defined():
            raise ValueError("OnnxGraph needs a static input shape (trace once per size)")
        env: dict[str, _Value] = {n: _Value(a) for n, a in self.constants.items()}
        env[self.input_name] = _Value(images, nhwc=True)
        for node in self.nodes:
            ins = [env[i] if i else None for i in node.input]
            if node.op_type == "Shape":  # static: the input shape is known while tracing
                a = _attrs(node)
                shape = _logical_shape(ins[0])[a.get("start", 0): a.get("end")]
                outs = [_Value(np.array(shape, np.int64))]
            elif all(v is None or v.static for v in ins):
                outs = [_Value(a) for a in self._fold(node, ins)]
            else:
                outs = _RUNTIME_OPS[node.op_type](self, node, _attrs(node), ins)
            env.update(zip(node.output, outs, strict=False))
        return {name: _to_tensor(_logical(env[name])) for name in self.output_names}

    def _fold(self, node: onnx.NodeProto, ins: list[_Value | None]) -> list[np.ndarray]:
        """Evaluate a node with constant inputs in NumPy (``onnx.reference``)."""
        names = [f"i{k}" if v is not None else "" for k, v in enumerate(ins)]
        fed = {n: v.data for n, v in zip(names, ins, strict=True) if v is not None}
        tmp = helper.make_node(node.op_type, names, [f"o{k}" for k in range(len(node.output))],
                               domain=node.domain)
        tmp.attribute.extend(node.attribute)
        graph = helper.make_graph(
            [tmp], "fold",
            [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), None)
             for n, a in fed.items()],
            [helper.make_empty_tensor_value_info(o) for o in tmp.output],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])
        return [np.asarray(a) for a in ReferenceEvaluator(model).run(None, fed)]


# -- layout helpers ---------------------------------------------------------------------------


def _logical(v: _Value) -> _Value:
    """The value in the ONNX graph's own (NCHW) layout."""
    return _Value(tf.transpose(v.data, [0, 3, 1, 2])) if v.nhwc else v


def _logical_shape(v: _Value) -> list[int]:
    shape = list(v.data.shape)
    if any(d is None for d in shape):
        raise ValueError("OnnxGraph needs static shapes")
    return [shape[0], shape[3], shape[1], shape[2]] if v.nhwc else shape


def _to_tensor(v: _Value) -> tf.Tensor:
    return tf.constant(v.data) if v.static else v.data


def _spatial(v: _Value) -> tf.Tensor:
    """A 4-D value as a physical NHWC tensor."""
    if v.nhwc:
        return v.data
    if v.rank != 4:
        raise UnsupportedOnnxGraph(f"expected a 4-D NCHW tensor, got shape {v.data.shape}")
    return tf.transpose(_to_tensor(v), [0, 2, 3, 1])


def _nhwc_constant(a: np.ndarray) -> np.ndarray:
    """A constant broadcast against an NCHW tensor, rearranged to broadcast against NHWC."""
    if a.ndim > 4:
        raise UnsupportedOnnxGraph("broadcast of a constant with rank > 4")
    return a.reshape((1,) * (4 - a.ndim) + a.shape).transpose(0, 2, 3, 1)


def _same_layout(values: list[_Value]) -> tuple[list[tf.Tensor], bool]:
    """Operands of an element-wise op as tensors of one layout, and whether that is NHWC."""
    if any(v.nhwc for v in values) and all(v.nhwc or v.static or v.rank == 0 for v in values):
        out = [v.data if v.nhwc or not v.static else tf.constant(
            _nhwc_constant(v.data).astype(np.float32)) for v in values]
        return out, True
    return [_to_tensor(_logical(v)) for v in values], False


def _float(a: np.ndarray | float) -> tf.Tensor:
    return tf.constant(np.asarray(a, np.float32))


# -- runtime ops ------------------------------------------------------------------------------

Op = Callable[[OnnxGraph, onnx.NodeProto, dict[str, Any], list[_Value | None]], list[_Value]]
_RUNTIME_OPS: dict[str, Op] = {}


def _op(*names: str) -> Callable[[Op], Op]:
    def register(fn: Op) -> Op:
        for name in names:
            _RUNTIME_OPS[name] = fn
        return fn

    return register


_UNARY: dict[str, Callable[[tf.Tensor, dict[str, Any]], tf.Tensor]] = {
    "Relu": lambda x, a: tf.nn.relu(x),
    "Sigmoid": lambda x, a: tf.sigmoid(x),
    "Tanh": lambda x, a: tf.tanh(x),
    "Exp": lambda x, a: tf.exp(x),
    "Log": lambda x, a: tf.math.log(x),
    "Sqrt": lambda x, a: tf.sqrt(x),
    "Neg": lambda x, a: -x,
    "Abs": lambda x, a: tf.abs(x),
    "Softplus": lambda x, a: tf.nn.softplus(x),
    "Identity": lambda x, a: x,
    "Dropout": lambda x, a: x,
    "LeakyRelu": lambda x, a: tf.nn.leaky_relu(x, a.get("alpha", 0.01)),
    "Elu": lambda x, a: tf.nn.elu(x) if a.get("alpha", 1.0) == 1.0 else tf.where(
        x > 0, x, a["alpha"] * (tf.exp(x) - 1.0)),
    "HardSigmoid": lambda x, a: tf.clip_by_value(
        a.get("alpha", 0.2) * x + a.get("beta", 0.5), 0.0, 1.0),
    "HardSwish": lambda x, a: x * tf.clip_by_value(x / 6.0 + 0.5, 0.0, 1.0),
}


@_op(*_UNARY)
def _unary(g: OnnxGraph, node: onnx.NodeProto, a: dict, ins: list) -> list[_Value]:
    x = ins[0]
    outs = [_Value(_UNARY[node.op_type](x.data, a), x.nhwc)]
    return outs + [_Value(tf.ones_like(x.data, tf.bool), x.nhwc)] * (len(node.output) - 1)


_BINARY: dict[str, Callable[[tf.Tensor, tf.Tensor], tf.Tensor]] = {
    "Add": tf.add, "Sub": tf.subtract, "Mul": tf.multiply, "Div": tf.divide, "Pow": tf.pow,
    "Max": tf.maximum, "Min": tf.minimum,
}


@_op(*_BINARY)
def _binary(g: OnnxGraph, node: onnx.NodeProto, a: dict, ins: list) -> list[_Value]:
    if len(ins) != 2:
        raise UnsupportedOnnxGraph(f"{node.op_type} with {len(ins)} inputs")
    (x, y), nhwc = _same_layout(ins)
    if ins[0].static and x.dtype != y.dtype:  # constants follow the runtime operand's dtype
        x = tf.cast(x, y.dtype)
    elif x.dtype != y.dtype:
        y = tf.cast(y, x.dtype)
    return [_Value(_BINARY[node.op_type](x, y), nhwc)]


@_op("PRelu")
def _prelu(g: OnnxGraph, node: onnx.NodeProto, a: dict, ins: list) -> list[_Value]:
    (x, slope), nhwc = _same_layout(ins)
    return [_Value(tf.where(x >= 0, x, x * slope), nhwc)]


@_op("Clip")
def _clip(g: OnnxGraph, node: onnx.NodeProto, a: dict, ins: list) -> list[_Value]:
    x = ins[0]
    low = ins[1].data if len(ins) > 1 and ins[1] is not None else a.get("min", -np.inf)
    high = ins[2].data if len(ins) > 2 and ins[2] is not None else a.get("max", np.inf)
    return [_Value(tf.clip_by_value(x.data, float(low), float(high)), x.nhwc)]


@_op("Conv")
def _conv(g: OnnxGraph, node: onnx.NodeProto, a: dict, ins: list) -> list[_Value]:
    x = _spatial(ins[0])
    w = ins[1].data  # O, I/group, kH, kW
    if not ins[1].static or w.ndim != 4:
        raise UnsupportedOnnxGraph("Conv needs constant 2-D kernels")
    group = a.get("group", 1)
    strides = a.get("strides", [1, 1])
    dilations = a.get("dilations", [1, 1])
    pads = _pads(a, x.shape[1:3], w.shape[2:], strides, dilations)
    padding = [[0, 0], [pads[0], pads[2]], [pads[1], pads[3]], [0, 0]]
    c_in = w.shape[1] * group
    if group == 1:
        y = tf.nn.conv2d(x, _float(w.transpose(2, 3, 1, 0)), [1, *strides, 1], padding,
                         dilations=[1, *dilations, 1])
    elif group == c_in and w.shape[1] == 1 and strides[0] == strides[1]:
        mult = w.shape[0] // group  # output channel c * mult + j comes from input channel c
        kernel = w.reshape(group, mult, *w.shape[2:]).transpose(2, 3, 0, 1)
        # explicit paddings crash grappler's shape inference for depthwise convs: pad first
        y = tf.nn.depthwise_conv2d(tf.pad(x, padding), _float(kernel), [1, *strides, 1],
                                   "VALID", dilations=dilations)
    else:
        xs = tf.split(x, group, axis=3)
        ws = np.split(w, group, axis=0)
        y = tf.concat([
            tf.nn.conv2d(xi, _float(wi.transpose(2, 3, 1, 0)), [1, *strides, 1], padding,
                         dilations=[1, *dilations, 1]) for xi, wi in zip(xs, ws, strict=True)
        ], axis=3)
    if len(ins) > 2 and ins[2] is not None:
        y = y + _float(ins[2].data)
    return [_Value(y, nhwc=True)]


def _pads(a: dict, size: Iterable[int], kernel: Iterable[int], strides: list[int],
          dilations: list[int]) -> list[int]:
    """ONNX pads [top, left, bottom, right] from ``pads`` or ``auto_pad``."""
    auto = a.get("auto_pad", "NOTSET")
    if auto in ("NOTSET", "VALID"):
        return list(a.get("pads", [0, 0, 0, 0])) if auto == "NOTSET" else [0, 0, 0, 0]
    begin, end = [], []
    for n, k, s, d in zip(size, kernel, strides, dilations, strict=True):
        total = max(0, (math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n)
        small, big = total // 2, total - total // 2
        begin.append(small if auto == "SAME_UPPER" else big)
        end.append(big if auto == "SAME_UPPER" else small)
    return begin + end


@_op("BatchNormalization")
def _batch_norm(g: OnnxGraph, node: onnx.NodeProto, a: dict, ins: list) -> list[_Value]:
    scale, bias, mean, var = (v.data for v in ins[1:5])
    factor = scale / np.sqrt(var + a.get("epsilon", 1e-5))
    x = _spatial(ins[0])
    return [_Value(x * _float(factor) + _float(bias - mean * factor), nhwc=True)]


@_op("MaxPool", "AveragePool")
def _pool(g: OnnxGraph, node: onnx.NodeProto, a: dict, ins: list) -> list[_Value]:
    if len(node.output) > 1 or any(d != 1 for d in a.get("dilations", [1, 1])):
        raise UnsupportedOnnxGraph(f"{node.op_type} with indices or dilations")
    x = _spatial(ins[0])
    kernel, strides = list(a["kernel_shape"]), list(a.get("strides", [1, 1]))
    size = [int(d) for d in x.shape[1:3]]
    pads = _pads(a, size, kernel, strides, [1, 1])
    extra = []
    for n, k, s, p0, p1 in zip(size, kernel, strides, pads[:2], pads[2:], strict=True):
        span = n + p0 + p1 - k
        out = (math.ceil(span / s) if a.get("ceil_mode", 0) else span // s) + 1
        if a.get("ceil_mode", 0) and (out - 1) * s >= n + p0:  # last window starts in padding
            out -= 1
        extra.append(max(0, (out - 1) * s + k - (n + p0 + p1)))
    padding = [[0, 0], [pads[0], pads[2] + extra[0]], [pads[1], pads[3] + extra[1]], [0, 0]]
    if node.op_type == "MaxPool":
        padded = tf.pad(x, padding, constant_values=float(np.finfo(np.float32).min))
        return [_Value(tf.nn.max_pool2d(padded, kernel, strides, "VALID"), nhwc=True)]
    # average over the window's cells inside the input (and the explicit pads if counted)
    mask = np.zeros([size[0] + sum(padding[1]), size[1] + sum(padding[2])], np.float32)
    if a.get("count_include_pad", 0):
        mask[: size[0] + pads[0] + pads[2], : size[1] + pads[1] + pads[3]] = 1
    else:
        mask[pads[0]: pads[0] + size[0], pads[1]: pads[1] + size[1]] = 1
    windows = np.lib.stride_tricks.sliding_window_view(mask, kernel)[:: strides[0], :: strides[1]]
    cells = windows.sum(axis=(2, 3))[None, :, :, None]
    mean = tf.nn.avg_pool2d(tf.pad(x, padding), kernel, strides, "VALID")  # sum / (kh * kw)
    return [_Value(mean * _float(kernel[0] * kernel[1] / np.maximum(cells, 1)), nhwc=True)]


@_op("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(g: OnnxGraph, node: onnx.NodeProto, a: dict, ins: list) -> list[_Value]:
    reduce = tf.reduce_mean if node.op_type == "GlobalAveragePool" else tf.reduce_max
    return [_Value(reduce(_spatial(ins[0]), axis=[1, 2], keepdims=True), nhwc=True)]


@_op("Resize", "Upsample")
def _resize(g: OnnxGraph, node: onnx.NodeProto, a: dict, ins: list) -> list[_Value]:
    x = _spatial(ins[0])
    n, c, h, w = _logical_shape(_Value(x, nhwc=True))
    mode = a.get("mode", "nearest")
    if node.op_type == "Upsample":
        scales = list(a["scales"]) if "scales" in a else list(ins[1].data)
        coords, nearest = "asymmetric", "floor"
        sizes = None
    else:
        coords = a.get("coordinate_transformation_mode", "half_pixel")
        nearest = a.get("nearest_mode", "round_prefer_floor")
        if g.opset < 11:
            coords, nearest = "asymmetric", "floor"
        scale_in = ins[1] if g.opset < 11 else (ins[2] if len(ins) > 2 else None)
        size_in = ins[3] if len(ins) > 3 else None
        scales = list(scale_in.data) if scale_in is not None and scale_in.data.size else None
        sizes = list(size_in.data) if size_in is not None and size_in.data.size else None
    if sizes is not None:
        out_h, out_w = int(sizes[2]), int(sizes[3])
        sh, sw = out_h / h, out_w / w
        if (sizes[0], sizes[1]) != (n, c):
            raise UnsupportedOnnxGraph("Resize of the batch or channel axis")
    else:
        if scales is None or scales[0] != 1 or scales[1] != 1:
            raise UnsupportedOnnxGraph("Resize of the batch or channel axis")
        sh, sw = float(scales[2]), float(scales[3])
        out_h, out_w = int(math.floor(h * sh)), int(math.floor(w * sw))
    if mode in ("linear", "bilinear"):
        mode = "linear"
    elif mode != "nearest":
        raise UnsupportedOnnxGraph(f"Resize mode {mode!r}")
    for axis, (size, out, scale) in enumerate(((h, out_h, sh), (w, out_w, sw)), start=1):
        x = _resample(x, axis, size, out, scale, coords, mode, nearest)
    return [_Value(x, nhwc=True)]


def _resample(x: tf.Tensor, axis: int, size: int, out: int, scale: float, coords: str,
              mode: str, nearest: str) -> tf.Tensor:
    """Resize one axis with ONNX's exact source-coordinate rules (gather + weights)."""
    o = np.arange(out, dtype=np.float64)
    if coords == "half_pixel":
        src = (o + 0.5) / scale - 0.5
    elif coords == "pytorch_half_pixel":
        src = (o + 0.5) / scale - 0.5 if out > 1 else np.zeros_like(o)
    elif coords == "align_corners":
        src = o * (size - 1) / (out - 1) if out > 1 else np.zeros_like(o)
    elif coords == "asymmetric":
        src = o / scale
    elif coords == "tf_half_pixel_for_nn":
        src = (o + 0.5) / scale
    else:
        raise UnsupportedOnnxGraph(f"Resize coordinate_transformation_mode {coords!r}")
    if mode == "nearest":
        frac = src - np.floor(src)
        rounders = {
            "floor": np.floor(src),
            "ceil": np.ceil(src),
            "round_prefer_floor": np.where(frac == 0.5, np.floor(src), np.round(src)),
            "round_prefer_ceil": np.where(frac == 0.5, np.ceil(src), np.round(src)),
        }
        if nearest not in rounders:
            raise UnsupportedOnnxGraph(f"Resize nearest_mode {nearest!r}")
        index = np.clip(rounders[nearest], 0, size - 1).astype(np.int32)
        if np.array_equal(index, np.arange(size)) and out == size:
            return x
        return tf.gather(x, index, axis=axis)
    src = np.clip(src, 0, size - 1)
    lo = np.floor(src).astype(np.int32)
    hi = np.minimum(lo + 1, size - 1)
    weight = (src - lo).astype(np.float32).reshape([-1 if k == axis else 1 for k in range(4)])
    return tf.gather(x, lo, axis=axis) * (1 - weight) + tf.gather(x, hi, axis=axis) * weight


@_op("Concat")
def _concat(g: OnnxGraph, node: onnx.NodeProto, a: dict, ins: list) -> list[_Value]:
    rank = max(v.rank for v in ins)
    axis = a["axis"] % rank
    if all(v.nhwc for v in ins):
        return [_Value(tf.concat([v.data for v in ins], _TO_NHWC_AXIS[axis]), nhwc=True)]
    tensors = [_to_tensor(_logical(v)) for v in ins]
    dtype = next(t.dtype for t, v in zip(tensors, ins, strict=True) if not v.static)
    return [_Value(tf.concat([tf.cast(t, dtype) for t in tensors], axis))]


@_op("Split")
def _split(g: OnnxGraph, node: onnx.NodeProto, a: dict, ins: list) -> list[_Value]:
    x = ins[0]
    axis = a.get("axis", 0) % x.rank
    sizes = a.get("split") or (list(ins[1].data) if len(ins) > 1 and ins[1] is not None else None)
    count = len(node.output)
    if x.nhwc:
        parts = tf.split(x.data, sizes or count, axis=_TO_NHWC_AXIS[axis])
        return [_Value(p, nhwc=True) for p in parts]
    return [_Value(p) for p in tf.split(_to_tensor(x), sizes or count, axis=axis)]


@_op("Transpose")
def _transpose(g: OnnxGraph, node: onnx.NodeProto, a: dict, ins: list) -> list[_Value]:
    x = ins[0]
    perm = list(a.get("perm", range(x.rank)[::-1]))
    if x.nhwc:  # logical = phys.transpose(0, 3, 1, 2); out = logical.transpose(perm)
        perm = [(0, 3, 1, 2)[p] for p in perm]
    if perm == sorted(perm):
        return [_Value(x.data)]
    return [_Value(tf.transpose(x.data, perm))]


@_op("Reshape")
def _reshape(g: OnnxGraph, node: onnx.NodeProto, a: dict, ins: list) -> list[_Value]:
    x = _logical(ins[0])
    shape = [int(d) for d in ins[1].data]
    if not a.get("allowzero", 0):
        shape = [x.data.shape[k] if d == 0 else d for k, d in enumerate(shape)]
    return [_Value(tf.reshape(x.data, shape))]


@_op("Flatten")
def _flatten(g: OnnxGraph, node: onnx.NodeProto, a: dict, ins: list) -> list[_Value]:
    x = _logical(ins[0])
    axis = a.get("axis", 1) % (x.rank + 1) if x.rank else 0
    lead = int(np.prod(x.data.shape[:axis], dtype=np.int64))
    return [_Value(tf.reshape(x.data, [lead, -1]))]


def _axes(g: OnnxGraph, a: dict, ins: list, position: int) -> list[int] | None:
    if "axes" in a:
        return list(a["axes"])
    if len(ins) > position and ins[position] is not None:
        return [int(v) for v in ins[position].data]
    return None


@_op("Squeeze")
def _squeeze(g: OnnxGraph, node: onnx.NodeProto, a: dict, ins: list) -> list[_Value]:
    x = _logical(ins[0])
    axes = _axes(g, a, ins, 1)
    return [_Value(tf.squeeze(x.data, None if axes is None else [k % x.rank for k in axes]))]


@_op("Unsqueeze")
def _unsqueeze(g: OnnxGraph, node: onnx.NodeProto, a: dict, ins: list) -> list[_Value]:
    x = _logical(ins[0])
    axes = _axes(g, a, ins, 1) or []
    rank = x.rank + len(axes)
    y = x.data
    for axis in sorted(k % rank for k in axes):
        y = tf.expand_dims(y, axis)
    return [_Value(y)]


@_op("Slice")
def _slice(g: OnnxGraph, node: onnx.NodeProto, a: dict, ins: list) -> list[_Value]:
    x = _logical(ins[0])
    if g.opset < 10:
        starts, ends = a["starts"], a["ends"]
        axes, steps = a.get("axes", list(range(len(starts)))), [1] * len(starts)
    else:
        starts, ends = ins[1].data.tolist(), ins[2].data.tolist()
        axes = ins[3].data.tolist() if len(ins) > 3 and ins[3] is not None else list(
            range(len(starts)))
        steps = ins[4].data.tolist() if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
    index: list[slice] = [slice(None)] * x.rank
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        size = x.data.shape[axis % x.rank]
        start, end = max(-size - 1, min(start, size)), max(-size - 1, min(end, size))
        index[axis % x.rank] = slice(start, end if end >= -size else None, step)
    return [_Value(x.data[tuple(index)])]


@_op("Gather")
def _gather(g: OnnxGraph, node: onnx.NodeProto, a: dict, ins: list) -> list[_Value]:
    x = _logical(ins[0])
    if not ins[1].static:
        raise UnsupportedOnnxGraph("Gather with computed indices")
    indices = ins[1].data.astype(np.int64)
    axis = a.get("axis", 0) % x.rank
    indices = np.where(indices < 0, indices + x.data.shape[axis], indices)
    return [_Value(tf.gather(x.data, indices, axis=axis))]


@_op("Softmax")
def _softmax(g: OnnxGraph, node: onnx.NodeProto, a: dict, ins: list) -> list[_Value]:
    x = ins[0]
    axis = a.get("axis", 1 if g.opset < 13 else -1) % x.rank
    if x.nhwc and axis == 1 and g.opset >= 13:
        return [_Value(tf.nn.softmax(x.data, axis=3), nhwc=True)]
    x = _logical(x)
    if g.opset < 13 and axis != x.rank - 1:  # old semantics: softmax over the flattened tail
        shape = x.data.shape
        flat = tf.reshape(x.data, [int(np.prod(shape[:axis])), -1])
        return [_Value(tf.reshape(tf.nn.softmax(flat, axis=-1), shape))]
    return [_Value(tf.nn.softmax(x.data, axis=axis))]


@_op("Pad")
def _pad(g: OnnxGraph, node: onnx.NodeProto, a: dict, ins: list) -> list[_Value]:
    x = ins[0]
    pads = list(a["pads"]) if "pads" in a else ins[1].data.tolist()
    value = a.get("value", 0.0)
    if len(ins) > 2 and ins[2] is not None:
        value = float(ins[2].data)
    mode = {"constant": "CONSTANT", "reflect": "REFLECT"}.get(a.get("mode", "constant"))
    if mode is None or len(ins) > 3:
        raise UnsupportedOnnxGraph(f"Pad mode {a.get('mode')!r} or axes")
    rank = len(pads) // 2
    pairs = [[pads[k], pads[k + rank]] for k in range(rank)]
    if x.nhwc:
        pairs = [pairs[k] for k in (0, 2, 3, 1)]
        return [_Value(tf.pad(x.data, pairs, mode, constant_values=value), nhwc=True)]
    return [_Value(tf.pad(_to_tensor(x), pairs, mode, constant_values=value))]


@_op("Cast")
def _cast(g: OnnxGraph, node: onnx.NodeProto, a: dict, ins: list) -> list[_Value]:
    dtype = helper.tensor_dtype_to_np_dtype(a["to"])
    return [_Value(tf.cast(ins[0].data, tf.as_dtype(dtype)), ins[0].nhwc)]
