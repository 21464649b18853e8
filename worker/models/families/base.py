"""What every detector family provides to both roles: preprocessing defaults, a NumPy decoder
(raw outputs -> boxes, scores, keypoints in input pixels), NMS as the family's tools run it, and
the per-anchor face logits the surrogate's vanishing loss pushes below the threshold."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import tensorflow as tf

#: (name, static shape with None for dynamic dims) of every graph output, in graph order.
OutputInfo = list[tuple[str, tuple[int | None, ...]]]


@dataclass(frozen=True)
class Preprocessing:
    """How an RGB uint8 photo becomes the model input (defaults per family, config overrides).

    ``input_size`` None: the photo at its own size, padded bottom/right to ``pad_to``; else the
    photo is resized into that (width, height) canvas: ``fit`` scales it to touch the canvas
    (insightface), ``shrink`` only scales it down (FaceFusion), ``stretch`` ignores the aspect;
    ``letterbox`` places it top-left or centred; the rest of the canvas is 0. Then channels are
    reordered to ``channels`` and each becomes ``(x - mean) / std``.
    """

    input_size: tuple[int, int] | None = None
    resize: str = "fit"
    letterbox: str = "top-left"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    channels: str = "rgb"
    pad_to: int = 1


@dataclass(frozen=True)
class Detections:
    """Candidate faces: boxes (N, 4) x0, y0, x1, y1; scores (N,); keypoints (N, K, 2) or None."""

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray | None = None

    def take(self, index: np.ndarray) -> Detections:
        kps = None if self.keypoints is None else self.keypoints[index]
        return Detections(self.boxes[index], self.scores[index], kps)

    @staticmethod
    def concat(parts: list[Detections]) -> Detections:
        if not parts:
            return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))
        kps = None if any(p.keypoints is None for p in parts) else np.concatenate(
            [p.keypoints for p in parts])
        return Detections(np.concatenate([p.boxes for p in parts]),
                          np.concatenate([p.scores for p in parts]), kps)


class Family(ABC):
    """One output format. An instance is made per model file from its outputs (names and static
    shapes); ``__init__`` raises ``ValueError`` when the outputs do not fit the family."""

    name: ClassVar[str]
    threshold: ClassVar[float]               # detection score threshold of the family's tools
    nms_iou: ClassVar[float]                 # their NMS overlap threshold
    preprocessing: ClassVar[Preprocessing]
    loss_sizes: ClassVar[tuple[int, ...]]    # input sides for the surrogate loss, tool's first

    def __init__(self, outputs: OutputInfo) -> None:
        self.outputs = outputs
        self.output_names = [name for name, _ in outputs]

    @abstractmethod
    def decode(
        self, outputs: dict[str, np.ndarray], input_hw: tuple[int, int], threshold: float
    ) -> Detections:
        """Candidates of the first image scoring at least ``threshold``, in input pixels."""

    @abstractmethod
    def anchor_scores(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        """Detection score of every anchor of the first image, as the tools compute it, (N,)
        in the order of ``face_logits``."""

    def suppress(self, found: Detections, iou: float) -> np.ndarray:
        """Indices kept by non-maximum suppression (boxes already in image pixels)."""
        return greedy_nms(found.boxes, found.scores, iou)

    @abstractmethod
    def score_outputs(self) -> list[str]:
        """Outputs holding face probabilities (their final activation is skipped in TF)."""

    @abstractmethod
    def face_logits(self, outputs: dict[str, tf.Tensor], skipped: dict[str, str]) -> tf.Tensor:
        """Logit of the detection score (the value compared with ``logit(threshold)``) of every
        anchor, shape (B, N). ``skipped``: outputs whose activation was skipped (logits)."""


def greedy_nms(boxes: np.ndarray, scores: np.ndarray, iou: float, plus_one: bool = False
               ) -> np.ndarray:
    """Classic greedy NMS: keep the best box, drop those overlapping it by more than ``iou``.
    ``plus_one``: pixel-inclusive areas ``(x1 - x0 + 1) * (y1 - y0 + 1)`` as in insightface's and
    the RetinaFace reference code."""
    extra = 1.0 if plus_one else 0.0
    x0, y0, x1, y1 = (boxes[:, k].astype(np.float64) for k in range(4))
    areas = (x1 - x0 + extra) * (y1 - y0 + extra)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        w = np.maximum(0.0, np.minimum(x1[best], x1[rest]) - np.maximum(x0[best], x0[rest]) + extra)
        h = np.maximum(0.0, np.minimum(y1[best], y1[rest]) - np.maximum(y0[best], y0[rest]) + extra)
        inter = w * h
        overlap = inter / np.maximum(areas[best] + areas[rest] - inter, 1e-12)
        order = rest[overlap <= iou]
    return np.asarray(keep, np.int64)


def logit_from_probability(p: tf.Tensor, eps: float = 1e-6) -> tf.Tensor:
    """log(p / (1 - p)) with p clipped to [eps, 1 - eps] in value only (the gradient passes)."""
    clipped = p + tf.stop_gradient(tf.clip_by_value(p, eps, 1.0 - eps) - p)
    return tf.math.log(clipped) - tf.math.log1p(-clipped)


def per_image(x: tf.Tensor) -> tf.Tensor:
    """(B, N, ...) or unbatched (N, ...) head output -> (B, N * ...), batch 1 if unbatched."""
    return tf.reshape(x, [x.shape[0] if x.shape.rank == 3 else 1, -1])


def first_image(x: np.ndarray, columns: int) -> np.ndarray:
    """First image of a (B, N, C) or unbatched (N, C) head output, as (N, columns)."""
    return (x[0] if x.ndim == 3 else x).reshape(-1, columns)
