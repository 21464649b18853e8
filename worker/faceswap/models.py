"""dlib's landmark and face-recognition networks, loaded once per process from
``face-recognition-models`` (no download): the 68-point shape predictor and the ResNet that maps
an aligned face to a 128-d descriptor (same person: Euclidean distance below 0.6)."""

from __future__ import annotations

from functools import cache

import dlib
import face_recognition_models


@cache
def shape_predictor() -> dlib.shape_predictor:
    """The 68-point landmark model (iBUG 300-W layout)."""
    return dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())


@cache
def face_recognizer() -> dlib.face_recognition_model_v1:
    """dlib's face-recognition ResNet (99.38 % on LFW)."""
    return dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())


def preload() -> None:
    """Load both networks now (a worker's start-up), so the first clip does not wait."""
    shape_predictor()
    face_recognizer()
