"""One base class for every differentiable detector the attack optimises against."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
import tensorflow as tf


class Surrogate(ABC):
    """A face detector rebuilt as a TensorFlow graph so its face scores have exact gradients.

    ``name`` must equal the ``name`` of the matching reference ``Detector`` plugin in
    ``worker.detectors`` (that one runs the library itself for the verification report).
    Weights load once in ``__init__``.
    """

    name: ClassVar[str]
    #: True when ``loss`` is pure TensorFlow (no numpy, no Python branching on values), so the
    #: engine may compile loss and gradient into one graph.
    graph_safe: ClassVar[bool] = False
    #: Faces ``loss`` looks at per step when the photo has more (they take turns across steps);
    #: 0: all. For surrogates whose cost and memory grow with the number of faces.
    faces_per_step: ClassVar[int] = 0
    #: Share of each step: every surrogate's gradient is scaled to the same mean before the
    #: ensemble sums them, then multiplied by this (an operator's ``weight`` in config.toml).
    weight: float = 1.0

    @abstractmethod
    def loss(self, images: tf.Tensor, faces: np.ndarray | None = None) -> tf.Tensor:
        """Vanishing loss for a batch of RGB float32 images in [0, 255], shape (B, H, W, 3).

        ``faces`` (N, 4): boxes x0, y0, x1, y1 in 0..1 of the faces found on the original;
        detectors whose candidates are windows (MTCNN) focus on them, others may ignore them.

        Returns a scalar >= 0 that is 0 once every candidate face score (every anchor, every
        pyramid scale, every crop) is below the detector's own threshold by a margin, and grows
        with how confidently faces are still found. Must be differentiable w.r.t. ``images``.
        """

    @abstractmethod
    def face_scores(self, images: tf.Tensor) -> tf.Tensor:
        """Highest face probability (0..1) per image, shape (B,), as the detector would score it."""

    @property
    def view_side(self) -> int:
        """Longest side the detector scales the whole photo to (0: it looks at faces at their
        own scale). The attack's working copy never goes below it: a perturbation made smaller
        than the detector sees it is smeared when the detector enlarges it."""
        return 0
