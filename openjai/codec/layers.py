"""Building blocks of the transforms: GDN/IGDN and gain units.

GDN (Ballé et al., "Density modeling of images using a generalized normalization
transformation", ICLR 2016)::

    y_i = x_i / sqrt(beta_i + sum_j gamma_ij * x_j^2)        (inverse: multiply)

Gain units (Cui et al., "Asymmetric gained deep image compression with continuous rate
adaptation", CVPR 2021): one positive vector per trained rate point, applied channel-wise
to the latent before quantization (encoder gain) and after it (decoder inverse gain).
A continuous rate parameter ``beta`` in [0, K-1] interpolates log-linearly between the
two neighbouring points::

    g(beta) = g_k^(1-t) * g_{k+1}^t,   k = floor(beta), t = beta - k
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _NonNegative(nn.Module):
    """Stores p with value = max(p, bound)^2 - pedestal, which keeps gradients useful near 0."""

    def __init__(self, init: torch.Tensor, minimum: float = 0.0) -> None:
        super().__init__()
        self.pedestal = 2.0**-18
        self.bound = (minimum + self.pedestal) ** 0.5
        self.param = nn.Parameter(torch.sqrt(torch.clamp(init + self.pedestal, min=self.pedestal)))

    def forward(self) -> torch.Tensor:
        return torch.clamp(self.param, min=self.bound) ** 2 - self.pedestal


class GDN(nn.Module):
    """Generalized divisive normalization; ``inverse=True`` gives IGDN for the decoder."""

    def __init__(self, channels: int, inverse: bool = False) -> None:
        super().__init__()
        self.inverse = inverse
        self.beta = _NonNegative(torch.ones(channels), minimum=1e-6)
        self.gamma = _NonNegative(0.1 * torch.eye(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Under a bfloat16 autocast (mixed-precision training) only the 1×1 convolution runs in
        # bfloat16 (accumulating in float32); the square root and the division stay float32.
        x = x.float()
        c = x.shape[1]
        norm = torch.sqrt(F.conv2d(x * x, self.gamma().view(c, c, 1, 1), self.beta()).float())
        return x * norm if self.inverse else x / norm


class GainUnit(nn.Module):
    """K per-channel gain vectors, stored as logs; ``gain(beta)`` interpolates them.

    ``beta`` is a tensor of shape (B,) with values in [0, K-1]; the result has shape
    (B, C, 1, 1) ready to multiply a latent.
    """

    def __init__(self, levels: int, channels: int, init_log_gains: torch.Tensor) -> None:
        super().__init__()
        if init_log_gains.shape != (levels,):
            raise ValueError("init_log_gains must have one value per level")
        self.levels = levels
        self.log_gain = nn.Parameter(init_log_gains[:, None].repeat(1, channels).clone())

    def forward(self, beta: torch.Tensor) -> torch.Tensor:
        beta = beta.to(self.log_gain.dtype).clamp(0, self.levels - 1)
        k = torch.clamp(beta.floor().long(), max=self.levels - 2)
        t = (beta - k.to(beta.dtype))[:, None]
        log_g = (1 - t) * self.log_gain[k] + t * self.log_gain[k + 1]
        return torch.exp(log_g)[:, :, None, None]
