"""The ``filters`` and ``filter`` commands of ``python -m worker`` (wired in ``worker.cli``).

    python -m worker filters                          # one filter a line: name, description
    python -m worker filters --sheet OUT.jpg [INPUT]  # contact sheet of INPUT in every filter
    python -m worker filter NAME [INPUT] -o OUT.png   # one filter, unprotected (for inspection)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from worker import filters
from worker.imageio import ImageError, decode_image, encode_png


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add the two sub-commands to ``python -m worker``'s parser."""
    listing = sub.add_parser("filters", help="list the filters, or write a contact sheet")
    listing.add_argument("input", nargs="?",
                         help="photo for --sheet (default: the packaged sample)")
    listing.add_argument("--sheet", metavar="OUT.jpg", help="write a contact sheet JPEG here")
    listing.add_argument("--locale", default="en",
                         help="label language of the sheet: en or ko (needs a Hangul font)")
    one = sub.add_parser("filter", help="apply one filter (unprotected) and write a PNG")
    one.add_argument("name", help="a filter name (see `filters`)")
    one.add_argument("input", nargs="?", help="image file (default: the packaged sample)")
    one.add_argument("-o", "--output", default="out/filtered.png", help="output PNG path")


def _read(path: str | None) -> np.ndarray:
    from worker.cli import sample_image_bytes

    return decode_image(Path(path).read_bytes() if path else sample_image_bytes()).rgb


def _write(path: str, data: bytes) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    print(f"wrote {target}")


def run(args: argparse.Namespace) -> int:
    """Run ``filters`` or ``filter``; 2 with a one-line error for bad input or names."""
    try:
        if args.command == "filter":
            name = filters.get(args.name).name
            _write(args.output, encode_png(filters.apply(name, _read(args.input))))
            return 0
        if args.sheet:
            from worker.filters import contact_sheet

            _write(args.sheet, contact_sheet.render(_read(args.input), args.locale))
            return 0
        if args.input:
            print("error: INPUT is only used with --sheet OUT.jpg", file=sys.stderr)
            return 2
    except (ImageError, filters.UnknownFilterError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    width = max(map(len, filters.names()))
    for name in filters.names():
        print(f"{name:{width}}  {filters.describe(name)}")
    return 0
