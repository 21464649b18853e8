"""MTCNN (P-, R- and O-Net from the ``mtcnn`` package's weights) as a differentiable surrogate.

P-Net runs over the same image pyramid the library builds (``build_scale_pyramid``), with the
resize inside the graph (bilinear + antialias: the library's ``area`` resize has no gradient).
R-Net and O-Net run on crops taken inside the graph (``crop_and_resize``) around the strongest
P-Net windows and around the ``faces`` found on the original photo (each also at random squares
around it, as the library's own boxes fall), so every stage of the cascade is pushed below its
threshold. Logits come from the same nets with the softmax of the last layer replaced by a
linear activation.

Everything is TensorFlow, for any image size and number of faces: the pyramid is a loop over
``MAX_SCALES`` levels (one P-Net in the graph), each run only where the library would run it
(``tf.cond``), so loss and gradient compile into one graph.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf
from mtcnn.network.onet import ONet
from mtcnn.network.pnet import PNet
from mtcnn.network.rnet import RNet
from mtcnn.utils.tensorflow import load_weights

from worker.attack.surrogates.base import Surrogate
from worker.attack.surrogates.windows import image_seed

#: The library's default thresholds (probabilities) for P-, R- and O-Net.
THRESHOLDS = (0.6, 0.7, 0.8)
#: The library's pyramid: each level 0.709 of the one before, P-Net's 12-px window.
SCALE_FACTOR = 0.709
WINDOW = 12
#: Pyramid levels the graph holds: enough for a short side of 19 000 px.
MAX_SCALES = 20
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
    graph_safe = True

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

    def scales(self, height: tf.Tensor, width: tf.Tensor, faces: tf.Tensor) -> tuple:
        """The library's pyramid scales (``build_scale_pyramid``, float64) padded to
        ``MAX_SCALES``, and which of them P-Net runs at: those the library uses and, with
        ``faces``, whose windows could cover one of them (0.4-2.5x its longer side; the
        others cannot hide or reveal those faces: R-Net rejects them)."""
        height, width = tf.cast(height, tf.float64), tf.cast(width, tf.float64)
        min_dim = tf.minimum(height, width)
        count = tf.round(tf.math.log(min_dim / WINDOW) / -math.log(SCALE_FACTOR) - 1.0)
        level = tf.range(MAX_SCALES, dtype=tf.float64)
        scales = WINDOW / self.min_face_size * tf.pow(tf.constant(SCALE_FACTOR, tf.float64), level)
        active = (level < count) & (tf.math.ceil(min_dim * scales) >= WINDOW)
        faces = tf.cast(faces, tf.float64)
        sizes = tf.maximum((faces[:, 2] - faces[:, 0]) * width,
                           (faces[:, 3] - faces[:, 1]) * height)
        cell = WINDOW / scales[:, None]
        covers = tf.reduce_any((0.4 * sizes[None] <= cell) & (cell <= 2.5 * sizes[None]), axis=1)
        active &= covers | (tf.shape(faces)[0] == 0)
        return scales, active

    def _level(self, x: tf.Tensor, scale: tf.Tensor, faces: tf.Tensor):
        """P-Net at one pyramid scale: its vanishing loss on windows over the hinted faces
        (every window without hints), its face logits (B, windows) and their boxes (windows,
        4: y0, x0, y1, x1 in 0..1)."""
        shape = tf.shape(x)
        height, width = tf.cast(shape[1], tf.float64), tf.cast(shape[2], tf.float64)
        size = tf.cast(tf.math.ceil(tf.stack([height, width]) * scale), tf.int32)
        scaled = tf.image.resize(x, size, "bilinear", antialias=True)
        logits = _margin_logit(self.pnet(scaled)[1])  # (B, h, w)
        grid = tf.shape(logits)
        stride, cell = tf.cast(2.0 / scale, tf.float32), tf.cast(WINDOW / scale, tf.float32)
        ys = tf.cast(tf.range(grid[1]), tf.float32) * stride
        xs = tf.cast(tf.range(grid[2]), tf.float32) * stride
        height, width = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
        pixels = faces * tf.stack([width, height, width, height])
        sides = tf.reduce_max(pixels[:, 2:] - pixels[:, :2], axis=1)
        fits = (0.4 * sides <= cell) & (cell <= 2.5 * sides)
        cy, cx = ys + cell / 2, xs + cell / 2
        inside = ((cy[None, :, None] >= pixels[:, 1, None, None])
                  & (cy[None, :, None] <= pixels[:, 3, None, None])
                  & (cx[None, None, :] >= pixels[:, 0, None, None])
                  & (cx[None, None, :] <= pixels[:, 2, None, None])
                  & fits[:, None, None])
        keep = tf.where(tf.shape(faces)[0] > 0,
                        tf.cast(tf.reduce_any(inside, axis=0), tf.float32), 1.0)
        loss = tf.reduce_sum(tf.nn.relu(logits - self.targets[0]) * keep)
        y0 = tf.repeat(ys, grid[2])
        x0 = tf.tile(xs, [grid[1]])
        boxes = tf.stack([y0 / height, x0 / width, (y0 + cell) / height, (x0 + cell) / width], 1)
        return loss, tf.reshape(logits, [grid[0], -1]), boxes

    def _pyramid(self, x: tf.Tensor, faces: tf.Tensor):
        """P-Net over the pyramid, one level per loop iteration (one P-Net in the graph):
        summed loss, and each level's ``top_k`` strongest windows, logits (B, K) and boxes
        (B, K, 4), padded with windows that never pass."""
        shape = tf.shape(x)
        batch, top_k = shape[0], self.top_k
        scales, active = self.scales(shape[1], shape[2], faces)

        def level(index, total, logits, boxes):
            def run():
                loss, z, b = self._level(x, scales[index], faces)
                k = tf.minimum(top_k, tf.shape(z)[1])
                best, where = tf.math.top_k(tf.stop_gradient(z), k)
                pad = [[0, 0], [0, top_k - k]]
                return (loss, tf.pad(best, pad, constant_values=-1e9),
                        tf.pad(tf.gather(b, where), [*pad, [0, 0]]))

            def skip():
                return tf.constant(0.0), tf.fill([batch, top_k], -1e9), tf.zeros([batch, top_k, 4])

            loss, best, windows = tf.cond(active[index], run, skip)
            return index + 1, total + loss, logits.write(index, best), boxes.write(index, windows)

        _, total, logits, boxes = tf.while_loop(
            lambda index, *_: index < MAX_SCALES, level,
            (tf.constant(0), tf.constant(0.0), tf.TensorArray(tf.float32, MAX_SCALES),
             tf.TensorArray(tf.float32, MAX_SCALES)),
            parallel_iterations=1,
        )
        logits = tf.reshape(tf.transpose(logits.stack(), [1, 0, 2]), [batch, -1])
        boxes = tf.reshape(tf.transpose(boxes.stack(), [1, 0, 2, 3]), [batch, -1, 4])
        return total, logits, boxes

    def _candidates(self, logits: tf.Tensor, boxes: tf.Tensor):
        """The ``top_k`` strongest P-Net windows per image that pass P-Net's threshold (with
        a margin): boxes (C, 4) and the image each belongs to (C,)."""
        best, where = tf.math.top_k(logits, self.top_k)
        passed = best > self.targets[0] - 2.0
        image = tf.broadcast_to(tf.range(tf.shape(logits)[0])[:, None], tf.shape(where))
        chosen = tf.gather(boxes, where, batch_dims=1)
        return tf.boolean_mask(chosen, passed), tf.boolean_mask(image, passed)

    def jittered(self, faces: tf.Tensor, height: tf.Tensor, width: tf.Tensor,
                 seed: tf.Tensor) -> tf.Tensor:
        """The hint boxes plus ``draws`` random squares around each (x0, y0, x1, y1 in 0..1)."""
        faces = tf.convert_to_tensor(faces, tf.float32)
        if self.draws <= 0:
            return faces
        size = tf.cast(tf.stack([width, height, width, height]), tf.float32)
        pixels = faces * size
        centre = (pixels[:, :2] + pixels[:, 2:]) / 2
        side = tf.reduce_max(pixels[:, 2:] - pixels[:, :2], axis=1)
        draw = tf.random.stateless_uniform([tf.shape(faces)[0], self.draws, 3], seed)
        low, high = (math.log(s) for s in self.draw_scale)
        sides = (side[:, None] * tf.exp(low + (high - low) * draw[..., 0]))[..., None]
        centres = centre[:, None] + (2.0 * draw[..., 1:] - 1.0) * self.draw_shift * sides
        squares = tf.concat([centres - sides / 2, centres + sides / 2], axis=-1) / size
        return tf.concat([faces, tf.reshape(squares, [-1, 4])], 0)

    def _refine(self, x: tf.Tensor, boxes: tf.Tensor, index: tf.Tensor):
        """R-Net and O-Net face logits on the crops ``boxes`` (y0, x0, y1, x1) of ``x``."""
        def run():
            r = self.rnet(tf.image.crop_and_resize(x, boxes, index, (24, 24)))[1]
            o = self.onet(tf.image.crop_and_resize(x, boxes, index, (48, 48)))[2]
            return _margin_logit(r), _margin_logit(o)

        # Not on an empty batch: TensorFlow's graph convolutions fail there.
        return tf.cond(tf.shape(boxes)[0] > 0, run, lambda: (tf.zeros([0]), tf.zeros([0])))

    def loss(self, images: tf.Tensor, faces: tf.Tensor | np.ndarray | None = None) -> tf.Tensor:
        faces = tf.reshape(tf.convert_to_tensor(_NO_FACES if faces is None else faces,
                                                tf.float32), [-1, 4])
        x = (tf.convert_to_tensor(images, tf.float32) - 127.5) / 128.0
        shape = tf.shape(x)
        pnet_loss, logits, windows = self._pyramid(x, faces)
        boxes, index = self._candidates(logits, windows)
        # New squares each step (the seed follows the pixels), the same in every run.
        hints = self.jittered(faces, shape[1], shape[2], image_seed(images))
        hints = tf.gather(hints, [1, 0, 3, 2], axis=1)  # y0, x0, y1, x1
        boxes = tf.concat([boxes, tf.tile(hints, [shape[0], 1])], 0)
        index = tf.concat([index, tf.repeat(tf.range(shape[0]), tf.shape(hints)[0])], 0)
        r, o = self._refine(x, boxes, index)
        total = (pnet_loss + tf.reduce_sum(tf.nn.relu(r - self.targets[1]))
                 + tf.reduce_sum(tf.nn.relu(o - self.targets[2])))
        return total / tf.cast(shape[0], tf.float32)

    def face_scores(self, images: tf.Tensor) -> tf.Tensor:
        """Highest O-Net face probability per image among windows that R-Net also accepts."""
        x = (tf.convert_to_tensor(images, tf.float32) - 127.5) / 128.0
        _, logits, windows = self._pyramid(x, tf.zeros([0, 4]))
        boxes, index = self._candidates(logits, windows)
        r, o = self._refine(x, boxes, index)
        o = tf.where(tf.sigmoid(r) >= THRESHOLDS[1], tf.sigmoid(o), 0.0)
        return tf.maximum(tf.math.unsorted_segment_max(o, index, tf.shape(x)[0]), 0.0)
