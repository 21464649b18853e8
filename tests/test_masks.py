"""Where the perturbation may go: the budget maps of worker.attack.masks."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
from skimage import data
from skimage.metrics import structural_similarity

from worker.attack.masks import budget_map, ssim_budget
from worker.attack.profiles import profile_for
from worker.detectors.base import Face


@pytest.mark.parametrize("local_ssim", [0.6, 0.8, 0.9])
def test_ssim_budget_keeps_each_window_near_the_target(local_ssim: float) -> None:
    """A random +-budget change scores about ``local_ssim`` in SSIM's own windows: at least
    that on average (a pixel gets its strictest window's budget), and few windows below."""
    rgb = data.astronaut()
    budget = ssim_budget(rgb, local_ssim)
    signs = np.random.default_rng(0).choice([-1.0, 1.0], rgb.shape[:2])
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float64)
    mean, windows = structural_similarity(grey, grey + budget * signs, data_range=255, full=True)
    assert local_ssim <= mean <= local_ssim + 0.15
    assert np.percentile(windows, 5) >= local_ssim - 0.05


def test_ssim_budget_follows_texture_and_is_capped_by_eps() -> None:
    rng = np.random.default_rng(1)
    halves = np.full((64, 128, 3), 128, np.uint8)
    halves[:, 64:] = rng.integers(60, 200, (64, 64, 1))  # flat grey | grey noise (std ~40)
    budget = ssim_budget(halves, 0.8)
    flat, textured = budget[8:56, 8:52].mean(), budget[8:56, 76:120].mean()
    # d = sqrt((1/s - 1)(2 var + C2)): 3.8 on the flat half, ~29 in the noise.
    assert flat == pytest.approx(3.82, abs=0.1) and textured > 5 * flat
    rgb = data.astronaut()
    face = Face(180, 40, 300, 200)
    profile = replace(profile_for(3), eps=12.0, local_ssim=0.8)
    capped = budget_map(rgb, [face], profile)[..., 0]
    assert capped.max() <= 12.0 + 1e-6
    assert capped[120, 240] > 0 and capped[500, 20] == 0  # on the face, far from it
