"""PSNR-HVS-M (and PSNR-HVS) through the ``psnr-hvsm`` package.

Algorithm: Ponomarenko et al. 2007 ("On between-coefficient contrast masking of DCT basis
functions"), MATLAB ``psnrhvsm.m``: non-overlapping 8x8 blocks, orthonormal DCT, CSF
weighting, contrast masking (PSNR-HVS-M only), peak 1 on [0, 1] data. The package is
cross-checked by its authors against the published TID2013 values of the reference code.

Settings (JPEG AI VM ``PSNR_HVS`` class in ``src/codec/metrics/metrics.py``):

* Colour: **Y** of :func:`~openjai.eval.metrics.colour.rgb_to_ycbcr` (BT.709, full range,
  10-bit internal grid) in [0, 1], float64. Same as the VM.
* Border: the plane is padded to a multiple of 8 by replicating its last row/column, as in
  the VM (``F.pad(.., mode='replicate')``).
* Identical images give 100 dB (the package's cap for a zero error).
* Deviation to note: the VM's column is PSNR-HVS (it returns the first value of
  ``psnr_hvs_hvsm``); the registry key ``psnr_hvs_m`` here is PSNR-HVS-M, the metric the
  project asks for. :func:`psnr_hvs` gives the VM's number.
"""

from __future__ import annotations

import contextlib
import functools
import io
import warnings
from collections.abc import Callable

import numpy as np

from openjai.errors import MetricError, ToolMissingError
from openjai.eval.metrics.colour import PreparedPair

PSNR_HVSM_REQUIREMENT = "psnr-hvsm==0.3.0"
BLOCK = 8


def _pad_to_block(plane: np.ndarray) -> np.ndarray:
    h, w = plane.shape
    ph = (-h) % BLOCK
    pw = (-w) % BLOCK
    if ph == 0 and pw == 0:
        return plane
    return np.pad(plane, ((0, ph), (0, pw)), mode="edge")


@functools.lru_cache(maxsize=1)
def _psnr_hvs_hvsm() -> Callable[[np.ndarray, np.ndarray], tuple[float, float]]:
    """The package's NumPy backend (chosen explicitly: its default depends on an env variable)."""
    try:
        # The package prints a hint on stdout when its optional torch backend (torch-dct) is absent.
        with contextlib.redirect_stdout(io.StringIO()):
            import psnr_hvsm
    except ImportError as e:
        raise ToolMissingError(f"PSNR-HVS-M needs the Python package {PSNR_HVSM_REQUIREMENT} "
                               f"(pip install {PSNR_HVSM_REQUIREMENT})") from e
    return psnr_hvsm.BACKENDS["numpy"]["psnr_hvs_hvsm"]


def _hvs_pair(p: PreparedPair) -> tuple[float, float]:
    fn = _psnr_hvs_hvsm()
    a = _pad_to_block(np.ascontiguousarray(p.ycbcr_ref[..., 0], dtype=np.float64))
    b = _pad_to_block(np.ascontiguousarray(p.ycbcr_dist[..., 0], dtype=np.float64))
    # np.where in the package evaluates both branches (0/0 on flat blocks, log of 1/0 for a
    # zero error); the selected results are correct, so the warnings are noise.
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        hvs, hvsm = fn(a, b)
    hvs, hvsm = float(hvs), float(hvsm)
    if not (np.isfinite(hvs) and np.isfinite(hvsm)):
        raise MetricError(f"PSNR-HVS(-M) is not finite ({hvs}, {hvsm}) for these images")
    return hvs, hvsm


def _psnr_hvs_m(p: PreparedPair) -> float:
    return _hvs_pair(p)[1]


def psnr_hvs_m(ref: np.ndarray, dist: np.ndarray) -> float:
    """PSNR-HVS-M of BT.709 Y in dB (100 for identical images; higher is better)."""
    return _psnr_hvs_m(PreparedPair(ref, dist))


def psnr_hvs(ref: np.ndarray, dist: np.ndarray) -> float:
    """PSNR-HVS (no masking) of BT.709 Y in dB: the number the JPEG AI VM reports as PSNR_HVS."""
    return _hvs_pair(PreparedPair(ref, dist))[0]
