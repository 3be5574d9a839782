"""Checkerboard context (codec/context.py): exact two-pass coding, integer-exact σ branch,
a warm start that codes like the model it grew from, and training with it."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors import safe_open

from openjai.codec import coder
from openjai.codec.config import TINY
from openjai.codec.container import ColourMode, parse
from openjai.codec.context import ANCHOR_TAPS, KERNEL, R_CTX_LIMIT, anchor_mask, unpack_taps
from openjai.codec.model import Codec
from openjai.codec.scale_decoder import ACT_BITS, ACT_LIMIT, WEIGHT_BITS
from openjai.codec.weights import export, load_codec_weights
from openjai.errors import ModelError
from openjai.train.checkpoint import load_model_from_checkpoint
from openjai.train.widen import add_context
from test_train import _make_data

from conftest import psnr


def _random_context_model() -> Codec:
    """A tiny checkerboard model whose context networks are random (not zero), so they act."""
    torch.manual_seed(3)
    model = Codec(dataclasses.replace(TINY, context="checkerboard", context_hidden=8))
    with torch.no_grad():
        model.context.mean[-1].weight.normal_(0, 0.1)
        model.context.scale[-1].weight.normal_(0, 0.3)
        model.context.scale[-1].bias.normal_(0, 2.0)
    return model


@pytest.fixture(scope="module")
def tiny_ctx(tmp_path_factory):
    path = tmp_path_factory.mktemp("ctx") / "ctx.safetensors"
    export(_random_context_model(), path)
    return load_codec_weights(path)


def test_weights_file_keeps_only_live_taps(tiny_ctx, tmp_path):
    """The first-layer kernels are stored as their 12 anchor taps; the model loaded from them
    computes what the trained one (random weights at every tap) computes."""
    trained = _random_context_model()
    export(trained, tmp_path / "w.safetensors")
    with safe_open(str(tmp_path / "w.safetensors"), framework="pt") as f:
        keys = set(f.keys())
        assert f.get_tensor("model.context.scale.0.weight.anchor_taps").shape == (8, TINY.latent_channels, 12)
    assert "model.context.mean.0.weight" not in keys and "model.context.mean.0.weight.anchor_taps" in keys
    loaded = load_codec_weights(tmp_path / "w.safetensors").model
    live = torch.zeros(KERNEL, KERNEL, dtype=torch.bool)
    for dy, dx in ANCHOR_TAPS:
        live[dy, dx] = True
    for a, b in ((trained.context.mean[0], loaded.context.mean[0]), (trained.context.scale[0], loaded.context.scale[0])):
        assert torch.equal(a.weight[:, :, live], b.weight[:, :, live])
        assert not b.weight[:, :, ~live].any() and a.weight[:, :, ~live].abs().min() > 0
    gen = torch.Generator().manual_seed(0)
    y = torch.randn(1, TINY.latent_channels, 6, 8, generator=gen) * 4
    mu, t = torch.randn(y.shape, generator=gen), torch.rand(y.shape, generator=gen) * 40
    with torch.no_grad():
        for u, v in zip(trained.context(y, mu, t), loaded.context(y, mu, t)):
            torch.testing.assert_close(u, v, rtol=0, atol=1e-5)
    r = torch.round(y) * anchor_mask(6, 8)
    assert torch.equal(trained.context.fixed_scale_offset(r), loaded.context.fixed_scale_offset(r))
    bad = {"w.anchor_taps": torch.zeros(2, 3, 11)}
    with pytest.raises(ValueError, match="12"):
        unpack_taps(bad)


def _int64_scale_offset(ctx, r: np.ndarray) -> np.ndarray:
    """ctx_σ in numpy int64 (exact by construction)."""
    x = np.clip(r.astype(np.int64), -R_CTX_LIMIT, R_CTX_LIMIT)
    for i, conv in enumerate(ctx.scale):
        in_bits = 0 if i == 0 else ACT_BITS
        w = np.round(conv.weight.detach().numpy().astype(np.float64) * 2**WEIGHT_BITS).astype(np.int64)
        b = np.round(conv.bias.detach().numpy().astype(np.float64) * 2 ** (WEIGHT_BITS + in_bits)).astype(np.int64)
        k = w.shape[-1]
        n, c, h, width = x.shape
        xp = np.pad(x, ((0, 0), (0, 0), (k // 2, k // 2), (k // 2, k // 2)))
        acc = np.zeros((n, w.shape[0], h, width), dtype=np.int64) + b.reshape(1, -1, 1, 1)
        for dy in range(k):
            for dx in range(k):
                acc += np.einsum("oc,nchw->nohw", w[:, :, dy, dx], xp[:, :, dy : dy + h, dx : dx + width])
        shift = WEIGHT_BITS + in_bits - ACT_BITS
        x = (acc + (1 << (shift - 1))) >> shift
        if i == 0:
            x = x.clip(0, ACT_LIMIT)
    return x.clip(-ACT_LIMIT, ACT_LIMIT)


def test_scale_branch_is_integer_exact(tiny_ctx):
    ctx = tiny_ctx.model.context
    rng = np.random.default_rng(0)
    anchors = anchor_mask(6, 7).numpy()
    r = rng.integers(-300, 301, size=(1, TINY.latent_channels, 6, 7)) * anchors
    ref = _int64_scale_offset(ctx, r) * ~anchors  # the offset is used (and computed) at non-anchors only
    for threads in (1, 2):
        torch.set_num_threads(threads)
        np.testing.assert_array_equal(ctx.fixed_scale_offset(torch.from_numpy(r)).numpy(), ref)


def test_two_pass_round_trip(tiny_ctx, sample_rgb):
    """Every decoded residual is the encoder's; the σ-indices are those the training path
    computes (up to fake-quantization ties), and the context does change them."""
    lc, model = tiny_ctx, tiny_ctx.model
    rgb = sample_rgb[:150, :230]
    beta = 7.0
    data = coder.Encoder(lc, rgb, ColourMode.RGB, None).code(beta)
    lat = coder.decode_latents(lc, parse(data))
    with torch.no_grad():
        x = coder._padded_uint8(rgb).float() / 255.0
        y = model.g_a(x) * model.gain(torch.tensor([beta]))
        z_hat = torch.round(model.h_a(y))
        mu_h, t_h = model.hyper(z_hat)
        mu, t = model.latent_parameters(y, mu_h, t_h)
        k_train = model.h_scale.index_from_t(t)
    assert torch.equal(lat.z_hat, z_hat.to(torch.int32))
    assert (lat.sigma_index.long() == k_train.long()).float().mean() > 0.99
    assert (lat.sigma_index.long() != model.h_scale.sigma_index(z_hat)).any(), "the context changed no σ-index"
    # the coder's μ is computed tile by tile, so a residual may round the other way at a tie
    assert (lat.residual == torch.round(y - mu)).float().mean() > 0.999
    assert lat.residual.abs().max() > 0
    assert coder.reconstruct(lc, lat).shape == rgb.shape
    assert coder.Encoder(lc, rgb, ColourMode.RGB, None).code(beta) == data  # deterministic


def test_effort_refines_a_context_model(tiny_ctx, sample_rgb):
    rgb = sample_rgb[:64, :96]
    lc = tiny_ctx
    data = coder.Encoder(lc, rgb, ColourMode.RGB, None, effort=1).code(5.0)
    out = coder.reconstruct(lc, coder.decode_latents(lc, parse(data)))
    assert out.shape == rgb.shape


def test_zero_context_codes_like_its_base(shipped, sample_rgb, tmp_path):
    """add_context keeps the model's function: same latents, same image, same size but for the
    range coder's extra flush of the second pass."""
    # a context-free model with trained transforms: the shipped one without its context
    plain = Codec(dataclasses.replace(shipped.model.cfg, context="none"))
    plain.load_state_dict({k: v for k, v in shipped.model.state_dict().items() if not k.startswith("context.")})
    export(plain, tmp_path / "plain.safetensors")
    export(add_context(plain, 16), tmp_path / "ctx.safetensors")
    base, grown = load_codec_weights(tmp_path / "plain.safetensors"), load_codec_weights(tmp_path / "ctx.safetensors")
    rgb = sample_rgb[:128, :192]
    a = coder.Encoder(base, rgb, ColourMode.RGB, None).code(4.0)
    b = coder.Encoder(grown, rgb, ColourMode.RGB, None).code(4.0)
    la, lb = coder.decode_latents(base, parse(a)), coder.decode_latents(grown, parse(b))
    assert torch.equal(la.residual, lb.residual) and torch.equal(la.sigma_index, lb.sigma_index)
    np.testing.assert_array_equal(coder.reconstruct(base, la), coder.reconstruct(grown, lb))
    with pytest.raises(ModelError, match="already has a context"):
        add_context(grown.model, 16)
    assert abs(len(a) - len(b)) <= 16
    assert psnr(coder.reconstruct(grown, lb), rgb) > 20


def test_train_cli_adds_a_context(tmp_path, tiny_weights):
    data, run = tmp_path / "data", tmp_path / "run"
    _make_data(data)
    cmd = [sys.executable, "-m", "openjai.train", str(run), "--data", str(data), "--no-wallpapers", "--steps", "2",
           "--crop", "64", "--batch", "2", "--threads", "1", "--init", str(tiny_weights), "--context", "checkerboard"]
    subprocess.run(cmd, check=True, capture_output=True)
    model, step = load_model_from_checkpoint(run / "checkpoint.safetensors")
    assert step == 2 and model.cfg.context == "checkerboard"
    assert model.context.scale[-1].weight.abs().sum() > 0, "the context networks were not trained"
    cmd[cmd.index("--steps") + 1] = "4"
    subprocess.run(cmd, check=True, capture_output=True)  # resumes (two optimizer groups)
    assert load_model_from_checkpoint(run / "checkpoint.safetensors")[1] == 4
