"""openjai itself behind the evaluation ``Codec`` protocol, so it is measured by the same code
path as the anchors (rate matching, metrics, timing, CSV).

```
img (RGB uint8) ──encode(img, q)──▶ openjai.encode(img, quality=q, model=point)  ──▶ .jai bytes
.jai bytes      ──decode(data)───▶ openjai.decode(data, model=point) ──▶ RGB uint8 (H, W, 3)
```

Settings: the parameter is ``--quality`` in [0, 100] (float, rate increasing), which the API
maps linearly onto the encoder's rate range (``codec.ratecontrol.quality_to_rate``). Rate
matching for the CTTC therefore searches quality with :func:`openjai.eval.ratematch.match_rate`,
exactly as it does an anchor's knob, and never uses openjai's own bpp search (which would give
openjai a different selection rule from the anchors). For an image that was a JPEG the encoder
has more than one lattice weight (``Encoder.lattice_weights``): ``alternatives`` offers the
adapter at the others, each searched by the same rule, and ``preferred`` chooses among their
streams as ``openjai encode --bpp`` does (``ratecontrol.preferred_stream``).

Colour: the image is coded as RGB (the model's own colour handling, see ``openjai.image``); a
grey decode (never produced from a 3-channel input) would be expanded to 3 equal channels.
Bytes counted: the whole .jai stream (header, sections, CRC), as for a file on disk.

Encode cache: ``openjai.encode`` runs the analysis transform g_a on every call, although only
the gain (β) changes between the encodes of one rate search. This adapter keeps the analysed
image (an ``Encoder``) of the last image it saw, keyed by a digest of the pixels, and codes each
quality from it: the bytes are identical to ``openjai.encode(img, quality=q, model=...)``
(tested), only the repeated g_a is saved. ``clear_cache()`` drops it, so that a timed encode
measures the full work (the CTTC runner calls it before timing).
"""

from __future__ import annotations

import hashlib

import numpy as np

from openjai import api
from openjai import image as _image
from openjai.codec.coder import Encoder
from openjai.codec.ratecontrol import preferred_stream, quality_to_rate
from openjai.codec.refine import check_effort
from openjai.codec.weights import LoadedCodec
from openjai.errors import ImageError
from openjai.eval.anchors.base import ParamRange

__all__ = ["OpenJAICodec"]


def _digest(img: np.ndarray) -> tuple[tuple[int, ...], str, bytes]:
    a = np.ascontiguousarray(img)
    return a.shape, a.dtype.str, hashlib.blake2b(memoryview(a).cast("B"), digest_size=16).digest()


class OpenJAICodec:
    """``Codec`` adapter for openjai at one operating point (model name, default ``"base"``)."""

    name = "openjai"
    param_range = ParamRange(low=0.0, high=100.0, increasing=True, integer=False)

    def __init__(self, model: str | LoadedCodec = "base", effort: int = 0, residual: bool = True,
                 adaptive_filter: bool = True, lattice: bool = True, lattice_weight: float = 1.0) -> None:
        self._lc: LoadedCodec | None = model if isinstance(model, LoadedCodec) else None
        self.point: str | None = None if isinstance(model, LoadedCodec) else model
        self.effort = check_effort(effort)
        self.residual = residual
        self.adaptive_filter = adaptive_filter
        self.lattice = lattice
        self.lattice_weight = lattice_weight
        self._cache: tuple[tuple, Encoder] | None = None

    # Pickling (process / Dask workers): send the point name, never tensors or caches.
    def __getstate__(self) -> dict:
        if self.point is None:
            raise TypeError("an OpenJAICodec built from a LoadedCodec cannot be sent to another process; "
                            "build it from a model point name")
        return {"point": self.point, "effort": self.effort, "residual": self.residual,
                "adaptive_filter": self.adaptive_filter, "lattice": self.lattice,
                "lattice_weight": self.lattice_weight}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["point"], state["effort"], state["residual"], state["adaptive_filter"], state["lattice"],
                      state["lattice_weight"])

    @property
    def model(self) -> LoadedCodec:
        """The loaded model (loaded on first use; ``openjai.load_model`` caches it per process)."""
        if self._lc is None:
            self._lc = api.load_model(self.point or "base")
        return self._lc

    def clear_cache(self) -> None:
        """Forget the analysed image, so that the next encode does the full work."""
        self._cache = None

    def _encoder(self, img: np.ndarray) -> Encoder:
        if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            shape = getattr(img, "shape", None)
            raise ImageError(f"openjai codec takes an RGB uint8 (H, W, 3) array, got {type(img).__name__} {shape}")
        key = _digest(img)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        self._cache = None  # release the previous analysis before computing the next
        inp = _image.load(img)  # the same split into planes that openjai.encode does
        enc = Encoder(self.model, inp.rgb, inp.colour, inp.alpha, self.effort, self.residual,
                      self.adaptive_filter, self.lattice)
        self._cache = (key, enc)
        return enc

    def encode(self, img: np.ndarray, param: float) -> bytes:
        """Bytes of ``openjai.encode(img, quality=param, model=..., effort=...)`` (RateControlError outside [0, 100])."""
        enc = self._encoder(img)
        return enc.code(quality_to_rate(float(param), enc.top_rate), lattice_weight=self.lattice_weight)

    def alternatives(self, img: np.ndarray) -> list["OpenJAICodec"]:
        """This codec at the image's other lattice weights (none unless it was a JPEG), sharing
        its analysis of the image: the candidates ``openjai encode --bpp`` searches too."""
        enc = self._encoder(img)
        out = []
        for weight in enc.lattice_weights[1:]:
            alt = OpenJAICodec(self.point if self.point is not None else self._lc, self.effort, self.residual,
                               self.adaptive_filter, self.lattice, weight)
            alt._lc, alt._cache = self._lc, self._cache
            out.append(alt)
        return out

    def preferred(self, img: np.ndarray, streams: list[bytes]) -> int:
        """Index of the stream openjai's rate control keeps (``ratecontrol.preferred_stream``)."""
        return preferred_stream(self._encoder(img), streams)

    def decode(self, data: bytes) -> np.ndarray:
        out = api.decode(data, model=self.model)
        if out.ndim == 2:
            out = np.repeat(out[:, :, None], 3, axis=2)
        elif out.shape[2] == 4:
            out = out[:, :, :3]
        return np.ascontiguousarray(out)
