"""Denoising from the entropy-decoded latents of a coded noisy image (no codec g_s).

    noisy photo ─encode─▶ .jai ─decode_latents─▶ ŷ ─LatentImageNet (g_s-shaped)─▶ clean RGB

The network (image_net.py) starts from a copy of ``base``'s g_s and is fine-tuned on
(ŷ of the coded noisy image → the clean image) over the noise models below (train_image.py).

Noise models, on images in [0, 1], rounded and clipped to 8 bits (what gets coded):
    ``gaussian15|25|50``   x + N(0, (σ/255)²)
    ``poisson-gaussian``   PG_A · Poisson(x / PG_A) + N(0, PG_B): mean x, variance PG_A·x + PG_B
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from .image_net import run_task

TASK = "denoise"
PG_A = 0.02  # Poisson gain: 50 photo-electrons at full scale
PG_B = (10 / 255) ** 2  # read noise variance
NOISE_MODELS = ("gaussian15", "gaussian25", "gaussian50", "poisson-gaussian")


def noise_std(model: str, clean: np.ndarray) -> float:
    """The noise's standard deviation in 8-bit units (for P-G: the root of its mean variance over ``clean``)."""
    if model == "poisson-gaussian":
        return 255.0 * float(np.sqrt(PG_A * clean.astype(np.float64).mean() / 255.0 + PG_B))
    sigma = model.removeprefix("gaussian")
    if model.startswith("gaussian") and sigma.replace(".", "", 1).isdigit():
        return float(sigma)
    raise DataError(f"unknown noise model {model!r}: use one of {', '.join(NOISE_MODELS)} or gaussianN")


def add_noise(clean: np.ndarray, model: str, rng: np.random.Generator) -> np.ndarray:
    """``clean`` (uint8) with noise of ``model`` added, rounded and clipped to uint8."""
    x = clean.astype(np.float64) / 255.0
    if model == "poisson-gaussian":
        noisy = PG_A * rng.poisson(x / PG_A) + rng.normal(0.0, np.sqrt(PG_B), x.shape)
    else:
        noisy = x + rng.normal(0.0, noise_std(model, clean) / 255.0, x.shape)
    return np.clip(np.rint(noisy * 255.0), 0, 255).astype(np.uint8)


def denoise(data: bytes) -> np.ndarray:
    """The clean image (uint8 RGB, the stream's size) from the latents of a coded noisy image."""
    return run_task(TASK, data, 1)
