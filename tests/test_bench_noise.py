"""The benchmark's noise baseline at equal PSNR: same support, the asked-for PSNR."""

import numpy as np
from skimage.metrics import peak_signal_noise_ratio

from bench.protection import scaled_to_psnr


def test_noise_scaled_to_a_psnr_reaches_it_on_the_same_pixels():
    rng = np.random.default_rng(0)
    image = rng.integers(40, 216, (120, 160, 3)).astype(np.float32)
    budget = np.zeros_like(image)
    budget[30:90, 50:110] = 60.0  # a face box: noise only there, as the attack's change
    noise = rng.uniform(-1, 1, image.shape).astype(np.float32) * budget
    for target in (24.0, 28.5, 35.0):
        scaled = scaled_to_psnr(noise, target)
        assert np.array_equal(scaled == 0, noise == 0)
        noisy = np.clip(np.rint(image + scaled), 0, 255)
        assert abs(peak_signal_noise_ratio(image, noisy, data_range=255) - target) < 0.1


def test_zero_noise_stays_zero():
    assert not scaled_to_psnr(np.zeros((4, 4, 3), np.float32), 30.0).any()
