"""Grow a trained model instead of training a new one: wider (``widen``, Net2Net, Chen et al.
2016), with a context model (``add_context``) or with more rate points (``extend_rates``);
each starts from the trained model's function.

Training on 2 CPU cores makes every trained step precious, so a larger architecture starts
from the previous model instead of from scratch. ``widen(old, new_cfg)`` returns a model of
``new_cfg`` (more g_a/g_s channels N, more latent channels M) that reconstructs like ``old``:

* every old weight is copied into the top-left block of its new tensor;
* N: connections *from* a new channel *into* an old one are zero, so old activations are
  unchanged (GDN: an old channel's norm does not include new channels); connections into new
  channels keep their fresh random initialisation, so the new channels carry signal and
  receive gradients from the first step;
* M: each new latent channel is a *split* of a trained one (Net2WiderNet): it copies that
  channel's g_a filter (plus a little noise, so the two can diverge), gains, μ and σ outputs,
  and every network reading the latents (g_s, h_a, the context model) shares the channel's
  input weights equally between the copies, so it sees the same sum. The channels split are
  the ones with the largest reconstruction weight at the top rate.

The hyper networks' widths (Z, hidden sizes) must stay the same.

Measured (docs/training.md): new latents that started small instead (×0.05 in g_a and g_s)
collapsed within 2 800 steps (σ-index 0, no bits, no effect on the picture): a latent that
rounds to 0 gives its g_s weights no gradient. Split latents carry the signal of a trained
channel from step 0.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ..codec.config import CodecConfig
from ..codec.layers import GDN
from ..codec.model import Codec
from ..errors import ModelError

#: relative size of the noise added to a split latent's g_a filter (breaks the copies' symmetry)
SPLIT_NOISE = 0.01


def _copy_conv(old: nn.Conv2d, new: nn.Conv2d) -> None:
    """Conv2d weight (out, in, k, k): old block copied, new-in → old-out cut (zero)."""
    o, i = old.weight.shape[:2]
    new.weight[:o, i:] = 0.0
    new.weight[:o, :i] = old.weight
    if old.bias is not None:
        new.bias[:o] = old.bias


def _copy_tconv(old: nn.ConvTranspose2d, new: nn.ConvTranspose2d) -> None:
    """ConvTranspose2d weight (in, out, k, k): same rule as :func:`_copy_conv`."""
    i, o = old.weight.shape[:2]
    new.weight[i:, :o] = 0.0
    new.weight[:i, :o] = old.weight
    new.bias[:o] = old.bias


def _copy_gdn(old: GDN, new: GDN) -> None:
    """Old block copied; an old channel's norm ignores new channels and vice versa."""
    c = old.beta.param.shape[0]
    gamma = new.gamma().clone()
    gamma[:c, :] = 0.0
    gamma[:, :c] = 0.0
    gamma[:c, :c] = old.gamma()
    new.gamma.param.copy_(torch.sqrt(gamma + new.gamma.pedestal))
    new.beta.param[:c] = old.beta.param


def _split_sources(old: Codec, count: int) -> torch.Tensor:
    """The old latent channel each of ``count`` new ones splits from: the largest contribution
    to the picture per quantization step at the top rate (g_s input norm × inverse gain)."""
    weight = old.g_s[0].weight.flatten(1).norm(dim=1) * old.inverse_gain.log_gain[-1].exp()
    order = torch.argsort(weight, descending=True)
    return order[torch.arange(count) % len(order)]


def _share_inputs(weight: torch.Tensor, src: torch.Tensor, dim: int) -> None:
    """Latent inputs along ``dim`` of ``weight`` (old channels first, then one copy per entry
    of ``src``): each split channel's weights are divided equally among it and its copies, so
    the layer sees the same sum."""
    w = weight.movedim(dim, 0)
    m = w.shape[0] - len(src)
    parts = 1 + torch.bincount(src, minlength=m)
    w[:m] /= parts.view(-1, *[1] * (w.dim() - 1)).to(w.dtype)
    w[m:] = w[src]


def _copy_latent_outputs(old: nn.Conv2d, new: nn.Conv2d, src: torch.Tensor) -> None:
    """A conv whose outputs are latent channels: old block copied (:func:`_copy_conv`), then
    each copy's row repeats its source channel's."""
    _copy_conv(old, new)
    m = old.weight.shape[0]
    new.weight[m:] = new.weight[src]
    if new.bias is not None:
        new.bias[m:] = new.bias[src]


def widen(old: Codec, cfg: CodecConfig, seed: int = 0) -> Codec:
    """A ``cfg`` model that starts where ``old`` is (see module docstring)."""
    o = old.cfg
    same = ("hyper_channels", "hyper_hidden", "scale_hidden", "scale_levels", "scale_min", "scale_max", "lambdas",
            "context", "context_hidden")
    changed = [k for k in same if getattr(o, k) != getattr(cfg, k)]
    if changed:
        raise ModelError(f"widening keeps {', '.join(changed)} fixed; the new configuration changes them")
    if cfg.channels < o.channels or cfg.latent_channels < o.latent_channels:
        raise ModelError(f"cannot widen N={o.channels}, M={o.latent_channels} to the smaller "
                         f"N={cfg.channels}, M={cfg.latent_channels}")
    torch.manual_seed(seed)
    new = Codec(cfg)
    m = o.latent_channels
    src = _split_sources(old, cfg.latent_channels - m)
    with torch.no_grad():
        for a, b in zip(old.g_a[:-1], new.g_a[:-1]):
            _copy_conv(a, b) if isinstance(a, nn.Conv2d) else _copy_gdn(a, b)
        last = new.g_a[-1]
        _copy_latent_outputs(old.g_a[-1], last, src)
        if len(src):
            scale = SPLIT_NOISE * last.weight[src].std(dim=(1, 2, 3), keepdim=True)
            last.weight[m:] += scale * torch.randn_like(last.weight[m:])
        for a, b in zip(old.g_s, new.g_s):
            _copy_tconv(a, b) if isinstance(a, nn.ConvTranspose2d) else _copy_gdn(a, b)
        _share_inputs(new.g_s[0].weight, src, 0)
        _copy_conv(old.h_a[0], new.h_a[0])
        _share_inputs(new.h_a[0].weight, src, 1)
        new.h_a[1:].load_state_dict(old.h_a[1:].state_dict())
        new.h_mean[:-1].load_state_dict(old.h_mean[:-1].state_dict())
        _copy_latent_outputs(old.h_mean[-1], new.h_mean[-1], src)
        new.h_scale.convs[:-1].load_state_dict(old.h_scale.convs[:-1].state_dict())
        _copy_latent_outputs(old.h_scale.convs[-1], new.h_scale.convs[-1], src)
        new.prior.load_state_dict(old.prior.state_dict())
        if old.context is not None:
            for a, b in ((old.context.mean, new.context.mean), (old.context.scale, new.context.scale)):
                _copy_conv(a[0], b[0])
                _share_inputs(b[0].weight, src, 1)
                _copy_latent_outputs(a[-1], b[-1], src)
        for a, b in ((old.gain, new.gain), (old.inverse_gain, new.inverse_gain)):
            b.log_gain[:, :m] = a.log_gain
            b.log_gain[:, m:] = a.log_gain[:, src]
    return new


def add_context(old: Codec, hidden: int) -> Codec:
    """A checkerboard-context copy of a context-free model (codec/context.py) that codes
    exactly like it: the context networks' last layers start at zero."""
    if old.context is not None:
        raise ModelError("the warm-start model already has a context model")
    new = Codec(dataclasses.replace(old.cfg, context="checkerboard", context_hidden=hidden))
    result = new.load_state_dict(old.state_dict(), strict=False)
    if result.unexpected_keys or not all(k.startswith("context.") for k in result.missing_keys):
        raise ModelError(f"cannot copy the model into a context model: {result}")
    return new


def extend_rates(old: Codec, below: int, above: int) -> Codec:
    """A copy of ``old`` whose rate ladder has ``below`` more points under its lowest λ and
    ``above`` more over its highest, continuing the ladder's geometric spacing.

    The new points' log-gains continue the end points' per-channel slope, so the model codes
    its old points exactly as before (old β b is new β b + ``below``) and the new ones start
    from a linear extrapolation that training then shapes.
    """
    lams = old.cfg.lambdas
    if below < 0 or above < 0 or below + above == 0:
        raise ModelError("extend the rate ladder by at least one point, none negative")
    if len(lams) < 2:
        raise ModelError("a rate ladder needs two points to be extended")
    low, high = lams[1] / lams[0], lams[-1] / lams[-2]
    new_lams = (tuple(float(f"{lams[0] / low**k:.6g}") for k in range(below, 0, -1)) + tuple(lams)
                + tuple(float(f"{lams[-1] * high**k:.6g}") for k in range(1, above + 1)))
    new = Codec(dataclasses.replace(old.cfg, lambdas=new_lams))
    state = {k: v for k, v in old.state_dict().items() if not k.endswith("log_gain")}
    result = new.load_state_dict(state, strict=False)
    if result.unexpected_keys or any(not k.endswith("log_gain") for k in result.missing_keys):
        raise ModelError(f"cannot copy the model into the extended ladder: {result}")
    with torch.no_grad():
        for a, b in ((old.gain, new.gain), (old.inverse_gain, new.inverse_gain)):
            g = a.log_gain
            steps_below = torch.arange(below, 0, -1, dtype=g.dtype)[:, None]
            steps_above = torch.arange(1, above + 1, dtype=g.dtype)[:, None]
            b.log_gain.copy_(torch.cat([g[0] - steps_below * (g[1] - g[0]), g,
                                        g[-1] + steps_above * (g[-1] - g[-2])]))
    return new
