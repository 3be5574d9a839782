"""Full-reference image quality metrics as the JPEG AI CTTC reports them.

Every metric is ``name(ref, dist) -> float`` on two RGB uint8 arrays of one shape (H, W, 3)
(``openjai.errors.MetricError`` otherwise). Colour handling follows the JPEG AI reference
software's quality assessment code: BT.709 full-range YCbCr on a 10-bit internal grid,
computed once by :func:`openjai.eval.metrics.colour.rgb_to_ycbcr`.

=============  =====================  ====================================  ==========
key            implementation         input                                 better
=============  =====================  ====================================  ==========
psnr_y         numpy                  Y (10-bit scale, peak 1023)           higher
psnr_yuv       numpy                  (6 Y + Cb + Cr) / 8 of plane PSNRs    higher
psnr_rgb       numpy                  8-bit RGB, peak 255                   higher
ms_ssim        pytorch-msssim         Y * 1023, data_range 1023             higher
iw_ssim        piq                    Y * 255, data_range 255               higher
vmaf           libvmaf (ffmpeg)       YCbCr 4:4:4 10-bit, vmaf_v0.6.1       higher
vif_p          piq                    Y in [0, 1]                           higher
psnr_hvs_m     psnr-hvsm              Y in [0, 1]                           higher
nlpd           openjai (IQA_pytorch)  Y in [0, 1]                           LOWER
fsim           piq (FSIMc)            RGB in [0, 1] (10-bit grid)           higher
=============  =====================  ====================================  ==========

Modules: ``colour`` (the conversion), ``psnr``, ``ssim`` (MS-SSIM, IW-SSIM), ``vmaf_ffmpeg``,
``piq_metrics`` (VIF-P, FSIM, and the torchvision-free piq loader), ``hvs`` (PSNR-HVS-M),
``nlpd_pyramid``. Each module's docstring gives the exact settings and the CTTC source for
them. The functions are also importable from this package, e.g.
``from openjai.eval.metrics import vmaf``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from openjai.errors import MetricError
from openjai.eval.metrics import hvs, nlpd_pyramid, piq_metrics, psnr, ssim, vmaf_ffmpeg
from openjai.eval.metrics.hvs import psnr_hvs_m
from openjai.eval.metrics.nlpd_pyramid import nlpd
from openjai.eval.metrics.piq_metrics import fsim, vif_p
from openjai.eval.metrics.psnr import psnr_rgb, psnr_y, psnr_yuv
from openjai.eval.metrics.ssim import iw_ssim, ms_ssim
from openjai.eval.metrics.vmaf_ffmpeg import vmaf
from openjai.eval.metrics.colour import PreparedPair

MetricFn = Callable[[np.ndarray, np.ndarray], float]

#: Public metric functions, by registry key (order = CSV column order).
METRICS: dict[str, MetricFn] = {
    "psnr_y": psnr_y,
    "psnr_yuv": psnr_yuv,
    "psnr_rgb": psnr_rgb,
    "ms_ssim": ms_ssim,
    "iw_ssim": iw_ssim,
    "vmaf": vmaf,
    "vif_p": vif_p,
    "psnr_hvs_m": psnr_hvs_m,
    "nlpd": nlpd,
    "fsim": fsim,
}

#: True where a larger value means better quality.
HIGHER_IS_BETTER: dict[str, bool] = {name: name != "nlpd" for name in METRICS}

# The same metrics on a PreparedPair, so that compute_all converts colour once per image.
_FROM_PAIR: dict[str, Callable[[PreparedPair], float]] = {
    "psnr_y": psnr._psnr_y,
    "psnr_yuv": psnr._psnr_yuv,
    "psnr_rgb": psnr._psnr_rgb,
    "ms_ssim": ssim._ms_ssim,
    "iw_ssim": ssim._iw_ssim,
    "vmaf": vmaf_ffmpeg._vmaf,
    "vif_p": piq_metrics._vif_p,
    "psnr_hvs_m": hvs._psnr_hvs_m,
    "nlpd": nlpd_pyramid._nlpd,
    "fsim": piq_metrics._fsim,
}


def compute_all(ref: np.ndarray, dist: np.ndarray, names: Iterable[str] | None = None) -> dict[str, float]:
    """Compute the named metrics (all of METRICS when ``names`` is None), in the order given.

    Raises MetricError for an unknown name or invalid images, ToolMissingError when a
    metric's package or program is missing.
    """
    selected = list(METRICS) if names is None else list(names)
    unknown = [n for n in selected if n not in METRICS]
    if unknown:
        raise MetricError(f"unknown metric(s) {unknown}; known: {list(METRICS)}")
    pair = PreparedPair(ref, dist)
    return {name: _FROM_PAIR[name](pair) for name in selected}


__all__ = [
    "METRICS", "HIGHER_IS_BETTER", "compute_all", "MetricFn",
    "psnr_y", "psnr_yuv", "psnr_rgb", "ms_ssim", "iw_ssim", "vmaf", "vif_p", "psnr_hvs_m", "nlpd", "fsim",
]
