"""JPEG (ISO/IEC 10918-1) anchor: libjpeg-turbo through Pillow, baseline Huffman, optimised tables.

Settings
    Pillow ``Image.save(format="JPEG", quality=Q, subsampling=S, optimize=True)``: libjpeg-turbo's
    standard (Annex K) quantisation tables scaled by the IJG quality ``Q`` (integer 1–100, the
    rate parameter; larger = more bits), Huffman tables optimised per image (two-pass), no
    progressive mode, no restart markers, no metadata (no EXIF/ICC; Pillow writes the 18-byte
    JFIF APP0 segment). Two variants:

    ``jpeg``     ``subsampling=2`` → 4:2:0 (libjpeg box-filter downsampling, "fancy" triangular
                 upsampling on decode).
    ``jpeg444``  ``subsampling=0`` → 4:4:4.

Colour
    RGB goes to libjpeg unchanged; libjpeg converts with the JFIF matrix (BT.601 luma
    coefficients, full range, 8 bits) and back. This is what every JPEG decoder assumes, so we
    do not substitute BT.709 here.

bpp
    The whole JFIF file (SOI … EOI, including the JFIF APP0 header and the Huffman/quant tables).

CTTC
    The CTTC JPEG-1 anchor is an IJG-style encoder with standard tables, driven by the quality
    factor; we follow that with libjpeg-turbo (same tables and quality scaling as IJG libjpeg)
    and offer both chroma formats, so whichever one a CTTC revision names can be reproduced.
    Deviation: ``optimize=True`` (per-image Huffman tables, as the brief asks; it only removes
    entropy-coding redundancy, pixels are unchanged). Odd sizes are coded natively (partial MCUs).
"""

from __future__ import annotations

import io

import numpy as np

from openjai.errors import CodecError, ToolMissingError
from openjai.eval.anchors._common import check_decoded, check_image
from openjai.eval.anchors.base import ParamRange

_SUBSAMPLING = {"420": 2, "444": 0}


def _require_pillow_jpeg() -> None:
    from PIL import features

    if not features.check_codec("jpg"):
        raise ToolMissingError("Pillow was built without libjpeg; install it with: pip install pillow==13.0.0")


class JPEG:
    """libjpeg-turbo JPEG via Pillow; ``chroma`` is "420" (name ``jpeg``) or "444" (``jpeg444``)."""

    param_range = ParamRange(low=1, high=100, increasing=True, integer=True)

    def __init__(self, chroma: str = "420") -> None:
        if chroma not in _SUBSAMPLING:
            raise ValueError(f"chroma must be '420' or '444', not {chroma!r}")
        self.chroma = chroma
        self.name = "jpeg" if chroma == "420" else "jpeg444"

    def encode(self, img: np.ndarray, param: float) -> bytes:
        from PIL import Image

        _require_pillow_jpeg()
        img = check_image(img)
        quality = int(round(param))
        if not 1 <= quality <= 100:
            raise CodecError(f"{self.name}: quality {param} outside 1..100")
        buf = io.BytesIO()
        try:
            Image.fromarray(img, "RGB").save(
                buf, format="JPEG", quality=quality, subsampling=_SUBSAMPLING[self.chroma], optimize=True
            )
        except (OSError, ValueError) as exc:
            raise CodecError(f"{self.name}: libjpeg encode failed: {exc}") from exc
        return buf.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        from PIL import Image

        _require_pillow_jpeg()
        try:
            with Image.open(io.BytesIO(data), formats=["JPEG"]) as im:
                im.load()
                out = np.asarray(im.convert("RGB"))
        except (OSError, ValueError, SyntaxError) as exc:
            raise CodecError(f"{self.name}: libjpeg decode failed: {exc}") from exc
        return check_decoded(np.ascontiguousarray(out), self.name)
