"""PSNR on Y, on YCbCr weighted 6:1:1, and on RGB.

Colour handling and scale:

* ``psnr_y``: Y of :func:`openjai.eval.metrics.colour.rgb_to_ycbcr` (BT.709, full range,
  10-bit internal grid), MSE on the 10-bit scale (``Y * 1023``), peak 1023. This is the
  JPEG AI VM's ``PSNR_Y`` (``PSNRMetric`` in ``src/codec/metrics/metrics.py``:
  ``20 log10(max_val) - 10 log10(mse)`` with ``max_val = 2**bits - 1``, bits = 10).
* ``psnr_yuv``: ``(6 * PSNR_Y + PSNR_Cb + PSNR_Cr) / 8``, each term computed as ``psnr_y``
  on its own plane. The VM reports the three plane PSNRs separately; the 6:1:1 weighting of
  the per-plane PSNRs is the combined "YUV PSNR" convention of JVET common test conditions
  as used in JPEG AI reporting (given by the project lead; the exact CTTC text could not be
  checked here). :func:`psnr_planes` returns the three terms.
* ``psnr_rgb``: deviation from the VM (which has no RGB PSNR): plain PSNR over all three
  8-bit RGB channels jointly (one MSE over H x W x 3 samples), peak 255, no colour
  conversion and no 10-bit detour.

Identical inputs (MSE = 0) give ``PSNR_CAP_DB`` = 100 dB, the value the VM reports for
``mse == 0`` (a finite cap keeps averages and BD-rate fits well defined).
"""

from __future__ import annotations

import math

import numpy as np

from openjai.eval.metrics.colour import CTTC_INTERNAL_BITS, PreparedPair

#: Value reported for identical inputs (as the JPEG AI VM does).
PSNR_CAP_DB: float = 100.0

#: Weights of (Y, Cb, Cr) in ``psnr_yuv``.
YUV_WEIGHTS: tuple[float, float, float] = (6.0 / 8.0, 1.0 / 8.0, 1.0 / 8.0)


def psnr_from_mse(mse: float, peak: float) -> float:
    """``10 log10(peak^2 / mse)`` in dB; ``PSNR_CAP_DB`` when ``mse`` is 0."""
    if mse <= 0.0:
        return PSNR_CAP_DB
    return 10.0 * math.log10(peak * peak / mse)


def _plane_psnr(a: np.ndarray, b: np.ndarray) -> float:
    peak = float((1 << CTTC_INTERNAL_BITS) - 1)
    diff = (a - b) * peak
    return psnr_from_mse(float(np.mean(diff * diff)), peak)


def _psnr_planes(p: PreparedPair) -> tuple[float, float, float]:
    ya, yb = p.ycbcr_ref, p.ycbcr_dist
    return (_plane_psnr(ya[..., 0], yb[..., 0]),
            _plane_psnr(ya[..., 1], yb[..., 1]),
            _plane_psnr(ya[..., 2], yb[..., 2]))


def _psnr_y(p: PreparedPair) -> float:
    ya, yb = p.ycbcr_ref, p.ycbcr_dist
    return _plane_psnr(ya[..., 0], yb[..., 0])


def _psnr_yuv(p: PreparedPair) -> float:
    return float(sum(w * v for w, v in zip(YUV_WEIGHTS, _psnr_planes(p))))


def _psnr_rgb(p: PreparedPair) -> float:
    diff = p.ref.astype(np.float64) - p.dist.astype(np.float64)
    return psnr_from_mse(float(np.mean(diff * diff)), 255.0)


def psnr_planes(ref: np.ndarray, dist: np.ndarray) -> tuple[float, float, float]:
    """(PSNR_Y, PSNR_Cb, PSNR_Cr) in dB, as the JPEG AI VM reports them (10-bit scale)."""
    return _psnr_planes(PreparedPair(ref, dist))


def psnr_y(ref: np.ndarray, dist: np.ndarray) -> float:
    """PSNR of the BT.709 luma plane in dB (10-bit internal scale, peak 1023)."""
    return _psnr_y(PreparedPair(ref, dist))


def psnr_yuv(ref: np.ndarray, dist: np.ndarray) -> float:
    """(6 PSNR_Y + PSNR_Cb + PSNR_Cr) / 8 in dB."""
    return _psnr_yuv(PreparedPair(ref, dist))


def psnr_rgb(ref: np.ndarray, dist: np.ndarray) -> float:
    """PSNR over the 8-bit RGB samples in dB (peak 255)."""
    return _psnr_rgb(PreparedPair(ref, dist))
