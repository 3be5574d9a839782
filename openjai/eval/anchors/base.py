"""The one protocol every codec under evaluation implements (anchors and openjai alike).

An image is an RGB uint8 numpy array of shape (H, W, 3). ``encode`` returns the bytes that
count for bpp (see each module's docstring for what they include); ``decode`` must use an
independent decoder where one exists. ``param`` is the codec's native rate knob; rate
matching (openjai.eval.ratematch) searches it within ``param_range``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ...bpp import bits_per_pixel  # noqa: F401  (re-exported for codec modules)


@dataclass(frozen=True)
class ParamRange:
    """Search interval of a codec's rate parameter.

    ``increasing``: True when a larger parameter gives more bits (e.g. JPEG quality),
    False when it gives fewer (e.g. a quantization parameter). ``integer``: the codec only
    accepts integers.
    """

    low: float
    high: float
    increasing: bool
    integer: bool


class Codec(Protocol):
    name: str
    param_range: ParamRange

    def encode(self, img: np.ndarray, param: float) -> bytes: ...

    def decode(self, data: bytes) -> np.ndarray: ...
