"""Encoder effort levels (rate-distortion latent refinement): decoder unchanged, cost never raised."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

import openjai
from openjai.codec import refine
from openjai.codec.coder import Encoder, _hyper_t, _mean, _padded_uint8, _sigma_index
from openjai.codec.container import ColourMode
from openjai.codec.distortion import distortion, kind_for_size
from openjai.codec.scale_decoder import ACT_BITS
from openjai.codec.entropy import gaussian_likelihood
from openjai.errors import OpenJAIError

from conftest import psnr


def _estimated_cost(lc, x, y, mu, k, beta, kind: str) -> float:
    """J(y') of refine.py on the whole image: λ·pixels·D + bits of the rounded residual."""
    model = lc.model
    r = torch.round(y - mu)
    with torch.no_grad():
        x_hat = model.g_s((r + mu) * model.inverse_gain(torch.tensor([beta]))).clamp(0, 1)
        d = distortion(x_hat, x.float() / 255.0, kind).item()
        bits = -torch.log2(gaussian_likelihood(r, model.scales.scale(k.float()))).sum().item()
    return refine.lambda_at(model, beta) * x.shape[-2] * x.shape[-1] * d + bits


def _latents(lc, rgb, beta):
    model = lc.model
    x = _padded_uint8(rgb)
    with torch.no_grad():
        y = model.g_a(x.float() / 255.0) * model.gain(torch.tensor([beta]))
        z_hat = torch.round(model.h_a(y)).to(torch.int32)
        t_fixed = _hyper_t(lc, z_hat)
        mu = _mean(lc, z_hat)
    return x, y, mu, _sigma_index(lc, t_fixed), t_fixed.float() / 2**ACT_BITS


@pytest.mark.parametrize("tile", [refine.TILE, 2])
def test_refinement_lowers_estimated_cost(shipped, sample_rgb, monkeypatch, tile):
    """Per tile the best iterate is kept, so the whole-image cost cannot rise; with the shipped
    model it must actually fall (2-latent tiles exercise the tiling and the halo)."""
    monkeypatch.setattr(refine, "TILE", tile)
    rgb = sample_rgb[:96, :160]
    beta = 4.0
    x, y, mu, k, t = _latents(shipped, rgb, beta)
    kind = kind_for_size(shipped.model.cfg.distortion, *rgb.shape[:2])  # too small for MS-SSIM
    before = _estimated_cost(shipped, x, y, mu, k, beta, kind)
    refined = refine.refine_latents(shipped.model, x, y, mu, t, beta, iterations=10)
    after = _estimated_cost(shipped, x, refined, mu, k, beta, kind)
    assert refined.shape == y.shape and not refined.requires_grad
    assert after < before * 0.999
    assert torch.equal(refine.refine_latents(shipped.model, x, y, mu, t, beta, iterations=0), y)


def test_refinement_minimises_the_models_distortion(shipped, sample_rgb, monkeypatch):
    """Refinement lowers J measured with the distortion the weights file names (MS-SSIM
    included when the region is large enough), and lowers it more than refining for another
    distortion does."""
    rgb = sample_rgb[:192, :256]
    beta = 4.0
    x, y, mu, k, t = _latents(shipped, rgb, beta)
    refined = {}
    for kind in ("mse", "ycbcr-mse+msssim"):
        monkeypatch.setattr(shipped.model, "cfg", dataclasses.replace(shipped.model.cfg, distortion=kind))
        refined[kind] = refine.refine_latents(shipped.model, x, y, mu, t, beta, iterations=10)
    for kind, other in (("mse", "ycbcr-mse+msssim"), ("ycbcr-mse+msssim", "mse")):
        own = _estimated_cost(shipped, x, refined[kind], mu, k, beta, kind)
        assert own < _estimated_cost(shipped, x, y, mu, k, beta, kind) * 0.999
        assert own < _estimated_cost(shipped, x, refined[other], mu, k, beta, kind)


def test_effort_stream_decodes_with_unchanged_decoder(shipped, sample_rgb):
    rgb = sample_rgb[:80, :112]
    # without the adaptive filter, whose fit to the refined latents may trade PSNR for bytes
    base = openjai.encode(rgb, quality=60, adaptive_filter=False)
    refined = openjai.encode(rgb, quality=60, effort=1, adaptive_filter=False)
    assert refined != base  # the latents were changed ...
    out = openjai.decode(refined)  # ... and the ordinary decoder reads them
    assert out.shape == rgb.shape
    assert openjai.read_info(refined).rate == openjai.read_info(base).rate
    # the same effort gives the same bytes (refinement is deterministic)
    assert openjai.encode(rgb, quality=60, effort=1, adaptive_filter=False) == refined
    assert psnr(out, rgb) > psnr(openjai.decode(base), rgb) - 0.5


def test_effort_with_rate_control(sample_rgb):
    rgb = sample_rgb[:96, :128]
    data = openjai.encode(rgb, bpp=0.5, effort=1)
    assert openjai.read_info(data).bpp <= 0.5 * 1.10


def test_lambda_interpolates_the_ladder(tiny):
    lams = tiny.model.cfg.lambdas
    assert refine.lambda_at(tiny.model, 0.0) == pytest.approx(lams[0])
    assert refine.lambda_at(tiny.model, len(lams) - 1.0) == pytest.approx(lams[-1])
    assert refine.lambda_at(tiny.model, 2.5) == pytest.approx(math.sqrt(lams[2] * lams[3]))
    for beta in (0.0, 2.5, 3.0, len(lams) - 1.0):
        assert refine.beta_at(tiny.model, refine.lambda_at(tiny.model, beta)) == pytest.approx(beta)
    assert refine.beta_at(tiny.model, lams[-1] * 10) == len(lams) - 1  # clamped to the ladder


@pytest.mark.parametrize("bad", [-1, 4, 1.5, True, "2"])
def test_bad_effort_is_refused(tiny, bad):
    with pytest.raises(OpenJAIError, match="effort"):
        Encoder(tiny, np.zeros((8, 8, 3), np.uint8), ColourMode.RGB, None, effort=bad)
