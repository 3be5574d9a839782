"""Checkerboard spatial context (He et al., "Checkerboard context model for efficient learned
image compression", CVPR 2021), with an integer-exact scale branch.

The latent grid is split like a checkerboard. *Anchors* ((row + col) even) are coded first,
with μ and σ-index from the hyper decoders alone. *Non-anchors* are coded second; their
parameters also see the decoded anchors around them (5×5 neighbourhood):

    anchors ŷ_A = r_A + μ_A ─ctx_μ (float)──────────▶ μ_N = μ_hyper + ctx_μ
    anchors r_A (integers)  ─ctx_σ (integer-exact)──▶ t_N = clamp(t_hyper) + ctx_σ
                                                      σ-index_N = clamp(round(t_N), 0, L-1)

Both passes decode in parallel over the whole image. The σ-index of a non-anchor decides
which table codes it, so ctx_σ follows the rules of the hyper-scale decoder
(scale_decoder.py): integer inputs (the residuals r, clamped), weights with WEIGHT_BITS
fractional bits, activations with ACT_BITS, unfold + matmul in float64 with every partial
sum far below 2^53 (|r| ≤ R_CTX_LIMIT = 2^8, |w| ≤ 2^12 integer, ≤ 25·256 inputs: 2^32.6;
second layer ≤ 256 · 2^20 · 2^12 = 2^40). ctx_μ only shifts the reconstruction, like h_μ,
so it is an ordinary float network; it has no biases, which makes it positively homogeneous
(ctx_μ(a·ŷ) = a·ctx_μ(ŷ)) and so equally valid at every rate of the gained latent.

The last layer of both branches starts at zero: a context model warm-started from a
hyperprior-only model computes exactly that model's function at step 0.
"""

from __future__ import annotations

import torch
from torch import nn

from .entropy import ste_round
from .scale_decoder import (
    ACT_BITS, ACT_LIMIT, WEIGHT_BITS, fake_quant_conv, integer_conv_parameters, round_shift,
)

KERNEL = 5
REACH = KERNEL // 2  # latent positions a non-anchor's parameters look at, each side
#: the taps (dy, dx) of a KERNEL×KERNEL window around a non-anchor that land on anchors
#: (dy + dx odd): 12 of 25. The others only ever read zeros, so they get no gradient and
#: weights files store only these (:func:`pack_taps`).
ANCHOR_TAPS = tuple((dy, dx) for dy in range(KERNEL) for dx in range(KERNEL) if (dy + dx) % 2)
#: first-layer kernels of both branches (state-dict keys inside the context module)
TAP_KERNELS = ("mean.0.weight", "scale.0.weight")
PACKED = ".anchor_taps"  # suffix of a packed kernel's key in a weights file
R_CTX_LIMIT = 256  # residuals enter ctx_σ clamped to ±this
T_LOW, T_HIGH = -64, 128  # t_hyper is clamped to this (index units) before ctx_σ is added


def anchor_mask(height: int, width: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(1, 1, H, W) bool, True at anchors ((row + col) even). Tiles must start at even offsets."""
    rows = torch.arange(height, device=device).view(-1, 1)
    cols = torch.arange(width, device=device).view(1, -1)
    return ((rows + cols) % 2 == 0).view(1, 1, height, width)


class CheckerboardContext(nn.Module):
    """ctx_μ and ctx_σ of the module docstring; inputs must be zero at non-anchors."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.mean = nn.Sequential(
            nn.Conv2d(channels, hidden, KERNEL, padding=REACH, bias=False),
            nn.ReLU(),
            nn.Conv2d(hidden, channels, 1, bias=False),
        )
        self.scale = nn.ModuleList([nn.Conv2d(channels, hidden, KERNEL, padding=REACH), nn.Conv2d(hidden, channels, 1)])
        with torch.no_grad():
            self.mean[-1].weight.zero_()
            self.scale[-1].weight.zero_()
            self.scale[-1].bias.zero_()

    def mean_offset(self, y_hat_anchors: torch.Tensor) -> torch.Tensor:
        """ctx_μ: float offset of μ at non-anchors from the decoded anchors (gained domain)."""
        return self.mean(y_hat_anchors)

    def scale_offset(self, r_anchors: torch.Tensor) -> torch.Tensor:
        """ctx_σ training path: fake-quantized like ``fixed_scale_offset``; float32 under autocast."""
        autocast_device = "cuda" if r_anchors.device.type == "cuda" else "cpu"
        with torch.autocast(autocast_device, enabled=False):
            x = torch.clamp(r_anchors.float(), -R_CTX_LIMIT, R_CTX_LIMIT)
            for i, conv in enumerate(self.scale):
                x = fake_quant_conv(x, conv, 0 if i == 0 else ACT_BITS)
                if i == 0:
                    x = torch.clamp(x, 0, ACT_LIMIT / 2**ACT_BITS)
            return x

    @torch.no_grad()
    def fixed_scale_offset(self, r_anchors: torch.Tensor) -> torch.Tensor:
        """ctx_σ coding path: integer residuals (zero at non-anchors; the tile must start at an
        even offset) → offset of t in fixed point (float64, CPU) at the non-anchors, 0 at anchors.

        Only what is used is computed: the non-anchor outputs, and of the 5×5 kernel only the
        12 taps that land on anchors (the others read zeros): ~4× less than the whole conv.
        """
        x = torch.clamp(r_anchors.detach().cpu().double(), -R_CTX_LIMIT, R_CTX_LIMIT)
        n, c, h, width = x.shape
        rows, cols = (~anchor_mask(h, width)).view(h, width).nonzero(as_tuple=True)
        padded = torch.nn.functional.pad(x, (REACH, REACH, REACH, REACH))
        gathered = torch.stack([padded[:, :, rows + dy, cols + dx] for dy, dx in ANCHOR_TAPS], 2)  # (N, C, 12, P)
        a = gathered.reshape(n, c * len(ANCHOR_TAPS), -1)
        for i, conv in enumerate(self.scale):
            in_bits = 0 if i == 0 else ACT_BITS
            w, b = integer_conv_parameters(conv, in_bits)
            if i == 0:
                w = torch.stack([w[:, :, dy, dx] for dy, dx in ANCHOR_TAPS], 2)
            # integer-valued float64 with every partial sum < 2^53 (module docstring): exact
            # in any summation order
            a = round_shift(torch.matmul(w.reshape(w.shape[0], -1), a) + b.view(1, -1, 1),
                            WEIGHT_BITS + in_bits - ACT_BITS)
            if i == 0:
                a = torch.clamp(a, 0, ACT_LIMIT)
        out = x.new_zeros(n, a.shape[1], h, width)
        # far outside any σ-index once added to the clamped t_hyper, so it changes no index,
        # and the result fits an int32
        out[:, :, rows, cols] = torch.clamp(a, -ACT_LIMIT, ACT_LIMIT)
        return out

    def forward(
        self, y: torch.Tensor, mu: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training/refinement path: (μ, t) of every latent from the gained latent y and the
        hyper decoders' μ and t; straight-through rounding of the anchors' residuals."""
        anchors = anchor_mask(y.shape[-2], y.shape[-1], y.device)
        r = torch.where(anchors, ste_round(y - mu), 0.0)
        mu_ctx = self.mean_offset(torch.where(anchors, r + mu, 0.0)).float()
        t_ctx = self.scale_offset(r)
        mu = torch.where(anchors, mu, mu + mu_ctx)
        t = torch.where(anchors, t, torch.clamp(t, T_LOW, T_HIGH) + t_ctx)
        return mu, t


def _tap_index() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.tensor([dy for dy, _ in ANCHOR_TAPS]), torch.tensor([dx for _, dx in ANCHOR_TAPS])


def pack_taps(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """``state`` with each first-layer context kernel (out, in, 5, 5) under ``prefix`` replaced by
    its 12 live taps (out, in, 12), keyed ``<key>.anchor_taps``: 0.85 MB less for M = 128.
    Every other tap only ever multiplies zeros, so dropping it changes no output."""
    out = dict(state)
    rows, cols = _tap_index()
    for name in TAP_KERNELS:
        key = prefix + name
        if key in out:
            out[key + PACKED] = out.pop(key)[:, :, rows, cols].contiguous()
    return out


def unpack_taps(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of :func:`pack_taps`: packed kernels back to (out, in, 5, 5), zeros at the taps
    that read no anchor. A state without packed kernels is returned as it is."""
    out = dict(state)
    rows, cols = _tap_index()
    for key in [k for k in out if k.endswith(PACKED)]:
        taps = out.pop(key)
        if taps.dim() != 3 or taps.shape[2] != len(ANCHOR_TAPS):
            raise ValueError(f"{key}: expected (out, in, {len(ANCHOR_TAPS)}) taps, got {tuple(taps.shape)}")
        dense = taps.new_zeros(taps.shape[0], taps.shape[1], KERNEL, KERNEL)
        dense[:, :, rows, cols] = taps
        out[key.removesuffix(PACKED)] = dense
    return out
