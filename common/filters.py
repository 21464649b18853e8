"""The filter names the bot may ask for, without importing the worker (issue 4).

A static copy of ``worker/filters``' ids, labels and aliases, so the bot can check
``/filter NAME`` and name a look in a caption without a job; ``tests/test_telegram_filters.py``
checks that it agrees with the worker's registry. The worker stays the authority: a request with
a name it does not know fails with ``unknown_filter``.
"""

from __future__ import annotations

#: The look that changes nothing (``ProtectRequest.filter = None`` means the same).
NATURAL = "natural"

#: Filter id → (English label, Korean label), in display order.
FILTERS: dict[str, tuple[str, str]] = {
    "natural": ("Natural", "원본"),
    "vivid": ("Vivid", "선명하게"),
    "warm": ("Warm", "따뜻하게"),
    "cool": ("Cool", "시원하게"),
    "pastel": ("Pastel", "파스텔"),
    "cinematic": ("Cinematic", "시네마틱"),
    "bw": ("Black & white", "흑백"),
    "sepia": ("Sepia", "세피아"),
    "noir": ("Film noir", "필름 누아르"),
    "vintage": ("Vintage", "빈티지"),
    "dreamy": ("Dreamy", "몽환적"),
    "soft_skin": ("Soft skin", "피부 보정"),
    "cartoon": ("Cartoon", "만화"),
    "sketch": ("Pencil sketch", "연필 스케치"),
}

#: Other words people type for a filter → its id.
ALIASES: dict[str, str] = {
    "none": "natural", "off": "natural", "original": "natural",
    "black_and_white": "bw", "mono": "bw", "grayscale": "bw",
    "film_noir": "noir", "skin": "soft_skin", "beauty": "soft_skin", "comic": "cartoon",
    "pencil": "sketch", "pencil_sketch": "sketch",
}


def resolve(name: str) -> str | None:
    """The filter id for ``name`` (case, '-' and ' ' forgiven, aliases followed), or None
    when there is no such filter. Same rules as ``worker.filters.get``."""
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    key = ALIASES.get(key, key)
    return key if key in FILTERS else None


def label(name: str, locale: str | None = None) -> str:
    """The human name of filter ``name`` in ``locale`` ("ko…": Korean, else English); an
    unknown id is returned as it is."""
    labels = FILTERS.get(name)
    if labels is None:
        return name
    return labels[1] if (locale or "").lower().startswith("ko") else labels[0]
