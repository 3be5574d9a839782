"""Growing a trained model (train/widen.py): the wider model starts where the old one was."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
import torch

from openjai.codec.config import TINY
from openjai.codec.model import Codec
from openjai.errors import ModelError
from openjai.train.checkpoint import load_model_from_checkpoint
from openjai.train.widen import widen
from test_train import _make_data


def _decode_path(model: Codec, x: torch.Tensor, beta: float):
    """μ, σ-index and reconstruction of the coding path (rounding, no noise)."""
    with torch.no_grad():
        b = torch.tensor([beta])
        y = model.g_a(x) * model.gain(b)
        z_hat = torch.round(model.h_a(y))
        mu = model.h_mean(z_hat)
        k = model.h_scale.sigma_index(z_hat)
        x_hat = model.g_s((torch.round(y - mu) + mu) * model.inverse_gain(b))
    return y, mu, k, x_hat


@pytest.mark.parametrize("beta", [0.0, 3.5, 7.0])
def test_widened_model_reconstructs_like_the_old_one(beta):
    torch.manual_seed(0)
    old = Codec(TINY).eval()
    new = widen(old, dataclasses.replace(TINY, channels=12, latent_channels=24)).eval()
    assert new.g_a[0].weight.shape[0] == 12 and new.g_s[0].weight.shape[0] == 24
    x = torch.rand(1, 3, 128, 192)
    y0, mu0, k0, x0 = _decode_path(old, x, beta)
    y1, mu1, k1, x1 = _decode_path(new, x, beta)
    m = TINY.latent_channels
    assert torch.allclose(y1[:, :m], y0, atol=1e-5)  # old latents unchanged
    assert torch.equal(mu1[:, m:], torch.zeros_like(mu1[:, m:]))
    assert torch.equal(k1[:, :m], k0)  # the old channels' entropy model is untouched
    # new latents enter g_s only through small weights: the picture barely moves
    assert ((x1 - x0) ** 2).mean() < 1e-5 * max(1.0, (x0**2).mean().item())


def test_widen_refuses_what_it_cannot_do():
    old = Codec(TINY)
    with pytest.raises(ModelError, match="smaller"):
        widen(old, dataclasses.replace(TINY, channels=4))
    with pytest.raises(ModelError, match="hyper_channels"):
        widen(old, dataclasses.replace(TINY, hyper_channels=16))


def test_train_cli_widens_a_warm_start(tmp_path, tiny_weights):
    data, run = tmp_path / "data", tmp_path / "run"
    _make_data(data)
    cmd = [sys.executable, "-m", "openjai.train", str(run), "--data", str(data), "--no-wallpapers", "--steps", "2",
           "--crop", "64", "--batch", "2", "--threads", "1", "--init", str(tiny_weights), "--widen", "12", "24"]
    subprocess.run(cmd, check=True, capture_output=True)
    model, step = load_model_from_checkpoint(run / "checkpoint.safetensors")
    assert step == 2 and (model.cfg.channels, model.cfg.latent_channels) == (12, 24)
    r = subprocess.run(cmd[:3] + [str(tmp_path / "run2"), "--widen", "12", "24"], capture_output=True, text=True)
    assert r.returncode != 0 and "need --init" in r.stderr
