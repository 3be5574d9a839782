"""The openjai codec: mean-scale hyperprior with gain units and an integer-exact σ path.

    x ─g_a─▶ y ─×gain(β)─▶ y' ─h_a─▶ z ─round─▶ ẑ ─┬─h_μ (float)──────▶ μ
                                                   └─h_σ (integer-exact)▶ σ-index k
    r = round(y' - μ) coded with table[k];  ŷ = (r + μ) × inverse_gain(β) ─g_s─▶ x̂

With ``cfg.context == "checkerboard"`` the μ and k of half the latents (the non-anchors) also
depend on the already decoded other half (context.py).

Papers: Ballé et al. 2018 (hyperprior), Minnen et al. 2018 (mean-scale), Cui et al. 2021
(gain units), Minnen & Singh 2020 (mixed quantization: noise for the rate term, straight-
through rounding for the decoder input).

``forward`` serves training; ``openjai.codec.coder`` turns a trained Codec into bytes and back.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .config import CodecConfig
from .context import CheckerboardContext
from .entropy import FactorizedPrior, ScaleTable, gaussian_likelihood, ste_round
from .layers import GainUnit
from .scale_decoder import ScaleDecoder
from .transforms import analysis, hyper_analysis, hyper_mean, synthesis


@dataclass
class ForwardResult:
    """Training outputs: reconstruction and the estimated bits of each image."""

    x_hat: torch.Tensor  # (B, 3, H, W)
    bits_y: torch.Tensor  # (B,)
    bits_z: torch.Tensor  # (B,)


class Codec(nn.Module):
    """All networks of one variable-rate model (see module docstring)."""

    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.scales = ScaleTable(cfg.scale_min, cfg.scale_max, cfg.scale_levels)
        self.g_a = analysis(cfg)
        self.g_s = synthesis(cfg)
        self.h_a = hyper_analysis(cfg)
        self.h_mean = hyper_mean(cfg)
        self.h_scale = ScaleDecoder(cfg.hyper_channels, cfg.scale_hidden, cfg.latent_channels, cfg.scale_levels)
        self.prior = FactorizedPrior(cfg.hyper_channels)
        init = torch.tensor(cfg.init_log_gains())
        self.gain = GainUnit(cfg.levels, cfg.latent_channels, init)
        self.inverse_gain = GainUnit(cfg.levels, cfg.latent_channels, -init)
        self.context = CheckerboardContext(cfg.latent_channels, cfg.context_hidden) if cfg.context != "none" else None

    def hyper(self, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """μ (float) and the continuous σ-index t from ẑ (training path)."""
        return self.h_mean(z_hat), self.h_scale(z_hat)

    def latent_parameters(
        self, y: torch.Tensor, mu: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """μ and t of every latent given the gained latent y and the hyper decoders' μ and t
        (differentiable; the identity without a context model)."""
        return (mu, t) if self.context is None else self.context(y, mu, t)

    def forward(self, x: torch.Tensor, beta: torch.Tensor) -> ForwardResult:
        """x: (B, 3, H, W) in [0, 1], H and W multiples of 64; beta: (B,) rate parameter.

        Under a bfloat16 autocast (``TrainConfig.bf16``) the convolutions run in bfloat16; every
        network output is taken back to float32 here, so quantization, likelihoods and the
        loss are computed in float32.
        """
        y = self.g_a(x).float() * self.gain(beta)
        z = self.h_a(y).float()
        z_lik = self.prior.likelihood(z + torch.empty_like(z).uniform_(-0.5, 0.5))
        z_hat = ste_round(z)
        mu, t = self.hyper(z_hat)
        mu, t = self.latent_parameters(y, mu.float(), t)
        sigma = self.scales.scale(self.h_scale.index_from_t(t))
        noisy = y - mu + torch.empty_like(y).uniform_(-0.5, 0.5)
        y_lik = gaussian_likelihood(noisy, sigma)
        y_hat = (ste_round(y - mu) + mu) * self.inverse_gain(beta)
        x_hat = self.g_s(y_hat).float()
        bits_y = -torch.log2(y_lik).flatten(1).sum(1)
        bits_z = -torch.log2(z_lik).flatten(1).sum(1)
        return ForwardResult(x_hat=x_hat, bits_y=bits_y, bits_z=bits_z)
