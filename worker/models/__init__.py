"""Operator-supplied ONNX face detectors (``[[detectors.models]]`` in config.toml).

The families face-swap tools use (SCRFD, RetinaFace, YuNet, YOLO-face) are not on PyPI; an
operator who has the files declares them, and each one joins the detector registry (evaluator,
onnxruntime) under its config name, and the surrogate registry (TensorFlow, gradients) too.
``role`` only decides the default sets: surrogates are optimised against, evaluators are not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from worker.models.config import ModelConfigError, ModelSpec, declared_models

if TYPE_CHECKING:
    from worker.models.detector import OnnxDetector
    from worker.models.surrogate import OnnxSurrogate

__all__ = [
    "ModelConfigError", "ModelSpec", "declared_detector", "declared_models", "declared_names",
    "declared_surrogate",
]


def declared_names(role: str) -> tuple[str, ...]:
    """Names of the declared models with ``role`` (surrogate or evaluator), in config order."""
    return tuple(name for name, spec in declared_models().items() if spec.role == role)


def declared_detector(name: str) -> OnnxDetector | None:
    """The onnxruntime detector of declared model ``name``, or None if none is declared."""
    spec = declared_models().get(name)
    if spec is None:
        return None
    from worker.models.detector import OnnxDetector
    from worker.models.model import OnnxModel

    return OnnxDetector(OnnxModel.load(spec))


def declared_surrogate(name: str) -> OnnxSurrogate | None:
    """The TensorFlow surrogate of declared model ``name``, or None if none is declared."""
    spec = declared_models().get(name)
    if spec is None:
        return None
    from worker.models.model import OnnxModel
    from worker.models.surrogate import OnnxSurrogate

    return OnnxSurrogate(OnnxModel.load(spec), weight=spec.weight)
