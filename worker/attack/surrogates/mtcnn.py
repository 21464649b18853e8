"""MTCNN (P-, R- and O-Net from the ``mtcnn`` package's weights) as a differentiable surrogate.

P-Net runs over the same image pyramid the library builds (``build_scale_pyramid``), with the
resize inside the graph (bilinear + antialias: the library's ``area`` resize has no gradient).
R-Net and O-Net run on crops taken inside the graph (``crop_and_resize``) around the strongest
P-Net windows and around the ``faces`` found on the original photo (each also at random squares
around it, as the library's own boxes fall), so every
stage of the cascade is pushed below its threshold. Logits come from the same nets with the
softmax of the last layer replaced by a linear activation.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf
from mtcnn.network.onet import ONet
from mtcnn.network.pnet import PNet
from mtcnn.network.rnet import RNet
from mtcnn.utils.images import build_scale_pyramid
from mtcnn.utils.tensorflow import load_weights

from worker.attack.surrogates.base import Surrogate
from worker.attack.surrogates.windows import image_seed

#: The library's default thresholds (probabilities) for P-, R- and O-Net.
THRESHOLDS = (0.6, 0.7, 0.8)
_NO_FACES = np.zeros((0, 4), np.float32)


def _logit_net(net: keras.Model, weights: str, head: str, size: int | None = None):
    """The package's net with its weights and a linear last layer, compiled once."""
    net.build()
    net.set_weights(load_weights(weights))
    getattr(net, head).activation = keras.activations.linear
    spec = tf.TensorSpec([None, size, size, 3], tf.float32)
    return tf.function(net.call, input_signature=[spec], autograph=False)


def _margin_logit(two_class: tf.Tensor) -> tf.Tensor:
    """face-vs-background logit: softmax([bg, face])[1] == sigmoid(face - bg)."""
    return two_class[..., 1] - two_class[..., 0]


class MtcnnSurrogate(Surrogate):
    """Differentiable MTCNN cascade; ``faces`` (x0, y0, x1, y1 in 0..1) add R/O-Net crops."""

    name = "mtcnn"

    #: R-/O-Net crops per hinted face per evaluation, at random squares around it: the
    #: library's crops are its own regressed, squared boxes, never exactly the hint.
    draws = 6
    #: Side of those squares / the hint's longer side, and their random shift (of the side).
    draw_scale = (0.75, 1.3)
    draw_shift = 0.1

    def __init__(self, margin: float = 2.0, min_face_size: int = 20, top_k: int = 24) -> None:
        self.margin = margin
        self.min_face_size = min_face_size
        self.top_k = top_k
        self.pnet = _logit_net(PNet(), "pnet.lz4", "conv4_2")
        self.rnet = _logit_net(RNet(), "rnet.lz4", "fc5_2", 24)
        self.onet = _logit_net(ONet(), "onet.lz4", "fc6_3", 48)
        self.targets = [math.log(t / (1 - t)) - margin for t in THRESHOLDS]

    def _pyramid(
        self, x: tf.Tensor, faces: np.ndarray = _NO_FACES
    ) -> list[tuple[float, tf.Tensor]]:
        """P-Net logits per pyramid scale; with ``faces``, only the scales whose windows could
        cover one of them (the others cannot hide or reveal those faces: R-Net rejects them)."""
        height, width = int(x.shape[1]), int(x.shape[2])
        scales = build_scale_pyramid(width, height, self.min_face_size, 0.709)
        sizes = np.maximum(
            (faces[:, 2] - faces[:, 0]) * width,
            (faces[:, 3] - faces[:, 1]) * height,
        )
        out = []
        for scale in scales:
            h, w = math.ceil(height * scale), math.ceil(width * scale)
            if min(h, w) < 12:
                break
            if len(sizes) and not np.any((0.4 * sizes <= 12 / scale) & (12 / scale <= 2.5 * sizes)):
                continue
            scaled = tf.image.resize(x, (h, w), "bilinear", antialias=True)
            out.append((float(scale), self.pnet(scaled)[1]))
        return out

    @staticmethod
    def _face_windows(
        faces: np.ndarray, scale: float, shape: tf.TensorShape, image: tf.TensorShape
    ) -> np.ndarray:
        """1 for P-Net windows on a hinted face (centre inside it, size 0.5-2x), 0 elsewhere;
        all ones without hints. Background windows need not vanish: R-Net rejects them."""
        if not len(faces):
            return np.ones(shape[:3], np.float32)
        height, width = float(image[1]), float(image[2])
        cell = 12.0 / scale
        ys = (np.arange(shape[1]) * 2 / scale + cell / 2)[:, None]
        xs = (np.arange(shape[2]) * 2 / scale + cell / 2)[None, :]
        out = np.zeros(shape[1:3], np.float32)
        for x0, y0, x1, y1 in faces * [width, height, width, height]:
            size = max(x1 - x0, y1 - y0)
            if 0.4 * size <= cell <= 2.5 * size:
                out[(ys >= y0) & (ys <= y1) & (xs >= x0) & (xs <= x1)] = 1.0
        return np.broadcast_to(out, shape[:3]).astype(np.float32)

    def _jittered(self, faces: np.ndarray, shape: tf.TensorShape, seed: int) -> np.ndarray:
        """The hint boxes plus ``draws`` random squares around each (x0, y0, x1, y1 in 0..1)."""
        if not len(faces) or self.draws <= 0:
            return faces
        height, width = float(shape[1]), float(shape[2])
        rng = np.random.default_rng(seed)
        pixels = faces * [width, height, width, height]
        centre = (pixels[:, :2] + pixels[:, 2:]) / 2
        side = np.max(pixels[:, 2:] - pixels[:, :2], axis=1)
        count = (len(faces), self.draws)
        sides = (side[:, None] * np.exp(rng.uniform(*np.log(self.draw_scale), count)))[..., None]
        centres = centre[:, None] + rng.uniform(-1, 1, (*count, 2)) * self.draw_shift * sides
        squares = np.concatenate([centres - sides / 2, centres + sides / 2], axis=-1)
        squares /= [width, height, width, height]
        return np.concatenate([faces, squares.reshape(-1, 4)]).astype(np.float32)

    def _candidate_boxes(
        self, pyramid: list[tuple[float, tf.Tensor]], shape: tf.TensorShape, faces: np.ndarray
    ):
        """Strongest P-Net windows (image 0..1 coords, y0 x0 y1 x1) per batch image, plus hints."""
        height, width = float(shape[1]), float(shape[2])
        rows = []
        for scale, logits in pyramid:
            z = _margin_logit(logits).numpy()  # (B, h, w)
            b, yy, xx = np.nonzero(z > self.targets[0] - 2.0)
            cell = 12.0 / scale
            cells = np.full(b.shape, cell)
            rows.append(np.stack([b, z[b, yy, xx], yy * 2 / scale, xx * 2 / scale, cells], 1))
        cand = np.concatenate(rows) if rows else np.zeros((0, 5))
        boxes, index = [], []
        for img in range(int(shape[0])):
            mine = cand[cand[:, 0] == img]
            mine = mine[np.argsort(-mine[:, 1])[: self.top_k]]
            for _, _, y, x, size in mine:
                boxes.append([y / height, x / width, (y + size) / height, (x + size) / width])
                index.append(img)
            for x0, y0, x1, y1 in faces:
                boxes.append([y0, x0, y1, x1])
                index.append(img)
        return np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(index, np.int32)

    def _stage_logits(self, images: tf.Tensor, faces: np.ndarray) -> list[tf.Tensor]:
        x = (images - 127.5) / 128.0
        pyramid = self._pyramid(x, faces)
        pnet = []
        for scale, p in pyramid:
            keep = self._face_windows(faces, scale, p.shape, x.shape)
            pnet.append(tf.reshape(_margin_logit(p) * keep - 100.0 * (1.0 - keep), [-1]))
        per_stage = [tf.concat(pnet, 0) if pnet else tf.zeros([0])]
        seed = int(image_seed(images)[0])  # new squares each step, the same in every run
        boxes, index = self._candidate_boxes(pyramid, x.shape, self._jittered(faces, x.shape, seed))
        if len(boxes):
            r = self.rnet(tf.image.crop_and_resize(x, boxes, index, (24, 24)))[1]
            o = self.onet(tf.image.crop_and_resize(x, boxes, index, (48, 48)))[2]
            per_stage += [_margin_logit(r), _margin_logit(o)]
        return per_stage

    def loss(self, images: tf.Tensor, faces: np.ndarray | None = None) -> tf.Tensor:
        faces = _NO_FACES if faces is None else np.asarray(faces, np.float32).reshape(-1, 4)
        total = tf.constant(0.0)
        for logits, target in zip(self._stage_logits(images, faces), self.targets, strict=False):
            total += tf.reduce_sum(tf.nn.relu(logits - target))
        return total / float(images.shape[0])

    def face_scores(self, images: tf.Tensor) -> tf.Tensor:
        """Highest O-Net face probability per image among windows that R-Net also accepts."""
        x = (images - 127.5) / 128.0
        boxes, index = self._candidate_boxes(self._pyramid(x), x.shape, _NO_FACES)
        batch = int(x.shape[0])
        if not len(boxes):
            return tf.zeros([batch])
        r = self.rnet(tf.image.crop_and_resize(x, boxes, index, (24, 24)))[1]
        o = self.onet(tf.image.crop_and_resize(x, boxes, index, (48, 48)))[2]
        r, o = tf.sigmoid(_margin_logit(r)), tf.sigmoid(_margin_logit(o))
        o = tf.where(r >= THRESHOLDS[1], o, 0.0)
        return tf.maximum(tf.math.unsorted_segment_max(o, index, batch), 0.0)
