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

Computation in float64 on the CPU. torch's float64 ``conv2d`` on the CPU has no fast kernel
(it builds an im2col matrix of k*k copies of the image: ~0.4 s per 17x17 filter of a
700x400 plane, most of VIF-P's and IW-SSIM's time). The piq modules used for VIF-P and IW-SSIM
therefore see a ``torch.nn.functional`` whose ``conv2d`` computes float64, stride-1, unpadded,
depthwise filters as a sum of k*k shifted products (:func:`conv2d_f64`, ~9x faster, the
same sums in the same order: equal to ``F.conv2d`` to the last bit on this machine, and to
< 1e-15 relative in any case; anything else goes to ``F.conv2d``). The metric code is piq's,
unchanged.

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


def conv2d_f64(input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
               stride=1, padding=0, dilation=1, groups: int = 1) -> torch.Tensor:
    """``F.conv2d``; float64 CPU stride-1 unpadded depthwise filters as a sum of shifted products."""
    fast = (
        input.dtype == torch.float64 and weight.dtype == torch.float64
        and input.device.type == "cpu" and weight.device.type == "cpu"
        and bias is None and stride in (1, (1, 1)) and padding in (0, (0, 0)) and dilation in (1, (1, 1))
        and input.dim() == 4 and weight.dim() == 4 and weight.shape[1] == 1
        and groups == input.shape[1] == weight.shape[0]
        and weight.shape[2] <= input.shape[2] and weight.shape[3] <= input.shape[3]
    )
    if not fast:
        return F.conv2d(input, weight, bias, stride, padding, dilation, groups)
    n, c, h_in, w_in = input.shape
    kh, kw = int(weight.shape[2]), int(weight.shape[3])
    h, w = h_in - kh + 1, w_in - kw + 1
    taps = weight[:, 0].reshape(1, c, kh, kw)
    out = torch.zeros((n, c, h, w), dtype=input.dtype)
    for i in range(kh):
        for j in range(kw):
            out += input[:, :, i:i + h, j:j + w] * taps[:, :, i:i + 1, j:j + 1]
    return out


class _FastConvFunctional:
    """``torch.nn.functional`` with :func:`conv2d_f64` as ``conv2d`` (the ``F`` of piq's vif, iw_ssim)."""

    conv2d = staticmethod(conv2d_f64)

    def __getattr__(self, name: str):
        return getattr(F, name)


_FAST_F = _FastConvFunctional()


def load_piq_fast_conv(submodule: str) -> types.ModuleType:
    """:func:`load_piq`, with the module's ``F`` (torch.nn.functional) using :func:`conv2d_f64`."""
    mod = load_piq(submodule)
    if getattr(mod, "F", None) is not _FAST_F:
        mod.F = _FAST_F
    return mod


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
    vif = load_piq_fast_conv("vif")
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
