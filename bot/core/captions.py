"""The verification report (``worker.attack.verify``) as a short, honest caption for humans.

Example: "Faces hidden from 4/4 independent detectors, also after JPEG re-save and downscale.
SSIM 0.97 · strength 3 · 12 s". Independent (``evaluator``, black-box) detectors come first,
then the ``surrogate`` ones the attack optimised against; a detector that still finds a face
of the original in any variant is named, and a photo without a face says so.
"""

from __future__ import annotations

from typing import Any

from bot.core.i18n import note_text, text
from common.filters import NATURAL
from common.filters import label as filter_label

#: Detector names in the report → names people can look up.
DISPLAY_NAMES = {
    "mtcnn": "MTCNN",
    "blazeface_short": "BlazeFace (short)",
    "blazeface_full": "BlazeFace (full)",
    "res10_ssd": "OpenCV SSD",
    "haar_alt2": "OpenCV Haar (alt2)",
    "dlib_hog": "dlib HOG",
    "dlib_mmod": "dlib CNN",
    "haar": "OpenCV Haar",
    "lbp": "LBP cascade",
}
VARIANTS = ("protected", "jpeg85", "half")
ROLES = ("evaluator", "surrogate")


def _kept(row: dict[str, Any], variant: str) -> int:
    """Faces of the original the detector still finds in ``variant`` (counts for old reports)."""
    kept = row.get("kept") or {}
    return int(kept.get(variant, row.get(variant, 0)))


def role_line(lang: str, rows: list[dict[str, Any]], role: str) -> str | None:
    """One line for the detectors of ``role`` that found a face on the original (None if none)."""
    finders = [row for row in rows if row.get("role") == role and row.get("original", 0) > 0]
    if not finders:
        return None
    hidden = {v: sum(_kept(row, v) == 0 for row in finders) for v in VARIANTS}
    total = len(finders)
    group = text(lang, f"group_{role}")
    if all(count == total for count in hidden.values()):
        return text(lang, "cap_hidden_all", hidden=total, total=total, group=group)
    return text(
        lang, "cap_hidden_some", hidden=hidden["protected"], total=total, group=group,
        jpeg=hidden["jpeg85"], half=hidden["half"],
    )


def still_found(report: dict[str, Any]) -> list[str]:
    """Display names of detectors that still find a face of the original in some variant."""
    return [
        DISPLAY_NAMES.get(name, name)
        for name, row in report.get("detectors", {}).items()
        if row.get("original", 0) > 0 and any(_kept(row, v) > 0 for v in VARIANTS)
    ]


def report_caption(
    lang: str, report: dict[str, Any], strength: int, notes: list[str] | tuple[str, ...] = ()
) -> str:
    """The caption under a protected image: detectors, quality, strength, seconds, the filter
    applied before protection (``report["filter"]``, when not natural), notes."""
    lines: list[str] = []
    rows = list(report.get("detectors", {}).values())
    if not report.get("faces"):
        lines.append(text(lang, "cap_no_face"))
    else:
        lines += [line for role in ROLES if (line := role_line(lang, rows, role))]
        if names := still_found(report):
            lines.append(text(lang, "cap_still_found", names=", ".join(names)))
    lines.append(
        text(lang, "cap_quality", ssim=_ssim(lang, report), strength=strength,
             seconds=_seconds(report.get("seconds")))
    )
    if (look := report.get("filter")) and look != NATURAL:
        lines.append(text(lang, "cap_filter", name=filter_label(look, lang)))
    lines += [message for note in notes if (message := note_text(lang, note))]
    return "\n".join(lines)


def _ssim(lang: str, report: dict[str, Any]) -> str:
    """Whole-photo SSIM, and SSIM on the face boxes when the report has it (the attack changes
    only the faces, so the whole-photo number alone flatters what a person sees)."""
    ssim, face = report.get("ssim"), report.get("face_ssim")
    if ssim is None:
        return "–"
    if face is None:
        return f"{float(ssim):.2f}"
    return text(lang, "cap_ssim_face", ssim=f"{float(ssim):.2f}", face=f"{float(face):.2f}")


def _seconds(value: Any) -> str:
    if value is None:
        return "–"
    return f"{float(value):.1f}" if float(value) < 10 else f"{float(value):.0f}"
