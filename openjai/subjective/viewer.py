"""What the viewer page shows for a .jai: decoded image, original, bpp, model and metrics.

Computed once per item on first request and kept (the server is for one person at a desk).
Metrics are those of the eval (openjai/eval/metrics) that need no external tool and are quick:
PSNR-Y, PSNR-RGB and MS-SSIM (MS-SSIM only where both sides are at least 161 px, its 5-scale
limit); computed on RGB, so a grey or alpha stream is compared on its colour planes.
"""

from __future__ import annotations

import io
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ImageError, MetricError, SessionError

_METRICS = ("psnr_y", "psnr_rgb", "ms_ssim")


def _rgb(a: np.ndarray) -> np.ndarray:
    if a.ndim == 2:
        a = a[:, :, None]
    if a.shape[2] in (1, 2):
        a = np.repeat(a[:, :, :1], 3, axis=2)
    return np.ascontiguousarray(a[:, :, :3])


def _png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


@dataclass
class ViewItem:
    """A .jai file and, optionally, its original image."""

    jai: Path
    original: Path | None = None
    _cache: dict | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def name(self) -> str:
        return self.jai.name

    def _compute(self) -> dict:
        from .. import api
        from .. import image as _image
        from ..eval.metrics import compute_all

        try:
            data = self.jai.read_bytes()
        except OSError as e:
            raise SessionError(f"cannot read {self.jai}: {e.strerror}") from None
        info = api.read_info(data)
        dec = api.decode(data)
        out = {"name": self.name, "width": info.width, "height": info.height, "model": info.model_id,
               "colour": info.colour, "bytes": info.num_bytes, "bpp": info.bpp, "metrics": {},
               "decoded_png": _png(dec), "original_png": None}
        if self.original is not None:
            try:
                orig = _image.load(self.original)
            except ImageError as e:
                raise SessionError(str(e)) from None
            if orig.rgb.shape[:2] != dec.shape[:2]:
                raise SessionError(f"{self.original} is {orig.rgb.shape[1]}x{orig.rgb.shape[0]}, the .jai "
                                   f"{info.width}x{info.height}: give the image it was encoded from")
            ref = orig.rgb
            out["original_png"] = _png(ref)
            for m in _METRICS:
                try:
                    v = float(compute_all(ref, _rgb(dec), [m])[m])
                except MetricError:
                    continue
                out["metrics"][m] = None if not math.isfinite(v) else v  # PSNR of identical images is inf
        return out

    def data(self) -> dict:
        """The item's decoded PNG, original PNG (or None), header facts and metrics."""
        with self._lock:
            if self._cache is None:
                self._cache = self._compute()
            return self._cache

    def summary(self) -> dict:
        d = self.data()
        return {k: v for k, v in d.items() if not k.endswith("_png")} | {"has_original": d["original_png"] is not None}
