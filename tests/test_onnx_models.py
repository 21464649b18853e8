"""Operator-supplied ONNX detectors (issue 8): config validation, family decoders, the ONNX-in-TF
executor, the evaluator and surrogate roles, and a protection run with SCRFD as a surrogate.

Tests that need real models read ``../shared/models`` (never copied into the repository) and
skip when it is absent; decoders and the executor are also checked on synthetic tensors/graphs.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import tensorflow as tf
from onnx import TensorProto, helper, numpy_helper

from tests.conftest import ASTRONAUT_FACE
from worker.detectors import load as load_detector
from worker.models.config import ModelConfigError, ModelSpec, parse_models
from worker.models.families.base import Detections, greedy_nms
from worker.models.families.retinaface import RetinaFace, priors
from worker.models.families.scrfd import Scrfd
from worker.models.families.yolo_face import YoloFace
from worker.models.families.yunet import YuNet
from worker.models.onnx_tf import OnnxGraph, UnsupportedOnnxGraph

SHARED_MODELS = Path(__file__).resolve().parents[1].parent / "shared" / "models"
SCRFD_FILE = SHARED_MODELS / "scrfd_2.5g_kps.onnx"
YUNET_FILE = SHARED_MODELS / "face_detection_yunet_2026may.onnx"
needs_scrfd = pytest.mark.skipif(not SCRFD_FILE.is_file(), reason="../shared/models absent")
needs_yunet = pytest.mark.skipif(not YUNET_FILE.is_file(), reason="../shared/models absent")


def iou(box, ref) -> float:
    iw = min(box[2], ref[2]) - max(box[0], ref[0])
    ih = min(box[3], ref[3]) - max(box[1], ref[1])
    inter = max(iw, 0) * max(ih, 0)
    area = (box[2] - box[0]) * (box[3] - box[1]) + (ref[2] - ref[0]) * (ref[3] - ref[1])
    return inter / (area - inter)


# -- config -----------------------------------------------------------------------------------


@pytest.fixture()
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "models" / "det.onnx"
    path.parent.mkdir()
    path.write_bytes(b"not read while validating")
    return path


def entry(**overrides) -> dict:
    return {"name": "det", "path": "models/det.onnx", "family": "scrfd", "role": "surrogate",
            **overrides}


def test_config_entry_resolves_relative_paths_and_overrides(model_file: Path) -> None:
    specs = parse_models({"models": [entry(threshold=0.6, mean=127.5, input_size=[480, 320],
                                           loss_sizes=[480], weight=3)]}, model_file.parents[1])
    spec = specs["det"]
    assert spec.path == model_file.resolve() and spec.family == "scrfd"
    assert spec.threshold == 0.6 and spec.mean == (127.5, 127.5, 127.5)
    assert spec.input_size == (480, 320) and spec.loss_sizes == (480,) and spec.nms is None
    assert spec.weight == 3.0


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (entry(path="models/missing.onnx"), "model file not found"),
        (entry(family="mtcnn"), "family must be one of scrfd, retinaface, yunet, yolo-face"),
        (entry(role="judge"), "role must be one of surrogate, evaluator"),
        (entry(name="haar"), "'haar' is already used"),
        (entry(threshold=1.5), "threshold must be a number between 0 and 1"),
        (entry(std=[1, 0, 1]), "std must not be 0"),
        (entry(colour="rgb"), "unknown key(s) ['colour']"),
        (entry(weight=0), "weight must be a number in (0, 10]"),
        (entry(weight="3"), "weight must be a number in (0, 10]"),
        (entry(weight=11), "weight must be a number in (0, 10]"),
        ({"name": "det", "family": "scrfd", "role": "evaluator"}, "'path' is required"),
    ],
)
def test_config_errors_name_the_entry(model_file: Path, bad: dict, message: str) -> None:
    with pytest.raises(ModelConfigError) as error:
        parse_models({"models": [bad]}, model_file.parents[1])
    assert message in str(error.value)
    assert f"#1 ({bad.get('name', 'no name')!r})" in str(error.value)


def test_config_reports_every_bad_entry_at_once(model_file: Path) -> None:
    models = [entry(), entry(), entry(name="other", family="dlib")]
    with pytest.raises(ModelConfigError) as error:
        parse_models({"models": models}, model_file.parents[1])
    text = str(error.value)
    assert "#2 ('det'): name 'det' is already used" in text and "#3 ('other')" in text


def write_config(tmp_path: Path, models: list[dict]) -> Path:
    lines = []
    for m in models:
        lines.append("[[detectors.models]]")
        lines += [f"{k} = {v!r}".replace("'", '"') for k, v in m.items()]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_startup_fails_once_with_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    from worker.attack.profiles import default_surrogates

    config = write_config(tmp_path, [entry(name="gone", path="nowhere/det.onnx")])
    monkeypatch.setenv("DFB_CONFIG", str(config))
    with pytest.raises(ModelConfigError, match=r"'gone'.*model file not found"):
        default_surrogates()


def test_default_sets_add_declared_models_by_role(monkeypatch, model_file: Path) -> None:
    from worker.attack import profiles

    other = model_file.with_name("other.onnx")
    other.write_bytes(b"")
    config = write_config(model_file.parents[1], [
        entry(name="extra_surrogate"),
        entry(name="extra_evaluator", path="models/other.onnx", family="yunet", role="evaluator"),
    ])
    monkeypatch.setenv("DFB_CONFIG", str(config))
    assert profiles.default_surrogates() == (*profiles.SURROGATES, "extra_surrogate")
    assert profiles.default_evaluators() == (*profiles.EVALUATORS, "extra_evaluator")
    assert profiles.profile_for(3).surrogates == ()  # the engine's whole set


@needs_yunet
def test_a_model_of_another_family_is_a_startup_error() -> None:
    from worker.models.model import OnnxModel

    with pytest.raises(ModelConfigError, match=r"'wrong'.*SCRFD models have 6, 9, 10 or 15"):
        OnnxModel.load(ModelSpec("wrong", YUNET_FILE, "scrfd", "evaluator"))


# -- decoders on synthetic outputs ----------------------------------------------------------


def test_retinaface_decoder_hand_computed_box() -> None:
    family = RetinaFace([("loc", (1, None, 4)), ("conf", (1, None, 2)), ("landms", (1, None, 10))])
    n = 8 * 8 * 2 + 4 * 4 * 2 + 2 * 2 * 2  # 64x64 input: priors at strides 8, 16, 32
    assert len(priors(64, 64)) == n
    loc, conf, landms = np.zeros((1, n, 4)), np.tile([0.9, 0.1], (1, n, 1)), np.zeros((1, n, 10))
    k = 128 + (1 * 4 + 2) * 2 + 1  # stride 16, row 1, col 2, min size 128: prior (.625, .375, 2, 2)
    loc[0, k] = [0.5, -0.25, math.log(0.5) / 0.2, 0.0]
    conf[0, k] = [0.2, 0.8]
    landms[0, k, :2] = [1.0, 0.0]
    found = family.decode({"loc": loc, "conf": conf, "landms": landms}, (64, 64), 0.6)
    # centre (.625 + .5 * .1 * 2, .375 - .25 * .1 * 2) = (.725, .325); size (2 * .5, 2 * 1)
    np.testing.assert_allclose(found.boxes, [[14.4, -43.2, 78.4, 84.8]], atol=1e-4)
    np.testing.assert_allclose(found.scores, [0.8])
    np.testing.assert_allclose(found.keypoints[0, 0], [52.8, 24.0], atol=1e-4)


def test_retinaface_logits_come_from_the_skipped_softmax() -> None:
    family = RetinaFace([("loc", (1, 3, 4)), ("conf", (1, 3, 2)), ("landms", (1, 3, 10))])
    conf = tf.constant([[[0.0, 2.0], [1.0, -1.0], [3.0, 3.0]]])
    np.testing.assert_allclose(family.face_logits({"conf": conf}, {"conf": "softmax"}),
                               [[2.0, -2.0, 0.0]])
    probs = tf.nn.softmax(conf, axis=-1)
    np.testing.assert_allclose(family.face_logits({"conf": probs}, {}), [[2.0, -2.0, 0.0]],
                               atol=1e-4)


def test_yolo_face_decoder_hand_computed_box() -> None:
    family = YoloFace([("out", (1, 20, 3))])
    out = np.zeros((1, 20, 3), np.float32)
    out[0, :5, 1] = [100, 80, 40, 60, 0.9]  # centre (100, 80), size 40x60, score 0.9
    out[0, 5:8, 1] = [90, 70, 0.99]  # first keypoint x, y, visibility
    out[0, 4, 2] = 0.5  # not above the 0.5 threshold (FaceFusion keeps score > threshold)
    found = family.decode({"out": out}, (640, 640), 0.5)
    np.testing.assert_allclose(found.boxes, [[80, 50, 120, 110]])
    np.testing.assert_allclose(found.keypoints[0, 0], [90, 70])
    np.testing.assert_allclose(found.scores, [0.9])
    transposed = YoloFace([("out", (1, 3, 20))])
    same = transposed.decode({"out": out.transpose(0, 2, 1)}, (640, 640), 0.5)
    np.testing.assert_allclose(same.boxes, found.boxes)
    np.testing.assert_allclose(family.face_logits({"out": tf.constant(out)}, {})[0, 1],
                               math.log(0.9 / 0.1), rtol=1e-4)


def test_scrfd_decoder_hand_computed_box() -> None:
    names = [f"o{k}" for k in range(9)]
    family = Scrfd([(n, (1, None, w)) for n, w in zip(names, [1] * 3 + [4] * 3 + [10] * 3,
                                                         strict=True)])
    hw = (64, 64)
    outputs = {}
    for k, stride in enumerate((8, 16, 32)):
        n = (64 // stride) ** 2 * 2
        outputs[names[k]] = np.zeros((1, n, 1), np.float32)
        outputs[names[3 + k]] = np.ones((1, n, 4), np.float32)
        outputs[names[6 + k]] = np.zeros((1, n, 10), np.float32)
    index = (2 * 4 + 1) * 2 + 1  # stride 16, row 2, col 1, second anchor: centre (16, 32)
    outputs["o1"][0, index] = 0.7
    outputs["o4"][0, index] = [0.5, 1.0, 1.5, 2.0]
    found = family.decode(outputs, hw, 0.5)
    np.testing.assert_allclose(found.boxes, [[8, 16, 40, 64]])
    np.testing.assert_allclose(found.keypoints[0], [[16, 32]] * 5)


def test_yunet_decoder_hand_computed_box() -> None:
    family = YuNet([(f"{h}_{s}", (1, None, w)) for h, w in (("cls", 1), ("obj", 1), ("bbox", 4),
                                                           ("kps", 10)) for s in (8, 16, 32)])
    outputs = {}
    for s in (8, 16, 32):
        n = (64 // s) * (96 // s)  # input 64 high, 96 wide
        for head, width in (("cls", 1), ("obj", 1), ("bbox", 4), ("kps", 10)):
            outputs[f"{head}_{s}"] = np.zeros((1, n, width), np.float32)
    k = 1 * 6 + 4  # stride 16: 6 columns; row 1, col 4
    outputs["cls_16"][0, k], outputs["obj_16"][0, k] = 1.0, 0.81  # score sqrt(.81) = .9
    outputs["bbox_16"][0, k] = [0.5, 0.25, math.log(2.0), 0.0]
    found = family.decode(outputs, (64, 96), 0.9)
    # centre ((4 + .5) * 16, (1 + .25) * 16) = (72, 20); size (32, 16)
    np.testing.assert_allclose(found.boxes, [[56, 12, 88, 28]], atol=1e-4)
    np.testing.assert_allclose(found.scores, [0.9], atol=1e-6)


def test_greedy_nms_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], np.float32)
    scores = np.array([0.8, 0.9, 0.7], np.float32)
    assert greedy_nms(boxes, scores, 0.4).tolist() == [1, 2]
    assert greedy_nms(boxes, scores, 0.9).tolist() == [1, 0, 2]
    found = Detections(boxes, scores)
    assert found.take(np.array([2])).boxes.tolist() == [[20, 20, 30, 30]]


# -- the ONNX -> TF executor on small synthetic graphs -------------------------------------


def _const(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def _graph_cases() -> dict[str, tuple[list, list, tuple[int, int, int, int]]]:
    rng = np.random.default_rng(0)
    w = lambda *shape: rng.normal(0, 0.5, shape).astype(np.float32)  # noqa: E731
    x = "x"
    return {
        "conv_groups_strides_pads": ([
            helper.make_node("Conv", [x, "w1", "b1"], ["a"], group=2, strides=[2, 1],
                             pads=[1, 0, 2, 1], dilations=[1, 2]),
            helper.make_node("Conv", ["a", "w2"], ["y"], group=4, strides=[2, 2],
                             pads=[1, 1, 1, 1]),
        ], [_const("w1", w(4, 2, 3, 3)), _const("b1", w(4)), _const("w2", w(8, 1, 3, 3))],
            (1, 4, 13, 11)),
        "pools_ceil_and_pads": ([
            helper.make_node("AveragePool", [x], ["a"], kernel_shape=[3, 3], strides=[2, 2],
                             ceil_mode=1, pads=[1, 1, 0, 0]),
            helper.make_node("AveragePool", [x], ["b"], kernel_shape=[2, 2], strides=[2, 2],
                             ceil_mode=1, pads=[1, 0, 1, 1], count_include_pad=1),
            helper.make_node("MaxPool", [x], ["c"], kernel_shape=[3, 2], strides=[2, 2],
                             pads=[1, 0, 1, 1], ceil_mode=1),
            helper.make_node("GlobalAveragePool", ["c"], ["d"]),
            helper.make_node("Flatten", ["a"], ["y"]),
        ], [], (2, 3, 9, 7)),
        "bn_prelu_resize_concat_split_softmax": ([
            helper.make_node("BatchNormalization", [x, "s", "bb", "m", "v"], ["a"]),
            helper.make_node("PRelu", ["a", "slope"], ["p"]),
            helper.make_node("Resize", ["p", "", "scales"], ["up"], mode="linear",
                             coordinate_transformation_mode="half_pixel"),
            helper.make_node("Resize", ["p", "", "", "sizes"], ["down"], mode="nearest"),
            helper.make_node("Resize", ["down", "", "scales"], ["up2"], mode="nearest",
                             coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
            helper.make_node("Concat", ["p", "up2"], ["cat"], axis=1),
            helper.make_node("Split", ["cat"], ["s1", "s2"], axis=1),
            helper.make_node("Mul", ["s1", "chan"], ["mul"]),
            helper.make_node("Softmax", ["mul"], ["y"], axis=1),
            helper.make_node("Transpose", ["up"], ["t"], perm=[0, 2, 3, 1]),
            helper.make_node("Reshape", ["t", "shape"], ["z"]),
        ], [_const("s", w(4)), _const("bb", w(4)), _const("m", w(4)),
            _const("v", np.abs(w(4)) + 0.5), _const("slope", w(4, 1, 1)),
            _const("scales", np.array([1, 1, 2, 2], np.float32)),
            _const("sizes", np.array([1, 4, 3, 4], np.int64)),
            _const("chan", w(1, 4, 1, 1)), _const("shape", np.array([1, -1, 4], np.int64))],
            (1, 4, 6, 8)),
        "shape_arithmetic_slice_pad": ([
            helper.make_node("Shape", [x], ["sh"]),
            helper.make_node("Gather", ["sh", "three"], ["h"], axis=0),
            helper.make_node("Unsqueeze", ["h", "zero"], ["h1"]),
            helper.make_node("Concat", ["neg", "h1"], ["target"], axis=0),
            helper.make_node("Slice", [x, "st", "en", "ax"], ["sl"]),
            helper.make_node("Pad", ["sl", "pads"], ["pd"], mode="constant"),
            helper.make_node("Sigmoid", ["pd"], ["sg"]),
            helper.make_node("Reshape", ["sg", "target"], ["y"]),
        ], [_const("three", np.array(3, np.int64)), _const("zero", np.array([0], np.int64)),
            _const("neg", np.array([-1], np.int64)), _const("st", np.array([1, 2], np.int64)),
            _const("en", np.array([3, 100], np.int64)), _const("ax", np.array([1, 3], np.int64)),
            _const("pads", np.array([0, 0, 1, 0, 0, 0, 0, 2], np.int64))], (1, 3, 5, 6)),
    }


@pytest.mark.parametrize("case", list(_graph_cases()))
def test_executor_matches_onnxruntime_on_synthetic_graphs(case: str, tmp_path: Path) -> None:
    nodes, inits, shape = _graph_cases()[case]
    outputs = [n for node in nodes for n in node.output if n in ("y", "z", "d", "b")]
    graph = helper.make_graph(
        nodes, case, [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    data = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"x": data})
    onnx.save(model, tmp_path / "m.onnx")
    got = OnnxGraph(tmp_path / "m.onnx")(tf.constant(data.transpose(0, 2, 3, 1)))
    for name, want in zip(outputs, expected, strict=True):
        assert got[name].shape == want.shape, name
        np.testing.assert_allclose(got[name].numpy(), want, atol=2e-5, err_msg=name)


def test_executor_names_unsupported_ops_at_load(tmp_path: Path) -> None:
    node = helper.make_node("Einsum", ["x", "x"], ["y"], equation="ij,jk->ik")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, (2, 2))], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, None)])
    onnx.save(helper.make_model(graph), tmp_path / "m.onnx")
    with pytest.raises(UnsupportedOnnxGraph, match="Einsum"):
        OnnxGraph(tmp_path / "m.onnx")


# -- real models (../shared/models) -----------------------------------------------------------


@pytest.fixture(scope="module")
def scrfd_model():
    from worker.models.model import OnnxModel

    return OnnxModel.load(ModelSpec("scrfd_test", SCRFD_FILE, "scrfd", "surrogate"))


@needs_scrfd
def test_scrfd_evaluator_finds_the_astronaut(scrfd_model, astronaut, no_face) -> None:
    from worker.models.detector import OnnxDetector

    detector = OnnxDetector(scrfd_model)
    faces = detector.detect(astronaut)
    assert len(faces) == 1 and faces[0].score > 0.5
    assert iou((faces[0].x0, faces[0].y0, faces[0].x1, faces[0].y1), ASTRONAUT_FACE) > 0.6
    assert detector.detect(no_face) == []
    assert detector.name == "scrfd_test" and "scrfd" in detector.description


@needs_scrfd
def test_scrfd_surrogate_matches_onnxruntime_and_has_gradients(scrfd_model, astronaut) -> None:
    from worker.models.preprocess import place, to_input
    from worker.models.surrogate import OnnxSurrogate

    surrogate = OnnxSurrogate(scrfd_model)
    assert surrogate.graph.activations == {f"out{k}": "sigmoid" for k in range(3)}
    placement = place(512, 512, scrfd_model.preprocessing)
    blob = to_input(astronaut, placement, scrfd_model.preprocessing)
    session = ort.InferenceSession(str(SCRFD_FILE), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    outputs = dict(zip(names, session.run(None, {"images": blob}), strict=True))
    reference = scrfd_model.family.anchor_scores(outputs)
    assert reference.shape == (16800,)
    logits = surrogate.logits_of_input(tf.constant(blob.transpose(0, 2, 3, 1)))
    assert np.abs(tf.sigmoid(logits).numpy()[0] - reference).max() < 1e-4
    image = tf.constant(astronaut[None].astype(np.float32))
    assert abs(float(surrogate.face_scores(image)[0]) - reference.max()) < 2e-3
    with tf.GradientTape() as tape:
        tape.watch(image)
        loss = surrogate.loss(image)
    grad = tape.gradient(loss, image).numpy()
    assert float(loss) > 0 and np.isfinite(grad).all() and np.abs(grad).max() > 0


@needs_yunet
@pytest.mark.parametrize("variant", ["astronaut", "odd_size", "two_faces"])
def test_yunet_evaluator_agrees_with_opencv(variant: str, astronaut) -> None:
    from worker.models.detector import OnnxDetector
    from worker.models.model import OnnxModel

    rgb = {"astronaut": astronaut, "odd_size": cv2.resize(astronaut, (301, 333)),
           "two_faces": np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)}[variant]
    ours = OnnxDetector(OnnxModel.load(ModelSpec("yunet_test", YUNET_FILE, "yunet", "evaluator")))
    faces = sorted(ours.detect(rgb), key=lambda f: f.x0)
    opencv = cv2.FaceDetectorYN.create(str(YUNET_FILE), "", (rgb.shape[1], rgb.shape[0]),
                                       0.9, 0.3, 5000)
    _, found = opencv.detect(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    found = sorted(found if found is not None else [], key=lambda f: f[0])
    assert len(faces) == len(found) == (2 if variant == "two_faces" else 1)
    for face, ref in zip(faces, found, strict=True):
        x, y, w, h = ref[:4]
        want = np.clip([x, y, x + w, y + h], 0, [rgb.shape[1], rgb.shape[0]] * 2)
        np.testing.assert_allclose([face.x0, face.y0, face.x1, face.y1], want, atol=0.05)
        assert abs(face.score - ref[14]) < 1e-3


@needs_scrfd
@needs_yunet
def test_protection_with_scrfd_as_surrogate_hides_the_face(tmp_path: Path, astronaut) -> None:
    from worker.attack.engine import ProtectionEngine
    from worker.attack.profiles import TEST_PROFILE
    from worker.imageio import jpeg_roundtrip

    name = "scrfd_protect_test"
    config = write_config(tmp_path, [
        {"name": name, "path": str(SCRFD_FILE), "family": "scrfd", "role": "surrogate",
         "loss_sizes": [640, 320]},
        {"name": "yunet_report_test", "path": str(YUNET_FILE), "family": "yunet",
         "role": "evaluator"},
    ])
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DFB_CONFIG", str(config))
        with pytest.raises(KeyError, match="known: .*yunet_report_test"):
            load_detector("not_declared")
        surrogates = (*TEST_PROFILE.surrogates, name)
        engine = ProtectionEngine(surrogates=surrogates, evaluators=("haar", "yunet_report_test"))
        # SCRFD letterboxes into 640x640: optimise at the photo's own 512 px, not a 256 px copy
        profile = dataclasses.replace(TEST_PROFILE, surrogates=surrogates, work_side=512)
        result = engine.protect(astronaut, profile)
    row = result.report["detectors"][name]
    assert row["role"] == "surrogate" and row["original"] == 1, result.report
    yunet = result.report["detectors"]["yunet_report_test"]
    assert yunet["role"] == "evaluator" and yunet["original"] == 1, result.report
    assert row["protected"] == 0 and row["jpeg85"] == 0, result.report
    scrfd = engine.verifier.detectors[name]
    assert scrfd.detect(jpeg_roundtrip(result.image, 85)) == []
