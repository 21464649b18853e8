"""Shared fixtures: packaged sample photos and a small, fast protection engine."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from skimage import data  # noqa: E402

#: The astronaut's face in skimage.data.astronaut() (512x512), measured by every detector.
ASTRONAUT_FACE = (175, 55, 275, 180)


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    return data.astronaut()


@pytest.fixture(scope="session")
def no_face() -> np.ndarray:
    return data.coffee()


@pytest.fixture(scope="session")
def fast_engine():
    """Engine with the two cheapest surrogates and one evaluator (for the test profile)."""
    from worker.attack.engine import ProtectionEngine

    return ProtectionEngine(surrogates=("blazeface_full", "res10_ssd"), evaluators=("haar",))
