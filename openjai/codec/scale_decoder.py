"""Integer-exact hyper-scale decoder: ẑ (integers) → σ-index (integers).

The σ-index selects the entropy-coding table of every latent, so encoder and decoder must
compute it identically on every device and thread count. This network therefore has two
forward passes that compute the same function:

* ``forward`` (training): float convolutions with fake-quantized weights and activations
  (straight-through rounding), so training sees the quantization the coder will use;
* ``sigma_index`` (coding): the same network in integer arithmetic. Every operand is an
  integer held in float64; every partial sum stays far below 2**53, so each sum is exact
  whatever the summation order. Convolutions are unfold + matmul (never Winograd/FFT).

    ẑ ─conv3×3─▶ ×2 pixel-shuffle ─ReLU─▶ conv3×3 ─▶ ×2 shuffle ─ReLU─▶ conv3×3 ─▶ t
    σ-index = clamp(round(t), 0, L-1)

Fixed point: weights carry WEIGHT_BITS fractional bits, activations ACT_BITS.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .entropy import ste_round

WEIGHT_BITS = 8
ACT_BITS = 6
# Bounds that keep every integer partial sum below 2**53, whatever the input stream says:
# |ẑ| ≤ Z_LIMIT (the coder rejects larger), |w| ≤ WEIGHT_LIMIT, hidden activations are
# clamped to ACT_LIMIT (real value 2**14, far above anything a trained model produces).
# Worst case with ≤ 256 input channels: 9*256 * 2**20 * 2**12 = 2**43.2.
Z_LIMIT = 4096
WEIGHT_LIMIT = 16.0
ACT_LIMIT = 2**20


def ste_round_half_up(x: torch.Tensor) -> torch.Tensor:
    """floor(x + 1/2) forward (the integer path's rounding, ``round_shift``), identity backward."""
    return x + (torch.floor(x + 0.5) - x).detach()


def quant_weight(w: torch.Tensor) -> torch.Tensor:
    w = torch.clamp(w, -WEIGHT_LIMIT, WEIGHT_LIMIT)
    return ste_round(w * 2**WEIGHT_BITS) / 2**WEIGHT_BITS


def fake_quant_conv(x: torch.Tensor, conv: nn.Conv2d, in_bits: int) -> torch.Tensor:
    """Training path of one integer-exact convolution whose input has ``in_bits`` fractional
    bits: quantized weights and bias, output rounded to ACT_BITS like the integer path."""
    bias = ste_round(conv.bias * 2 ** (WEIGHT_BITS + in_bits)) / 2 ** (WEIGHT_BITS + in_bits)
    x = F.conv2d(x, quant_weight(conv.weight), bias, padding=conv.padding)
    return ste_round_half_up(x * 2**ACT_BITS) / 2**ACT_BITS


def integer_conv_parameters(conv: nn.Conv2d, in_bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight, bias) of one integer-exact convolution as integer-valued float64 tensors.

    Derived from the float32 weights by exact operations (clamp, ×2^k, round), so they are the
    same on every machine.
    """
    w = torch.round(torch.clamp(conv.weight.detach().cpu(), -WEIGHT_LIMIT, WEIGHT_LIMIT) * 2**WEIGHT_BITS)
    b = torch.round(conv.bias.detach().cpu() * 2 ** (WEIGHT_BITS + in_bits))
    return w.double(), b.double()


class ScaleDecoder(nn.Module):
    """h_σ: hyper-latent ẑ (Z channels, 1/64 resolution) → continuous σ-index t (M, 1/16)."""

    def __init__(self, z_channels: int, hidden: int, out_channels: int, levels: int) -> None:
        super().__init__()
        self.levels = levels
        self.convs = nn.ModuleList(
            [
                nn.Conv2d(z_channels, 4 * hidden, 3, padding=1),
                nn.Conv2d(hidden, 4 * hidden, 3, padding=1),
                nn.Conv2d(hidden, out_channels, 3, padding=1),
            ]
        )
        with torch.no_grad():
            self.convs[-1].bias.fill_(levels / 2)

    def forward(self, z_hat: torch.Tensor) -> torch.Tensor:
        """Continuous index t (fake-quantized like the integer path); differentiable.

        Always float32, also under a bfloat16 autocast: the fake quantization needs exact
        multiples of 2^-14, which bfloat16's 8-bit mantissa cannot hold.
        """
        autocast_device = "cuda" if z_hat.device.type == "cuda" else "cpu"  # also for "meta" tensors
        with torch.autocast(autocast_device, enabled=False):
            return self._forward(z_hat.float())

    def _forward(self, z_hat: torch.Tensor) -> torch.Tensor:
        x = z_hat
        for i, conv in enumerate(self.convs):
            x = fake_quant_conv(x, conv, 0 if i == 0 else ACT_BITS)
            if i < len(self.convs) - 1:
                x = torch.clamp(F.pixel_shuffle(x, 2), 0, ACT_LIMIT / 2**ACT_BITS)
        return x

    def index_from_t(self, t: torch.Tensor) -> torch.Tensor:
        """σ-index used for the training likelihood: clamped, rounded half up like the integer
        path (``index_from_fixed``), straight-through."""
        return ste_round_half_up(torch.clamp(t, 0, self.levels - 1))

    def integer_parameters(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(weight, bias) per layer as integer-valued float64 tensors (``integer_conv_parameters``)."""
        return [integer_conv_parameters(conv, 0 if i == 0 else ACT_BITS) for i, conv in enumerate(self.convs)]

    @torch.no_grad()
    def fixed_t(self, z_hat: torch.Tensor) -> torch.Tensor:
        """Exact t in fixed point (integers × 2^-ACT_BITS, float64, (B, M, 4H, 4W)) from integer ẑ, on CPU."""
        x = z_hat.detach().cpu().double()
        layers = self.integer_parameters()
        for i, (w, b) in enumerate(layers):
            in_bits = 0 if i == 0 else ACT_BITS
            x = round_shift(exact_conv(x, w, b), WEIGHT_BITS + in_bits - ACT_BITS)
            if i < len(layers) - 1:
                x = torch.clamp(F.pixel_shuffle(x, 2), 0, ACT_LIMIT)
        return x

    def index_from_fixed(self, t_fixed: torch.Tensor) -> torch.Tensor:
        """σ-index (int64) of a fixed-point t: the integer path of ``index_from_t``."""
        return torch.clamp(round_shift(t_fixed, ACT_BITS), 0, self.levels - 1).long()

    def sigma_index(self, z_hat: torch.Tensor) -> torch.Tensor:
        """Exact σ-index (int64, shape (B, M, 4H, 4W)) from integer ẑ (B, Z, H, W), on CPU."""
        return self.index_from_fixed(self.fixed_t(z_hat))


def round_shift(x: torch.Tensor, shift: int) -> torch.Tensor:
    """x / 2^shift rounded half up, exactly, for integer-valued float64 x."""
    return torch.floor((x + 2 ** (shift - 1)) / 2**shift)


def exact_conv(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """k×k 'same' convolution (odd k) of integer-valued float64 tensors via unfold + matmul."""
    n, c, h, width = x.shape
    k = w.shape[-1]
    cols = F.unfold(x, k, padding=k // 2)  # (N, C*k*k, H*W)
    out = torch.matmul(w.reshape(w.shape[0], -1), cols) + b.view(1, -1, 1)
    return out.view(n, w.shape[0], h, width)
