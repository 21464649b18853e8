"""Job functions: one ``common.jobs`` request dict in, one result dict out.

They are pure with respect to the queue (no Redis, no arq), so the service, the CLI and tests
share them; ``worker.service`` wraps them as arq jobs. User images live only in memory here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import cv2
import numpy as np

from common.config import load
from common.jobs import (
    ClipRequest,
    ClipResult,
    ProtectRequest,
    ProtectResult,
    VariantsRequest,
    VariantsResult,
)
from worker import filters
from worker.attack.profiles import TEST_PROFILE
from worker.filters import contact_sheet
from worker.imageio import (
    Decoded,
    ImageError,
    TooSmallImageError,
    decode_image,
    encode_jpeg,
    encode_png,
)

if TYPE_CHECKING:  # TensorFlow loads only where the engine is built (run_variants needs none)
    from worker.attack.engine import ProtectionEngine

log = logging.getLogger(__name__)

Progress = Callable[[str, float], None]

#: Longest side of the before|after preview sent next to the lossless file.
PREVIEW_SIDE = 640
#: Photos with a side shorter than this hold no face worth protecting (the engine would return
#: them unchanged): they are refused with ``too_small``.
MIN_SIDE = 16


def prepare(data: bytes, max_megapixels: float | None = None) -> Decoded:
    """Decode untrusted bytes for a job: ``ImageError`` for bad input (``too_small`` below
    ``MIN_SIDE``), and a photo above ``max_megapixels`` (default ``[worker]
    max_work_megapixels``) scaled down to it (INTER_AREA), noted as ``downscaled``."""
    decoded = decode_image(data)
    height, width = decoded.rgb.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise TooSmallImageError(
            f"The image is {width}x{height} pixels; at least {MIN_SIDE} on each side are needed.",
            detail=f"{width}x{height}",
        )
    limit = 1e6 * (load().worker.max_work_megapixels if max_megapixels is None else max_megapixels)
    if width * height <= limit:
        return decoded
    scale = (limit / (width * height)) ** 0.5
    size = (max(MIN_SIDE, int(width * scale)), max(MIN_SIDE, int(height * scale)))
    rgb = cv2.resize(decoded.rgb, size, interpolation=cv2.INTER_AREA)
    return Decoded(rgb=rgb, format=decoded.format, notes=(*decoded.notes, "downscaled"))


def extra_steps_deadline(started: float) -> float:
    """The ``time.monotonic()`` after which a protection begun at ``started`` takes no more
    extra steps: ``[worker] extra_steps_share`` of the protect job's timeout."""
    worker = load().worker
    return started + worker.extra_steps_share * worker.fast_timeout_s


def run_protect(
    engine: ProtectionEngine, request: ProtectRequest, progress: Progress | None = None
) -> ProtectResult:
    """Decode, (filter,) protect and encode one photo. Bad input is a result with an ``error``
    code, never an exception; engine failures propagate (the queue retries them)."""
    started = time.monotonic()
    report_progress = progress or (lambda stage, fraction: None)
    report_progress("decoding", 0.02)
    try:
        decoded = prepare(request.image)
    except ImageError as exc:
        log.info("request %s rejected: %s", request.request_id, exc.code)
        return ProtectResult(request.request_id, error=exc.code, error_detail=exc.message)
    rgb = decoded.rgb
    if request.filter:  # issue 4: filters run before protection
        try:
            rgb = filters.apply(request.filter, rgb)
        except filters.UnknownFilterError as exc:
            return ProtectResult(request.request_id, error=exc.code, error_detail=exc.message)
    report_progress("protecting", 0.05)
    from worker.attack.engine import VERIFYING  # loaded already: the engine exists

    strength = TEST_PROFILE if request.test_profile else request.strength
    result = engine.protect(
        rgb, strength, seed=request.seed,
        progress=lambda f: report_progress("protecting" if f < VERIFYING else "verifying", f),
        extra_steps_until=extra_steps_deadline(started),
    )
    report = {**result.report, "filter": request.filter, "notes": list(decoded.notes)}
    return ProtectResult(
        request.request_id,
        png=encode_png(result.image),
        preview=before_after_preview(rgb, result.image),
        report=report,
        notes=list(decoded.notes),
        width=rgb.shape[1],
        height=rgb.shape[0],
    )


def run_variants(request: VariantsRequest, progress: Progress | None = None) -> VariantsResult:
    """Render one photo in every filter as a labelled contact sheet (no TensorFlow, < 1 s).
    Bad input is a result with the same ``error`` codes as ``run_protect``."""
    (progress or (lambda stage, fraction: None))("decoding", 0.05)
    try:
        decoded = prepare(request.image)
    except ImageError as exc:
        log.info("request %s rejected: %s", request.request_id, exc.code)
        return VariantsResult(request.request_id, error=exc.code, error_detail=exc.message)
    names = filters.names()
    return VariantsResult(
        request.request_id,
        sheet=contact_sheet.render(decoded.rgb, request.locale, names),
        names=names,
        labels=[filters.label(name, request.locale) for name in names],
        columns=contact_sheet.layout(decoded.rgb.shape, len(names)).cols,
        notes=list(decoded.notes),
        width=decoded.rgb.shape[1],
        height=decoded.rgb.shape[0],
    )


def run_clip(
    engine: ProtectionEngine, request: ClipRequest, progress: Progress | None = None,
    *, detector: str | None = None,
) -> ClipResult:
    """Protect one photo, then make the deepfake comparison clip of the original and the
    protected photo (issue 5). Bad input is a result with the ``run_protect`` error codes.
    ``detector`` overrides ``[faceswap] detector``."""
    from worker.faceswap.clip import make_clip
    from worker.faceswap.settings import faceswap_config

    started = time.monotonic()
    report_progress = progress or (lambda stage, fraction: None)
    report_progress("decoding", 0.02)
    try:
        decoded = prepare(request.image)
    except ImageError as exc:
        log.info("request %s rejected: %s", request.request_id, exc.code)
        return ClipResult(request.request_id, error=exc.code, error_detail=exc.message)
    settings = faceswap_config()
    report_progress("protecting", 0.05)
    strength = TEST_PROFILE if request.test_profile else request.strength
    protection = engine.protect(
        decoded.rgb, strength, seed=request.seed,
        progress=lambda f: report_progress("protecting", 0.05 + 0.45 * f),
        extra_steps_until=extra_steps_deadline(started),
    )
    clip = make_clip(
        decoded.rgb, protection.image, locale=request.locale,
        detector=detector or settings.detector,
        swapper=settings.swapper,
        progress=lambda stage, f: report_progress(stage, 0.5 + 0.5 * f),
    )
    protection_report = {"strength": request.strength, "test_profile": request.test_profile,
                         **{k: protection.report.get(k) for k in ("ssim", "psnr")}}
    return ClipResult(
        request.request_id,
        video=clip.video,
        report={**clip.report(), "protection": protection_report, "notes": list(decoded.notes)},
        notes=list(decoded.notes),
        width=clip.width,
        height=clip.height,
        seconds=clip.frames / clip.fps,
    )


def before_after_preview(before: np.ndarray, after: np.ndarray) -> bytes:
    """A small JPEG: the original on the left, the protected image on the right."""
    height, width = before.shape[:2]
    scale = min(1.0, PREVIEW_SIDE / (2 * width), PREVIEW_SIDE / height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    halves = [cv2.resize(img, size, interpolation=cv2.INTER_AREA) for img in (before, after)]
    gap = np.full((size[1], max(2, size[0] // 50), 3), 255, np.uint8)
    return encode_jpeg(np.hstack([halves[0], gap, halves[1]]), quality=85)
