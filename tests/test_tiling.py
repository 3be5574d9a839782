"""Tiled networks compute what the whole-image networks compute (bounded memory, no seams)."""

from fractions import Fraction

import numpy as np
import pytest
import torch
from conftest import psnr

import openjai
from openjai.codec import coder
from openjai.codec.tiling import TilePlan, apply_tiled


@pytest.fixture(scope="module")
def latents(shipped, sample_rgb):
    torch.manual_seed(0)
    x = torch.from_numpy(np.tile(sample_rgb, (1, 1, 1))[:384, :576].transpose(2, 0, 1).copy())[None].float() / 255
    with torch.no_grad():
        y = shipped.model.g_a(x)
        z = torch.round(shipped.model.h_a(y)).int()
    return x, y, z


@pytest.mark.parametrize("point", ["base", "high"])
def test_analysis_and_synthesis_match_untiled(point, latents):
    """Small tiles with the shipped plans' halos (the networks' receptive-field radii) give the
    untiled outputs; a halo one alignment step smaller does not."""
    x, y, _ = latents
    m = openjai.load_model(point).model
    analysis, synthesis = coder.ANALYSIS, coder.SYNTHESIS
    with torch.no_grad():
        y_full, x_full = m.g_a(x), m.g_s(y)
        for halo_a, halo_s, close in ((analysis.halo, synthesis.halo, True),
                                      (analysis.halo - analysis.align, synthesis.halo - 1, False)):
            y_tiled = apply_tiled(m.g_a, x, TilePlan(Fraction(1, 16), tile=128, halo=halo_a, align=16))
            x_tiled = apply_tiled(m.g_s, y, TilePlan(Fraction(16), tile=8, halo=halo_s))
            assert torch.allclose(y_tiled, y_full, atol=1e-4) is close
            assert torch.allclose(x_tiled, x_full, atol=1e-4) is close


def test_hyper_networks_match_untiled(shipped, latents):
    _, y, z = latents
    m = shipped.model
    with torch.no_grad():
        assert torch.allclose(apply_tiled(m.h_a, y, TilePlan(Fraction(1, 4), tile=8, halo=16, align=4)), m.h_a(y),
                              atol=1e-4)
        plan = TilePlan(Fraction(4), tile=2, halo=3)
        assert torch.allclose(apply_tiled(lambda t: m.h_mean(t.float()), z, plan), m.h_mean(z.float()), atol=1e-4)
        # the exact path gives identical integers whatever the tiling
        assert torch.equal(apply_tiled(m.h_scale.sigma_index, z, plan), m.h_scale.sigma_index(z))


def test_tiled_codec_loses_nothing(monkeypatch, sample_rgb):
    img = np.ascontiguousarray(np.tile(sample_rgb, (2, 2, 1))[:700, :1100])  # ~0.8 MP

    def round_trips() -> list[np.ndarray]:
        # the base layer alone, and with the residual layer (which the encoder decides from
        # its own float reconstruction, so its choices may differ where the base moved)
        return [openjai.decode(openjai.encode(img, quality=60, residual=r)) for r in (False, True)]

    full = round_trips()
    monkeypatch.setattr(coder, "ANALYSIS", TilePlan(Fraction(1, 16), tile=256, halo=64, align=16))
    monkeypatch.setattr(coder, "SYNTHESIS", TilePlan(Fraction(16), tile=16, halo=4))
    monkeypatch.setattr(coder, "HYPER_ANALYSIS", TilePlan(Fraction(1, 4), tile=16, halo=16, align=4))
    monkeypatch.setattr(coder, "HYPER_SYNTHESIS", TilePlan(Fraction(4), tile=4, halo=3))
    tiled = round_trips()
    for a, b in zip(full, tiled):
        assert abs(psnr(img, a) - psnr(img, b)) <= 0.05
    assert np.abs(tiled[0].astype(int) - full[0].astype(int)).max() <= 2


def test_misaligned_plan_is_refused():
    with pytest.raises(ValueError):
        apply_tiled(lambda t: t, torch.zeros(1, 1, 40, 40), TilePlan(Fraction(1, 16), tile=24, halo=16, align=16))
