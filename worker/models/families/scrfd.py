"""insightface SCRFD (``det_10g``, ``det_2.5g``...; also insightface's RetinaFace-10GF that
FaceFusion ships as ``retinaface_10g``, which has the same heads): anchor-free distances.

As ``insightface.model_zoo.scrfd.SCRFD.detect``: letterbox top-left into 640x640 (scale to fit,
``int`` sizes, one scale ``new_h / h`` mapping back), RGB, ``(x - 127.5) / 128``; outputs in
graph order: scores, boxes, keypoints for each stride (8, 16, 32 with 2 anchors per location, or
8..128 with 1); anchor centres ``(col, row) * stride``; boxes ``centre -/+ distance * stride``;
score >= 0.5; NMS 0.4 with pixel-inclusive areas in image coordinates.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from worker.models.families.base import (
    Detections,
    Family,
    OutputInfo,
    Preprocessing,
    first_image,
    greedy_nms,
    logit_from_probability,
    per_image,
)

#: number of outputs -> (feature levels, keypoints present), as insightface decides it.
_LAYOUTS = {6: (3, False), 9: (3, True), 10: (5, False), 15: (5, True)}


def anchor_centres(rows: int, cols: int, stride: int, anchors: int) -> np.ndarray:
    """(rows * cols * anchors, 2) x, y of every anchor, location-major (insightface order)."""
    ys, xs = np.mgrid[:rows, :cols]
    centres = np.stack([xs, ys], axis=-1).reshape(-1, 2).astype(np.float32) * stride
    return np.repeat(centres, anchors, axis=0)


def distance_to_box(centres: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """Boxes x0, y0, x1, y1 from left, top, right, bottom distances to the anchor centre."""
    return np.concatenate([centres - distances[:, :2], centres + distances[:, 2:4]], axis=1)


class Scrfd(Family):
    name = "scrfd"
    threshold = 0.5
    nms_iou = 0.4
    preprocessing = Preprocessing(
        input_size=(640, 640), resize="fit", letterbox="top-left",
        mean=(127.5, 127.5, 127.5), std=(128.0, 128.0, 128.0), channels="rgb",
    )
    loss_sizes = (640, 480, 320)

    def __init__(self, outputs: OutputInfo) -> None:
        super().__init__(outputs)
        if len(outputs) not in _LAYOUTS:
            raise ValueError(
                f"SCRFD models have 6, 9, 10 or 15 outputs (scores, boxes[, keypoints] per "
                f"stride); this one has {len(outputs)}")
        self.levels, self.has_keypoints = _LAYOUTS[len(outputs)]
        self.strides = (8, 16, 32, 64, 128)[: self.levels]
        self.anchors = 2 if self.levels == 3 else 1
        for group, width in enumerate((1, 4, 10)[: 2 + self.has_keypoints]):
            for name, shape in outputs[group * self.levels: (group + 1) * self.levels]:
                if shape and shape[-1] not in (None, width):
                    raise ValueError(f"SCRFD output {name!r} should end in {width}, got {shape}")

    def decode(
        self, outputs: dict[str, np.ndarray], input_hw: tuple[int, int], threshold: float
    ) -> Detections:
        names, levels, parts = self.output_names, self.levels, []
        for k, stride in enumerate(self.strides):
            scores = self._level_scores(outputs, k)
            keep = np.flatnonzero(scores >= threshold)
            if not keep.size:
                continue
            centres = anchor_centres(input_hw[0] // stride, input_hw[1] // stride, stride,
                                     self.anchors)[keep]
            boxes = distance_to_box(centres, first_image(outputs[names[levels + k]], 4)[keep]
                                    * stride)
            kps = None
            if self.has_keypoints:
                offsets = first_image(outputs[names[2 * levels + k]], 10)[keep] * stride
                kps = centres[:, None, :] + offsets.reshape(-1, 5, 2)
            parts.append(Detections(boxes, scores[keep], kps))
        return Detections.concat(parts)

    def _level_scores(self, outputs: dict[str, np.ndarray], level: int) -> np.ndarray:
        return first_image(outputs[self.output_names[level]], 1)[:, 0]

    def anchor_scores(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([self._level_scores(outputs, k) for k in range(self.levels)])

    def suppress(self, found: Detections, iou: float) -> np.ndarray:
        return greedy_nms(found.boxes, found.scores, iou, plus_one=True)

    def score_outputs(self) -> list[str]:
        return self.output_names[: self.levels]

    def face_logits(self, outputs: dict[str, tf.Tensor], skipped: dict[str, str]) -> tf.Tensor:
        logits = []
        for name in self.score_outputs():
            x = per_image(outputs[name])
            logits.append(x if skipped.get(name) == "sigmoid" else logit_from_probability(x))
        return tf.concat(logits, axis=1)
