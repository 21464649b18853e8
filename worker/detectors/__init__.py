"""Face detector plugins, one module each, all on ``Detector`` (see ``base.py``).

``load(name)`` imports a plugin on first use and keeps one instance per process, so weights
load once. Surrogate detectors (the attack optimises against their TensorFlow rebuilds in
``worker.attack.surrogates``) and evaluator detectors (never used for gradients) share this
registry; ``worker.attack.profiles`` decides which role each one plays.
"""

from __future__ import annotations

import importlib
from functools import cache

from worker.detectors.base import Detector, Face

__all__ = ["PLUGINS", "Detector", "Face", "load"]

#: name -> "module:Class"
PLUGINS: dict[str, str] = {
    "mtcnn": "worker.detectors.mtcnn:MtcnnDetector",
    "blazeface_short": "worker.detectors.blazeface:BlazeFaceShort",
    "blazeface_full": "worker.detectors.blazeface:BlazeFaceFull",
    "res10_ssd": "worker.detectors.res10:Res10Detector",
    "haar_alt2": "worker.detectors.haar:HaarAlt2Detector",
    "dlib_hog": "worker.detectors.dlib_hog:DlibHogDetector",
    "dlib_mmod": "worker.detectors.dlib_mmod:DlibMmodDetector",
    "haar": "worker.detectors.haar:HaarDetector",
    "lbp": "worker.detectors.lbp:LbpDetector",
}


@cache
def load(name: str) -> Detector:
    """Return the process-wide instance of detector ``name`` (a built-in plugin, or a model
    declared in config.toml's ``[[detectors.models]]``, see ``worker.models``)."""
    if name not in PLUGINS:
        from worker import models

        declared = models.declared_detector(name)
        if declared is None:
            known = [*PLUGINS, *models.declared_models()]
            raise KeyError(f"unknown detector {name!r}; known: {', '.join(known)}")
        return declared
    module, cls = PLUGINS[name].split(":")
    return getattr(importlib.import_module(module), cls)()
