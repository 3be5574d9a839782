"""Entropy models: the factorized prior of the hyper-latent z and the Gaussian model of y.

Training uses the differentiable likelihoods (``likelihood``). Coding uses integer PMF
tables built once from the trained model (``build_*_tables``) and stored in the weights
file, so the decoder's probability model is a set of integers that is identical on every
device.

    z ──round──▶ ẑ ── per-channel table c ──▶ symbols      (FactorizedPrior, Ballé 2018)
    y' ──round(y'-μ)──▶ r ── table[σ-index] ──▶ symbols   (Gaussian, Minnen 2018)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

PMF_PRECISION = 16  # table counts sum to 2**PMF_PRECISION
LIKELIHOOD_FLOOR = 1e-9


def ste_round(x: torch.Tensor) -> torch.Tensor:
    """Round in the forward pass, identity gradient in the backward pass."""
    return x + (torch.round(x) - x).detach()


@dataclass(frozen=True)
class IntegerTable:
    """A PMF over the integers [offset, offset + len(counts) - 1]; the end bins hold the tails."""

    offset: int
    counts: np.ndarray  # int64, every entry >= 1, sum == 2**PMF_PRECISION


def quantize_pmf(pmf: np.ndarray) -> np.ndarray:
    """Turn a float PMF into integer counts summing to 2**PMF_PRECISION, none zero."""
    total = 1 << PMF_PRECISION
    pmf = np.asarray(pmf, dtype=np.float64)
    pmf = pmf / pmf.sum()
    counts = np.maximum(1, np.floor(pmf * (total - len(pmf))).astype(np.int64))
    counts[int(np.argmax(counts))] += total - int(counts.sum())
    if counts.min() < 1:
        raise ValueError("PMF too long for the table precision")
    return counts


class FactorizedPrior(nn.Module):
    """Per-channel learned density of z (Ballé et al. 2018, appendix 6.1).

    The cumulative is a monotone MLP per channel; likelihood of an integer bin is the
    difference of the cumulative at its edges.
    """

    def __init__(self, channels: int, filters: tuple[int, ...] = (3, 3, 3), init_scale: float = 10.0) -> None:
        super().__init__()
        self.channels = channels
        dims = (1, *filters, 1)
        scale = init_scale ** (1.0 / (len(filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(filters) + 1):
            init = math.log(math.expm1(1.0 / scale / dims[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[i + 1], dims[i]), init)))
            self.biases.append(nn.Parameter(torch.rand(channels, dims[i + 1], 1) - 0.5))
            if i < len(filters):
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[i + 1], 1)))

    def _logits_cumulative(self, x: torch.Tensor) -> torch.Tensor:
        # x: (C, 1, N)
        for i, matrix in enumerate(self.matrices):
            x = torch.matmul(F.softplus(matrix), x) + self.biases[i]
            if i < len(self.factors):
                x = x + torch.tanh(self.factors[i]) * torch.tanh(x)
        return x

    def likelihood(self, z: torch.Tensor) -> torch.Tensor:
        """Probability mass of the unit bin around each value of z (B, C, H, W)."""
        b, c, h, w = z.shape
        v = z.permute(1, 0, 2, 3).reshape(c, 1, -1)
        lower = self._logits_cumulative(v - 0.5)
        upper = self._logits_cumulative(v + 0.5)
        sign = -torch.sign(lower + upper).detach()
        lik = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))
        lik = lik.reshape(c, b, h, w).permute(1, 0, 2, 3)
        return torch.clamp(lik, min=LIKELIHOOD_FLOOR)

    @torch.no_grad()
    def build_tables(self, max_abs: int = 255, tail: float = 1e-7) -> list[IntegerTable]:
        """Integer tables per channel, support trimmed to where the tails are below ``tail``."""
        grid = torch.arange(-max_abs, max_abs + 1, dtype=torch.float64)
        v = grid.view(1, 1, -1).repeat(self.channels, 1, 1)
        net = self.double()
        try:
            cdf_hi = torch.sigmoid(net._logits_cumulative(v + 0.5))[:, 0]
        finally:
            self.float()
        tables = []
        for c in range(self.channels):
            cdf = cdf_hi[c].numpy()
            lo = int(np.searchsorted(cdf, tail))  # first bin whose upper cdf exceeds the tail
            hi = int(np.searchsorted(cdf, 1.0 - tail))
            # always include -1, 0 and 1: a channel the training collapsed onto 0 still needs a
            # two-sided table (its end bins escape any other value), and the range coder
            # cannot represent a one-symbol distribution
            lo, hi = min(lo, max_abs - 1), max(hi, max_abs + 1)
            cdf_ext = np.concatenate([[0.0], cdf[lo : hi + 1]])
            cdf_ext[-1] = 1.0
            pmf = np.diff(cdf_ext)
            tables.append(IntegerTable(offset=int(grid[lo]), counts=quantize_pmf(np.maximum(pmf, 0.0))))
        return tables


@dataclass(frozen=True)
class ScaleTable:
    """Log-spaced Gaussian scales; σ-index k ↦ scale_min * exp(k * step)."""

    scale_min: float = 0.11
    scale_max: float = 64.0
    levels: int = 64

    @property
    def log_step(self) -> float:
        return math.log(self.scale_max / self.scale_min) / (self.levels - 1)

    def scale(self, index: torch.Tensor) -> torch.Tensor:
        return self.scale_min * torch.exp(index * self.log_step)

    def build_tables(self, tail_sigmas: float = 8.0) -> list[IntegerTable]:
        """Zero-mean discretized Gaussian per σ-index; the end bins absorb the tails."""
        tables = []
        for k in range(self.levels):
            s = self.scale_min * math.exp(k * self.log_step)
            half = max(1, int(math.ceil(s * tail_sigmas)))
            edges = np.arange(-half, half + 2, dtype=np.float64) - 0.5
            cdf = np.array([0.5 * math.erfc(-e / (s * math.sqrt(2.0))) for e in edges])
            cdf[0], cdf[-1] = 0.0, 1.0
            tables.append(IntegerTable(offset=-half, counts=quantize_pmf(np.diff(cdf))))
        return tables


def gaussian_likelihood(residual: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Mass of the unit bin around ``residual`` under N(0, scale²) (symmetric, stable form)."""
    v = torch.abs(residual)
    inv = 1.0 / (scale * math.sqrt(2.0))
    upper = 0.5 * torch.erfc((v - 0.5) * inv)
    lower = 0.5 * torch.erfc((v + 0.5) * inv)
    return torch.clamp(upper - lower, min=LIKELIHOOD_FLOOR)
