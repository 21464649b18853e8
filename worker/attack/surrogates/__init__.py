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
}


@cache
def load(name: str) -> Surrogate:
    """Return the process-wide instance of surrogate ``name``."""
    try:
        target = PLUGINS[name]
    except KeyError:
        raise KeyError(f"unknown surrogate {name!r}; known: {', '.join(PLUGINS)}") from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)()
