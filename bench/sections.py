"""docs/benchmarks.md is shared: each benchmark rewrites only its own ``## `` section."""

from __future__ import annotations

from pathlib import Path


def write_section(path: Path, header: str, section: str) -> None:
    """Replace the section that starts with the line ``header`` (up to the next ``## ``
    header) with ``section``, or append it; everything else in ``path`` stays as it is."""
    text = path.read_text() if path.exists() else ""
    section = section.rstrip("\n") + "\n"
    start = text.find(header + "\n")
    if start < 0:
        text = (text.rstrip("\n") + "\n\n" if text.strip() else "") + section
    else:
        end = text.find("\n## ", start + len(header))
        rest = text[end + 1:] if end >= 0 else ""
        text = text[:start] + section + ("\n" + rest if rest else "")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
