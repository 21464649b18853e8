"""Evaluator role: a declared ONNX model run with onnxruntime exactly as its tools run it."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from worker.detectors.base import Detector, Face
from worker.models.model import OnnxModel
from worker.models.preprocess import place, to_input


class OnnxDetector(Detector):
    """Preprocess (family defaults + config), run on CPU, decode, NMS, map back to the photo."""

    def __init__(self, model: OnnxModel) -> None:
        self.model = model
        self.name = model.name  # type: ignore[misc]  # per instance: the config's name
        self.description = (  # type: ignore[misc]
            f"{model.family.name} ONNX model {model.path.name} (operator-supplied, onnxruntime)")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(
            str(model.path), options, providers=["CPUExecutionProvider"])
        self.output_names = [o.name for o in self.session.get_outputs()]

    def detect(self, rgb: np.ndarray) -> list[Face]:
        height, width = rgb.shape[:2]
        if height == 0 or width == 0:
            return []
        model = self.model
        placement = place(height, width, model.preprocessing)
        blob = to_input(np.ascontiguousarray(rgb, np.uint8), placement, model.preprocessing)
        outputs = dict(zip(self.output_names, self.session.run(None, {model.input_name: blob}),
                           strict=True))
        found = placement.to_image(model.family.decode(outputs, placement.input_hw,
                                                       model.threshold))
        found = found.take(model.family.suppress(found, model.nms_iou))
        faces = []
        for (x0, y0, x1, y1), score in zip(found.boxes, found.scores, strict=True):
            x0, x1 = np.clip([x0, x1], 0, width)
            y0, y1 = np.clip([y0, y1], 0, height)
            if x1 > x0 and y1 > y0:
                faces.append(Face(float(x0), float(y0), float(x1), float(y1), float(score)))
        return faces
