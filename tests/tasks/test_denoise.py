"""Denoising on latents: the noise models' statistics, output size and type, no codec synthesis, the CLI."""

from __future__ import annotations

import numpy as np
import pytest

import openjai
from openjai.cli import main
from openjai.errors import DataError
from openjai.tasks.denoise import PG_A, PG_B, add_noise, noise_std


def _flat(level: int) -> np.ndarray:
    return np.full((256, 256, 3), level, np.uint8)


@pytest.mark.parametrize("sigma", [15, 25, 50])
def test_gaussian_noise_has_its_sigma(sigma):
    clean = _flat(128)  # far from 0 and 255: clipping is negligible up to σ 50 (2.5 σ)
    d = add_noise(clean, f"gaussian{sigma}", np.random.default_rng(sigma)).astype(np.float64) - 128
    assert abs(d.mean()) < 0.3
    # rounding to integers adds a variance of 1/12; 196608 samples: relative error of the std ~0.2 %
    assert np.sqrt(d.var() - 1 / 12) == pytest.approx(sigma, rel=0.02)
    assert noise_std(f"gaussian{sigma}", clean) == sigma


@pytest.mark.parametrize("level", [64, 128, 160])  # ≥ 3 σ from 0 and 255: clipping negligible
def test_poisson_gaussian_variance_follows_the_signal(level):
    clean = _flat(level)
    noisy = add_noise(clean, "poisson-gaussian", np.random.default_rng(level)).astype(np.float64)
    x = level / 255
    assert noisy.mean() == pytest.approx(level, abs=0.3)
    expected = (PG_A * x + PG_B) * 255**2 + 1 / 12
    assert noisy.var() == pytest.approx(expected, rel=0.03)
    assert noise_std("poisson-gaussian", clean) == pytest.approx(np.sqrt(PG_A * x + PG_B) * 255, rel=1e-9)


def test_unknown_noise_model_is_refused():
    with pytest.raises(DataError, match="unknown noise model"):
        noise_std("salt", _flat(10))


@pytest.fixture(scope="module")
def noisy_stream(sample_crop: np.ndarray) -> bytes:
    return openjai.encode(add_noise(sample_crop[:56, :88], "gaussian25", np.random.default_rng(0)), quality=40)


def test_denoise_has_the_stream_size_without_synthesis(noisy_stream, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("the codec's synthesis was called")

    monkeypatch.setattr(openjai.load_model("base").model.g_s, "forward", fail)
    monkeypatch.setattr("openjai.codec.coder._synthesize", fail)
    out = openjai.tasks.denoise(noisy_stream)
    assert out.dtype == np.uint8 and out.shape == (56, 88, 3)


def test_denoised_is_smoother_than_the_decoded_noisy_image(noisy_stream):
    """Less high-frequency energy (neighbour differences) than the decoded noisy image."""
    def roughness(a: np.ndarray) -> float:
        return float(np.abs(np.diff(a.astype(np.float64), axis=1)).mean())

    assert roughness(openjai.tasks.denoise(noisy_stream)) < 0.9 * roughness(openjai.decode(noisy_stream))


def test_cli_writes_the_png_and_bad_input_writes_nothing(noisy_stream, tmp_path, capsys):
    src, dst = tmp_path / "in.jai", tmp_path / "out.png"
    src.write_bytes(noisy_stream)
    assert main(["task", "denoise", str(src), "-o", str(dst)]) == 0
    assert openjai.image.load(dst).rgb.shape == (56, 88, 3)
    bad, bad_out = tmp_path / "bad.jai", tmp_path / "bad.png"
    bad.write_bytes(noisy_stream[: len(noisy_stream) // 2])
    capsys.readouterr()
    assert main(["task", "denoise", str(bad), "-o", str(bad_out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("openjai: error: ") and err.count("\n") == 1 and not bad_out.exists()
