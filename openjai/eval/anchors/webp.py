"""WebP (lossy, VP8 intra) anchor: libwebp through Pillow.

Settings
    Pillow ``Image.save(format="WEBP", lossless=False, quality=Q, method=6)``: ``Q`` is libwebp's
    quality factor (integer 0–100, the rate parameter; larger = more bits); ``method=6`` is
    libwebp's slowest, best-compressing search (cwebp ``-m 6``); all other settings are
    libwebp defaults (no sharp-YUV, default SNS and filter strength, 4 segments). No
    alpha (the input is RGB), no ICC/EXIF/XMP chunks.

Colour
    RGB goes to libwebp unchanged. Lossy WebP is always 4:2:0, 8 bits, limited range with the
    BT.601 matrix (VP8's format), converted inside libwebp (its default, non-"sharp" RGB→YUV
    with 2×2 averaging); decoding converts back inside libwebp. We do not substitute BT.709.

bpp
    The whole RIFF/WebP file (12-byte RIFF header + VP8 chunk header + VP8 frame).

CTTC
    WebP is not a CTTC anchor; it is provided as a widely deployed reference point. Odd sizes
    are coded natively.
"""

from __future__ import annotations

import io

import numpy as np

from openjai.errors import CodecError, ToolMissingError
from openjai.eval.anchors._common import check_decoded, check_image
from openjai.eval.anchors.base import ParamRange


def _require_pillow_webp() -> None:
    from PIL import features

    if not features.check_module("webp"):
        raise ToolMissingError("Pillow was built without libwebp; install it with: pip install pillow==13.0.0")


class WebP:
    """libwebp lossy WebP via Pillow, ``method=6``."""

    name = "webp"
    param_range = ParamRange(low=0, high=100, increasing=True, integer=True)

    def __init__(self, method: int = 6) -> None:
        self.method = method

    def encode(self, img: np.ndarray, param: float) -> bytes:
        from PIL import Image

        _require_pillow_webp()
        img = check_image(img)
        quality = int(round(param))
        if not 0 <= quality <= 100:
            raise CodecError(f"webp: quality {param} outside 0..100")
        buf = io.BytesIO()
        try:
            Image.fromarray(img, "RGB").save(buf, format="WEBP", lossless=False, quality=quality, method=self.method)
        except (OSError, ValueError) as exc:
            raise CodecError(f"webp: libwebp encode failed: {exc}") from exc
        return buf.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        from PIL import Image

        _require_pillow_webp()
        try:
            with Image.open(io.BytesIO(data), formats=["WEBP"]) as im:
                im.load()
                out = np.asarray(im.convert("RGB"))
        except (OSError, ValueError, SyntaxError) as exc:
            raise CodecError(f"webp: libwebp decode failed: {exc}") from exc
        return check_decoded(np.ascontiguousarray(out), "webp")
