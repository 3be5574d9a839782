"""Complexity measurement: parameter sides, kMAC/pixel against a hand count, times, peak RSS.

No timing assertions: wall times are only checked to be positive and finite.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from openjai.eval.complexity import (
    DECODER_NETWORKS,
    ENCODER_NETWORKS,
    Complexity,
    PeakMemory,
    RssJob,
    cpu_seconds,
    kmac_per_pixel,
    measure_complexity,
    parameter_counts,
    peak_rss,
    photo,
    resolve_device,
    seconds_per_megapixel,
    total_parameters,
    weights_file,
)


def _numel(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_network_sides() -> None:
    # the hyper decoders run on both sides; the prior and scale table are never run while coding
    assert ENCODER_NETWORKS == ("g_a", "gain", "h_a", "h_mean", "h_scale", "context")
    assert DECODER_NETWORKS == ("h_mean", "h_scale", "context", "inverse_gain", "g_s")


def test_parameter_counts(shipped) -> None:
    m = shipped.model
    p = parameter_counts(m)
    ctx = 0 if m.context is None else _numel(m.context)
    assert p.context == ctx
    assert p.encoder == sum(_numel(getattr(m, n)) for n in ("g_a", "gain", "h_a", "h_mean", "h_scale")) + ctx
    assert p.decoder == sum(_numel(getattr(m, n)) for n in ("h_mean", "h_scale", "inverse_gain", "g_s")) + ctx
    assert p.gain == m.cfg.levels * m.cfg.latent_channels
    # everything except the factorized prior is on at least one side
    covered = p.g_a + p.gain + p.h_a + p.h_mean + p.h_scale + p.context + p.inverse_gain + p.g_s
    assert total_parameters(m) == covered + _numel(m.prior) > p.encoder > 0


def g_s_macs_per_pixel(n: int, m: int, width: int, height: int) -> float:
    """Hand count of g_s (transforms.synthesis) MACs per pixel.

    A k×k transposed conv with stride 2 costs Cin·Cout·k² MACs per *input* position; IGDN costs
    C² MACs (its 1×1 conv) per position of its input. Resolutions: latent (h/16, w/16) → h/8 →
    h/4 → h/2 → h.

        tconv M→N at h/16 : 25·M·N · P/256
        IGDN N   at h/8   :    N²  · P/64
        tconv N→N at h/8  : 25·N²  · P/64
        IGDN N   at h/4   :    N²  · P/16
        tconv N→N at h/4  : 25·N²  · P/16
        IGDN N   at h/2   :    N²  · P/4
        tconv N→3 at h/2  : 25·3N  · P/4          (P = w·h, a multiple of 64 in each side)
    """
    p = width * height
    total = (25 * m * n * p / 256 + n * n * p / 64 + 25 * n * n * p / 64 + n * n * p / 16
             + 25 * n * n * p / 16 + n * n * p / 4 + 25 * 3 * n * p / 4)
    return total / p


def test_g_s_kmac_matches_hand_count(shipped) -> None:
    cfg = shipped.model.cfg
    k = kmac_per_pixel(shipped.model, 768, 512)
    hand = g_s_macs_per_pixel(cfg.channels, cfg.latent_channels, 768, 512) / 1000
    assert k.g_s == pytest.approx(hand, rel=0.01)
    # same architecture mirrored: g_a costs what g_s costs
    assert k.g_a == pytest.approx(hand, rel=0.01)


def test_kmac_consistency(shipped) -> None:
    m = shipped.model
    k = kmac_per_pixel(m, 768, 512)
    assert k.gain == k.inverse_gain == 0
    assert k.encoder == pytest.approx(k.g_a + k.h_a + k.h_mean + k.h_scale + k.context)
    assert k.decoder == pytest.approx(k.h_mean + k.h_scale + k.context + k.g_s)
    assert k.encoder > k.g_a > 0 and k.decoder > k.g_s > 0
    # per-pixel cost does not depend on the size when no padding is needed
    assert kmac_per_pixel(m, 1536, 1024) == k
    # padding costs extra per image pixel
    assert kmac_per_pixel(m, 700, 500).decoder > k.decoder
    # the integer-exact path (unfold + float64 matmul) has the same MACs as the training path
    from torch.utils.flop_counter import FlopCounterMode

    z = torch.zeros(1, m.cfg.hyper_channels, 512 // 64, 768 // 64)
    with FlopCounterMode(display=False) as fc:
        m.h_scale.sigma_index(z)
    assert fc.get_total_flops() / 2 / (768 * 512) / 1000 == pytest.approx(k.h_scale, rel=0.01)
    # meta-device counting leaves the real model untouched
    assert next(m.parameters()).device.type == "cpu"


def test_photo_size() -> None:
    img = photo(96, 80)
    assert img.shape == (80, 96, 3) and img.dtype == np.uint8 and img.std() > 5


def test_seconds_per_megapixel() -> None:
    assert seconds_per_megapixel(2.0, 1000, 500) == pytest.approx(4.0)


def test_resolve_device() -> None:
    assert resolve_device("cpu") is None
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else None)
    with pytest.raises(ValueError):
        resolve_device("tpu")


def test_cpu_seconds(tiny) -> None:
    t = cpu_seconds(tiny, photo(64, 64), threads=1, quality=50, runs=1)
    assert t.threads == 1 and 0 < t.encode_s < math.inf and 0 < t.decode_s < math.inf
    assert torch.get_num_threads() >= 1


def test_peak_rss_plausible(tiny, tmp_path) -> None:
    import openjai

    rgb = photo(128, 96)
    data = openjai.encode(rgb, quality=50, model=tiny)
    # a big parent must not leak its high-water mark into the child's figure (see module docstring)
    ballast = np.ones(256 * 2**20 // 8)
    dec = peak_rss(RssJob("openjai", "decode", data, threads=1, weights=weights_file(tiny, tmp_path)))
    jpeg = peak_rss(RssJob("jpeg", "encode", rgb, quality=75))
    del ballast
    assert isinstance(dec, PeakMemory)
    assert 50 < dec.baseline_mib <= dec.peak_mib < 4096  # torch + model is tens to hundreds of MiB
    assert 5 < jpeg.peak_mib < 200  # Pillow + numpy only, no torch, no inherited 256 MiB
    assert jpeg.peak_mib < dec.baseline_mib


def test_measure_complexity(tiny) -> None:
    c = measure_complexity(tiny, 128, 64, device="cpu", threads=(1, 2), runs=1)
    assert isinstance(c, Complexity)
    assert c.width == 128 and c.height == 64 and c.num_bytes > 0 and c.gpu is None
    assert [t.threads for t in c.cpu] == [1, 2]
    assert all(t.encode_s > 0 and t.decode_s > 0 for t in c.cpu)
    assert c.params.encoder > 0 and c.params.decoder > 0 and c.params_total >= c.params.encoder
    assert c.kmac_per_pixel.encoder > 0 and c.kmac_per_pixel.decoder > 0
    assert c.rss_encode.peak_mib > 0 and c.rss_decode.peak_mib > 0
    assert "kMAC/pixel" in c.summary()
    with pytest.raises(ValueError):
        measure_complexity(tiny, 128, 64, device="cpu", image=np.zeros((10, 10, 3), np.uint8))


def test_context_kmac_matches_hand_count(shipped) -> None:
    """A checkerboard context adds its two branches (5×5 conv M→H, 1×1 conv H→M each, on the
    latent grid) to both sides."""
    import dataclasses

    from openjai.codec.model import Codec
    from openjai.train.widen import add_context

    plain = Codec(dataclasses.replace(shipped.model.cfg, context="none"))
    cfg = plain.cfg
    base = kmac_per_pixel(plain, 768, 512)
    k = kmac_per_pixel(add_context(plain, 32), 768, 512)
    hand = 2 * (25 * cfg.latent_channels * 32 + 32 * cfg.latent_channels) / 256 / 1000
    assert base.context == 0 and k.context == pytest.approx(hand, rel=0.01)
    assert k.decoder == pytest.approx(base.decoder + hand) and k.encoder == pytest.approx(base.encoder + hand)
