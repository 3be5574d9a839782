"""NLPD -- Normalized Laplacian Pyramid Distance (Laparra et al. 2016), lower is better.

    Laparra, Ballé, Berardino, Simoncelli, "Perceptual image quality assessment using a
    normalized Laplacian pyramid", Human Vision and Electronic Imaging 2016.

Why a local implementation: the JPEG AI VM (``NLPD_IQA`` in ``src/codec/metrics/metrics.py``
of the reference software) computes NLPD with ``IQA_pytorch.NLPD`` (PyPI ``IQA-pytorch``
0.1); that package's ``__init__`` imports torchvision, which cannot be installed next to the
project's CPU torch, and pyiqa drags in many dependencies. This module reproduces the
IQA_pytorch definition operation by operation (its constants, padding, upsampling and
pooling), so the numbers are the CTTC ones; ``tests/eval/test_metrics.py`` checks it against
IQA_pytorch's own ``NLPD.py`` when that package is installed and against a NumPy/SciPy
re-derivation otherwise.

Definition (per image, one channel ``x``, six levels k = 0..5)::

    J_0 = x
    I_k   = (reflect-pad 2, correlate with L, stride 2)(J_k)        L = l l^T,
                                                                    l = [.05 .25 .4 .25 .05]
    U_k   = (reflect-pad 2, correlate with L)(bilinear 2x upsample, align_corners)(I_k)
            resized (nearest) to the size of J_k when odd sizes make them differ
    B_k   = J_k - U_k                                               (Laplacian band)
    Z_k   = B_k / (sigma_k + (reflect-pad 1, correlate with P_k)(|B_k|))
    J_k+1 = I_k
    NLPD(x, y) = mean_k sqrt(mean((Z_k(x) - Z_k(y))^2))

with the divisive-normalisation constants sigma_k and 3x3 neighbour filters P_k below (the
values of Laparra et al. as published with their code and used by IQA_pytorch). Note that
IQA_pytorch pools with an RMS per level and a plain mean over levels (the paper's exponents
alpha = 2, beta = 1); the CTTC numbers use this pooling, and so does this module.

Settings (same as the VM): **Y** of :func:`~openjai.eval.metrics.colour.rgb_to_ycbcr`
(BT.709, full range, 10-bit internal grid) in [0, 1]; planes smaller than 128 px per side are
zero-padded at the bottom/right to 128 (``pad_tensor_till_size(.., 128)``). float64, CPU.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from openjai.errors import MetricError
from openjai.eval.metrics.colour import PreparedPair
from openjai.eval.metrics.piq_metrics import pad_to_min_size, plane_tensor

LEVELS = 6
NLPD_MIN_SIZE = 128

#: 1-D binomial-like low-pass kernel; the 5x5 pyramid filter is its outer product.
PYRAMID_TAPS: tuple[float, ...] = (0.05, 0.25, 0.4, 0.25, 0.05)

#: Additive constants of the divisive normalisation, one per level.
DN_SIGMAS: tuple[float, ...] = (0.0248, 0.0185, 0.0179, 0.0191, 0.0220, 0.2782)

#: 3x3 neighbour weights of the divisive normalisation, one per level (centre weight 0).
DN_FILTERS: tuple[tuple[tuple[float, float, float], ...], ...] = (
    ((0.0, 0.1011, 0.0), (0.1493, 0.0, 0.1460), (0.0, 0.1015, 0.0)),
    ((0.0, 0.0757, 0.0), (0.1986, 0.0, 0.1846), (0.0, 0.0837, 0.0)),
    ((0.0, 0.0477, 0.0), (0.2138, 0.0, 0.2243), (0.0, 0.0467, 0.0)),
    ((0.0, 0.0, 0.0), (0.2503, 0.0, 0.2616), (0.0, 0.0, 0.0)),
    ((0.0, 0.0, 0.0), (0.2598, 0.0, 0.2552), (0.0, 0.0, 0.0)),
    ((0.0, 0.0, 0.0), (0.2215, 0.0, 0.0717), (0.0, 0.0, 0.0)),
)


def _kernels(dtype: torch.dtype) -> tuple[torch.Tensor, list[torch.Tensor]]:
    taps = torch.tensor(PYRAMID_TAPS, dtype=dtype)
    lowpass = torch.outer(taps, taps)[None, None]
    dn = [torch.tensor(f, dtype=dtype)[None, None] for f in DN_FILTERS]
    return lowpass, dn


def normalized_laplacian_pyramid(x: torch.Tensor) -> list[torch.Tensor]:
    """The six normalised Laplacian bands Z_k of a (1, 1, H, W) tensor (see module docstring)."""
    lowpass, dn = _kernels(x.dtype)
    bands = []
    j = x
    for k in range(LEVELS):
        i = F.conv2d(F.pad(j, (2, 2, 2, 2), mode="reflect"), lowpass, stride=2)
        up = F.interpolate(i, scale_factor=2, mode="bilinear", align_corners=True)
        up = F.conv2d(F.pad(up, (2, 2, 2, 2), mode="reflect"), lowpass)
        if up.shape != j.shape:
            up = F.interpolate(up, size=j.shape[-2:])  # nearest, as IQA_pytorch
        band = j - up
        local = F.conv2d(F.pad(band.abs(), (1, 1, 1, 1), mode="reflect"), dn[k])
        bands.append(band / (DN_SIGMAS[k] + local))
        j = i
    return bands


def nlpd_tensor(ref: torch.Tensor, dist: torch.Tensor) -> float:
    """NLPD of two (1, 1, H, W) tensors in [0, 1]."""
    if ref.shape != dist.shape:
        raise MetricError(f"NLPD inputs differ in shape: {tuple(ref.shape)} vs {tuple(dist.shape)}")
    zr = normalized_laplacian_pyramid(ref)
    zd = normalized_laplacian_pyramid(dist)
    per_level = [torch.sqrt(torch.mean((a - b) ** 2)) for a, b in zip(zr, zd)]
    return float(torch.stack(per_level).mean().item())


def _nlpd(p: PreparedPair) -> float:
    ref = pad_to_min_size(plane_tensor(p.ycbcr_ref[..., 0]), NLPD_MIN_SIZE)
    dist = pad_to_min_size(plane_tensor(p.ycbcr_dist[..., 0]), NLPD_MIN_SIZE)
    with torch.no_grad():
        v = nlpd_tensor(ref, dist)
    if not np.isfinite(v):
        raise MetricError(f"NLPD is not finite ({v}) for these images")
    return v


def nlpd(ref: np.ndarray, dist: np.ndarray) -> float:
    """NLPD of BT.709 Y (0 for identical images; LOWER is better)."""
    return _nlpd(PreparedPair(ref, dist))
