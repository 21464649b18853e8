"""Decoders of the detector families that face-swap tools use, one module each, on ``Family``.

This module only names them (no TensorFlow import), so the config can be validated cheaply;
``family_class(name)`` imports one.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from worker.models.families.base import Family

#: config ``family`` -> "module:Class"
FAMILIES: dict[str, str] = {
    "scrfd": "worker.models.families.scrfd:Scrfd",
    "retinaface": "worker.models.families.retinaface:RetinaFace",
    "yunet": "worker.models.families.yunet:YuNet",
    "yolo-face": "worker.models.families.yolo_face:YoloFace",
}


def family_class(name: str) -> type[Family]:
    """The ``Family`` subclass for a config ``family`` value."""
    module, cls = FAMILIES[name].split(":")
    return getattr(importlib.import_module(module), cls)
