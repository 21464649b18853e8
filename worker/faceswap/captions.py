"""The clip's words, in English or Korean, and the caption band under each half.

Korean needs a Hangul font: the contact sheet's lookup is reused (``DFB_FONT``, fontconfig,
the usual system paths); without one the captions are English.
"""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFont

from worker.filters.contact_sheet import LATIN_FONTS, hangul_font_path

BACKGROUND = (24, 24, 28)
TEXT = (240, 240, 240)
DIM = (170, 170, 178)
#: Outcome colours: a deepfake of the user was made (bad) or failed (good).
MADE = (255, 110, 100)
FAILED = (120, 220, 130)

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "original": "From your original photo",
        "protected": "From your protected photo",
        "made": "deepfake made — identity match (distance {distance:.2f})",
        "made_other": "face swapped, but not you (distance {distance:.2f})",
        "no_face": "no face found — deepfake failed",
        "unscored": "face swapped — no face on the original to compare",
        "footer": "detector: {detector} · distance < {threshold:.2f} = same person",
        "detector_dlib_hog": "dlib HOG",
        "detector_dlib_mmod": "dlib CNN (MMOD)",
    },
    "ko": {
        "original": "원본 사진으로 만든 딥페이크",
        "protected": "보호된 사진으로 만든 딥페이크",
        "made": "딥페이크 성공 — 본인과 일치 (거리 {distance:.2f})",
        "made_other": "합성은 됐지만 다른 사람 (거리 {distance:.2f})",
        "no_face": "얼굴을 찾지 못함 — 딥페이크 실패",
        "unscored": "얼굴 합성됨 — 원본에 비교할 얼굴 없음",
        "footer": "검출기: {detector} · 신원 거리 {threshold:.2f} 미만 = 같은 사람",
        "detector_dlib_hog": "dlib HOG",
        "detector_dlib_mmod": "dlib CNN (MMOD)",
    },
}


def language(locale: str | None) -> str:
    """``"ko"`` for a Korean locale when a Hangul font is installed, else ``"en"``."""
    korean = (locale or "").lower().startswith("ko")
    return "ko" if korean and hangul_font_path() is not None else "en"


def font(size: int, hangul: bool) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A TrueType font of ``size`` px (one with Hangul when asked and installed)."""
    paths = ([hangul_font_path()] if hangul else []) + list(LATIN_FONTS)
    for path in filter(None, paths):
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            continue
    return ImageFont.load_default(size)


def outcome_line(lang: str, outcome: str, distance: float | None) -> tuple[str, tuple]:
    """The sentence for one half's ``outcome`` (see ``worker.faceswap.clip.Side``) and its
    colour: red where a deepfake of the user was made."""
    key, colour = {"no_face": ("no_face", FAILED), "same_person": ("made", MADE),
                   "other_person": ("made_other", FAILED), "unscored": ("unscored", DIM)}[outcome]
    return TEXTS[lang][key].format(distance=distance), colour


def band(width: int, height: int, lines: list[tuple[str, tuple, int]], lang: str) -> Image.Image:
    """A caption band: ``lines`` of (text, colour, font size), centred, top to bottom."""
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    y = 8
    for text, colour, size in lines:
        face = font(size, lang == "ko")
        while size > 10 and draw.textlength(text, font=face) > width - 12:  # shrink to fit
            size -= 1
            face = font(size, lang == "ko")
        draw.text((width / 2, y), text, fill=colour, font=face, anchor="mt")
        y += size + 10
    return image
