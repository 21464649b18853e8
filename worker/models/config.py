"""``[[detectors.models]]`` in config.toml: operator-supplied ONNX face detectors, validated.

Each entry names one model file, its family (which decoder reads its outputs) and its role:
``surrogate`` (the attack optimises against it, and the report runs it) or ``evaluator`` (only
the report runs it). Optional keys override the family's preprocessing and thresholds (see
``config.toml`` for every key). Paths are relative to the config file's folder, or absolute.
Every invalid entry is reported at once, in one ``ModelConfigError`` naming each entry.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from common import config as common_config
from worker.models.families import FAMILIES

ROLES = ("surrogate", "evaluator")
RESIZE_MODES = ("fit", "shrink", "stretch")
LETTERBOX_MODES = ("top-left", "center")
CHANNEL_ORDERS = ("rgb", "bgr")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class ModelConfigError(common_config.ConfigError):
    """A ``[[detectors.models]]`` entry is invalid (missing file, unknown family, bad key...)."""


@dataclass(frozen=True)
class ModelSpec:
    """One declared model; ``None`` means "the family's default" (``worker.models.families``)."""

    name: str
    path: Path
    family: str
    role: str
    threshold: float | None = None
    nms: float | None = None
    input_size: tuple[int, int] | None = None     # (width, height) of the model input
    resize: str | None = None                     # fit | shrink | stretch
    letterbox: str | None = None                  # top-left | center
    mean: tuple[float, float, float] | None = None  # per channel, in the model's channel order
    std: tuple[float, float, float] | None = None
    channels: str | None = None                   # rgb | bgr: channel order the model expects
    pad_to: int | None = None                     # own-size input padded to a multiple of this
    loss_sizes: tuple[int, ...] | None = None     # input sides the surrogate's loss runs at
    weight: float = 1.0                           # surrogate's share of each step (1: equal)


def config_path() -> Path:
    """The config file in use: ``DFB_CONFIG`` or the repository's ``config.toml``."""
    return Path(os.environ.get("DFB_CONFIG") or common_config.DEFAULT_PATH)


def declared_models(path: Path | None = None) -> dict[str, ModelSpec]:
    """The validated ``[[detectors.models]]`` of the config file in use (cached per file)."""
    return _declared(str((path or config_path()).resolve()))


@lru_cache(maxsize=8)
def _declared(path: str) -> dict[str, ModelSpec]:
    raw = common_config.load(path).raw.get("detectors", {})
    return parse_models(raw, Path(path).parent)


def parse_models(section: Any, base: Path, reserved: tuple[str, ...] = ()) -> dict[str, ModelSpec]:
    """Validate a ``[detectors]`` table; relative paths resolve against ``base``. ``reserved``:
    names already taken (the built-in detectors; by default read from the registry)."""
    if not isinstance(section, dict) or set(section) - {"models"}:
        raise ModelConfigError("[detectors] may only contain [[detectors.models]] entries")
    entries = section.get("models", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ModelConfigError("[[detectors.models]] must be an array of tables")
    if not reserved:
        from worker.detectors import PLUGINS

        reserved = tuple(PLUGINS)
    specs: dict[str, ModelSpec] = {}
    errors: list[str] = []
    for index, entry in enumerate(entries):
        label = f"[[detectors.models]] #{index + 1} ({entry.get('name', 'no name')!r})"
        try:
            spec = _parse_entry(entry, base)
        except ValueError as exc:
            errors.append(f"{label}: {exc}")
            continue
        if spec.name in specs or spec.name in reserved:
            errors.append(f"{label}: name {spec.name!r} is already used")
            continue
        specs[spec.name] = spec
    if errors:
        raise ModelConfigError("invalid detector models in config:\n  " + "\n  ".join(errors))
    return specs


_KEYS = {"name", "path", "family", "role", "threshold", "nms", "input_size", "resize",
         "letterbox", "mean", "std", "channels", "pad_to", "loss_sizes", "weight"}


def _parse_entry(entry: dict[str, Any], base: Path) -> ModelSpec:
    unknown = set(entry) - _KEYS
    if unknown:
        raise ValueError(f"unknown key(s) {sorted(unknown)}; known: {sorted(_KEYS)}")
    for key in ("name", "path", "family", "role"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise ValueError(f"{key!r} is required (a string)")
    if not _NAME.match(entry["name"]):
        raise ValueError("name may only use letters, digits, '_', '.', '-'")
    _choice(entry, "family", tuple(FAMILIES))
    _choice(entry, "role", ROLES)
    path = Path(entry["path"]).expanduser()
    path = path if path.is_absolute() else (base / path)
    if not path.is_file():
        raise ValueError(f"model file not found: {path}")
    mean, std = _triple(entry, "mean"), _triple(entry, "std")
    if std is not None and 0 in std:
        raise ValueError("std must not be 0")
    size = entry.get("input_size")
    if size is not None and not (_ints(size) and len(size) == 2 and min(size) >= 16):
        raise ValueError("input_size must be [width, height], each >= 16")
    sizes = entry.get("loss_sizes")
    if sizes is not None and not (_ints(sizes) and sizes and min(sizes) >= 32):
        raise ValueError("loss_sizes must be a non-empty list of integers >= 32")
    pad_to = entry.get("pad_to")
    if pad_to is not None and not (_ints([pad_to]) and pad_to >= 1):
        raise ValueError("pad_to must be an integer >= 1")
    weight = entry.get("weight")
    if weight is not None and (isinstance(weight, bool) or not isinstance(weight, int | float)
                               or not 0 < weight <= 10):
        raise ValueError(f"weight must be a number in (0, 10]; got {weight!r}")
    return ModelSpec(
        name=entry["name"], path=path.resolve(), family=entry["family"], role=entry["role"],
        threshold=_fraction(entry, "threshold"), nms=_fraction(entry, "nms"),
        input_size=tuple(size) if size is not None else None,
        resize=_choice(entry, "resize", RESIZE_MODES),
        letterbox=_choice(entry, "letterbox", LETTERBOX_MODES),
        mean=mean, std=std, channels=_choice(entry, "channels", CHANNEL_ORDERS),
        pad_to=pad_to, loss_sizes=tuple(sizes) if sizes is not None else None,
        weight=float(weight) if weight is not None else 1.0,
    )


def _choice(entry: dict[str, Any], key: str, allowed: tuple[str, ...]) -> str | None:
    value = entry.get(key)
    if value is not None and value not in allowed:
        raise ValueError(f"{key} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _fraction(entry: dict[str, Any], key: str) -> float | None:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise ValueError(f"{key} must be a number between 0 and 1; got {value!r}")
    return float(value)


def _triple(entry: dict[str, Any], key: str) -> tuple[float, float, float] | None:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = [value] * 3
    if not (isinstance(value, list) and len(value) == 3 and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value)):
        raise ValueError(f"{key} must be a number or 3 numbers; got {value!r}")
    return (float(value[0]), float(value[1]), float(value[2]))


def _ints(values: Any) -> bool:
    return isinstance(values, list) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in values)
