"""Encoder effort: rate-distortion latent refinement (RDLR), decoder unchanged.

The analysis transform is an amortised guess of the best latent. At higher effort the encoder
improves that guess for the one image at hand (Campos et al. 2019, Yang et al. 2020; JPEG AI's
RDLR): with the hyper-latent ẑ — hence μ and the σ-index k — fixed, it runs a few Adam steps
on the gained latent y' to lower the coded cost

    J(y') = λ(β) · n · D(g_s(ŷ), x)  +  Σ −log2 P(r | σ_k),
    r = round(y' − μ),  ŷ = (r + μ) · inverse_gain(β)

over the n pixels a tile's latents reach: the training loss in bits per image instead of per
pixel, with the distortion D the model was trained on (``CodecConfig.distortion``,
codec/distortion.py; MS-SSIM's half is left out on regions too small for its 5 scales).
Minimising another distortion than training did loses: measured, RGB-MSE refinement of a
model trained on luma MSE + MS-SSIM raised the BD-rate by up to 10 %. J is evaluated on the very
symbols that will be coded (for a checkerboard-context model, with the context of the current
iterate) and the best iterate per tile is kept, so refinement never raises
the estimated cost. The step follows the gradient of a smooth surrogate: distortion with
straight-through rounding, rate as the likelihood of the unrounded y' − μ (the rounded rate's
straight-through gradient is too biased: measured, it raises J after a few steps), with a
cosine-decayed learning rate. Any y' decodes with the unchanged decoder:
refinement is a pure encoder choice and costs no bitstream field.

Memory stays bounded on large images: the latent is refined tile by tile (raster order, so a
tile sees its already-refined neighbours), each tile with a halo of fixed neighbours that
covers g_s's receptive field.
"""

from __future__ import annotations

import math

import torch

from ..errors import OpenJAIError
from .distortion import distortion, kind_for_size
from .entropy import gaussian_likelihood, ste_round
from .model import Codec

#: Adam iterations per tile for each ``--effort`` level (0 = no refinement)
EFFORT_ITERATIONS: tuple[int, ...] = (0, 10, 20, 40)
#: refined tile and halo, in latent positions (16 px each); the halo covers g_s's reach
#: beyond REACH, plus the context's reach (context.REACH; even, so the checkerboard pattern
#: of a window is the image's)
TILE = 32
HALO = 6
#: pixels (in latent units) around a tile whose distortion the tile's latents change
REACH = 2
STEP = 16  # pixels per latent position
#: Adam's initial step (y' is in quantizer steps). Measured on a val photo at β = 4, the
#: estimated cost fell 1.9 / 3.1 / 4.4 % after 10 / 20 / 40 steps; 0.02 without decay rose
#: after 4 steps; 0.03 with decay gained more at β = 6 but nothing at β = 1.5
LEARNING_RATE = 0.01


def check_effort(effort: int) -> int:
    """``effort`` if it is a valid level, else OpenJAIError saying which levels exist."""
    if isinstance(effort, bool) or not isinstance(effort, int) or not 0 <= effort < len(EFFORT_ITERATIONS):
        raise OpenJAIError(f"effort must be an integer from 0 to {len(EFFORT_ITERATIONS) - 1}, got {effort!r}")
    return effort


def lambda_at(model: Codec, beta: float) -> float:
    """λ of the rate parameter β, log-linear between the trained points (as the gains are)."""
    lams = model.cfg.lambdas
    k = min(int(math.floor(beta)), len(lams) - 2)
    t = beta - k
    return math.exp((1 - t) * math.log(lams[k]) + t * math.log(lams[k + 1]))


def beta_at(model: Codec, lam: float) -> float:
    """The rate parameter whose λ is ``lam`` (inverse of :func:`lambda_at`, clamped to the ladder)."""
    logs = [math.log(v) for v in model.cfg.lambdas]
    x = min(max(math.log(lam), logs[0]), logs[-1])
    k = next(i for i in range(len(logs) - 1) if x <= logs[i + 1])
    return k + (x - logs[k]) / (logs[k + 1] - logs[k])


def refine_latents(
    model: Codec,
    x: torch.Tensor,
    y: torch.Tensor,
    mu: torch.Tensor,
    t: torch.Tensor,
    beta: float,
    iterations: int,
) -> torch.Tensor:
    """Refined gained latent y' (same shape as ``y``); see the module docstring.

    x: (1, 3, H, W) uint8 padded image; y, mu, t: (1, M, H/16, W/16) float, mu and t from the
    hyper decoders (t: the σ-index before rounding).
    """
    if iterations <= 0:
        return y
    out = y.clone()
    inv_gain = model.inverse_gain(torch.tensor([beta])).detach()
    lam = lambda_at(model, beta)
    h, w = y.shape[-2:]
    for t0 in range(0, h, TILE):
        for s0 in range(0, w, TILE):
            _refine_tile(model, x, out, mu, t, inv_gain, lam, (t0, min(h, t0 + TILE)),
                         (s0, min(w, s0 + TILE)), iterations)
    return out


def _refine_tile(model, x, y, mu, t, inv_gain, lam, rows, cols, iterations) -> None:
    """Refine y[..., rows, cols] in place (window = tile + HALO, loss on tile + REACH)."""
    h, w = y.shape[-2:]
    (r0, r1), (c0, c1) = rows, cols
    wr0, wr1, wc0, wc1 = max(0, r0 - HALO), min(h, r1 + HALO), max(0, c0 - HALO), min(w, c1 + HALO)
    win = (..., slice(wr0, wr1), slice(wc0, wc1))
    tile = (..., slice(r0 - wr0, r1 - wr0), slice(c0 - wc0, c1 - wc0))
    # distortion region (latent rows/columns whose pixels count), and its pixels in the window
    dr0, dr1, dc0, dc1 = max(wr0, r0 - REACH), min(wr1, r1 + REACH), max(wc0, c0 - REACH), min(wc1, c1 + REACH)
    target = x[..., dr0 * STEP : dr1 * STEP, dc0 * STEP : dc1 * STEP].float() / 255.0
    pixels = (..., slice((dr0 - wr0) * STEP, (dr1 - wr0) * STEP), slice((dc0 - wc0) * STEP, (dc1 - wc0) * STEP))
    kind = kind_for_size(model.cfg.distortion, *target.shape[-2:])
    weight = lam * target.shape[-2] * target.shape[-1]  # λ · n: D is a per-pixel mean
    fixed, mu_h, t_h = y[win].detach(), mu[win], t[win]
    v = fixed[tile].clone().requires_grad_(True)
    opt = torch.optim.Adam([v], lr=LEARNING_RATE)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, iterations)
    best_cost, best = math.inf, v.detach().clone()
    for it in range(iterations + 1):
        y_w = fixed.clone()
        y_w[tile] = v
        mu_w, t_w = model.latent_parameters(y_w, mu_h, t_h)
        sigma_t = model.scales.scale(model.h_scale.index_from_t(t_w[tile]))
        r = ste_round(y_w - mu_w)
        x_hat = model.g_s((r + mu_w) * inv_gain).clamp(0, 1)
        dist = distortion(x_hat[pixels], target, kind).sum()
        bits = -torch.log2(gaussian_likelihood(r[tile].detach(), sigma_t.detach())).sum().item()
        cost = weight * dist.item() + bits
        if cost < best_cost:
            best_cost, best = cost, v.detach().clone()
        if it == iterations:
            break
        smooth_bits = -torch.log2(gaussian_likelihood(v - mu_w[tile], sigma_t)).sum()
        # only d/dv: no weight gradients are computed
        (v.grad,) = torch.autograd.grad(weight * dist + smooth_bits, v)
        opt.step()
        schedule.step()
    y[..., r0:r1, c0:c1] = best

