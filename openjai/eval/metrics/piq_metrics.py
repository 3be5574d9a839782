"""VIF-P and FSIM through ``piq`` (0.8.0), and the loader every piq-based metric uses.

Settings (JPEG AI VM = ``src/codec/metrics/metrics.py`` of the JPEG AI reference software,
which computes these two with the IQA_pytorch package; piq implements the same MATLAB
reference algorithms and agrees with IQA_pytorch to < 1e-4 relative on photos, measured
when this module was written):

* ``vif_p`` -- pixel-domain VIF (Sheikh & Bovik 2006, ``vifp_mscale.m``: 4 scales,
  Gaussian windows N = 2^(5-s)+1, sigma = N/5, sigma_n^2 = 2). Input: **Y** of
  :func:`~openjai.eval.metrics.colour.rgb_to_ycbcr` (BT.709, full range, 10-bit grid) in
  [0, 1], ``data_range = 1`` (piq rescales to [0, 255] inside, as IQA_pytorch ``VIFs``
  does). Images smaller than 64 px per side are zero-padded at the bottom/right to 64, as
  the VM does (``pad_tensor_till_size(.., 64)``). VIF is asymmetric (information of the
  reference preserved in the distorted image): the reference is piq's ``y`` (target), the
  distorted image its ``x``, matching the VM's ``VIFs`` call. Same as the CTTC setting.
* ``fsim`` -- FSIMc (Zhang et al. 2011, chromatic variant with the YIQ I/Q similarity
  terms, MATLAB ``FeatureSIM.m``). Input: **RGB** on the 10-bit grid in [0, 1]
  (:func:`~openjai.eval.metrics.colour.rgb_to_unit`), ``data_range = 1``,
  ``chromatic=True``; piq converts RGB to YIQ (NTSC matrix) internally and downsamples by
  ``round(min(H, W) / 256)`` as the MATLAB code does. The VM likewise calls FSIM with
  ``channels=3`` on its RGB data: same as the CTTC setting.

Computation in float64 on the CPU.

piq's package ``__init__`` imports torchvision (for LPIPS/DISTS/FID); the functions used here
do not need it, and torchvision cannot be installed next to the project's CPU torch.
:func:`load_piq` therefore imports only the needed submodules, without running
``piq/__init__.py`` (a plain ``import piq`` is used when piq is already imported).
Install piq with ``pip install --no-deps piq==0.8.0`` so that pip does not pull torchvision
(and a different torch) in.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
import threading
import types

import numpy as np
import torch
import torch.nn.functional as F

from openjai.errors import MetricError, ToolMissingError
from openjai.eval.metrics.colour import PreparedPair

PIQ_REQUIREMENT = "piq==0.8.0"
#: VM padding: VIF inputs are zero-padded to at least this many pixels per side.
VIF_MIN_SIZE = 64

_PIQ_IMPORT_LOCK = threading.Lock()


@functools.lru_cache(maxsize=None)
def load_piq(submodule: str) -> types.ModuleType:
    """Import ``piq.<submodule>`` without executing ``piq/__init__.py`` (which needs torchvision)."""
    with _PIQ_IMPORT_LOCK:  # the temporary 'piq' entry below must not be seen half-done by another thread
        return _load_piq_locked(submodule)


def _load_piq_locked(submodule: str) -> types.ModuleType:
    if "piq" in sys.modules:
        return importlib.import_module(f"piq.{submodule}")
    spec = importlib.util.find_spec("piq")
    if spec is None or spec.submodule_search_locations is None:
        raise ToolMissingError(
            f"the quality metrics need the Python package {PIQ_REQUIREMENT}; install it with "
            f"'pip install --no-deps {PIQ_REQUIREMENT}' (--no-deps keeps pip from replacing torch)")
    stub = types.ModuleType("piq")
    stub.__path__ = list(spec.submodule_search_locations)
    stub.__spec__ = spec
    sys.modules["piq"] = stub
    try:
        return importlib.import_module(f"piq.{submodule}")
    finally:
        # Leave no half-initialised 'piq' behind: a later 'import piq' runs the real __init__,
        # which then finds the submodules loaded here in sys.modules.
        if sys.modules.get("piq") is stub:
            del sys.modules["piq"]


def plane_tensor(plane: np.ndarray) -> torch.Tensor:
    """(H, W) -> float64 tensor (1, 1, H, W)."""
    return torch.from_numpy(np.ascontiguousarray(plane, dtype=np.float64))[None, None]


def rgb_tensor(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) -> float64 tensor (1, 3, H, W)."""
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float64))[None]


def pad_to_min_size(t: torch.Tensor, min_size: int) -> torch.Tensor:
    """Zero-pad bottom/right up to ``min_size`` per side (the VM's ``pad_tensor_till_size``)."""
    ph = max(min_size - t.shape[-2], 0)
    pw = max(min_size - t.shape[-1], 0)
    if ph == 0 and pw == 0:
        return t
    return F.pad(t, (0, pw, 0, ph), mode="constant", value=0.0)


def _as_float(value: torch.Tensor, name: str) -> float:
    v = float(value.item())
    if not np.isfinite(v):
        raise MetricError(f"{name} is not finite ({v}) for these images")
    return v


def _vif_p(p: PreparedPair) -> float:
    vif = load_piq("vif")
    ref = pad_to_min_size(plane_tensor(p.ycbcr_ref[..., 0]), VIF_MIN_SIZE)
    dist = pad_to_min_size(plane_tensor(p.ycbcr_dist[..., 0]), VIF_MIN_SIZE)
    with torch.no_grad():
        return _as_float(vif.vif_p(dist, ref, data_range=1.0), "VIF-P")


def _fsim(p: PreparedPair) -> float:
    fsim_mod = load_piq("fsim")
    ref = rgb_tensor(p.rgb_ref)
    dist = rgb_tensor(p.rgb_dist)
    with torch.no_grad():
        return _as_float(fsim_mod.fsim(dist, ref, data_range=1.0, chromatic=True), "FSIM")


def vif_p(ref: np.ndarray, dist: np.ndarray) -> float:
    """Pixel-domain VIF on BT.709 Y (1 for identical images; higher is better)."""
    return _vif_p(PreparedPair(ref, dist))


def fsim(ref: np.ndarray, dist: np.ndarray) -> float:
    """FSIMc on RGB (1 for identical images; higher is better)."""
    return _fsim(PreparedPair(ref, dist))
