"""Grow a trained model instead of training a new one: wider (``widen``, Net2Net-style, Chen et
al. 2016), with a context model (``add_context``) or with more rate points (``extend_rates``);
each starts from the trained model's function.

Training on 2 CPU cores makes every trained step precious, so a larger architecture starts
from the previous model instead of from scratch. ``widen(old, new_cfg)`` returns a model of
``new_cfg`` (more g_a/g_s channels N, more latent channels M) that reconstructs like ``old``:

* every old weight is copied into the top-left block of its new tensor;
* connections *from* a new channel *into* an old one are zero, so old activations are
  unchanged (GDN: an old channel's norm does not include new channels);
* connections into new channels keep their fresh random initialisation, so the new channels
  carry signal and receive gradients from the first step;
* the one exception is the latent boundary: new latents enter g_s through small random
  weights (×``LATENT_INIT``), not zero, because a latent that rounds to 0 and feeds only
  zero weights would never receive a gradient;
* new latent channels start small (g_a weights ×``LATENT_INIT``) with μ = 0, σ ≈ 0.5 and the
  mean gain of the old channels at every rate point, so they cost few bits until training
  shapes them.

The hyper networks' widths (Z, hidden sizes) must stay the same; a checkerboard context model
works on the latents, so it is copied as is and M must then stay the same too.

Measured (docs/training.md): after widening M 128 → 192 and 2 800 steps, the new latents had
collapsed (σ-index 0, no bits, no effect on the picture): the rate term wins over the weak
distortion gradient through the small g_s weights. Widening N alone is untested.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ..codec.config import CodecConfig
from ..codec.layers import GDN, GainUnit
from ..codec.model import Codec
from ..errors import ModelError

#: scale of the random weights into and out of the new latent channels (see module docstring)
LATENT_INIT = 0.05
#: σ-index of the new latents before training (σ ≈ 0.5: small, cheap latents that still
#: pass gradients through the rate term)
NEW_SIGMA_INDEX = 15.0


def _copy_conv(old: nn.Conv2d, new: nn.Conv2d, *, new_in_scale: float = 0.0) -> None:
    """Conv2d weight (out, in, k, k): old block copied, new-in → old-out scaled (0 = cut)."""
    o, i = old.weight.shape[:2]
    new.weight[:o, i:] *= new_in_scale
    new.weight[:o, :i] = old.weight
    new.bias[:o] = old.bias


def _copy_tconv(old: nn.ConvTranspose2d, new: nn.ConvTranspose2d, *, new_in_scale: float = 0.0) -> None:
    """ConvTranspose2d weight (in, out, k, k): same rule as :func:`_copy_conv`."""
    i, o = old.weight.shape[:2]
    new.weight[i:, :o] *= new_in_scale
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


def _copy_gain(old: GainUnit, new: GainUnit) -> None:
    m = old.log_gain.shape[1]
    new.log_gain[:, :m] = old.log_gain
    new.log_gain[:, m:] = old.log_gain.mean(1, keepdim=True)


def widen(old: Codec, cfg: CodecConfig, seed: int = 0) -> Codec:
    """A ``cfg`` model that starts where ``old`` is (see module docstring)."""
    o = old.cfg
    same = ("hyper_channels", "hyper_hidden", "scale_hidden", "scale_levels", "scale_min", "scale_max", "lambdas")
    changed = [k for k in same if getattr(o, k) != getattr(cfg, k)]
    if changed:
        raise ModelError(f"widening keeps {', '.join(changed)} fixed; the new configuration changes them")
    if o.context != "none" and (cfg.context != o.context or cfg.context_hidden != o.context_hidden
                                or cfg.latent_channels != o.latent_channels):
        raise ModelError("a model with a context model can only be widened in N (its context model "
                         "works on the M latents and is copied as is)")
    if cfg.channels < o.channels or cfg.latent_channels < o.latent_channels:
        raise ModelError(f"cannot widen N={o.channels}, M={o.latent_channels} to the smaller "
                         f"N={cfg.channels}, M={cfg.latent_channels}")
    torch.manual_seed(seed)
    new = Codec(cfg)
    with torch.no_grad():
        for a, b in zip(old.g_a, new.g_a):
            _copy_conv(a, b) if isinstance(a, nn.Conv2d) else _copy_gdn(a, b)
        m = o.latent_channels
        new.g_a[-1].weight[m:] *= LATENT_INIT
        new.g_a[-1].bias[m:] = 0.0
        for k, (a, b) in enumerate(zip(old.g_s, new.g_s)):
            if isinstance(a, nn.ConvTranspose2d):
                _copy_tconv(a, b, new_in_scale=LATENT_INIT if k == 0 else 0.0)
            else:
                _copy_gdn(a, b)
        for a, b in zip(old.h_a, new.h_a):
            if isinstance(a, nn.Conv2d):
                _copy_conv(a, b)
        for a, b in zip(old.h_mean, new.h_mean):
            if isinstance(a, nn.Conv2d):  # the output layer: μ = 0 for the new latents
                b.weight.zero_()
                b.bias.zero_()
                _copy_conv(a, b)
            elif isinstance(a, nn.ConvTranspose2d):
                _copy_tconv(a, b)
        for a, b in zip(old.h_scale.convs, new.h_scale.convs):
            b.weight.zero_()  # only the output layer grows: new latents get the bias (mid-table σ)
            b.weight[: a.weight.shape[0]] = a.weight
            b.bias[: a.bias.shape[0]] = a.bias
        new.h_scale.convs[-1].bias[m:] = NEW_SIGMA_INDEX
        new.prior.load_state_dict(old.prior.state_dict())
        if old.context is not None:
            new.context.load_state_dict(old.context.state_dict())
        _copy_gain(old.gain, new.gain)
        _copy_gain(old.inverse_gain, new.inverse_gain)
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
