"""YOLOv8-face (``yolov8n-face`` exports, FaceFusion's ``yoloface_8n``): one decoded output.

As FaceFusion's ``detect_with_yolo_face``: the photo shrunk (never enlarged) to fit 640x640,
placed top-left on black, BGR, ``x / 255``; output (1, 4 + 1 + 3K, N) (or transposed): box
centre and size in input pixels, face score (sigmoid already applied), K keypoints as
(x, y, visibility); score > 0.5; NMS 0.4.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from worker.models.families.base import (
    Detections,
    Family,
    OutputInfo,
    Preprocessing,
    logit_from_probability,
)


class YoloFace(Family):
    name = "yolo-face"
    threshold = 0.5
    nms_iou = 0.4
    preprocessing = Preprocessing(
        input_size=(640, 640), resize="shrink", letterbox="top-left",
        std=(255.0, 255.0, 255.0), channels="bgr",
    )
    loss_sizes = (640, 480, 320)

    def __init__(self, outputs: OutputInfo) -> None:
        super().__init__(outputs)
        if len(outputs) != 1:
            raise ValueError(f"YOLO-face models have 1 output; this one has {len(outputs)}")
        shape = outputs[0][1]
        fits = [len(shape) == 3 and _is_channels(d) for d in shape[1:]]
        if not any(fits):
            raise ValueError(f"YOLO-face output should be (1, 5 + 3K, N); got {shape}")
        self.channels_first = fits[0]  # ultralytics exports (1, C, N)

    def decode(
        self, outputs: dict[str, np.ndarray], input_hw: tuple[int, int], threshold: float
    ) -> Detections:
        det = self._rows(outputs)
        det = det[det[:, 4] > threshold]
        centre, size = det[:, :2], det[:, 2:4]
        boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
        kps = det[:, 5:].reshape(len(det), -1, 3)[:, :, :2] if det.shape[1] > 5 else None
        return Detections(boxes, det[:, 4], kps)

    def _rows(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        """The first image's detections as (N, 5 + 3K) rows."""
        det = outputs[self.output_names[0]]
        det = det[0] if det.ndim == 3 else det
        return det.T if self.channels_first else det

    def anchor_scores(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        return self._rows(outputs)[:, 4]

    def score_outputs(self) -> list[str]:
        return []  # the score is concatenated with the boxes: no activation to skip

    def face_logits(self, outputs: dict[str, tf.Tensor], skipped: dict[str, str]) -> tf.Tensor:
        x = outputs[self.output_names[0]]
        if x.shape.rank == 2:
            x = x[None]
        scores = x[:, 4, :] if self.channels_first else x[:, :, 4]
        return logit_from_probability(scores)


def _is_channels(size: int | None) -> bool:
    """Whether an output dimension can be 4 box + 1 score + 3 per keypoint channels."""
    return size is not None and 5 <= size < 64 and (size - 5) % 3 == 0
