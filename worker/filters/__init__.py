"""Image filters (issue 4): looks a user can pick, applied *before* protection.

Every filter is a pure, deterministic function ``RGB uint8 (H, W, 3) -> RGB uint8`` of the same
size, registered with a one-line description and English/Korean labels. To add one, write a
function in a family module decorated with ``@register`` (a new module goes into ``FAMILIES``).

    from worker import filters
    filters.names()                  # ['natural', 'vivid', ...] in display order
    filters.apply("vintage", rgb)    # UnknownFilterError (a KeyError) lists the names
    filters.describe("vintage")      # one line for the CLI and the bot
"""

import importlib

from worker.filters.registry import (
    Filter,
    UnknownFilterError,
    apply,
    describe,
    get,
    label,
    names,
    register,
)

#: Modules whose filters register on import; their order is the display order.
FAMILIES = ("color", "mono", "film", "skin", "art")
for _family in FAMILIES:
    importlib.import_module(f"{__name__}.{_family}")

__all__ = [
    "FAMILIES", "Filter", "UnknownFilterError",
    "apply", "describe", "get", "label", "names", "register",
]
