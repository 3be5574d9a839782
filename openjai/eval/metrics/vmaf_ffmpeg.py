"""VMAF through libvmaf inside the ffmpeg binary of the PyPI wheel ``imageio-ffmpeg``.

Settings:

* Model: ``vmaf_v0.6.1`` (libvmaf's built-in copy, selected explicitly with
  ``model=version=vmaf_v0.6.1``), the default model of the ``vmaf`` v2.2.1 command-line tool
  the JPEG AI VM runs (``VMAF`` class in ``src/codec/metrics/metrics.py`` of the reference
  software). No clipping change, no NEG variant, per-frame score of the single frame.
* Colour: full **YCbCr 4:4:4** from :func:`~openjai.eval.metrics.colour.rgb_to_ycbcr`
  (BT.709, full range, 10-bit internal grid) written as raw planar ``yuv444p10le`` -- the
  VM writes the same 10-bit 4:4:4 planes and calls ``vmaf -p 444 -b 10``. libvmaf uses the
  luma plane for its features (VIF, ADM, motion); the chroma planes only fill the format.
  Colour is converted in NumPy and fed as raw planes, so ffmpeg does no conversion (and no
  range tagging can go wrong).
* A still image is a one-frame video: the motion feature is 0, so identical images score
  97.428, not 100 (documented libvmaf behaviour for pictures without motion).
* libvmaf's ``main`` input is the distorted image, ``reference`` the original.
* Size: libvmaf (this build) crashes on pictures with a side below 17 px; such inputs raise
  MetricError up front. Nothing is padded (the VM does not pad for VMAF either).

A missing ``imageio-ffmpeg`` or an ffmpeg without libvmaf raises ToolMissingError.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import tempfile

import numpy as np

from openjai.errors import MetricError, ToolMissingError
from openjai.eval.metrics.colour import CTTC_INTERNAL_BITS, PreparedPair

IMAGEIO_FFMPEG_REQUIREMENT = "imageio-ffmpeg==0.8.1"
VMAF_MODEL = "vmaf_v0.6.1"
PIX_FMT = "yuv444p10le"
#: Smallest width/height libvmaf handles (measured: 16 px crashes it, 17 px works).
VMAF_MIN_SIDE = 17
#: Seconds one ffmpeg run may take before it is abandoned.
FFMPEG_TIMEOUT_S = 600


@functools.lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of the imageio-ffmpeg binary, checked to contain the libvmaf filter."""
    try:
        import imageio_ffmpeg
    except ImportError as e:
        raise ToolMissingError(f"VMAF needs the Python package {IMAGEIO_FFMPEG_REQUIREMENT} "
                               f"(pip install {IMAGEIO_FFMPEG_REQUIREMENT}); its ffmpeg has libvmaf") from e
    try:
        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as e:
        raise ToolMissingError(f"imageio-ffmpeg has no ffmpeg binary for this platform: {e}") from e
    probe = subprocess.run([exe, "-hide_banner", "-h", "filter=libvmaf"],
                           capture_output=True, text=True, timeout=60)
    if "libvmaf AVOptions" not in probe.stdout:
        raise ToolMissingError(f"the ffmpeg at {exe} has no libvmaf filter; install "
                               f"{IMAGEIO_FFMPEG_REQUIREMENT}, whose static ffmpeg includes it")
    return exe


def _planar_10bit(ycbcr: np.ndarray) -> bytes:
    peak = (1 << CTTC_INTERNAL_BITS) - 1
    planes = np.round(ycbcr * peak).astype("<u2").transpose(2, 0, 1)
    return np.ascontiguousarray(planes).tobytes()


def _vmaf(p: PreparedPair) -> float:
    h, w = p.ref.shape[:2]
    if min(h, w) < VMAF_MIN_SIDE:
        raise MetricError(f"VMAF needs images of at least {VMAF_MIN_SIDE}x{VMAF_MIN_SIDE} pixels, got {w}x{h}")
    exe = ffmpeg_exe()
    raw = ["-f", "rawvideo", "-pix_fmt", PIX_FMT, "-s", f"{w}x{h}", "-r", "1"]
    with tempfile.TemporaryDirectory(prefix="openjai-vmaf-") as d:
        ref_path = os.path.join(d, "ref.yuv")
        dist_path = os.path.join(d, "dist.yuv")
        log_path = os.path.join(d, "vmaf.json")
        with open(ref_path, "wb") as f:
            f.write(_planar_10bit(p.ycbcr_ref))
        with open(dist_path, "wb") as f:
            f.write(_planar_10bit(p.ycbcr_dist))
        # Inside a filter graph ':' and '\' are special; the temp path is ours, but escape anyway.
        log_arg = log_path.replace("\\", "\\\\").replace(":", "\\:")
        cmd = [exe, "-hide_banner", "-nostdin", "-loglevel", "error",
               *raw, "-i", dist_path, *raw, "-i", ref_path,
               "-lavfi", f"[0:v][1:v]libvmaf=model=version={VMAF_MODEL}:log_fmt=json:log_path={log_arg}",
               "-f", "null", "-"]
        try:
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=FFMPEG_TIMEOUT_S)
        except subprocess.TimeoutExpired as e:
            raise MetricError(f"VMAF: ffmpeg did not finish within {FFMPEG_TIMEOUT_S} s") from e
        if run.returncode != 0:
            raise MetricError(f"VMAF: ffmpeg failed (exit {run.returncode}) for a {w}x{h} image: "
                              f"{run.stderr.strip()[-2000:]}")
        try:
            with open(log_path, encoding="utf-8") as f:
                log = json.load(f)
            score = float(log["frames"][0]["metrics"]["vmaf"])
        except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
            raise MetricError(f"VMAF: cannot read libvmaf's JSON log: {e}") from e
    if not np.isfinite(score):
        raise MetricError(f"VMAF is not finite ({score}) for these images")
    return score


def vmaf(ref: np.ndarray, dist: np.ndarray) -> float:
    """VMAF (vmaf_v0.6.1) of a single picture; 97.428 for identical images; higher is better."""
    return _vmaf(PreparedPair(ref, dist))
