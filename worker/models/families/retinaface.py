"""RetinaFace with SSD-style priors (the PyTorch reference implementation's MobileNet-0.25 and
ResNet-50 models and their ONNX exports, used by many face tools).

As that code's ``detect.py``: the photo at its own size, BGR minus (104, 117, 123); outputs
``loc`` (B, N, 4), ``conf`` (B, N, 2, softmax), ``landms`` (B, N, 10); priors for steps 8, 16, 32
with min sizes (16, 32), (64, 128), (256, 512) over ``ceil(side / step)`` feature maps,
location-major; centres ``prior + loc * 0.1 * prior_size``, sizes ``prior_size * exp(loc * 0.2)``;
score ``conf[..., 1]`` >= 0.6 (its ``vis_thres``); NMS 0.4 with pixel-inclusive areas.
(insightface's RetinaFace-10GF, FaceFusion's ``retinaface_10g``, has SCRFD heads: use ``scrfd``.)
"""

from __future__ import annotations

import math

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

STEPS = (8, 16, 32)
MIN_SIZES = ((16, 32), (64, 128), (256, 512))
VARIANCES = (0.1, 0.2)


def priors(height: int, width: int) -> np.ndarray:
    """(N, 4) prior boxes cx, cy, w, h relative to the input size, in the network's order."""
    out = []
    for step, sizes in zip(STEPS, MIN_SIZES, strict=True):
        rows, cols = math.ceil(height / step), math.ceil(width / step)
        ys, xs = np.mgrid[:rows, :cols]
        cx = ((xs + 0.5) * step / width).reshape(-1, 1)
        cy = ((ys + 0.5) * step / height).reshape(-1, 1)
        for_sizes = [np.concatenate([cx, cy, np.full_like(cx, s / width),
                                     np.full_like(cy, s / height)], axis=1) for s in sizes]
        out.append(np.stack(for_sizes, axis=1).reshape(-1, 4))
    return np.concatenate(out).astype(np.float32)


class RetinaFace(Family):
    name = "retinaface"
    threshold = 0.6
    nms_iou = 0.4
    preprocessing = Preprocessing(
        input_size=None, mean=(104.0, 117.0, 123.0), channels="bgr", pad_to=1
    )
    loss_sizes = (640, 320)

    def __init__(self, outputs: OutputInfo) -> None:
        super().__init__(outputs)
        if len(outputs) != 3:
            raise ValueError(f"RetinaFace models have 3 outputs (loc, conf, landms); "
                             f"this one has {len(outputs)}")
        by_width = {shape[-1]: name for name, shape in outputs if shape}
        if {4, 2, 10} <= set(by_width):
            self.loc, self.conf, self.landms = by_width[4], by_width[2], by_width[10]
        else:  # dynamic last dims: the reference export's order
            self.loc, self.conf, self.landms = self.output_names

    def decode(
        self, outputs: dict[str, np.ndarray], input_hw: tuple[int, int], threshold: float
    ) -> Detections:
        prior = priors(*input_hw)
        loc = first_image(outputs[self.loc], 4)
        if len(loc) != len(prior):
            raise ValueError(f"RetinaFace: {len(loc)} outputs for {len(prior)} priors "
                             f"(not this family's prior layout)")
        scores = self.anchor_scores(outputs)
        keep = np.flatnonzero(scores >= threshold)
        prior, loc = prior[keep], loc[keep]
        centre = prior[:, :2] + loc[:, :2] * VARIANCES[0] * prior[:, 2:]
        size = prior[:, 2:] * np.exp(loc[:, 2:] * VARIANCES[1])
        scale = np.array([input_hw[1], input_hw[0]], np.float32)
        boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1) * np.tile(scale, 2)
        offsets = first_image(outputs[self.landms], 10)[keep].reshape(-1, 5, 2)
        kps = (prior[:, None, :2] + offsets * VARIANCES[0] * prior[:, None, 2:]) * scale
        return Detections(boxes, scores[keep], kps)

    def anchor_scores(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        return first_image(outputs[self.conf], 2)[:, 1]

    def suppress(self, found: Detections, iou: float) -> np.ndarray:
        return greedy_nms(found.boxes, found.scores, iou, plus_one=True)

    def score_outputs(self) -> list[str]:
        return [self.conf]

    def face_logits(self, outputs: dict[str, tf.Tensor], skipped: dict[str, str]) -> tf.Tensor:
        conf = outputs[self.conf]
        conf = tf.reshape(conf, [conf.shape[0] if conf.shape.rank == 3 else 1, -1, 2])
        if skipped.get(self.conf) == "softmax":  # two-class softmax: face logit = l1 - l0
            return conf[..., 1] - conf[..., 0]
        return logit_from_probability(per_image(conf[..., 1]))
