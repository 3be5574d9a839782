"""MS-SSIM (``pytorch-msssim``) and IW-SSIM (``piq``) on the BT.709 luma plane.

Settings, all following the JPEG AI VM (``src/codec/metrics/metrics.py`` of the JPEG AI
reference software, classes ``MSSSIMTorch`` and ``IWSSIM``):

* Colour: **Y** of :func:`~openjai.eval.metrics.colour.rgb_to_ycbcr` (BT.709, full range,
  10-bit internal grid). Chroma is not used.
* ``ms_ssim``: ``pytorch_msssim.ms_ssim`` (Wang et al. 2003; 11x11 Gaussian window,
  sigma 1.5, K = (0.01, 0.03), 5 scales with the standard weights
  0.0448/0.2856/0.3001/0.2363/0.1333) on ``Y * 1023`` with ``data_range = 1023``, exactly
  the VM call. Images smaller than 164 px per side are zero-padded at the bottom/right to
  164 as in the VM (``pad_tensor_till_size(.., 164)``; the library needs > 160).
* ``iw_ssim``: ``piq.information_weighted_ssim`` (Wang & Li 2011, ``iwssim.m``: Laplacian
  pyramid, 5 scales, 3x3 neighbourhoods with parent, sigma_n^2 = 0.4) on ``Y * 255`` with
  ``data_range = 255`` -- the VM feeds its own port of the MATLAB code (Python-IW-SSIM) with
  Y on [0, 255] too; piq agrees with it to < 1e-4 relative on photos (measured when this was
  written). The reference is piq's ``y`` argument (IW-SSIM is asymmetric: the information
  weights come from the reference). Images smaller than 256 px per side are zero-padded at
  the bottom/right to 256, as the VM does.

Computation in float64 on the CPU (IW-SSIM's filters through
:func:`~openjai.eval.metrics.piq_metrics.conv2d_f64`, see there).
"""

from __future__ import annotations

import numpy as np
import torch

from openjai.errors import MetricError, ToolMissingError
from openjai.eval.metrics.colour import CTTC_INTERNAL_BITS, PreparedPair
from openjai.eval.metrics.piq_metrics import load_piq_fast_conv, pad_to_min_size, plane_tensor

MS_SSIM_MIN_SIZE = 164
IW_SSIM_MIN_SIZE = 256


def _finite(v: float, name: str) -> float:
    if not np.isfinite(v):
        raise MetricError(f"{name} is not finite ({v}) for these images")
    return v


def _ms_ssim(p: PreparedPair) -> float:
    try:
        from pytorch_msssim import ms_ssim as _lib_ms_ssim
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ToolMissingError("MS-SSIM needs the Python package pytorch-msssim==1.0.0 "
                               "(pip install pytorch-msssim==1.0.0)") from e
    peak = float((1 << CTTC_INTERNAL_BITS) - 1)
    ref = pad_to_min_size(plane_tensor(p.ycbcr_ref[..., 0] * peak), MS_SSIM_MIN_SIZE)
    dist = pad_to_min_size(plane_tensor(p.ycbcr_dist[..., 0] * peak), MS_SSIM_MIN_SIZE)
    with torch.no_grad():
        return _finite(float(_lib_ms_ssim(ref, dist, data_range=peak).item()), "MS-SSIM")


def _iw_ssim(p: PreparedPair) -> float:
    iw = load_piq_fast_conv("iw_ssim")
    ref = pad_to_min_size(plane_tensor(p.ycbcr_ref[..., 0] * 255.0), IW_SSIM_MIN_SIZE)
    dist = pad_to_min_size(plane_tensor(p.ycbcr_dist[..., 0] * 255.0), IW_SSIM_MIN_SIZE)
    with torch.no_grad():
        try:
            v = iw.information_weighted_ssim(dist, ref, data_range=255.0)
        except RuntimeError as e:  # singular information-content matrix (e.g. flat reference)
            raise MetricError(f"IW-SSIM cannot be computed for these images: {e}") from e
    return _finite(float(v.item()), "IW-SSIM")


def ms_ssim(ref: np.ndarray, dist: np.ndarray) -> float:
    """MS-SSIM of BT.709 Y (1 for identical images; higher is better)."""
    return _ms_ssim(PreparedPair(ref, dist))


def iw_ssim(ref: np.ndarray, dist: np.ndarray) -> float:
    """IW-SSIM of BT.709 Y (1 for identical images; higher is better)."""
    return _iw_ssim(PreparedPair(ref, dist))
