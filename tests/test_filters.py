"""Filters (issue 4): the registry, every filter's contract, the contact sheet, the variants job,
the CLI commands, and one filtered-then-protected white-box check."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image

from common.jobs import ProtectRequest, VariantsRequest, VariantsResult
from worker import filters
from worker.filters import contact_sheet
from worker.imageio import decode_image, encode_png

NAMES = filters.names()
OTHERS = [n for n in NAMES if n != "natural"]
HANGUL = re.compile("[\uac00-\ud7a3]")


def _jpeg(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    image.load()
    return image


def test_registry_lists_at_least_twelve_described_filters():
    assert len(NAMES) >= 12 and len(set(NAMES)) == len(NAMES) and NAMES[0] == "natural"
    for name in NAMES:
        f = filters.get(name)
        assert f.description.strip() and "\n" not in f.description
        assert filters.describe(name) == f.description
        assert f.label_en and filters.label(name, "en") == f.label_en
        assert HANGUL.search(filters.label(name, "ko-KR")), name


def test_unknown_filter_is_a_clear_key_error():
    with pytest.raises(KeyError) as caught:
        filters.apply("nope", np.zeros((4, 4, 3), np.uint8))
    assert isinstance(caught.value, filters.UnknownFilterError)
    assert "nope" in str(caught.value) and all(n in str(caught.value) for n in NAMES)
    assert filters.get("Soft-Skin").name == "soft_skin" and filters.get("none").name == "natural"


def test_bad_arrays_are_refused():
    with pytest.raises(ValueError):
        filters.apply("sepia", np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError):
        filters.apply("sepia", np.zeros((4, 4, 4), np.uint8))
    assert filters.apply("sepia", np.zeros((4, 5), np.uint8)).shape == (4, 5, 3)


@pytest.mark.parametrize("name", NAMES)
def test_filter_keeps_shape_and_is_deterministic(name, astronaut):
    before = astronaut.copy()
    a = filters.apply(name, astronaut)
    b = filters.apply(name, astronaut)
    assert a.shape == astronaut.shape and a.dtype == np.uint8 and a.flags.c_contiguous
    assert np.array_equal(a, b)
    assert np.array_equal(astronaut, before)  # the input is never modified
    assert a is not astronaut


@pytest.mark.parametrize("name", OTHERS)
def test_filter_changes_the_photo(name, astronaut):
    out = filters.apply(name, astronaut).astype(int)
    assert np.abs(out - astronaut).mean() > 0.25, name


def test_natural_is_the_identity(astronaut):
    assert np.array_equal(filters.apply("natural", astronaut), astronaut)


def test_soft_skin_changes_skin_and_leaves_the_background(astronaut):
    out = filters.apply("soft_skin", astronaut).astype(int)
    face = (slice(90, 170), slice(190, 260))    # cheeks and forehead of the astronaut
    flag = (slice(0, 60), slice(0, 60))         # the flag: no skin colours
    assert np.abs(out[face] - astronaut[face]).mean() > 1.0
    assert np.abs(out[flag] - astronaut[flag]).mean() < 0.5


@pytest.mark.parametrize("name", ["bw", "noir", "sketch"])
def test_monochrome_filters_are_grey(name, astronaut):
    out = filters.apply(name, astronaut).astype(int)
    spread = out.max(axis=2) - out.min(axis=2)
    assert spread.max() <= (40 if name == "sketch" else 0)  # sketch: paper tint only


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (20, 10000), (10000, 20), (3, 7)])
def test_tiny_and_extreme_shapes(name, shape):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    out = filters.apply(name, rgb)
    assert out.shape == rgb.shape and out.dtype == np.uint8


@pytest.mark.parametrize("name", NAMES)
def test_grayscale_expanded_input(name, astronaut):
    grey = np.repeat(astronaut.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
    out = filters.apply(name, grey)
    assert out.shape == grey.shape and out.dtype == np.uint8
    assert np.array_equal(out, filters.apply(name, grey[..., 0]))  # 2-D input: the same


def test_contact_sheet_grid(astronaut):
    sheet = _jpeg(contact_sheet.render(astronaut))
    t, pad, label = contact_sheet.THUMB, contact_sheet.PAD, contact_sheet.LABEL_H
    cols = rows = 4  # 14 filters on a square photo: a 4 x 4 grid of 240 px thumbnails
    assert len(NAMES) == 14
    assert sheet.size == (cols * t + (cols + 1) * pad, rows * (t + label) + (rows + 1) * pad)
    pixels = np.asarray(sheet.convert("RGB")).astype(int)
    grid = contact_sheet.layout(astronaut.shape, len(NAMES))

    def cell(name: str) -> np.ndarray:
        x, y = grid.origin(NAMES.index(name))
        return pixels[y + 20:y + t - 20, x + 20:x + t - 20]

    natural = np.asarray(Image.fromarray(astronaut).resize((t, t), Image.Resampling.BOX))
    assert np.abs(cell("natural") - natural[20:-20, 20:-20]).mean() < 6
    colour = cell("natural").max(axis=2) - cell("natural").min(axis=2)
    grey = cell("bw").max(axis=2) - cell("bw").min(axis=2)
    assert grey.mean() < 3 < colour.mean()  # the bw cell really holds the bw thumbnail


@pytest.mark.parametrize("shape", [(1, 1, 3), (20, 10000, 3), (900, 300, 3)])
def test_contact_sheet_any_shape(shape):
    rgb = np.full(shape, 120, np.uint8)
    grid = contact_sheet.layout(shape, len(NAMES))
    assert _jpeg(contact_sheet.render(rgb, "ko")).size == grid.size
    assert max(grid.thumb_w, grid.thumb_h) == contact_sheet.THUMB


def test_contact_sheet_without_hangul_font_uses_english(monkeypatch, astronaut):
    monkeypatch.setattr(contact_sheet, "hangul_font_path", lambda: None)
    assert contact_sheet._labels(["vintage"], "ko") == (["Vintage"], False)
    _jpeg(contact_sheet.render(astronaut[:64, :64], "ko"))


def test_run_variants_renders_the_sheet(astronaut):
    from worker.jobs import run_variants

    request = VariantsRequest("r1", encode_png(astronaut[:200, 150:350]), locale="ko")
    result = VariantsResult.from_dict(run_variants(request).to_dict())
    assert result.ok and result.names == NAMES and result.columns == 4
    assert result.labels == [filters.label(n, "ko") for n in NAMES]
    assert (result.width, result.height) == (200, 200)
    _jpeg(result.sheet)


def test_run_variants_rejects_a_non_image():
    from worker.jobs import run_variants

    result = run_variants(VariantsRequest("r2", b"this is not a photo"))
    assert result.error == "not_an_image" and not result.ok and result.sheet == b""
    assert run_variants(VariantsRequest("r3", b"")).error == "empty"


def test_run_protect_rejects_an_unknown_filter_before_protecting(astronaut):
    from worker.jobs import run_protect

    request = ProtectRequest("r4", encode_png(astronaut[:32, :32]), filter="sparkles")
    result = run_protect(None, request)  # type: ignore[arg-type]  # never reaches the engine
    assert result.error == "unknown_filter" and "sparkles" in result.error_detail


def test_cli_lists_and_applies_filters(tmp_path, capsys, astronaut):
    from worker.cli import main

    assert main(["filters"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == NAMES
    assert all(filters.describe(n) in line for n, line in zip(NAMES, lines, strict=True))

    src, out, sheet = tmp_path / "in.png", tmp_path / "o" / "sepia.png", tmp_path / "s.jpg"
    src.write_bytes(encode_png(astronaut[:100, :120]))
    assert main(["filter", "sepia", str(src), "-o", str(out)]) == 0
    expected = filters.apply("sepia", astronaut[:100, :120])
    assert np.array_equal(decode_image(out.read_bytes()).rgb, expected)
    assert main(["filters", "--sheet", str(sheet), str(src)]) == 0
    _jpeg(sheet.read_bytes())

    assert main(["filter", "nope", str(src), "-o", str(out)]) == 2
    assert "known filters: natural" in capsys.readouterr().err


def test_filtered_then_protected(fast_engine, astronaut):
    """The white-box check of tests/test_engine.py, on a vintage (faded, grainy) photo, through
    the protect job: the filter runs first and the report names it."""
    from worker.attack.profiles import TEST_PROFILE
    from worker.jobs import run_protect

    request = ProtectRequest("r5", encode_png(astronaut), filter="vintage", test_profile=True)
    result = run_protect(fast_engine, request)
    assert result.ok, result.error_detail
    filtered = filters.apply("vintage", astronaut)
    out = decode_image(result.png).rgb
    assert out.shape == astronaut.shape and not np.array_equal(out, filtered)
    assert np.abs(out.astype(int) - filtered.astype(int)).max() <= TEST_PROFILE.eps + 1
    report = result.report
    assert report["filter"] == "vintage"
    for name in TEST_PROFILE.surrogates:
        row = report["detectors"][name]
        assert row["role"] == "surrogate" and row["original"] == 1
        assert row["protected"] == 0, report


def test_benchmark_rewrites_only_its_own_section(tmp_path):
    from bench.filters import HEADER
    from bench.sections import write_section

    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Protection\n\ntable\n")
    write_section(doc, HEADER, f"{HEADER}\n\nold\n")
    doc.write_text(doc.read_text() + "\n## Later\n\nkept\n")
    write_section(doc, HEADER, f"{HEADER}\n\nnew\n")
    text = doc.read_text()
    assert text.startswith("# Protection\n\ntable\n") and text.count(HEADER) == 1
    assert "new" in text and "old" not in text and text.endswith("## Later\n\nkept\n")
