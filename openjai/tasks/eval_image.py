"""Shared pieces of the image-task evaluations (eval_superres.py, eval_denoise.py).

Metrics on the project's one colour conversion (eval/metrics/colour.py: BT.709 full range,
10-bit grid): PSNR-Y (eval/metrics/psnr.py), PSNR over RGB, and SSIM on Y (Wang et al. 2004:
11-tap Gaussian window σ = 1.5 — here scipy's truncated Gaussian of radius 5 —, K = 0.01/0.03,
on Y × 255, mean of the SSIM map), optionally after shaving a border (the SR convention).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from .. import api
from ..errors import RateControlError
from ..eval.complexity import kmac_per_pixel
from ..eval.metrics.colour import rgb_to_ycbcr
from ..eval.metrics.psnr import psnr_rgb, psnr_y
from .evaluate import cached_stream, cpu_ms, macs
from .image_net import LatentImageNet

__all__ = ["psnr_rgb", "psnr_y", "ssim_y", "shave", "stream_at", "path_costs"]


def shave(a: np.ndarray, border: int) -> np.ndarray:
    """``a`` without ``border`` pixels on each side."""
    return a[border:-border, border:-border] if border else a


def ssim_y(ref: np.ndarray, dist: np.ndarray) -> float:
    """Mean SSIM of the BT.709 luma of two uint8 RGB images (1 for identical ones)."""
    x, y = (rgb_to_ycbcr(a)[..., 0] * 255.0 for a in (ref, dist))
    f = lambda a: gaussian_filter(a, 1.5, truncate=5 / 1.5)  # noqa: E731
    mx, my = f(x), f(y)
    vx, vy, cxy = f(x * x) - mx * mx, f(y * y) - my * my, f(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


def stream_at(rgb: np.ndarray, bpp: float) -> bytes:
    """The cached ``base`` stream at ``bpp``; where the model's lowest rate lies above it (+10 %),
    the lowest-rate stream (results record the bpp actually coded)."""
    try:
        return cached_stream(rgb, bpp)
    except RateControlError:
        return api.encode(rgb, quality=0)


def path_costs(data: bytes, net: LatentImageNet, anchor: Callable[[np.ndarray], object], out_pixels: int,
               threads: int) -> dict[str, float]:
    """kMAC per output pixel and CPU ms of the latent path (decode_latents + ``net``) and of decode +
    ``anchor`` (the pixel task on the decoded image; its MACs counted where it runs torch). MACs
    count the transposed convs as such (as g_s's count does); the time is of ``net.infer``."""
    lat = api.decode_latents(data)
    h, w = lat.header.height, lat.header.width
    decoded = api.decode(data)
    with torch.no_grad():
        net_macs = macs(lambda: net(lat.y_hat))
        anchor_macs = macs(lambda: anchor(decoded))
    g_s_kmac = kmac_per_pixel(api.load_model("base").model, w, h).g_s * w * h
    t = {"entropy_ms": cpu_ms(lambda: api.decode_latents(data), threads=threads),
         "net_ms": cpu_ms(lambda: net.infer(lat.y_hat), threads=threads),
         "decode_ms": cpu_ms(lambda: api.decode(data), threads=threads),
         "anchor_ms": cpu_ms(lambda: anchor(decoded), threads=threads)}
    return {"width": w, "height": h, "net_kmac": net_macs / out_pixels / 1000, "g_s_kmac": g_s_kmac / out_pixels,
            "anchor_kmac": anchor_macs / out_pixels / 1000, **t}
