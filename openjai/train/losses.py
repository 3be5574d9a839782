"""Distortion terms of the training loss, per example, in the units of 255²·MSE.

    mse          255² · MSE(x̂, x)                         (PSNR-optimal; the default)
    mse+msssim   ½ · 255² · MSE(x̂, x) + ½ · W · (1 − MS-SSIM(Y(x̂), Y(x)))

The loss of an example at rate point k is λ_k · D + bpp, so a distortion keeps the units of
255²·MSE to keep the λ ladder's rates. W = ``MSSSIM_SCALE`` makes the two halves about equal
at mid rates: measured with the shipped base model on 8 training crops, W·(1 − MS-SSIM) /
255²·MSE is 1.06 / 0.88 / 0.74 / 0.45 / 0.37 (median) at β = 0 / 2 / 4 / 6 / 7. MS-SSIM is
``pytorch_msssim.ms_ssim`` (the library the CTTC metric uses) on BT.709 luma, as the CTTC
measures it; x̂ is clamped to [0, 1] for it.
"""

from __future__ import annotations

import torch

LOSSES = ("mse", "mse+msssim")
MSSSIM_SCALE = 3000.0
_LUMA = (0.2126, 0.7152, 0.0722)  # BT.709


def _luma(x: torch.Tensor) -> torch.Tensor:
    w = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def distortion(x_hat: torch.Tensor, x: torch.Tensor, kind: str) -> torch.Tensor:
    """(B,) distortion of each example (see module docstring); x, x̂: (B, 3, H, W) in [0, 1]."""
    mse = ((x_hat - x) ** 2).flatten(1).mean(1) * 255.0**2
    if kind == "mse":
        return mse
    if kind == "mse+msssim":
        from pytorch_msssim import ms_ssim

        ssim = ms_ssim(_luma(x_hat.clamp(0, 1)), _luma(x), data_range=1.0, size_average=False)
        return 0.5 * mse + 0.5 * MSSSIM_SCALE * (1.0 - ssim)
    raise ValueError(f"loss must be one of {LOSSES}, got {kind!r}")
