"""Growing a trained model (train/widen.py): the wider model, or the one with more rate points,
starts where the old one was."""

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
from openjai.train import widen as widen_module
from openjai.train.widen import extend_rates, widen
from test_train import _make_data


def _context_model() -> Codec:
    torch.manual_seed(0)
    model = Codec(dataclasses.replace(TINY, context="checkerboard", context_hidden=8)).eval()
    with torch.no_grad():  # a trained context model is not zero
        for p in model.context.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def _coding_path(model: Codec, x: torch.Tensor, beta: float):
    """y, μ and t after the context, and the reconstruction (rounding, no noise)."""
    b = torch.tensor([beta])
    with torch.no_grad():
        y = model.g_a(x) * model.gain(b)
        mu, t = model.hyper(torch.round(model.h_a(y)))
        mu, t = model.latent_parameters(y, mu, t)
        return y, mu, t, model.g_s((torch.round(y - mu) + mu) * model.inverse_gain(b))


@pytest.mark.parametrize("beta", [0.0, 3.5, 7.0])
@pytest.mark.parametrize("context", [False, True])
def test_widened_model_reconstructs_like_the_old_one(beta, context, monkeypatch):
    """N 8 → 12 and M 16 → 24: old latents unchanged, each new latent a copy of its source
    with the same μ and t, the same picture; the split noise makes the copies differ a little."""
    monkeypatch.setattr(widen_module, "SPLIT_NOISE", 0.0)
    torch.manual_seed(0)
    old = _context_model() if context else Codec(TINY).eval()
    new = widen(old, dataclasses.replace(old.cfg, channels=12, latent_channels=24)).eval()
    assert new.g_a[0].weight.shape[0] == 12 and new.g_s[0].weight.shape[0] == 24
    x = torch.rand(1, 3, 128, 192)
    y0, mu0, t0, x0 = _coding_path(old, x, beta)
    y1, mu1, t1, x1 = _coding_path(new, x, beta)
    m = TINY.latent_channels
    src = widen_module._split_sources(old, 8)
    assert len(set(src.tolist())) == 8
    assert torch.allclose(y1[:, :m], y0, atol=1e-5) and torch.allclose(y1[:, m:], y0[:, src], atol=1e-5)
    assert torch.allclose(mu1[:, :m], mu0, atol=1e-4) and torch.allclose(mu1[:, m:], mu0[:, src], atol=1e-4)
    # ctx_σ's weights are fake-quantized: shared halves round differently by at most a few steps
    assert torch.allclose(t1[:, :m], t0, atol=0.05) and torch.allclose(t1[:, m:], t0[:, src], atol=0.05)
    assert torch.allclose(x1, x0, atol=1e-4)
    monkeypatch.undo()
    noisy = widen(old, dataclasses.replace(old.cfg, channels=12, latent_channels=24)).eval()
    y2 = _coding_path(noisy, x, beta)[0]
    assert not torch.equal(y2[:, m:], y0[:, src]) and torch.allclose(y2[:, m:], y0[:, src], rtol=0.1, atol=0.1)


def test_widen_refuses_what_it_cannot_do():
    old = Codec(TINY)
    with pytest.raises(ModelError, match="smaller"):
        widen(old, dataclasses.replace(TINY, channels=4))
    with pytest.raises(ModelError, match="hyper_channels"):
        widen(old, dataclasses.replace(TINY, hyper_channels=16))
    with pytest.raises(ModelError, match="context"):
        widen(old, dataclasses.replace(TINY, channels=12, context="checkerboard"))


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
    r = subprocess.run(cmd[:3] + [str(tmp_path / "run3"), "--extend-rates", "1", "1"], capture_output=True, text=True)
    assert r.returncode != 0 and "need --init" in r.stderr


def test_extended_ladder_codes_the_old_points_alike():
    """Old β b is new β b + below, bit for bit; the ladder keeps its spacing at both ends and
    the new points' gains continue the old ones'."""
    torch.manual_seed(0)
    old = Codec(TINY).eval()
    with torch.no_grad():  # per-channel gains that differ, as a trained model's do
        old.gain.log_gain.add_(0.1 * torch.randn_like(old.gain.log_gain))
    new = extend_rates(old, 2, 1).eval()
    lams = old.cfg.lambdas
    assert new.cfg.levels == old.cfg.levels + 3 and new.cfg.lambdas[2:-1] == lams
    assert new.cfg.lambdas[0] == pytest.approx(lams[0] * (lams[0] / lams[1]) ** 2, rel=1e-5)
    assert new.cfg.lambdas[-1] == pytest.approx(lams[-1] * lams[-1] / lams[-2], rel=1e-5)
    x = torch.rand(1, 3, 128, 128)
    for beta in (0.0, 2.5, old.cfg.levels - 1.0):
        for a, b in zip(_coding_path(old, x, beta), _coding_path(new, x, beta + 2)):
            assert torch.equal(a, b)
    g = new.gain.log_gain.detach()
    assert torch.allclose(g[1] - g[0], g[3] - g[2]) and torch.allclose(g[-1] - g[-2], g[-2] - g[-3])
    with pytest.raises(ModelError, match="at least one"):
        extend_rates(old, 0, 0)
