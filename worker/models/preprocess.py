"""Photo -> model input, identically for both roles: NumPy/OpenCV as the tools run it (the
evaluator) and differentiable TensorFlow (the surrogate), from one ``Placement``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import tensorflow as tf

from worker.models.families.base import Detections, Preprocessing


@dataclass(frozen=True)
class Placement:
    """Where a photo lands in the model input: resized to ``resized_hw``, its top-left corner at
    ``offset`` (x, y) of an ``input_hw`` canvas; ``scale`` (x, y) maps photo to input pixels
    (as the tool maps results back, e.g. insightface's single ``det_scale``)."""

    input_hw: tuple[int, int]
    resized_hw: tuple[int, int]
    offset: tuple[int, int]
    scale: tuple[float, float]

    def to_image(self, found: Detections) -> Detections:
        """Detections in input pixels -> photo pixels."""
        offset = np.array(self.offset, np.float32)
        scale = np.array(self.scale, np.float32)
        boxes = (found.boxes - np.tile(offset, 2)) / np.tile(scale, 2)
        kps = None if found.keypoints is None else (found.keypoints - offset) / scale
        return Detections(boxes, found.scores, kps)


def place(height: int, width: int, prep: Preprocessing,
          canvas: tuple[int, int] | None = None) -> Placement:
    """The placement of a ``height`` x ``width`` photo; ``canvas`` (width, height) replaces
    ``prep.input_size`` (the surrogate's extra loss sizes)."""
    size = canvas or prep.input_size
    if size is None:  # own size, padded bottom/right
        pad = prep.pad_to
        input_hw = (math.ceil(height / pad) * pad, math.ceil(width / pad) * pad)
        return Placement(input_hw, (height, width), (0, 0), (1.0, 1.0))
    cw, ch = size
    if prep.resize == "stretch":
        return Placement((ch, cw), (ch, cw), (0, 0), (cw / width, ch / height))
    if prep.resize == "fit":  # insightface: int() sizes, one scale new_h / h
        if height / width > ch / cw:
            new_h, new_w = ch, max(1, int(ch / (height / width)))
        else:
            new_w, new_h = cw, max(1, int(cw * (height / width)))
        scale = (new_h / height, new_h / height)
    else:  # shrink (FaceFusion's restrict_frame): only ever scaled down
        new_h, new_w = height, width
        if height > ch or width > cw:
            k = min(ch / height, cw / width)
            new_h, new_w = max(1, int(height * k)), max(1, int(width * k))
        scale = (new_w / width, new_h / height)
    offset = (0, 0)
    if prep.letterbox == "center":  # ultralytics' letterbox rounding
        offset = (round((cw - new_w) / 2 - 0.1), round((ch - new_h) / 2 - 0.1))
    return Placement((ch, cw), (new_h, new_w), offset, scale)


def _layout(placement: Placement) -> tuple[int, int, int, int]:
    """Pad rows top, bottom and columns left, right around the resized photo."""
    (ih, iw), (rh, rw), (ox, oy) = placement.input_hw, placement.resized_hw, placement.offset
    return oy, ih - rh - oy, ox, iw - rw - ox


def to_input(rgb: np.ndarray, placement: Placement, prep: Preprocessing) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> NCHW float32 (1, 3, h, w), as the tools build it with OpenCV."""
    rh, rw = placement.resized_hw
    image = rgb if rgb.shape[:2] == (rh, rw) else cv2.resize(
        rgb, (rw, rh), interpolation=cv2.INTER_LINEAR)
    top, bottom, left, right = _layout(placement)
    canvas = np.pad(image[:, :, ::-1] if prep.channels == "bgr" else image,
                    [(top, bottom), (left, right), (0, 0)]).astype(np.float32)
    canvas = (canvas - np.asarray(prep.mean, np.float32)) / np.asarray(prep.std, np.float32)
    return np.ascontiguousarray(canvas.transpose(2, 0, 1)[None])


def to_input_tf(images: tf.Tensor, placement: Placement, prep: Preprocessing) -> tf.Tensor:
    """Differentiable twin of ``to_input``: RGB float [0, 255] (B, H, W, 3) -> NHWC input."""
    images = tf.convert_to_tensor(images, tf.float32)
    rh, rw = placement.resized_hw
    if tuple(images.shape[1:3]) != (rh, rw):  # bilinear, half-pixel centres, no antialias
        images = tf.image.resize(images, [rh, rw], "bilinear")
    top, bottom, left, right = _layout(placement)
    images = tf.pad(images, [[0, 0], [top, bottom], [left, right], [0, 0]])
    if prep.channels == "bgr":
        images = images[..., ::-1]
    return (images - tf.constant(prep.mean, tf.float32)) / tf.constant(prep.std, tf.float32)
