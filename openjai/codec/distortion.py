"""Distortion measures, per example, in the units of 255²·MSE: the training loss's D, and the
objective of encoder refinement (codec/refine.py), which uses the one the model was trained on
(``CodecConfig.distortion``).

    mse                255² · MSE(x̂, x)                         (PSNR-optimal; the default)
    mse+msssim         ½ · 255² · MSE(x̂, x) + ½ · W · (1 − MS-SSIM(Y(x̂), Y(x)))
    ycbcr-mse          C · 255² · (6·MSE_Y + MSE_Cb + MSE_Cr) / 8
    ycbcr-mse+msssim   ½ · ycbcr-mse + ½ · W · (1 − MS-SSIM(Y(x̂), Y(x)))

The loss of an example at rate point k is λ_k · D + bpp, so a distortion keeps the units of
255²·MSE to keep the λ ladder's rates. W = ``MSSSIM_SCALE`` makes the two halves about equal
at mid rates: measured with model openjai-base-f05d3430 (RGB MSE) on 8 training crops, W·(1 − MS-SSIM) /
255²·MSE is 1.06 / 0.88 / 0.74 / 0.45 / 0.37 (median) at β = 0 / 2 / 4 / 6 / 7. MS-SSIM is
``pytorch_msssim.ms_ssim`` (the library the CTTC metric uses) on BT.709 luma, as the CTTC
measures it; x̂ is clamped to [0, 1] for it.

``ycbcr-mse`` weights the BT.709 YCbCr planes 6:1:1, as JPEG AI's weighted YUV PSNR does:
most CTTC metrics look at luma only, so chroma errors matter less than luma errors. C =
``YCBCR_SCALE`` keeps it at the size of 255²·MSE: measured as above, the unscaled weighted
term is 0.70 / 0.68 / 0.63 / 0.56 / 0.56 of 255²·MSE at β = 0 / 2 / 4 / 6 / 7.
"""

from __future__ import annotations

import torch

from ..bt709 import BT709_CB_DIV, BT709_CR_DIV, BT709_KB, BT709_KG, BT709_KR
from .config import DISTORTIONS

MSSSIM_SCALE = 3000.0
#: pytorch_msssim's 5 scales with an 11-px window need a smaller side above this
MSSSIM_MIN_SIDE = 160
YCBCR_WEIGHTS = (6.0, 1.0, 1.0)
YCBCR_SCALE = 1.6


def _luma(x: torch.Tensor) -> torch.Tensor:
    return BT709_KR * x[:, 0:1] + BT709_KG * x[:, 1:2] + BT709_KB * x[:, 2:3]


def _ycbcr(x: torch.Tensor) -> torch.Tensor:
    """BT.709 full-range YCbCr of RGB in [0, 1] (the CTTC's matrix; offsets dropped)."""
    y = _luma(x)
    return torch.cat([y, (x[:, 2:3] - y) / BT709_CB_DIV, (x[:, 0:1] - y) / BT709_CR_DIV], 1)


def distortion(x_hat: torch.Tensor, x: torch.Tensor, kind: str) -> torch.Tensor:
    """(B,) distortion of each example (see module docstring); x, x̂: (B, 3, H, W) in [0, 1]."""
    if kind not in DISTORTIONS:
        raise ValueError(f"distortion must be one of {DISTORTIONS}, got {kind!r}")
    if kind.startswith("ycbcr-mse"):
        per_plane = ((_ycbcr(x_hat) - _ycbcr(x)) ** 2).flatten(2).mean(2)  # (B, 3)
        w = torch.tensor(YCBCR_WEIGHTS, dtype=per_plane.dtype, device=per_plane.device)
        pixel = YCBCR_SCALE * 255.0**2 * (per_plane * w).sum(1) / w.sum()
    else:
        pixel = ((x_hat - x) ** 2).flatten(1).mean(1) * 255.0**2
    if not kind.endswith("+msssim"):
        return pixel
    from pytorch_msssim import ms_ssim

    ssim = ms_ssim(_luma(x_hat.clamp(0, 1)), _luma(x), data_range=1.0, size_average=False)
    return 0.5 * pixel + 0.5 * MSSSIM_SCALE * (1.0 - ssim)


def pixel_part(kind: str) -> str:
    """The distortion without its MS-SSIM half (for regions too small for MS-SSIM)."""
    return kind.removesuffix("+msssim")
