"""OpenCV's YuNet (libfacedetection; ``face_detection_yunet_2023mar.onnx`` and same-head models),
decoded as ``cv2.FaceDetectorYN`` does (OpenCV 4.8+ ``face_detect.cpp``).

The photo runs at its own size, BGR, unnormalised, padded bottom/right with zeros to a multiple
of 32; outputs ``cls_S``, ``obj_S``, ``bbox_S``, ``kps_S`` for strides S = 8, 16, 32, one anchor
per location; score ``sqrt(clip(cls) * clip(obj))`` >= 0.9; box centre ``(col + dx) * S``, size
``exp(dw) * S``; keypoints ``(col + kx) * S``; NMS 0.3 by ``cv2.dnn.NMSBoxes`` on boxes truncated
to integers, as OpenCV does.
"""

from __future__ import annotations

import cv2
import numpy as np
import tensorflow as tf

from worker.models.families.base import (
    Detections,
    Family,
    OutputInfo,
    Preprocessing,
    first_image,
    logit_from_probability,
    per_image,
)

STRIDES = (8, 16, 32)
#: ``cv2.FaceDetectorYN.create`` default top_k.
TOP_K = 5000


class YuNet(Family):
    name = "yunet"
    threshold = 0.9
    nms_iou = 0.3
    preprocessing = Preprocessing(input_size=None, channels="bgr", pad_to=32)
    loss_sizes = (640, 320)

    def __init__(self, outputs: OutputInfo) -> None:
        super().__init__(outputs)
        wanted = [f"{head}_{s}" for head in ("cls", "obj", "bbox", "kps") for s in STRIDES]
        missing = [n for n in wanted if n not in self.output_names]
        if missing:
            raise ValueError(f"YuNet models have outputs {wanted}; missing {missing}")

    def decode(
        self, outputs: dict[str, np.ndarray], input_hw: tuple[int, int], threshold: float
    ) -> Detections:
        parts = []
        for s in STRIDES:
            cols = input_hw[1] // s
            scores = self._stride_scores(outputs, s)
            keep = np.flatnonzero(scores >= threshold)
            if not keep.size:
                continue
            rows, cols_ = np.divmod(keep, cols)
            grid = np.stack([cols_, rows], axis=1).astype(np.float32)
            bbox = first_image(outputs[f"bbox_{s}"], 4)[keep]
            centre = (grid + bbox[:, :2]) * s
            size = np.exp(bbox[:, 2:4]) * s
            kps = (grid[:, None, :] + first_image(outputs[f"kps_{s}"], 10)[keep].reshape(-1, 5, 2)
                   ) * s
            boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
            parts.append(Detections(boxes, scores[keep], kps))
        return Detections.concat(parts)

    @staticmethod
    def _stride_scores(outputs: dict[str, np.ndarray], stride: int) -> np.ndarray:
        cls = np.clip(first_image(outputs[f"cls_{stride}"], 1)[:, 0], 0, 1)
        obj = np.clip(first_image(outputs[f"obj_{stride}"], 1)[:, 0], 0, 1)
        return np.sqrt(cls * obj)

    def anchor_scores(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([self._stride_scores(outputs, s) for s in STRIDES])

    def suppress(self, found: Detections, iou: float) -> np.ndarray:
        if len(found.scores) <= 1:  # OpenCV only runs NMS on more than one face
            return np.arange(len(found.scores))
        x0, y0 = found.boxes[:, 0], found.boxes[:, 1]
        w, h = found.boxes[:, 2] - x0, found.boxes[:, 3] - y0
        rects = np.stack([x0, y0, w, h], axis=1).astype(np.int32).tolist()  # C++ int(): truncate
        # keep every candidate (OpenCV passes its threshold again and so also drops a score
        # exactly equal to it, a tie that float scores practically never hit)
        threshold = float(np.nextafter(found.scores.min(), -1.0))
        keep = cv2.dnn.NMSBoxes(rects, found.scores.astype(float).tolist(), threshold, iou,
                                1.0, TOP_K)
        return np.asarray(keep, np.int64).reshape(-1)

    def score_outputs(self) -> list[str]:
        return [f"{head}_{s}" for s in STRIDES for head in ("cls", "obj")]

    def face_logits(self, outputs: dict[str, tf.Tensor], skipped: dict[str, str]) -> tf.Tensor:
        def log_probability(name: str) -> tf.Tensor:
            x = per_image(outputs[name])
            return tf.math.log_sigmoid(x if skipped.get(name) == "sigmoid"
                                       else logit_from_probability(x))

        logits = []
        for s in STRIDES:  # logit of sqrt(cls * obj), computed in log space
            log_score = 0.5 * (log_probability(f"cls_{s}") + log_probability(f"obj_{s}"))
            log_score = tf.minimum(log_score, -1e-30)
            logits.append(log_score - tf.math.log(-tf.math.expm1(log_score)))
        return tf.concat(logits, axis=1)
