"""Fidelity and speed of the declared ONNX detectors re-executed in TensorFlow (issue 8).

For every ``[[detectors.models]]`` entry: time to build the TF graph from the ONNX file and to
trace it; max |difference| of all raw outputs and of the per-anchor face scores against
onnxruntime on the same input (the packaged astronaut photo and uniform noise, placed as the
tool places them); milliseconds per forward, and per forward+backward of the vanishing loss, at
the tool's input size and for the whole loss (every ``loss_sizes`` input) on a 640x640 photo;
the first loss call's seconds (tracing, paid once per process).

    .venv/bin/python -m bench.onnx_models [--models bench/shared_models.toml] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

DEFAULT_MODELS = Path(__file__).resolve().parent / "shared_models.toml"


def _ms(fn, repeat: int) -> str:
    """"median (min)" milliseconds per call after one warm-up call (min: least disturbed by
    other processes on a shared machine)."""
    fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return f"{np.median(times) * 1000:.0f} ({min(times) * 1000:.0f})"


def _seconds(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def measure(name: str, repeat: int) -> dict:
    import onnxruntime as ort
    import tensorflow as tf
    from skimage import data

    from worker import models
    from worker.models.model import OnnxModel
    from worker.models.onnx_tf import OnnxGraph
    from worker.models.preprocess import place, to_input, to_input_tf
    from worker.models.surrogate import OnnxSurrogate

    spec = models.declared_models()[name]
    started = time.perf_counter()
    raw = OnnxGraph(spec.path)
    build_s = time.perf_counter() - started
    model = OnnxModel.load(spec)
    surrogate = OnnxSurrogate(model)
    session = ort.InferenceSession(str(spec.path), providers=["CPUExecutionProvider"])
    (canvas, prep), photo = surrogate.inputs()[0], data.astronaut()
    noise = np.random.default_rng(0).integers(0, 256, photo.shape, np.uint8)
    output_diff = score_diff = 0.0
    for rgb in (photo, noise):
        placement = place(*rgb.shape[:2], prep, canvas if model.preprocessing.input_size else None)
        blob = to_input(rgb, placement, prep)
        ref = dict(zip([o.name for o in session.get_outputs()],
                       session.run(None, {model.input_name: blob}), strict=True))
        nhwc = tf.constant(blob.transpose(0, 2, 3, 1))
        ours = raw(nhwc)
        output_diff = max(output_diff, *(float(np.abs(ours[k].numpy() - v).max())
                                         for k, v in ref.items()))
        scores = tf.sigmoid(surrogate.logits_of_input(nhwc)).numpy()[0]
        want = model.family.anchor_scores(ref)
        score_diff = max(score_diff, float(np.abs(scores - want).max()))
    side = max(canvas)
    x = tf.constant(np.random.default_rng(1).uniform(0, 255, (1, side, side, 3)), tf.float32)
    placement = place(side, side, prep, canvas if model.preprocessing.input_size else None)
    model_input = to_input_tf(x, placement, prep)  # the loss's own first input

    def forward_backward(loss_fn):
        def run() -> None:
            with tf.GradientTape() as tape:
                tape.watch(model_input)
                loss = loss_fn()
            tape.gradient(loss, model_input).numpy()
        return run

    limit = surrogate.threshold_logit - surrogate.margin
    one = forward_backward(lambda: tf.reduce_sum(tf.nn.relu(
        surrogate.logits_of_input(model_input) - limit)))

    def whole() -> None:
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = surrogate.loss(x)
        tape.gradient(loss, x).numpy()

    blob = np.ascontiguousarray(model_input.numpy().transpose(0, 3, 1, 2))
    first_s = _seconds(whole)  # traces the TF function of every loss input (once per process)
    return {
        "name": name, "family": spec.family, "input": f"{canvas[0]}x{canvas[1]}",
        "loss_sizes": "/".join(str(s) for s in model.loss_sizes),
        "build_ms": build_s * 1000, "first_s": first_s,
        "output_diff": output_diff, "score_diff": score_diff,
        "ort_ms": _ms(lambda: session.run(None, {model.input_name: blob}), repeat),
        "tf_fwd_ms": _ms(lambda: surrogate.logits_of_input(model_input).numpy(), repeat),
        "tf_fwd_bwd_ms": _ms(one, repeat),
        "loss_ms": _ms(whole, repeat),
    }


def main() -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default=str(DEFAULT_MODELS))
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    os.environ["DFB_CONFIG"] = str(Path(args.models).resolve())
    from worker import models

    rows = [measure(name, args.repeat) for name in models.declared_models()]
    print("| model | family | input | build ms | first loss call s | max abs diff, outputs | "
          "max abs diff, scores | onnxruntime fwd ms | TF fwd ms | TF fwd+bwd ms | "
          "whole loss fwd+bwd ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['family']} | {r['input']} | {r['build_ms']:.0f} | "
              f"{r['first_s']:.1f} | {r['output_diff']:.1e} | {r['score_diff']:.1e} | "
              f"{r['ort_ms']} | {r['tf_fwd_ms']} | {r['tf_fwd_bwd_ms']} | "
              f"{r['loss_ms']} for {r['loss_sizes']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
