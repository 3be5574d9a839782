"""Distortion measures, per example, in the units of 255²·MSE: the training loss's D, and the
objective of encoder refinement (codec/refine.py), which uses the one the model was trained on
(``CodecConfig.distortion``).

    mse                255² · MSE(x̂, x)                         (PSNR-optimal; the default)
    mse+msssim         ½ · 255² · MSE(x̂, x) + ½ · W · (1 − MS-SSIM(Y(x̂), Y(x)))
    ycbcr-mse          C · 255² · (6·MSE_Y + MSE_Cb + MSE_Cr) / 8
    ycbcr-mse+msssim   ½ · ycbcr-mse + ½ · W · (1 − MS-SSIM(Y(x̂), Y(x)))
    ycbcr3-mse[+msssim]  the same with the planes weighted 3:1:1 and C₃ for C

The loss of an example at rate point k is λ_k · D + bpp, so a distortion keeps the units of
255²·MSE to keep the λ ladder's rates. W = ``MSSSIM_SCALE`` makes the two halves about equal
at mid rates: measured with model openjai-base-f05d3430 (RGB MSE) on 8 training crops, W·(1 − MS-SSIM) /
255²·MSE is 1.06 / 0.88 / 0.74 / 0.45 / 0.37 (median) at β = 0 / 2 / 4 / 6 / 7. MS-SSIM is
computed on BT.709 luma, as the CTTC measures it, by :func:`ms_ssim`: the definition of
``pytorch_msssim.ms_ssim`` (the library the CTTC metric uses; same values to ~1e-6, tested)
with the Gaussian blur as two matrix products instead of two 1-channel convolutions, which
makes forward + backward 3.4× faster on the CPU (measured, batch 4 × 256², 1 thread: 0.16 →
0.048 s). x̂ is clamped to [0, 1] for it.

``ycbcr-mse`` weights the BT.709 YCbCr planes 6:1:1, as JPEG AI's weighted YUV PSNR does:
most CTTC metrics look at luma only, so chroma errors matter less than luma errors. C =
``YCBCR_SCALE`` keeps it at the size of 255²·MSE: measured as above, the unscaled weighted
term is 0.70 / 0.68 / 0.63 / 0.56 / 0.56 of 255²·MSE at β = 0 / 2 / 4 / 6 / 7.

``ycbcr3-mse`` gives chroma twice that share (issue 22, part 4: PSNR-RGB, where 6:1:1 leaves
openjai weakest, weighs the chroma errors about as much as the luma error: RGB MSE ≈ MSE_Y +
1.16 MSE_Cb + 0.90 MSE_Cr). C₃ = ``YCBCR3_SCALE`` keeps its size at 6:1:1's: on 8 training
crops with `high` (openjai-high-1347fd84) the unscaled 3:1:1 term is 0.90 / 0.91 / 0.92 of the
6:1:1 one at β = 2 / 4 / 6 (chroma MSE 0.29–0.54 of luma's there).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..bt709 import BT709_CB_DIV, BT709_CR_DIV, BT709_KB, BT709_KG, BT709_KR
from .config import DISTORTIONS

MSSSIM_SCALE = 3000.0
#: MS-SSIM's 5 scales with an 11-px window need a smaller side above this (as in pytorch_msssim)
MSSSIM_MIN_SIDE = 160
#: MS-SSIM's scale weights, Gaussian window and constants (Wang et al. 2003; pytorch_msssim's defaults)
MSSSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MSSSIM_WINDOW, MSSSIM_SIGMA, MSSSIM_K = 11, 1.5, (0.01, 0.03)
YCBCR_WEIGHTS = (6.0, 1.0, 1.0)
YCBCR_SCALE = 1.6
YCBCR3_WEIGHTS = (3.0, 1.0, 1.0)
YCBCR3_SCALE = YCBCR_SCALE / 0.91


def _luma(x: torch.Tensor) -> torch.Tensor:
    return BT709_KR * x[:, 0:1] + BT709_KG * x[:, 1:2] + BT709_KB * x[:, 2:3]


def _ycbcr(x: torch.Tensor) -> torch.Tensor:
    """BT.709 full-range YCbCr of RGB in [0, 1] (the CTTC's matrix; offsets dropped)."""
    y = _luma(x)
    return torch.cat([y, (x[:, 2:3] - y) / BT709_CB_DIV, (x[:, 0:1] - y) / BT709_CR_DIV], 1)


def distortion(x_hat: torch.Tensor, x: torch.Tensor, kind: str) -> torch.Tensor:
    """(B,) distortion of each example (see module docstring); x, x̂: (B, 3, H, W) in [0, 1]."""
    parts = distortion_parts(x_hat, x, kind)
    return parts[0] if len(parts) == 1 else 0.5 * parts[0] + 0.5 * parts[1]


def distortion_parts(x_hat: torch.Tensor, x: torch.Tensor, kind: str) -> tuple[torch.Tensor, ...]:
    """The terms :func:`distortion` averages, each (B,): (pixel,) or, for ``…+msssim``,
    (pixel, W·(1 − MS-SSIM))."""
    if kind not in DISTORTIONS:
        raise ValueError(f"distortion must be one of {DISTORTIONS}, got {kind!r}")
    if kind.startswith("ycbcr"):
        weights, scale = (YCBCR3_WEIGHTS, YCBCR3_SCALE) if kind.startswith("ycbcr3") else (YCBCR_WEIGHTS, YCBCR_SCALE)
        per_plane = ((_ycbcr(x_hat) - _ycbcr(x)) ** 2).flatten(2).mean(2)  # (B, 3)
        w = torch.tensor(weights, dtype=per_plane.dtype, device=per_plane.device)
        pixel = scale * 255.0**2 * (per_plane * w).sum(1) / w.sum()
    else:
        pixel = ((x_hat - x) ** 2).flatten(1).mean(1) * 255.0**2
    if not kind.endswith("+msssim"):
        return (pixel,)
    ssim = ms_ssim(_luma(x_hat.clamp(0, 1)), _luma(x))
    return pixel, MSSSIM_SCALE * (1.0 - ssim)


def _blur_matrix(n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(n − 10, n): row i holds the normalised Gaussian window at columns i … i + 10, so
    ``m @ v`` is the 'valid' 1-D Gaussian filter of v. (Cheap to build: not cached, which
    torch.compile would not honour anyway.)"""
    c = torch.arange(MSSSIM_WINDOW, dtype=torch.float64) - MSSSIM_WINDOW // 2
    g = torch.exp(-(c**2) / (2 * MSSSIM_SIGMA**2))
    g /= g.sum()
    offset = torch.arange(n)[None, :] - torch.arange(n - MSSSIM_WINDOW + 1)[:, None]  # column − row
    inside = (offset >= 0) & (offset < MSSSIM_WINDOW)
    m = torch.where(inside, g[offset.clamp(0, MSSSIM_WINDOW - 1)], 0.0)
    return m.to(dtype=dtype, device=device)


def ms_ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B,) MS-SSIM of (B, 1, H, W) images in [0, 1], both sides > ``MSSSIM_MIN_SIDE``."""
    if min(x.shape[-2:]) <= MSSSIM_MIN_SIDE:
        raise ValueError(f"MS-SSIM needs both image sides above {MSSSIM_MIN_SIDE} px, got {tuple(x.shape[-2:])}")
    c1, c2 = (MSSSIM_K[0] ** 2, MSSSIM_K[1] ** 2)
    x, y = x.float(), y.float()  # a bfloat16 x̂ (--bf16) would lose the small differences
    terms = []
    for scale in range(len(MSSSIM_WEIGHTS)):
        h, w = x.shape[-2:]
        maps = torch.cat([x, y, x * x, y * y, x * y], 1)
        mu_x, mu_y, xx, yy, xy = (_blur_matrix(h, x.dtype, x.device) @ maps
                                  @ _blur_matrix(w, x.dtype, x.device).T).unbind(1)
        cs = (2 * (xy - mu_x * mu_y) + c2) / (xx - mu_x**2 + yy - mu_y**2 + c2)
        if scale < len(MSSSIM_WEIGHTS) - 1:
            terms.append(torch.relu(cs.flatten(1).mean(1)))
            pad = [h % 2, w % 2]
            x, y = F.avg_pool2d(x, 2, padding=pad), F.avg_pool2d(y, 2, padding=pad)
        else:
            luminance = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
            terms.append(torch.relu((luminance * cs).flatten(1).mean(1)))
    weights = torch.tensor(MSSSIM_WEIGHTS, dtype=x.dtype, device=x.device)
    return torch.prod(torch.stack(terms, 1) ** weights, 1)


def kind_for_size(kind: str, height: int, width: int) -> str:
    """``kind`` for an image or region of that size: without its MS-SSIM half where a side is
    too short for MS-SSIM's 5 scales."""
    return kind.removesuffix("+msssim") if min(height, width) <= MSSSIM_MIN_SIDE else kind
