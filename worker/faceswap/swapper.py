"""The swap stage behind a small interface: ``Swapper.swap(source, frame, landmarks)``.

``ClassicalSwapper`` (the default) is the classical pipeline the early deepfake tools used:
the source's 68 landmarks (plus a forehead) are aligned to the target face by a similarity
transform, keeping the source's proportions, with the jaw line meeting the target's halfway
(``destination``); the face is warped there triangle by triangle (Delaunay), its colours matched
to the target skin (mean/std in LAB over the face) and blended in with Poisson editing
(``cv2.seamlessClone``) under a feathered convex-hull mask.

A neural swapper (e.g. an operator's ONNX model, roop's ``inswapper``) fits the same interface:
it receives the extracted source face and each frame with its target landmarks.
``[faceswap] swapper`` in config.toml selects one; only ``"classical"`` ships.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np

from worker.faceswap.extract import JAW, LEFT_EYE, RIGHT_EYE, ExtractedFace

BROWS = slice(17, 27)
CHIN = 8
#: Forehead height added above the brows, as a fraction of the brow-to-chin distance.
FOREHEAD = 0.3
#: How far the source's jaw line is pulled to the target's (0: source shape, 1: target's).
JAW_BLEND = 0.5


@dataclass(frozen=True)
class SourceFace:
    """The face to put onto the target: the photo it comes from and its extraction."""

    image: np.ndarray              # RGB uint8
    face: ExtractedFace


class Swapper(ABC):
    """Puts a source face onto the target face of one frame."""

    name: ClassVar[str]

    @abstractmethod
    def swap(self, source: SourceFace, frame: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """``frame`` (RGB uint8) with its face, whose 68 landmarks are given, replaced by
        ``source``'s face; a new array."""


def delaunay(points: np.ndarray) -> np.ndarray:
    """Triangles (T, 3) of point indices of the Delaunay triangulation of ``points`` (N, 2)."""
    points = points.astype(np.float32)
    x0, y0 = np.floor(points.min(axis=0)) - 1
    x1, y1 = np.ceil(points.max(axis=0)) + 2
    subdiv = cv2.Subdiv2D((int(x0), int(y0), int(x1 - x0), int(y1 - y0)))
    subdiv.insert([(float(x), float(y)) for x, y in points])
    triangles = []
    for tri in subdiv.getTriangleList().reshape(-1, 3, 2):
        gaps = np.linalg.norm(points[None, :, :] - tri[:, None, :], axis=2)  # (3, N)
        ids = gaps.argmin(axis=1)
        if gaps[np.arange(3), ids].max() < 0.5 and len(set(ids.tolist())) == 3:
            triangles.append(ids)
    return np.array(triangles, dtype=np.int32)


def warp_triangles(
    source: np.ndarray, src_points: np.ndarray, dst_points: np.ndarray,
    triangles: np.ndarray, shape: tuple[int, int],
) -> np.ndarray:
    """``source`` warped piecewise-affinely so each triangle of ``src_points`` lands on the same
    triangle of ``dst_points``, into a zero image of ``shape`` (H, W)."""
    out = np.zeros((*shape, 3), dtype=np.float32)
    source = np.ascontiguousarray(source, dtype=np.uint8)
    src_points, dst_points = src_points.astype(np.float32), dst_points.astype(np.float32)
    for tri in triangles:
        s, d = src_points[tri], dst_points[tri]
        dx, dy, dw, dh = cv2.boundingRect(d)
        x0, y0 = max(dx, 0), max(dy, 0)                       # the part inside the frame
        x1, y1 = min(dx + dw, shape[1]), min(dy + dh, shape[0])
        if x1 <= x0 or y1 <= y0:
            continue
        # Only the dw x dh destination rectangle is computed, straight from the whole source.
        affine = cv2.getAffineTransform(s, d - np.float32([dx, dy]))
        patch = cv2.warpAffine(source, affine, (dw, dh), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT_101)
        mask = np.zeros((dh, dw), dtype=np.float32)
        cv2.fillConvexPoly(mask, np.round(d - [dx, dy]).astype(np.int32), 1.0, cv2.LINE_AA)
        inside = np.s_[y0 - dy:y1 - dy, x0 - dx:x1 - dx]
        m = mask[inside][..., None]
        region = out[y0:y1, x0:x1]
        region[:] = region * (1 - m) + patch[inside] * m
    return out


def match_colour(face: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``face`` (float32 RGB 0..255) recoloured so its LAB mean/std under ``mask`` equal the
    target's (Reinhard colour transfer)."""
    inside = mask > 0
    face_lab = cv2.cvtColor(np.clip(face, 0, 255).astype(np.uint8), cv2.COLOR_RGB2LAB)
    target_lab = cv2.cvtColor(target, cv2.COLOR_RGB2LAB)
    lab = face_lab.astype(np.float32)
    for c in range(3):
        f, t = lab[..., c][inside], target_lab[..., c][inside].astype(np.float32)
        lab[..., c] = (lab[..., c] - f.mean()) * (t.std() / max(f.std(), 1e-3)) + t.mean()
    return cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def with_forehead(landmarks: np.ndarray, height: float = FOREHEAD) -> np.ndarray:
    """The 68 landmarks plus 10 forehead points: the brows raised by ``height`` times the
    brow-to-chin distance (the 68-point layout stops at the brows; identity does not)."""
    brows, chin = landmarks[BROWS], landmarks[CHIN]
    return np.vstack([landmarks, brows + height * (brows.mean(axis=0) - chin)])


def destination(source: np.ndarray, target: np.ndarray, jaw_blend: float = JAW_BLEND) -> np.ndarray:
    """Where the source's landmarks go on the target: the source's own shape, aligned to the
    target by a similarity transform (so the eyes, nose and mouth keep the source's
    proportions, which carry identity), its jaw line pulled ``jaw_blend`` of the way to the
    target's so the face fits the target's head."""
    similarity, _ = cv2.estimateAffinePartial2D(source, target, method=cv2.LMEDS)
    if similarity is None:  # degenerate landmarks: follow the target's exactly
        return target.astype(np.float32)
    aligned = source @ similarity[:, :2].T + similarity[:, 2]
    aligned[JAW] = aligned[JAW] * (1 - jaw_blend) + target[JAW] * jaw_blend
    return aligned.astype(np.float32)


class ClassicalSwapper(Swapper):
    """Delaunay warp + LAB colour match + seamless clone + feathered hull (see module doc)."""

    name: ClassVar[str] = "classical"

    def swap(self, source: SourceFace, frame: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        height, width = frame.shape[:2]
        src_points = with_forehead(source.face.landmarks)
        dst_points = with_forehead(destination(source.face.landmarks, landmarks))
        warped = warp_triangles(source.image, src_points, dst_points, delaunay(dst_points),
                                (height, width))
        mask = np.zeros((height, width), dtype=np.uint8)
        cv2.fillConvexPoly(mask, cv2.convexHull(np.round(dst_points).astype(np.int32)), 255)
        scale = max(4, round(_eye_distance(landmarks) / 8))
        core = cv2.erode(mask, np.ones((scale, scale), np.uint8))
        if not core.any():
            return frame.copy()
        recoloured = match_colour(warped, frame, core)
        alpha = cv2.GaussianBlur(core.astype(np.float32) / 255, (0, 0), scale / 2)[..., None]
        x, y, w, h = cv2.boundingRect(core)
        cloned = cv2.seamlessClone(recoloured, frame, core.copy(),  # OpenCV edits the mask
                                   (x + w // 2, y + h // 2), cv2.NORMAL_CLONE)
        return np.clip(cloned * alpha + frame * (1 - alpha), 0, 255).astype(np.uint8)


def _eye_distance(landmarks: np.ndarray) -> float:
    return float(np.linalg.norm(landmarks[RIGHT_EYE].mean(axis=0)
                                - landmarks[LEFT_EYE].mean(axis=0)))


#: Swappers ``[faceswap] swapper`` may name.
SWAPPERS: dict[str, type[Swapper]] = {ClassicalSwapper.name: ClassicalSwapper}


def make_swapper(name: str = "classical") -> Swapper:
    """The swapper ``name`` (``ValueError`` for one this build does not have)."""
    if name not in SWAPPERS:
        raise ValueError(f"unknown swapper {name!r}; available: {', '.join(SWAPPERS)}")
    return SWAPPERS[name]()
