"""The one RGB -> YCbCr conversion every quality metric uses (JPEG AI CTTC / VM convention).

Setting (followed exactly; source: the JPEG AI reference software's quality assessment code,
``src/codec/metrics/metrics.py`` of the VM, class ``DataClass``: ``load_image`` /
``rgb_to_yuv`` / ``round_plane``, with its defaults ``--color-conv 709`` and
``--internal-bits 10``):

* Matrix: ITU-R BT.709, **full range**, on RGB normalised to [0, 1] (no gamma change):

      Y  = 0.2126 R + 0.7152 G + 0.0722 B
      Cb = (B - Y) / 1.8556 + 0.5
      Cr = (R - Y) / 1.5748 + 0.5

* Precision: 8-bit RGB is first put on the internal 10-bit grid
  (``round(v / 255 * 1023) / 1023``), converted in float64, clipped to [0, 1] and rounded to
  the 10-bit grid again (``round(c * 1023) / 1023``). So every plane returned here holds
  multiples of 1/1023 in [0, 1]. Each metric module states the scale it feeds its
  implementation with (e.g. MS-SSIM on ``Y * 1023``, IW-SSIM on ``Y * 255``).

Nothing else in ``openjai.eval.metrics`` converts colour: metrics take their planes from
:class:`PreparedPair`, which calls :func:`rgb_to_ycbcr` once per image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from openjai.bt709 import BT709_CB_DIV, BT709_CR_DIV, BT709_KB, BT709_KG, BT709_KR
from openjai.errors import MetricError

#: Bit depth of the internal representation (JPEG AI VM default ``--internal-bits 10``).
CTTC_INTERNAL_BITS: int = 10


def _round_to_grid(x: np.ndarray, bits: int | None) -> np.ndarray:
    if bits is None:
        return x
    m = float((1 << bits) - 1)
    return np.round(x * m) / m


def rgb_to_unit(rgb: np.ndarray, bits: int | None = CTTC_INTERNAL_BITS) -> np.ndarray:
    """uint8 RGB (H, W, 3) -> float64 RGB in [0, 1], on the ``bits`` grid (None: exact v/255)."""
    return _round_to_grid(rgb.astype(np.float64) / 255.0, bits)


def rgb_to_ycbcr(rgb: np.ndarray, bits: int | None = CTTC_INTERNAL_BITS) -> np.ndarray:
    """uint8 RGB (H, W, 3) -> float64 YCbCr (H, W, 3) in [0, 1]: BT.709, full range.

    ``bits`` is the internal precision both the RGB input and the YCbCr output are rounded
    to (10 as in the JPEG AI VM; ``None`` keeps full float precision).
    """
    x = rgb_to_unit(rgb, bits)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = BT709_KR * r + BT709_KG * g + BT709_KB * b
    cb = (b - y) / BT709_CB_DIV + 0.5
    cr = (r - y) / BT709_CR_DIV + 0.5
    out = np.clip(np.stack([y, cb, cr], axis=-1), 0.0, 1.0)
    return _round_to_grid(out, bits)


def validate_pair(ref: np.ndarray, dist: np.ndarray) -> None:
    """Raise MetricError unless ``ref`` and ``dist`` are RGB uint8 arrays of one shape (H, W, 3)."""
    for label, a in (("ref", ref), ("dist", dist)):
        if not isinstance(a, np.ndarray):  # callers may pass anything despite the annotation
            raise MetricError(f"{label} must be a numpy array, got {type(a).__name__}")
        if a.dtype != np.uint8:
            raise MetricError(f"{label} must have dtype uint8, got {a.dtype}")
        if a.ndim != 3 or a.shape[2] != 3:
            raise MetricError(f"{label} must have shape (H, W, 3), got {a.shape}")
        if a.shape[0] < 1 or a.shape[1] < 1:
            raise MetricError(f"{label} is empty: shape {a.shape}")
    if ref.shape != dist.shape:
        raise MetricError(f"ref and dist differ in shape: {ref.shape} vs {dist.shape}")


@dataclass
class PreparedPair:
    """A validated (ref, dist) pair with its colour representations computed once, on demand.

    ``ycbcr_ref`` / ``ycbcr_dist``: :func:`rgb_to_ycbcr` output (10-bit grid, [0, 1]);
    ``rgb_ref`` / ``rgb_dist``: :func:`rgb_to_unit` output (10-bit grid, [0, 1]).
    """

    ref: np.ndarray
    dist: np.ndarray
    _cache: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        validate_pair(self.ref, self.dist)

    def _get(self, key: str) -> np.ndarray:
        if key not in self._cache:
            img = self.ref if key.endswith("ref") else self.dist
            fn = rgb_to_ycbcr if key.startswith("ycbcr") else rgb_to_unit
            self._cache[key] = fn(img)
        return self._cache[key]

    @property
    def ycbcr_ref(self) -> np.ndarray:
        return self._get("ycbcr_ref")

    @property
    def ycbcr_dist(self) -> np.ndarray:
        return self._get("ycbcr_dist")

    @property
    def rgb_ref(self) -> np.ndarray:
        return self._get("rgb_ref")

    @property
    def rgb_dist(self) -> np.ndarray:
        return self._get("rgb_dist")

