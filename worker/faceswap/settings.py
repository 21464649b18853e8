"""``[faceswap]`` in config.toml: which detector and swapper the clip uses (documented there)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from common.config import Config, ConfigError, load
from worker.faceswap.extract import DEFAULT_DETECTOR, EXTRACTION_DETECTORS
from worker.faceswap.swapper import SWAPPERS


@dataclass(frozen=True)
class FaceswapConfig:
    detector: str = DEFAULT_DETECTOR   # extraction detector: one of EXTRACTION_DETECTORS
    swapper: str = "classical"         # a name in worker.faceswap.swapper.SWAPPERS


def faceswap_config(config: Config | None = None) -> FaceswapConfig:
    """The validated ``[faceswap]`` section (defaults where absent)."""
    section = (config or load()).raw.get("faceswap", {})
    known = {f.name for f in fields(FaceswapConfig)}
    unknown = set(section) - known
    if unknown:
        raise ConfigError(f"[faceswap]: unknown key(s) {sorted(unknown)}")
    settings = FaceswapConfig(**section)
    if settings.detector not in EXTRACTION_DETECTORS:
        raise ConfigError(f"[faceswap] detector must be one of {', '.join(EXTRACTION_DETECTORS)}"
                          f" (never an attack surrogate), got {settings.detector!r}")
    if settings.swapper not in SWAPPERS:
        raise ConfigError(f"[faceswap] swapper must be one of {', '.join(SWAPPERS)}, "
                          f"got {settings.swapper!r}")
    return settings
