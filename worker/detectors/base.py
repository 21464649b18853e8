"""One base class for every face detector the report runs (deepfakes/faceswap style plugins)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np


@dataclass(frozen=True)
class Face:
    """A detected face: box corners in pixels of the image passed to ``detect`` and a confidence."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float = 1.0

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0


class Detector(ABC):
    """A face detector run exactly as its library runs it (no gradients).

    Subclasses set ``name`` (stable, used in reports and config) and ``description`` and load
    their weights in ``__init__`` (once per process); ``detect`` must be safe to call repeatedly.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    #: True when ``detect`` keeps Python's GIL for its whole run (seconds): the report then
    #: runs it in a child process (``worker.detectors.processes``) beside the others.
    holds_gil: ClassVar[bool] = False

    @abstractmethod
    def detect(self, rgb: np.ndarray) -> list[Face]:
        """Return the faces in an RGB uint8 image of shape (H, W, 3)."""
