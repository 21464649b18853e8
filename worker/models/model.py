"""A declared model resolved against its file: family decoder, preprocessing and thresholds
(config overrides on top of the family's defaults). Shared by the evaluator and the surrogate."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import onnx

from worker.models.config import ModelConfigError, ModelSpec
from worker.models.families import family_class
from worker.models.families.base import Family, OutputInfo, Preprocessing


@dataclass(frozen=True)
class OnnxModel:
    name: str
    path: Path
    family: Family
    preprocessing: Preprocessing
    threshold: float
    nms_iou: float
    loss_sizes: tuple[int, ...]
    input_name: str

    @classmethod
    def load(cls, spec: ModelSpec) -> OnnxModel:
        """Read the file's inputs/outputs and check them against the family (start-up error
        ``ModelConfigError`` naming the entry when they do not fit)."""
        where = f"[[detectors.models]] {spec.name!r} ({spec.path})"
        try:
            graph = onnx.load(str(spec.path), load_external_data=False).graph
        except Exception as exc:  # noqa: BLE001 - any parse failure is a config problem
            raise ModelConfigError(f"{where}: not a readable ONNX model: {exc}") from exc
        constants = {t.name for t in graph.initializer}
        inputs = [i for i in graph.input if i.name not in constants]
        outputs: OutputInfo = [(o.name, _shape(o)) for o in graph.output]
        if len(inputs) != 1:
            raise ModelConfigError(f"{where}: expected one image input, found {len(inputs)}")
        kind = family_class(spec.family)
        try:
            family = kind(outputs)
        except ValueError as exc:
            raise ModelConfigError(f"{where}: {exc}; is family {spec.family!r} right?") from exc
        prep = kind.preprocessing
        static_hw = _shape(inputs[0])[2:4]
        if spec.input_size is None and len(static_hw) == 2 and None not in static_hw:
            prep = replace(prep, input_size=(static_hw[1], static_hw[0]))  # a fixed-size export
        overrides = {k: getattr(spec, k) for k in (
            "input_size", "resize", "letterbox", "mean", "std", "channels", "pad_to")}
        prep = replace(prep, **{k: v for k, v in overrides.items() if v is not None})
        return cls(
            name=spec.name, path=spec.path, family=family, preprocessing=prep,
            threshold=spec.threshold if spec.threshold is not None else kind.threshold,
            nms_iou=spec.nms if spec.nms is not None else kind.nms_iou,
            loss_sizes=spec.loss_sizes or kind.loss_sizes,
            input_name=inputs[0].name,
        )


def _shape(value: onnx.ValueInfoProto) -> tuple[int | None, ...]:
    return tuple(d.dim_value or None for d in value.type.tensor_type.shape.dim)
