"""OpenCV Viola-Jones Haar cascades rebuilt in TensorFlow, with soft (sigmoid) tree splits.

The cascade is read from OpenCV's own XML (``cv2.data.haarcascades``) and evaluated the way
``cv2.CascadeClassifier`` does: grey image (0.299 R + 0.587 G + 0.114 B), windows of the
cascade's size, every Haar feature a weighted sum of rectangle sums from an integral image,
divided by the window's variance normaliser (``sqrt(area * sum(x^2) - sum(x)^2)`` over the
window less a 1-px border), compared with each tree node's threshold; a stage passes when the
sum of its trees' leaves reaches the stage threshold, and a window is a face when every stage
passes. Replacing ``value < threshold`` by a sigmoid makes the stage sums differentiable.

Only windows around the faces found on the original are evaluated (crops at several scales,
every position), which keeps one step cheap: the loss pushes every stage of every such window
below its threshold, so the face loses its Haar-like structure (bright cheeks and bridge of the
nose, dark eyes and mouth) rather than just failing the cascade's first, easiest stage. That is
what transfers to other cascades (the ``haar`` evaluator uses a different one) and, in part, to
the LBP cascade, whose features compare the same kind of block means.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
import tensorflow as tf

from worker.attack.surrogates.base import Surrogate
from worker.attack.surrogates.windows import GREY, face_crops


@dataclass(frozen=True)
class Cascade:
    """A Haar cascade as dense arrays (``F`` features, ``N`` nodes, ``L`` leaves, ``S`` stages)."""

    size: tuple[int, int]        # window (height, width)
    corner_index: np.ndarray     # (F, K) corners of the (h+1)*(w+1) integral-image patch each
    corner_weight: np.ndarray    # (F, K) feature sums (K: the most any feature touches; 0-padded)
    node_feature: np.ndarray     # (N,) feature index of each node
    node_threshold: np.ndarray   # (N,) threshold on the variance-normalised feature value
    leaf_path: np.ndarray        # (L, D) node index on the path to each leaf (N = always true)
    leaf_left: np.ndarray        # (L, D) 1 where the path goes left (value < threshold) there
    leaf_value: np.ndarray       # (L,)
    leaf_stage: np.ndarray       # (L, S) one-hot stage of each leaf
    stage_threshold: np.ndarray  # (S,)


def read_cascade(path: Path) -> Cascade:
    """Parse an OpenCV (new-format, BOOST/HAAR, untilted) cascade XML into dense arrays."""
    root = ET.parse(path).getroot().find("cascade")
    if root is None or root.findtext("featureType", "").strip() != "HAAR":
        raise ValueError(f"{path}: not an OpenCV Haar cascade")
    height, width = int(root.findtext("height")), int(root.findtext("width"))
    feature_corners: list[dict[int, float]] = []
    for feature in root.find("features"):
        if (feature.findtext("tilted") or "0").strip() != "0":
            raise ValueError(f"{path}: tilted Haar features are not supported")
        weights: dict[int, float] = {}
        for rect in feature.find("rects"):
            x, y, w, h, weight = (float(v) for v in rect.text.split())
            x, y, w, h = int(x), int(y), int(w), int(h)
            for cy, cx, sign in ((y, x, 1), (y, x + w, -1), (y + h, x, -1), (y + h, x + w, 1)):
                corner = cy * (width + 1) + cx
                weights[corner] = weights.get(corner, 0.0) + sign * weight
        feature_corners.append(weights)
    most = max(len(weights) for weights in feature_corners)
    corner_index = np.zeros((len(feature_corners), most), np.int32)
    corner_weight = np.zeros((len(feature_corners), most), np.float32)
    for f, weights in enumerate(feature_corners):
        corner_index[f, : len(weights)] = list(weights)
        corner_weight[f, : len(weights)] = list(weights.values())

    node_feature: list[int] = []
    node_threshold: list[float] = []
    paths: list[list[int]] = []
    lefts: list[list[int]] = []
    values: list[float] = []
    stages: list[int] = []
    thresholds: list[float] = []
    stage_elements = list(root.find("stages"))
    for stage_index, stage in enumerate(stage_elements):
        thresholds.append(float(stage.findtext("stageThreshold")))
        for tree in stage.find("weakClassifiers"):
            nodes = [float(v) for v in tree.findtext("internalNodes").split()]
            leaves = [float(v) for v in tree.findtext("leafValues").split()]
            first = len(node_feature)
            node_feature.extend(int(f) for f in nodes[2::4])
            node_threshold.extend(nodes[3::4])
            for path, left, leaf in tree_leaves(nodes):
                paths.append([first + n for n in path])
                lefts.append(left)
                values.append(leaves[leaf])
                stages.append(stage_index)
    n_nodes = len(node_feature)
    depth = max(len(p) for p in paths)
    leaf_path = np.full((len(paths), depth), n_nodes, np.int32)
    leaf_left = np.ones((len(paths), depth), np.float32)
    for i, (path, left) in enumerate(zip(paths, lefts, strict=True)):
        leaf_path[i, : len(path)] = path
        leaf_left[i, : len(left)] = left
    leaf_stage = np.zeros((len(paths), len(stage_elements)), np.float32)
    leaf_stage[np.arange(len(paths)), stages] = 1.0
    return Cascade(
        size=(height, width),
        corner_index=corner_index,
        corner_weight=corner_weight,
        node_feature=np.asarray(node_feature, np.int32),
        node_threshold=np.asarray(node_threshold, np.float32),
        leaf_path=leaf_path,
        leaf_left=leaf_left,
        leaf_value=np.asarray(values, np.float32),
        leaf_stage=leaf_stage,
        stage_threshold=np.asarray(thresholds, np.float32),
    )


def tree_leaves(nodes: list[float]) -> list[tuple[list[int], list[int], int]]:
    """(node path, went-left flags, leaf index) for every leaf of one tree, from OpenCV's
    ``internalNodes`` (left, right, feature, threshold per node; a child <= 0 is leaf -child;
    the walk goes left when the feature value is below the threshold)."""
    out: list[tuple[list[int], list[int], int]] = []

    def walk(idx: int, path: list[int], left: list[int]) -> None:
        for child, went_left in ((int(nodes[4 * idx]), 1), (int(nodes[4 * idx + 1]), 0)):
            if child <= 0:
                out.append(([*path, idx], [*left, went_left], -child))
            else:
                walk(child, [*path, idx], [*left, went_left])

    walk(0, [], [])
    return out


def stage_ranges(cascade: Cascade) -> np.ndarray:
    """(S,) largest minus smallest possible sum of each stage (its trees' extreme leaves)."""
    tree_of_leaf = np.cumsum(np.r_[0, np.diff(cascade.leaf_path[:, 0]) != 0])
    ranges = np.zeros(len(cascade.stage_threshold), np.float32)
    for tree in np.unique(tree_of_leaf):
        leaves = tree_of_leaf == tree
        stage = int(np.argmax(cascade.leaf_stage[leaves][0]))
        values = cascade.leaf_value[leaves]
        ranges[stage] += values.max() - values.min()
    return np.maximum(ranges, 1e-6)


class HaarCascadeSurrogate(Surrogate):
    """Soft Haar cascade on windows around each face: crops at ``scales`` (window side relative
    to the face box) centred on the face, every window position of each crop."""

    graph_safe = True
    #: ~40 MB and ~0.07 s per face and step: a crowd of 60 would need 2.4 GB more per step.
    faces_per_step = 6

    name: ClassVar[str] = "haar_alt2"
    cascade_file: ClassVar[str] = "haarcascade_frontalface_alt2.xml"
    #: Window side / face box side of the crops (the merged boxes of all the detectors are
    #: often larger than Haar's own). Smaller windows (a cascade sometimes fires on an eye
    #: region a third of the face wide) are not covered: they would need crops 3x larger.
    scales: ClassVar[tuple[float, ...]] = (0.7, 0.8, 0.9, 1.0, 1.15, 1.3)
    #: Crop side / window side: positions up to +-0.2 windows from the face centre.
    context: ClassVar[float] = 1.4
    #: Sigmoid temperature of the backward pass, relative to each node's |threshold| + 0.01
    #: (variance-normalised feature values on faces spread ~0.01 around the thresholds).
    temperature: ClassVar[float] = 0.1

    def __init__(self, margin: float = 0.05) -> None:
        self.margin = float(margin)
        cascade = read_cascade(Path(cv2.data.haarcascades) / self.cascade_file)
        self.window = cascade.size
        self.crop = tuple(round(side * self.context) for side in self.window)
        # Each feature touches at most 12 corners of the integral-image patch: gather those
        # (a dense (corners, F) matmul would cost ~40x more). Per node: (N, corners).
        self._corner_index = tf.constant(cascade.corner_index[cascade.node_feature])
        self._corner_weight = tf.constant(cascade.corner_weight[cascade.node_feature])
        self._node_threshold = tf.constant(cascade.node_threshold)
        self._leaf_path = tf.constant(cascade.leaf_path)
        self._leaf_left = tf.constant(cascade.leaf_left)
        self._leaf_value = tf.constant(cascade.leaf_value)
        self._leaf_stage = tf.constant(cascade.leaf_stage)
        self._stage_threshold = tf.constant(cascade.stage_threshold)
        # A stage sum lies between the sums of its trees' smallest and largest leaves: margins
        # are fractions of that range.
        self._stage_scale = tf.constant(stage_ranges(cascade))
        height, width = self.window
        norm = np.zeros((height + 1) * (width + 1), np.float32)
        for cy, cx, sign in ((1, 1, 1), (1, width - 1, -1), (height - 1, 1, -1),
                             (height - 1, width - 1, 1)):
            norm[cy * (width + 1) + cx] = sign
        self._norm = tf.constant(norm[:, None])
        self._norm_area = float((height - 2) * (width - 2))

    # --- evaluation -------------------------------------------------------------------------

    def crops(self, images: tf.Tensor, faces: tf.Tensor | np.ndarray) -> tf.Tensor:
        """Grey crops (B * N * K, crop_h, crop_w, 1) around every face at every scale."""
        return face_crops(images, faces, self.scales, self.context, self.crop)

    def stage_margins(self, crops: tf.Tensor, hard: bool = False, stride: int = 2) -> tf.Tensor:
        """(windows, S) stage sum minus stage threshold for the windows of every crop at every
        ``stride``-th position (OpenCV scans every 2nd one); ``hard``: exact OpenCV decisions
        (no gradient), else sigmoid splits."""
        height, width = self.window
        x = crops[..., 0]
        integral = tf.pad(tf.cumsum(tf.cumsum(x, axis=1), axis=2), [[0, 0], [1, 0], [1, 0]])
        squares = tf.pad(tf.cumsum(tf.cumsum(x * x, axis=1), axis=2), [[0, 0], [1, 0], [1, 0]])
        size = [1, height + 1, width + 1, 1]

        def patches(table: tf.Tensor) -> tf.Tensor:
            out = tf.image.extract_patches(table[..., None], size, [1, stride, stride, 1],
                                           [1, 1, 1, 1], "VALID")
            return tf.reshape(out, [-1, (height + 1) * (width + 1)])

        values = patches(integral)
        total = tf.matmul(values, self._norm)[:, 0]
        total_sq = tf.matmul(patches(squares), self._norm)[:, 0]
        spread = self._norm_area * total_sq - total * total
        norm = tf.sqrt(tf.maximum(spread, 1.0))
        corners = tf.gather(values, self._corner_index, axis=1)  # (W, N, corners)
        node_value = tf.reduce_sum(corners * self._corner_weight, -1) / norm[:, None]  # (W, N)
        left = tf.cast(node_value < self._node_threshold, tf.float32)
        if not hard:  # straight through: OpenCV's decisions forward, a sigmoid's slope backward
            scale = self.temperature * (tf.abs(self._node_threshold) + 0.01)
            soft = tf.sigmoid((self._node_threshold - node_value) / scale)
            left = left + soft - tf.stop_gradient(soft)
        left = tf.concat([left, tf.ones_like(left[:, :1])], axis=1)  # the "always" node
        on_path = tf.gather(left, self._leaf_path, axis=1)  # (W, L, D)
        taken = tf.where(self._leaf_left > 0, on_path, 1.0 - on_path)
        reach = tf.reduce_prod(taken, axis=-1)  # (W, L)
        sums = tf.matmul(reach * self._leaf_value, self._leaf_stage)  # (W, S)
        return sums - self._stage_threshold

    # --- Surrogate --------------------------------------------------------------------------

    def loss(self, images: tf.Tensor, faces: np.ndarray | tf.Tensor | None = None) -> tf.Tensor:
        if faces is None:
            return tf.zeros([])
        margins = self.stage_margins(self.crops(images, faces)) / self._stage_scale
        # Windows that already fail some stage by the margin are rejected: leave them be. A live
        # window has every stage pushed below its threshold, not just the weakest one.
        alive = tf.cast(tf.reduce_min(margins, axis=-1) > -self.margin, tf.float32)
        hinge = tf.nn.relu(margins + self.margin) * tf.stop_gradient(alive)[:, None]
        windows = tf.maximum(tf.cast(tf.shape(hinge)[0], tf.float32), 1.0)  # 0 with no face
        return tf.reduce_sum(hinge) / windows

    def face_scores(self, images: tf.Tensor) -> tf.Tensor:
        """1 where some window of the whole image, resized to one crop, passes every stage."""
        grey = tf.reduce_sum(images * tf.constant(GREY, tf.float32), -1, keepdims=True)
        margins = self.stage_margins(tf.image.resize(grey, self.crop, "bilinear"), hard=True)
        passed = tf.cast(tf.reduce_all(margins >= 0, axis=-1), tf.float32)
        return tf.reduce_max(tf.reshape(passed, [tf.shape(images)[0], -1]), axis=-1)
