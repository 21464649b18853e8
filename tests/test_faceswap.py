"""Deepfake comparison clip (issue 5): extraction, the moving target, the swap carrying the
source's identity, the MP4, the no-face path and the ``clip`` job.

Second identities: scikit-image ships only one usable portrait (``astronaut``, the target), so
the source faces come from its ``lfw_subset`` (Labeled Faces in the Wild crops, 25x25 grey,
enlarged): real, different people, blurry but found by dlib HOG. With ``../shared/faces``
present, the same checks run on real photos too.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
import pytest
from skimage import data

from common.jobs import ClipRequest, ClipResult, Progress
from worker.faceswap import captions, identity, target
from worker.faceswap.clip import CAPTION_H, GAP, INSET, MAX_BYTES, MAX_HEIGHT, make_clip
from worker.faceswap.extract import FaceExtractor, SurrogateDetectorError
from worker.faceswap.swapper import ClassicalSwapper, SourceFace, make_swapper
from worker.faceswap.video import encode_mp4
from worker.imageio import decode_image, encode_png

from .conftest import ASTRONAUT_FACE

SHARED_FACES = Path(__file__).resolve().parents[2] / "shared" / "faces"
#: LFW subset faces of three different people (pairwise dlib distances 0.73-0.84).
SOURCE, OTHER = 2, 6
FPS = 20


def lfw_face(index: int) -> np.ndarray:
    """LFW subset face ``index`` enlarged to a 320x320 RGB photo (the face about 190 px)."""
    grey = cv2.resize((data.lfw_subset()[index] * 255).astype(np.uint8), (200, 200),
                      interpolation=cv2.INTER_CUBIC)
    return np.dstack([cv2.copyMakeBorder(grey, 60, 60, 60, 60, cv2.BORDER_REPLICATE)] * 3)


@pytest.fixture(scope="module")
def extractor() -> FaceExtractor:
    return FaceExtractor("dlib_hog")


@pytest.fixture(scope="module")
def short_sequence() -> list[target.TargetFrame]:
    return target.frames(fps=5, seconds=1.6)  # 8 frames spread over the whole motion


def _decode(video: bytes, tmp_path: Path) -> tuple[dict, list[np.ndarray]]:
    path = tmp_path / f"{uuid.uuid4().hex}.mp4"
    path.write_bytes(video)
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    width, height = meta["size"]
    return meta, [np.frombuffer(f, np.uint8).reshape(height, width, 3) for f in reader]


def _iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih
    return iw * ih / union


# --- Extraction ----------------------------------------------------------------------------------


def test_extraction_finds_the_astronaut_face_and_68_landmarks(extractor, astronaut):
    face = extractor.extract(astronaut)
    assert face is not None and face.detector == "dlib_hog"
    assert face.faces_found >= 2  # HOG also fires on the suit's patch: the largest face wins
    assert _iou(face.box, ASTRONAUT_FACE) > 0.5
    assert face.landmarks.shape == (68, 2)
    x0, y0, x1, y1 = ASTRONAUT_FACE
    inside = ((face.landmarks[:, 0] > x0 - 10) & (face.landmarks[:, 0] < x1 + 10)
              & (face.landmarks[:, 1] > y0 - 10) & (face.landmarks[:, 1] < y1 + 10))
    assert inside.all()
    left_eye, right_eye = face.landmarks[36:42].mean(0), face.landmarks[42:48].mean(0)
    assert left_eye[0] < right_eye[0] and abs(left_eye[1] - right_eye[1]) < 8
    assert 30 < face.eye_distance < 60


def test_extraction_of_a_photo_without_face_is_none(extractor, no_face):
    assert extractor.extract(no_face) is None


def test_only_non_surrogate_detectors_extract():
    for surrogate in ("mtcnn", "dlib_mmod"):
        with pytest.raises(SurrogateDetectorError):
            FaceExtractor(surrogate)
    with pytest.raises(ValueError, match="unknown clip detector"):
        FaceExtractor("haar")
    with pytest.raises(ValueError, match="unknown swapper"):
        make_swapper("inswapper")


def test_faceswap_config_refuses_surrogates_and_unknown_keys():
    from common.config import ConfigError, parse
    from worker.faceswap.settings import faceswap_config

    assert faceswap_config(parse({})).detector == "dlib_hog"
    with pytest.raises(ConfigError, match="surrogate"):  # dlib's CNN is one
        faceswap_config(parse({"faceswap": {"detector": "dlib_mmod"}}))
    with pytest.raises(ConfigError, match="surrogate"):
        faceswap_config(parse({"faceswap": {"detector": "blazeface_full"}}))
    with pytest.raises(ConfigError, match="unknown"):
        faceswap_config(parse({"faceswap": {"model": "x.onnx"}}))


# --- The moving target ---------------------------------------------------------------------------


def test_target_moves_smoothly_and_its_landmarks_follow_the_face(extractor):
    sequence = target.frames(fps=FPS, seconds=2.0)
    assert len(sequence) == 40
    assert all(f.image.shape == (target.SIZE, target.SIZE, 3) for f in sequence)
    centres = np.array([f.landmarks.mean(axis=0) for f in sequence])
    steps = np.linalg.norm(np.diff(centres, axis=0), axis=1)
    assert steps.max() < 6  # smooth: a few pixels per frame
    assert np.ptp(centres, axis=0).max() > 8  # but it does move
    sizes = [np.ptp(f.landmarks[:, 0]) for f in sequence]
    assert max(sizes) / min(sizes) > 1.08  # and zooms
    from worker.faceswap.extract import landmarks_in_box

    for frame in sequence[::10]:  # the transformed landmarks are where the face really is
        box = (*frame.landmarks.min(axis=0), *frame.landmarks.max(axis=0))
        refit = landmarks_in_box(frame.image, box)
        assert np.linalg.norm(refit - frame.landmarks, axis=1).mean() < 4.0


# --- The swap and the identity score -------------------------------------------------------------


def _identity_check(source_rgb, other_rgb, extractor, sequence):
    """Distances of swapped frames to the source and to another person, and of the
    swap-free target frames to the source."""
    face = extractor.extract(source_rgb)
    assert face is not None
    reference = identity.descriptor(source_rgb, face.landmarks)
    other_face = extractor.extract(other_rgb)
    other = identity.descriptor(other_rgb, other_face.landmarks)
    swapper = ClassicalSwapper()
    swapped = [swapper.swap(SourceFace(source_rgb, face), f.image, f.landmarks) for f in sequence]
    descriptors = [identity.descriptor(s, f.landmarks)
                   for s, f in zip(swapped, sequence, strict=True)]
    to_source = [identity.distance(reference, d) for d in descriptors]
    to_other = [identity.distance(other, d) for d in descriptors]
    untouched = [identity.distance(reference, identity.descriptor(f.image, f.landmarks))
                 for f in sequence]
    return to_source, to_other, untouched


def test_swap_carries_the_source_identity_onto_the_target(extractor, short_sequence):
    to_source, to_other, untouched = _identity_check(
        lfw_face(SOURCE), lfw_face(OTHER), extractor, short_sequence)
    same = identity.SAME_PERSON
    assert min(untouched) > same                       # the target is someone else...
    assert sum(d < same for d in to_source) >= 7       # ...until the source face is swapped in
    assert np.median(to_source) < np.median(untouched) - 0.2
    assert min(to_other) > same                        # and it is not just anyone's face


@pytest.mark.skipif(not SHARED_FACES.is_dir(), reason="../shared/faces not present")
def test_swap_of_real_photos_carries_their_identity(extractor, short_sequence):
    source = decode_image((SHARED_FACES / "deepface_img20.jpg").read_bytes()).rgb
    other = decode_image((SHARED_FACES / "3ddfa_JianzhuGuo.jpg").read_bytes()).rgb
    to_source, to_other, untouched = _identity_check(source, other, extractor, short_sequence)
    assert max(to_source) < 0.5 and min(untouched) > 0.7 and min(to_other) > 0.7


def test_swap_changes_only_the_face_region(extractor, short_sequence):
    source = lfw_face(SOURCE)
    frame = short_sequence[3]
    out = ClassicalSwapper().swap(SourceFace(source, extractor.extract(source)), frame.image,
                                  frame.landmarks)
    changed = np.abs(out.astype(int) - frame.image).max(axis=2) > 12
    x0, y0 = frame.landmarks.min(axis=0) - 40
    x1, y1 = frame.landmarks.max(axis=0) + 20
    assert changed.mean() > 0.03
    outside = changed.copy()
    outside[int(max(y0, 0)):int(y1), int(max(x0, 0)):int(x1)] = False
    assert outside.sum() == 0


def test_face_cut_by_the_border_is_swapped_from_what_is_visible(extractor, astronaut,
                                                                 short_sequence):
    cut = np.ascontiguousarray(astronaut[:, 215:])  # the left half of her face is outside
    face = extractor.extract(cut)
    assert face is not None and face.box[0] == 0 and face.landmarks[:, 0].min() < 10
    frame = short_sequence[0]
    out = ClassicalSwapper().swap(SourceFace(cut, face), frame.image, frame.landmarks)
    x0, y0 = frame.landmarks.min(axis=0).astype(int)
    x1, y1 = frame.landmarks.max(axis=0).astype(int)
    region = np.s_[y0:y1, x0:x1]
    assert out.shape == frame.image.shape and np.abs(out[region].astype(int)
                                                     - frame.image[region]).mean() > 3


# --- The clip ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def no_face_clip():
    """Original: an LFW face; 'protected': a photo without a face (the no-face path); the
    progress it reported is in ``PROGRESS``."""
    return make_clip(lfw_face(SOURCE), data.coffee(), seconds=2.0,
                     progress=lambda stage, fraction: PROGRESS.append((stage, fraction)))


PROGRESS: list[tuple[str, float]] = []


def test_clip_is_a_small_h264_mp4_of_the_right_size(no_face_clip, tmp_path):
    clip = no_face_clip
    assert clip.video[4:8] == b"ftyp" and len(clip.video) <= MAX_BYTES
    assert clip.video.find(b"moov") < clip.video.find(b"mdat")  # faststart: plays at once
    meta, frames = _decode(clip.video, tmp_path)
    assert meta["codec"] == "h264" and meta["pix_fmt"].startswith("yuv420p")
    assert meta["size"] == (2 * target.SIZE + GAP, target.SIZE + CAPTION_H)
    assert meta["size"][1] <= MAX_HEIGHT and meta["size"][0] % 2 == meta["size"][1] % 2 == 0
    assert meta["fps"] == FPS and abs(meta["duration"] - 2.0) < 0.11
    assert len(frames) == clip.frames == 40
    stages = [stage for stage, _ in PROGRESS]
    assert stages[0] == "extracting" and stages[-1] == "rendering"
    assert stages.count("swapping") >= 5  # every 10 swapped frames, and once per side
    fractions = [fraction for _, fraction in PROGRESS]
    assert fractions == sorted(fractions) and fractions[0] > 0 and fractions[-1] < 1


def test_no_face_side_says_so_and_shows_the_untouched_target(no_face_clip, tmp_path):
    clip = no_face_clip
    original, protected = clip.sides
    assert original.outcome == "same_person" and original.distance < identity.SAME_PERSON
    assert protected.outcome == "no_face" and protected.distance is None
    report = clip.report()
    assert report["protected"]["outcome"] == "no_face" and report["detector"] == "dlib_hog"
    assert captions.outcome_line("en", "no_face", None)[0] == "no face found — deepfake failed"
    _, frames = _decode(clip.video, tmp_path)
    sequence = target.frames(fps=FPS, seconds=2.0)
    for index in (5, 25):
        x0, y0 = np.floor(sequence[index].landmarks.min(axis=0)).astype(int)
        x1, y1 = np.ceil(sequence[index].landmarks.max(axis=0)).astype(int)
        assert y0 > INSET + 8  # the face is below the inset photo
        face = np.s_[y0:y1, x0:x1]
        truth = sequence[index].image[face].astype(int)
        left = frames[index][:, :target.SIZE][face].astype(int)
        right = frames[index][:, target.SIZE + GAP:][face].astype(int)
        assert np.abs(right - truth).mean() < 4   # protected side: no swap happened
        assert np.abs(left - truth).mean() > 15   # original side: the face was replaced


def test_captions_fall_back_to_english_without_a_hangul_font(monkeypatch):
    monkeypatch.setattr(captions, "hangul_font_path", lambda: None)
    assert captions.language("ko-KR") == "en"
    monkeypatch.setattr(captions, "hangul_font_path", lambda: "/some/font.ttf")
    assert captions.language("ko-KR") == "ko" and captions.language("en") == "en"
    text, _ = captions.outcome_line("ko", "same_person", 0.32)
    assert "0.32" in text and "딥페이크" in text


def test_pipe_output_is_a_fragmented_mp4_that_decodes(tmp_path):
    frames = [np.full((64, 96, 3), 10 * i, np.uint8) for i in range(10)]
    video = encode_mp4(frames, 10, in_memory_file=False)
    meta, decoded = _decode(video, tmp_path)
    assert meta["size"] == (96, 64) and len(decoded) == 10
    assert abs(int(decoded[9].mean()) - 90) < 4
    with pytest.raises(ValueError, match="even"):
        encode_mp4([np.zeros((63, 96, 3), np.uint8)], 10)


# --- The job -------------------------------------------------------------------------------------


class _NoEngine:
    def protect(self, *args, **kwargs):
        raise AssertionError("bad input must be rejected before protecting")


def test_clip_job_rejects_a_non_image():
    from worker.jobs import run_clip

    result = run_clip(_NoEngine(), ClipRequest("r1", b"this is not an image"))
    assert not result.ok and result.error == "not_an_image" and result.video == b""
    assert ClipResult.from_dict(result.to_dict()) == result


class _BlurringEngine:
    """Stands in for ProtectionEngine: the 'protected' photo is the photo blurred so much that
    no detector finds a face (what a perfect protection would do), with progress."""

    def protect(self, rgb, strength, *, seed=0, progress=None, extra_steps_until=None):
        from types import SimpleNamespace

        for step in range(3):
            progress(step / 3)
        blurred = cv2.GaussianBlur(rgb, (0, 0), 12)
        return SimpleNamespace(image=blurred, report={"strength": strength, "ssim": 0.5})


@pytest.mark.asyncio
async def test_clip_arq_job_on_the_slow_queue(redis_db, astronaut, tmp_path):
    from arq.connections import RedisSettings, create_pool

    from common import jobs
    from common.config import load
    from worker import service

    slow = service.settings_for("slow")
    assert slow.queue_name == jobs.SLOW_QUEUE
    assert [f.name for f in slow.functions] == [jobs.CLIP]
    pool = await create_pool(RedisSettings.from_dsn(redis_db))
    try:
        ctx = {"redis": pool, "executor": None, "config": load(), "job_id": "j", "job_try": 1,
               "engine": _BlurringEngine()}
        request = ClipRequest(f"test-{uuid.uuid4().hex}", encode_png(astronaut), strength=2,
                              locale="en")
        result = ClipResult.from_dict(await service.clip(ctx, request.to_dict()))
        progress = Progress.from_json(await pool.get(jobs.progress_key(request.request_id)))
    finally:
        await pool.close(close_connection_pool=True)
    assert result.ok, result.error_detail
    assert progress.stage == "done"
    assert result.report["original"]["outcome"] == "same_person"  # astronaut onto astronaut
    assert result.report["protected"]["outcome"] == "no_face"
    assert result.report["protection"]["strength"] == 2
    meta, frames = _decode(result.video, tmp_path)
    assert (result.width, result.height) == meta["size"] and len(frames) == 80
    assert result.seconds == 4.0


def test_clip_command_with_an_already_protected_photo(tmp_path, capsys):
    import json

    from worker.cli import main

    original, protected = tmp_path / "face.png", tmp_path / "blurred.png"
    original.write_bytes(encode_png(lfw_face(SOURCE)))
    protected.write_bytes(encode_png(cv2.GaussianBlur(lfw_face(SOURCE), (0, 0), 12)))
    out, report = tmp_path / "clip.mp4", tmp_path / "clip.json"
    assert main(["clip", str(original), "--protected", str(protected), "-o", str(out),
                 "--report", str(report), "--lang", "ko"]) == 0
    written = json.loads(report.read_text())
    assert written["original"]["outcome"] == "same_person"
    assert written["protected"]["outcome"] == "no_face"
    assert out.read_bytes()[4:8] == b"ftyp" and len(out.read_bytes()) == written["bytes"]
    printed = capsys.readouterr().out
    assert "protected: no_face" in printed and f"wrote {out}" in printed
    (tmp_path / "text.png").write_bytes(b"not an image")
    assert main(["clip", str(tmp_path / "text.png"), "--protected", str(protected),
                 "-o", str(out)]) == 2
