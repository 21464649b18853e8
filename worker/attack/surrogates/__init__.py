"""Differentiable TensorFlow rebuilds of face detectors, one module each, on ``Surrogate``."""

from __future__ import annotations

import importlib
from functools import cache

from worker.attack.surrogates.base import Surrogate

__all__ = ["PLUGINS", "Surrogate", "load"]

#: name -> "module:Class"; names match ``worker.detectors.PLUGINS``.
PLUGINS: dict[str, str] = {
    "mtcnn": "worker.attack.surrogates.mtcnn:MtcnnSurrogate",
    "blazeface_short": "worker.attack.surrogates.blazeface:BlazeFaceShortSurrogate",
    "blazeface_full": "worker.attack.surrogates.blazeface:BlazeFaceFullSurrogate",
    "res10_ssd": "worker.attack.surrogates.res10:Res10Surrogate",
    "haar_alt2": "worker.attack.surrogates.haar:HaarCascadeSurrogate",
    "dlib_mmod": "worker.attack.surrogates.dlib_mmod:DlibMmodSurrogate",
}


@cache
def load(name: str) -> Surrogate:
    """Return the process-wide instance of surrogate ``name`` (a built-in rebuild, or a model
    declared in config.toml's ``[[detectors.models]]``, run by ``worker.models.surrogate``)."""
    if name not in PLUGINS:
        from worker import models

        declared = models.declared_surrogate(name)
        if declared is None:
            known = [*PLUGINS, *models.declared_models()]
            raise KeyError(f"unknown surrogate {name!r}; known: {', '.join(known)}")
        return declared
    module, cls = PLUGINS[name].split(":")
    return getattr(importlib.import_module(module), cls)()
