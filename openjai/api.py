"""Public API: encode, decode, decode_latents, read_info, load_model.

    >>> import openjai
    >>> data = openjai.encode("photo.png", bpp=0.5)
    >>> img = openjai.decode(data)            # numpy uint8 (H, W, 3)
    >>> lat = openjai.decode_latents(data)    # ŷ for machine tasks, no synthesis
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from PIL import Image

from . import image
from .bpp import bits_per_pixel
from .codec import container, zoo
from .codec.coder import DecodedLatents, Encoder, decode_alpha, reconstruct
from .codec.coder import decode_latents as _decode_latents
from .codec.container import DEFAULT_LIMITS, ColourMode, Limits
from .codec.memory import check_memory
from .codec.ratecontrol import match_bpp, quality_to_rate
from .codec.weights import LoadedCodec
from .errors import BitstreamError, RateControlError

ImageLike = str | os.PathLike | np.ndarray | Image.Image
DEFAULT_QUALITY = 50.0


@dataclass(frozen=True)
class StreamInfo:
    """What ``read_info`` tells about a stream without decoding it."""

    model_id: str
    width: int
    height: int
    colour: str
    rate: float
    num_bytes: int
    bpp: float


def load_model(point: str = zoo.DEFAULT_POINT) -> LoadedCodec:
    """A shipped model by operating point name (cached)."""
    return zoo.load(point)


def _bytes(data: bytes | bytearray | memoryview) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise BitstreamError(f"expected the bytes of a .jai stream, got {type(data).__name__}")
    return bytes(data)


def encode(
    img: ImageLike,
    *,
    bpp: float | None = None,
    quality: float | None = None,
    model: str | LoadedCodec = "base",
    effort: int = 0,
    residual: bool = True,
    adaptive_filter: bool = True,
    lattice: bool = True,
) -> bytes:
    """Compress an image to .jai bytes at a target bpp (actual size, never above +10 %) or a quality 0-100.

    ``effort`` 0..3: higher levels refine the latents for this image (fewer bits for the same
    quality, several times slower to encode; decoding is unchanged). ``residual=False`` keeps
    the residual layer out (codec/residual.py), ``adaptive_filter=False`` the filter the
    encoder fits to the image (codec/adaptive_filter.py), ``lattice=False`` the layer that
    snaps the luma of a once-JPEG image to its DCT lattice (codec/lattice.py); with all off,
    the learned codec alone. At a ``bpp`` target a once-JPEG image is searched once per
    lattice weight, and a stream better in the model's distortion may replace the plain one
    (codec/ratecontrol.py).
    """
    if bpp is not None and quality is not None:
        raise RateControlError("give either bpp or quality, not both")
    lc = model if isinstance(model, LoadedCodec) else load_model(model)
    inp = image.load(img)
    enc = Encoder(lc, inp.rgb, inp.colour, inp.alpha, effort, residual, adaptive_filter, lattice)
    if bpp is not None:
        return match_bpp(enc, bpp).data
    q = DEFAULT_QUALITY if quality is None else quality
    return enc.code(quality_to_rate(q, enc.top_rate))


def read_info(data: bytes, limits: Limits = DEFAULT_LIMITS) -> StreamInfo:
    """Header fields of a stream (validated, CRC checked)."""
    data = _bytes(data)
    h = container.parse(data, limits).header
    return StreamInfo(h.model_id, h.width, h.height, h.colour.name.lower(), h.rate, len(data),
                      bits_per_pixel(len(data), h.width, h.height))


def decode_latents(
    data: bytes, *, model: LoadedCodec | None = None, limits: Limits = DEFAULT_LIMITS, device: str = "cpu"
) -> DecodedLatents:
    """Entropy-decode a stream to ŷ (and its integer symbols) without running the synthesis."""
    stream = container.parse(_bytes(data), limits)
    lc = zoo.for_stream(stream.header.model_id, model)
    return _decode_latents(lc, stream, device)


def decode(
    data: bytes, *, model: LoadedCodec | None = None, limits: Limits = DEFAULT_LIMITS, device: str = "cpu"
) -> np.ndarray:
    """Decompress .jai bytes to uint8 (H, W) grey, (H, W, 3) RGB, or with alpha (H, W, 2|4)."""
    stream = container.parse(_bytes(data), limits)
    check_memory(stream.header.width, stream.header.height, "decode")
    lc = zoo.for_stream(stream.header.model_id, model)
    alpha = decode_alpha(stream)
    latents = _decode_latents(lc, stream, device)
    rgb = reconstruct(lc, latents, stream)
    return image.assemble(rgb, stream.header.colour, alpha)


__all__ = ["encode", "decode", "decode_latents", "read_info", "load_model", "StreamInfo", "DecodedLatents",
           "Limits", "ColourMode"]
