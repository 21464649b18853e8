"""Crops around the faces found on the original, at several scales: where window-based
surrogates (the Haar cascade, dlib's MMOD CNN) evaluate their windows."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

GREY = (0.299, 0.587, 0.114)  # cv2.COLOR_RGB2GRAY
SUPERSAMPLE = 4


def image_seed(images: tf.Tensor) -> tf.Tensor:
    """A stateless-RNG seed (2,) int32 derived from the pixels: random windows then differ
    between steps (the image changes) but a run is repeatable. Coarse (4096 grey levels of the
    whole image): the last bits of a float sum may differ between runs with summation order."""
    coarse = tf.math.floormod(tf.floor(tf.reduce_sum(images) / 4096.0), 2.0**31 - 1)
    return tf.stack([tf.cast(coarse, tf.int32), tf.constant(0)])


def face_crops(
    images: tf.Tensor,
    faces: tf.Tensor | np.ndarray,
    window_scales: tuple[float, ...],
    context: float,
    size: tuple[int, int],
    grey: bool = True,
    supersample: int = SUPERSAMPLE,
) -> tf.Tensor:
    """Grey (or RGB) crops (B * N * K, size..., 1 or 3) centred on each of the N faces (boxes
    x0, y0, x1, y1 in 0..1), one per scale: a window of side ``scale * max(face w, h)`` is
    ``size / context`` of the crop, so windows may sit up to ``(context - 1) / 2`` windows off
    the face centre.

    Crops are taken at ``supersample`` x the size and block-averaged: every pixel under a
    window counts, as it does for a detector's pyramid on whatever sampling grid it lands (a
    plain bilinear crop samples a sparse grid the attack could fit and no detector would see).
    """
    if grey:
        images = tf.reduce_sum(images * tf.constant(GREY, tf.float32), axis=-1, keepdims=True)
    faces = tf.convert_to_tensor(faces, tf.float32)
    shape = tf.cast(tf.shape(images)[1:3], tf.float32)
    cx = (faces[:, 0] + faces[:, 2]) / 2 * shape[1]
    cy = (faces[:, 1] + faces[:, 3]) / 2 * shape[0]
    side = tf.maximum((faces[:, 2] - faces[:, 0]) * shape[1],
                      (faces[:, 3] - faces[:, 1]) * shape[0])
    half = side[:, None] * tf.constant(window_scales, tf.float32)[None, :] * context / 2
    cx, cy = cx[:, None], cy[:, None]
    boxes = tf.stack([(cy - half) / shape[0], (cx - half) / shape[1],
                      (cy + half) / shape[0], (cx + half) / shape[1]], axis=-1)
    boxes = tf.reshape(boxes, [-1, 4])
    batch, count = tf.shape(images)[0], tf.shape(boxes)[0]
    boxes = tf.tile(boxes, [batch, 1])
    index = tf.repeat(tf.range(batch), count)
    fine = (size[0] * supersample, size[1] * supersample)
    crops = tf.image.crop_and_resize(images, boxes, index, fine, method="bilinear")
    return tf.nn.avg_pool2d(crops, supersample, supersample, "VALID")
