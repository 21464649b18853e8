"""dlib's MMOD CNN face detector (face_recognition's ``model="cnn"``) rebuilt in TensorFlow.

The network is read from the ``mmod_human_face_detector.dat`` that ``face-recognition-models``
ships, parsed from dlib's own serialisation: three 5x5 stride-2 convolutions (16, 32, 32
filters), three 5x5 ones (45 filters), each followed by batch norm (folded into a per-channel
affine, as dlib does at inference) and ReLU, then one 9x9 convolution whose output is the face
score of an 80x80 window every 8 pixels; dlib runs it over an image pyramid (5/6 per level)
and reports windows scoring above 0. Input: RGB minus dlib's channel means, divided by 256.

The loss runs the net on RGB crops around the faces found on the original, at random
window-to-face scales and offsets (the pyramid levels and positions where the face is
window-sized), and pushes every window near the face below -``margin``. A crop is 2.5 windows
wide: the net sees 189 pixels around each window (its receptive field), so the score at the
face does not depend on the crop's zero padding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import tensorflow as tf

from worker.attack.surrogates.base import Surrogate
from worker.attack.surrogates.windows import face_crops, image_seed


@dataclass(frozen=True)
class Conv:
    """One convolution: HWIO filters, biases, stride and symmetric zero padding."""

    filters: np.ndarray
    bias: np.ndarray
    stride: int
    padding: int


@dataclass(frozen=True)
class Affine:
    """Batch norm at inference: ``x * scale + shift`` per channel."""

    scale: np.ndarray
    shift: np.ndarray


@dataclass(frozen=True)
class ReLU:
    """``max(x, 0)``."""


@dataclass(frozen=True)
class MmodNet:
    """A dlib MMOD detector: its input's channel means (subtracted, then divided by 256) and
    its layers, input first."""

    mean_rgb: tuple[float, float, float]
    layers: list[Conv | Affine | ReLU]


class _Reader:
    """dlib's portable serialisation: compact integers (a byte holding the length and sign,
    then little-endian bytes), floats as integer mantissa and exponent, length-prefixed
    strings, and tensors as four sizes followed by raw little-endian float32s."""

    def __init__(self, data: bytes, offset: int = 0) -> None:
        self.data, self.offset = data, offset

    def integer(self) -> int:
        head = self.data[self.offset]
        size = head & 0x0F
        value = int.from_bytes(self.data[self.offset + 1 : self.offset + 1 + size], "little")
        self.offset += 1 + size
        return -value if head & 0x80 else value

    def real(self) -> float:
        mantissa = self.integer()
        return mantissa * 2.0 ** self.integer()

    def string(self) -> str:
        size = self.integer()
        self.offset += size
        return self.data[self.offset - size : self.offset].decode("ascii")

    def tensor(self) -> np.ndarray:
        self.integer()  # version
        count = int(np.prod([self.integer() for _ in range(4)]))
        values = np.frombuffer(self.data, "<f4", count, self.offset).copy()
        self.offset += 4 * count
        return values

    def alias(self) -> None:
        for _ in range(5):  # version, num_samples, k, nr, nc
            self.integer()


def read_mmod_net(path: Path) -> MmodNet:
    """The input means and layers of a dlib MMOD detector file (dlib writes a network's layers
    after its loss, each after the layers beneath it, so they appear in input order)."""
    data = Path(path).read_bytes()
    if b"loss_mmod_" not in data[:32]:
        raise ValueError(f"{path}: not a dlib MMOD network")
    mean_rgb: tuple[float, ...] = ()
    layers: list[Conv | Affine | ReLU] = []
    for match in re.finditer(rb"\x01(\x17input_rgb_image_pyramid|\x05con_4|\x07bn_con2|\x05relu_)",
                             data):
        reader = _Reader(data, match.start())
        kind = reader.string()
        if kind == "input_rgb_image_pyramid":
            mean_rgb = tuple(reader.real() for _ in range(3))
        elif kind == "relu_":
            layers.append(ReLU())
        elif kind == "con_4":
            params = reader.tensor()
            count, height, width, stride, _, padding, _ = (reader.integer() for _ in range(7))
            channels = (params.size - count) // (count * height * width)
            filters = params[: count * channels * height * width]
            filters = filters.reshape(count, channels, height, width).transpose(2, 3, 1, 0)
            layers.append(Conv(filters, params[filters.size :], stride, padding))
        else:
            params = reader.tensor()
            reader.alias()
            reader.alias()
            _means, _invstds, running_mean, running_var = (reader.tensor() for _ in range(4))
            reader.integer(), reader.integer()  # updates so far, running-stats window
            *_multipliers, eps = (reader.real() for _ in range(5))  # learning rates, decays
            half = params.size // 2
            scale = params[:half] / np.sqrt(running_var + eps)
            layers.append(Affine(scale, params[half:] - running_mean * scale))
    if len(mean_rgb) != 3:
        raise ValueError(f"{path}: no RGB pyramid input found")
    if not layers or not isinstance(layers[-1], Conv) or layers[-1].filters.shape[-1] != 1:
        raise ValueError(f"{path}: no MMOD score layer found")
    return MmodNet((mean_rgb[0], mean_rgb[1], mean_rgb[2]), layers)


class DlibMmodSurrogate(Surrogate):
    """dlib MMOD's score maps on face crops; the loss pushes every window near a face below
    its threshold (0) by ``margin`` (scores saturate near +1 on faces, -1 elsewhere)."""

    name: ClassVar[str] = "dlib_mmod"
    graph_safe: ClassVar[bool] = True
    faces_per_step: ClassVar[int] = 6
    #: The detector's window (pixels of a pyramid level) and the net's output stride.
    window: ClassVar[int] = 80
    stride: ClassVar[int] = 8
    #: Window side / face box side where dlib finds a face, for face boxes from tight (chin to
    #: brows) to loose (with hair); its pyramid levels are 1.2x apart.
    scale_range: ClassVar[tuple[float, float]] = (0.6, 1.45)
    #: Crops per face per evaluation: the (log) scale range cut in this many parts (about one
    #: per pyramid level), one random scale in each (``windows``).
    draws: ClassVar[int] = 6
    #: Crop side / window side (covers the net's 189-px receptive field around the face).
    context: ClassVar[float] = 2.5
    #: Windows whose centre lies within this many windows of the face centre count.
    reach: ClassVar[float] = 0.3
    #: Random crop shift per evaluation, a fraction of the window (the net's stride is 0.1).
    jitter_shift: ClassVar[float] = 0.06

    def __init__(self, margin: float = 0.5) -> None:
        import face_recognition_models

        self.margin = float(margin)
        path = Path(face_recognition_models.cnn_face_detector_model_location())
        net = read_mmod_net(path)
        self.layers, self._mean = net.layers, tf.constant(net.mean_rgb, tf.float32)
        self._weights = [
            (tf.constant(layer.filters), tf.constant(layer.bias)) if isinstance(layer, Conv)
            else (tf.constant(layer.scale), tf.constant(layer.shift)) if isinstance(layer, Affine)
            else None for layer in self.layers
        ]
        side = round(self.window * self.context)
        self.crop = (side, side)
        # Output (r, c) is the window centred on input pixel (8r + 14, 8c + 14) (three
        # unpadded 5x5 stride-2 convolutions; the others keep the size).
        offset = sum(2 * 2**i for i in range(3))  # (5 - 1) / 2 at strides 1, 2 and 4
        centres = self.stride * np.arange(self._output_side(side)) + offset
        near = np.abs(centres - side / 2) <= self.reach * self.window
        self._rows = (int(np.argmax(near)), int(near.sum()))

    def _output_side(self, side: int) -> int:
        for layer in self.layers:
            if isinstance(layer, Conv) and layer.stride > 1:
                side = (side + 2 * layer.padding - layer.filters.shape[0]) // layer.stride + 1
        return side

    def scores(self, images: tf.Tensor) -> tf.Tensor:
        """Window scores (B, H', W') of RGB float images in [0, 255], (B, H, W, 3)."""
        x = (images - self._mean) / 256.0
        for layer, weights in zip(self.layers, self._weights, strict=True):
            if isinstance(layer, ReLU):
                x = tf.nn.relu(x)
            elif isinstance(layer, Conv):
                if layer.padding:
                    p = layer.padding
                    x = tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]])
                x = tf.nn.conv2d(x, weights[0], layer.stride, "VALID") + weights[1]
            else:
                x = x * weights[0] + weights[1]
        return x[..., 0]

    # --- Surrogate --------------------------------------------------------------------------

    def loss(self, images: tf.Tensor, faces: np.ndarray | tf.Tensor | None = None) -> tf.Tensor:
        faces = None if faces is None else tf.convert_to_tensor(faces, tf.float32)
        if faces is None or faces.shape[0] == 0:
            # No face: nothing to hide (and TensorFlow's conv2d mis-shapes an empty batch).
            return tf.zeros([])
        if faces.shape[0] is None:  # a graph traced for any number of faces: decide at run time
            return tf.cond(tf.shape(faces)[0] > 0, lambda: self._hinge(images, faces),
                           lambda: tf.zeros([]))
        return self._hinge(images, faces)

    def _hinge(self, images: tf.Tensor, faces: tf.Tensor) -> tf.Tensor:
        """Mean hinge of the window scores around one or more ``faces``."""
        crops = self.crops(images, self.windows(images, faces))
        first, count = self._rows
        near = self.scores(crops)[:, first : first + count, first : first + count]
        hinge = tf.nn.relu(near + self.margin)
        crops_seen = tf.maximum(tf.cast(tf.shape(hinge)[0], tf.float32), 1.0)
        return tf.reduce_sum(hinge) / crops_seen

    def crops(self, images: tf.Tensor, windows: tf.Tensor) -> tf.Tensor:
        """RGB crops (M, crop, crop, 3) around M window boxes (N faces x ``draws``), alternate
        draws resampled two ways: plain bilinear, as dlib's pyramid resizes each level (5/6
        bilinear, no anti-aliasing), and a 2x2 box over a 2x finer bilinear grid (a smoother
        view). An attack fitted to either sampling alone did not hold on dlib's pyramid."""
        boxes = tf.reshape(windows, [-1, self.draws, 4])
        return tf.concat([
            face_crops(images, tf.reshape(boxes[:, parity::2], [-1, 4]), (1.0,), self.context,
                       self.crop, grey=False, supersample=supersample)
            for parity, supersample in enumerate((1, 2))], axis=0)

    def windows(self, images: tf.Tensor, faces: np.ndarray | tf.Tensor) -> tf.Tensor:
        """(N * draws, 4) window boxes around the N faces: per face, ``draws`` random scales
        (one in each part of ``scale_range``) and a random shift of up to about half the net's
        stride. One crop sees windows every 8 pixels at one scale; an attack that always met
        the same grid would leave the face to the windows in between (it did: dlib found the
        face again 2 pixels off), while random draws cover every scale and position over the
        steps. The random numbers come from the image itself: a run stays deterministic."""
        faces = tf.convert_to_tensor(faces, tf.float32)
        count = tf.shape(faces)[0]
        draw = tf.random.stateless_uniform([count, self.draws, 3], image_seed(images))
        low, high = np.log(self.scale_range)
        part = (high - low) / self.draws
        log_scale = low + part * (tf.range(self.draws, dtype=tf.float32)[None, :] + draw[..., 2])
        size = (faces[:, 2:] - faces[:, :2])[:, None, :] * tf.exp(log_scale)[..., None]
        centre = (faces[:, :2] + faces[:, 2:])[:, None, :] / 2
        centre += (draw[..., :2] * 2 - 1) * self.jitter_shift * size
        boxes = tf.concat([centre - size / 2, centre + size / 2], axis=-1)
        return tf.reshape(boxes, [-1, 4])

    def face_scores(self, images: tf.Tensor) -> tf.Tensor:
        """Sigmoid of the best window score over the image's pyramid (5/6 per level, down to
        one window): above 0.5 where dlib would report a face. Each level is an antialiased
        resize of the image (dlib chains its levels, each from the one above): a check, not
        the attack's loss."""
        height, width = images.shape[1:3]
        best = []
        scale = 1.0
        while min(height, width) * scale >= self.window:
            size = (round(height * scale), round(width * scale))
            level = images if scale == 1.0 else tf.image.resize(images, size, antialias=True)
            best.append(tf.reduce_max(self.scores(level), axis=[1, 2]))
            scale *= 5 / 6
        if not best:
            return tf.zeros([tf.shape(images)[0]])
        return tf.sigmoid(4.0 * tf.reduce_max(tf.stack(best, -1), -1))
