"""``python -m worker protect`` end to end (real models, real files)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "worker", *args], capture_output=True, text=True, cwd=cwd,
        timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_protect_writes_png_and_report(tmp_path, astronaut):
    src = tmp_path / "in.jpg"
    small = Image.fromarray(astronaut).resize((192, 192))
    exif = Image.Exif()
    exif[0x8825] = {2: (1.0, 2.0, 3.0)}  # GPS latitude: must not survive
    small.save(src, quality=95, exif=exif)
    out, rep = tmp_path / "out.png", tmp_path / "report.json"
    done = _run("protect", str(src), "-o", str(out), "-s", "1", "--report", str(rep), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(rep.read_text())
    assert report["strength"] == 1
    assert {"seconds", "ssim", "psnr", "faces", "detectors"} <= set(report)
    roles = {row["role"] for row in report["detectors"].values()}
    assert roles == {"surrogate", "evaluator"}
    for row in report["detectors"].values():
        assert {"original", "protected", "jpeg85", "half"} <= set(row)
    with Image.open(io.BytesIO(out.read_bytes())) as img:
        assert img.format == "PNG" and img.size == (192, 192) and img.mode == "RGB"
        assert not img.getexif() and "icc_profile" not in img.info
        assert np.asarray(img).shape == (192, 192, 3)


def test_protect_rejects_a_non_image_clearly(tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("this is not a photo")
    done = _run("protect", str(bad), "-o", str(tmp_path / "x.png"), cwd=tmp_path)
    assert done.returncode == 2
    assert "error:" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "x.png").exists()
