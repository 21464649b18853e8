"""The filter registry: every look is a pure function ``RGB uint8 (H, W, 3) -> same``.

A filter module registers its functions with :func:`register`; the display order (CLI listing,
contact sheet, bot keyboard) is the registration order, fixed by the import order in
``worker/filters/__init__.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

FilterFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Filter:
    """One look: ``name`` is the stable id (jobs, CLI, callback data); labels are for people."""

    name: str
    fn: FilterFn
    description: str
    label_en: str
    label_ko: str

    def label(self, locale: str | None = None) -> str:
        """The human name in ``locale`` ("ko…" gives Korean, anything else English)."""
        return self.label_ko if (locale or "").lower().startswith("ko") else self.label_en


class UnknownFilterError(KeyError):
    """A filter name that is not registered; the message lists the known names."""

    code = "unknown_filter"

    def __init__(self, name: str) -> None:
        self.name = name
        self.message = f"unknown filter {name!r}; known filters: {', '.join(_REGISTRY)}"
        super().__init__(self.message)

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.message


_REGISTRY: dict[str, Filter] = {}
_ALIASES: dict[str, str] = {}


def register(
    name: str, *, description: str, en: str, ko: str, aliases: tuple[str, ...] = ()
) -> Callable[[FilterFn], FilterFn]:
    """Decorator: add ``fn`` to the registry under ``name`` (and optional ``aliases``)."""

    def add(fn: FilterFn) -> FilterFn:
        if name in _REGISTRY or name in _ALIASES:
            raise ValueError(f"filter {name!r} registered twice")
        _REGISTRY[name] = Filter(name, fn, description, en, ko)
        for alias in aliases:
            _ALIASES[alias] = name
        return fn

    return add


def _key(name: str) -> str:
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    return _ALIASES.get(key, key)


def names() -> list[str]:
    """Every filter name, in display order."""
    return list(_REGISTRY)


def get(name: str) -> Filter:
    """The filter ``name`` (case, '-' and ' ' forgiven) or :class:`UnknownFilterError`."""
    try:
        return _REGISTRY[_key(name)]
    except KeyError:
        raise UnknownFilterError(name) from None


def describe(name: str) -> str:
    """The one-line description of a filter."""
    return get(name).description


def label(name: str, locale: str | None = None) -> str:
    """The human label of a filter in ``locale`` (English or Korean)."""
    return get(name).label(locale)


def apply(name: str, rgb: np.ndarray) -> np.ndarray:
    """Apply filter ``name`` to an RGB uint8 image; returns a new array of the same shape.

    A 2-D grayscale array is expanded to RGB first. Anything else that is not ``(H, W, 3)``
    uint8 raises ``ValueError``.
    """
    fn = get(name).fn
    image = np.asarray(rgb)
    if image.dtype != np.uint8:
        raise ValueError(f"filters take uint8 images, got {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"filters take (H, W, 3) images, got shape {image.shape}")
    out = fn(np.ascontiguousarray(image))
    if out.shape != image.shape or out.dtype != np.uint8:  # a broken filter, never user input
        raise RuntimeError(f"filter {name!r} returned {out.dtype} {out.shape}")
    return np.ascontiguousarray(out)
