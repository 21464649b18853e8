"""The deepfake comparison clip: the same face-swap pipeline fed the original photo (left) and
the protected photo (right), rendered side by side as a short MP4 with captions.

Each side runs extraction (``FaceExtractor``) on the photo. When the detector finds no face the
tools stop ("no face found", as roop reports it) and that half shows the untouched target.
Otherwise the face is swapped onto every target frame, whatever the landmarks look like, and
the identity score says whether the result still looks like the user: dlib's descriptor
distance between the user's face in the *original* photo and the face in sampled output frames
(the median is shown; below 0.6 = the same person).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from worker.faceswap import captions, identity, target, video
from worker.faceswap.extract import DEFAULT_DETECTOR, ExtractedFace, FaceExtractor
from worker.faceswap.swapper import SourceFace, Swapper, make_swapper

#: Photos are scaled down to this longest side before extraction (swap tools work at 640-1024).
WORK_SIDE = 1024
#: Identity is measured on this many evenly spaced frames per side.
IDENTITY_SAMPLES = 8
#: Progress is reported every this many swapped frames.
PROGRESS_EVERY = 10
#: Height of the caption band under each half; gap between the halves; inset photo side.
CAPTION_H = 104
GAP = 8
INSET = 112
#: Limits of the issue: at most this long, this big and this tall.
MAX_SECONDS = 8.0
MAX_BYTES = 5_000_000
MAX_HEIGHT = 720

Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class Side:
    """What the pipeline did with one photo."""

    photo: str                     # "original" or "protected"
    detector: str
    faces_found: int
    distances: list[float] = field(default_factory=list)  # sampled frames; empty: no face

    @property
    def face_found(self) -> bool:
        return self.faces_found > 0

    @property
    def distance(self) -> float | None:
        """Median identity distance to the user's original face (None: no swap)."""
        return float(np.median(self.distances)) if self.distances else None

    @property
    def outcome(self) -> str:
        """``no_face`` (the tool stops), ``same_person`` (a deepfake of the user),
        ``other_person`` (a face was swapped, but it no longer looks like the user) or
        ``unscored`` (swapped, but the original had no face to compare with)."""
        if not self.face_found:
            return "no_face"
        if self.distance is None:
            return "unscored"
        return "same_person" if self.distance < identity.SAME_PERSON else "other_person"

    def to_dict(self) -> dict[str, Any]:
        distance = self.distance
        return {"photo": self.photo, "outcome": self.outcome, "faces_found": self.faces_found,
                "identity_distance": None if distance is None else round(distance, 4),
                "identity_distances": [round(d, 4) for d in self.distances]}


@dataclass(frozen=True)
class Clip:
    """The rendered MP4 and what each side showed."""

    video: bytes
    width: int
    height: int
    fps: int
    frames: int
    detector: str
    swapper: str
    sides: tuple[Side, Side]
    seconds: float                 # time taken to make it

    def report(self) -> dict[str, Any]:
        return {"detector": self.detector, "swapper": self.swapper,
                "threshold": identity.SAME_PERSON, "fps": self.fps, "frames": self.frames,
                "width": self.width, "height": self.height, "bytes": len(self.video),
                "seconds": round(self.seconds, 2),
                "original": self.sides[0].to_dict(), "protected": self.sides[1].to_dict()}


def work_copy(rgb: np.ndarray, side: int = WORK_SIDE) -> np.ndarray:
    """``rgb`` scaled down so its longest side is at most ``side``."""
    scale = side / max(rgb.shape[:2])
    if scale >= 1:
        return np.ascontiguousarray(rgb, dtype=np.uint8)
    size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def deepfake(
    photo: np.ndarray, face: ExtractedFace | None, sequence: list[target.TargetFrame],
    swapper: Swapper, reference: np.ndarray | None,
    on_frame: Callable[[float], None] | None = None,
) -> tuple[list[np.ndarray], list[float]]:
    """The output frames for one photo (the untouched target when ``face`` is None) and the
    identity distances of the sampled frames to ``reference`` (the user's original face);
    ``on_frame`` hears the fraction of frames done, every ``PROGRESS_EVERY`` frames."""
    if face is None:
        return [frame.image for frame in sequence], []
    source = SourceFace(photo, face)
    frames = []
    for index, frame in enumerate(sequence):
        frames.append(swapper.swap(source, frame.image, frame.landmarks))
        if on_frame is not None and index % PROGRESS_EVERY == 0:
            on_frame(index / len(sequence))
    if reference is None:
        return frames, []
    step = max(1, len(frames) // IDENTITY_SAMPLES)
    distances = [
        identity.distance(reference, identity.descriptor(frames[i], sequence[i].landmarks))
        for i in range(0, len(frames), step)
    ]
    return frames, distances


def inset(panel: np.ndarray, photo: np.ndarray) -> np.ndarray:
    """``panel`` with a small framed thumbnail of ``photo`` in its top-left corner."""
    scale = INSET / max(photo.shape[:2])
    size = (max(1, round(photo.shape[1] * scale)), max(1, round(photo.shape[0] * scale)))
    thumb = cv2.resize(photo, size, interpolation=cv2.INTER_AREA)
    out = panel.copy()
    x, y = 8, 8
    out[y - 2:y + size[1] + 2, x - 2:x + size[0] + 2] = 255
    out[y:y + size[1], x:x + size[0]] = thumb
    return out


def caption(side: Side, width: int, lang: str) -> np.ndarray:
    """The caption band of one half."""
    words = captions.TEXTS[lang]
    text, colour = captions.outcome_line(lang, side.outcome, side.distance)
    detector = words.get(f"detector_{side.detector}", side.detector)
    lines = [
        (words[side.photo], captions.TEXT, 22),
        (text, colour, 22),
        (words["footer"].format(detector=detector, threshold=identity.SAME_PERSON),
         captions.DIM, 15),
    ]
    return np.asarray(captions.band(width, CAPTION_H, lines, lang))


def compose(
    left: list[np.ndarray], right: list[np.ndarray], photos: tuple[np.ndarray, np.ndarray],
    sides: tuple[Side, Side], lang: str,
) -> list[np.ndarray]:
    """Side-by-side frames: each half its panel (with the photo it came from as an inset)
    above its caption band, a dark gap between."""
    size = target.SIZE
    bands = [caption(side, size, lang) for side in sides]
    gap = np.full((size + CAPTION_H, GAP, 3), captions.BACKGROUND, dtype=np.uint8)
    out = []
    for a, b in zip(left, right, strict=True):
        halves = [np.vstack([inset(panel, photo), band])
                  for panel, photo, band in zip((a, b), photos, bands, strict=True)]
        out.append(np.hstack([halves[0], gap, halves[1]]))
    return out


def make_clip(
    original: np.ndarray, protected: np.ndarray, *, locale: str | None = None,
    detector: str = DEFAULT_DETECTOR, swapper: str = "classical", fps: int = target.FPS,
    seconds: float = target.SECONDS, progress: Progress | None = None,
) -> Clip:
    """Run the face-swap pipeline on both photos and render the comparison MP4."""
    report = progress or (lambda stage, fraction: None)
    started = time.perf_counter()
    if seconds > MAX_SECONDS:
        raise ValueError(f"a clip lasts at most {MAX_SECONDS} s")
    extractor, swap = FaceExtractor(detector), make_swapper(swapper)
    photos = (work_copy(original), work_copy(protected))
    report("extracting", 0.05)
    faces = [extractor.extract(photo) for photo in photos]
    reference = (identity.descriptor(photos[0], faces[0].landmarks)
                 if faces[0] is not None else None)
    sequence = target.frames(fps, seconds)
    outputs, sides = [], []
    for index, (name, photo, face) in enumerate(zip(("original", "protected"), photos, faces,
                                                    strict=True)):
        start = 0.1 + 0.4 * index
        report("swapping", start)

        def on_frame(done: float, start: float = start) -> None:
            report("swapping", start + 0.35 * done)

        frames, distances = deepfake(photo, face, sequence, swap, reference, on_frame)
        outputs.append(frames)
        sides.append(Side(name, detector, face.faces_found if face else 0, distances))
    report("rendering", 0.9)
    lang = captions.language(locale)
    frames = compose(outputs[0], outputs[1], photos, (sides[0], sides[1]), lang)
    mp4 = video.encode_mp4(frames, fps)
    height, width = frames[0].shape[:2]
    return Clip(mp4, width, height, fps, len(frames), detector, swap.name,
                (sides[0], sides[1]), time.perf_counter() - started)

