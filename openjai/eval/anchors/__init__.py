"""Anchor codecs for the CTTC evaluation, all behind one protocol (``base.Codec``).

Each module documents, at its top, the exact encoder settings, the colour handling, which
bytes count for bpp, and the CTTC setting it follows or why it deviates. Summary:

=========  =======================  ============================  ============================
name       implementation           format coded                  bytes counted
=========  =======================  ============================  ============================
jpeg       libjpeg-turbo (Pillow)   JFIF YCbCr (BT.601) 4:2:0     whole JFIF file
jpeg444    libjpeg-turbo (Pillow)   JFIF YCbCr (BT.601) 4:4:4     whole JFIF file
jpeg2000   OpenJPEG CLI             9/7 + ICT (BT.601) 4:4:4      raw .j2k codestream
hevc       x265 via ffmpeg          YCbCr BT.709 full 10b 4:4:4   Annex-B elementary stream
hevc420    x265 via ffmpeg          YCbCr BT.709 full 10b 4:2:0   Annex-B elementary stream
vvc        VVenC via ffmpeg (wheel) YCbCr BT.709 full 10b 4:2:0   Annex-B elementary stream
avif       libavif/libaom CLI       YCbCr BT.709 full 10b 4:4:4   whole .avif file
jxl        libjxl CLI               XYB (VarDCT)                  bare JPEG XL codestream
webp       libwebp (Pillow)         YCbCr BT.601 limited 8b 4:2:0 whole RIFF file
=========  =======================  ============================  ============================

``ANCHORS[name]()`` builds a codec with its default (documented) settings.
"""

from __future__ import annotations

from collections.abc import Callable

from openjai.eval.anchors.avif import AVIF
from openjai.eval.anchors.base import Codec, ParamRange, bits_per_pixel
from openjai.eval.anchors.hevc import HEVC
from openjai.eval.anchors.jpeg import JPEG
from openjai.eval.anchors.jpeg2000 import JPEG2000
from openjai.eval.anchors.jxl import JXL
from openjai.eval.anchors.vvc import VVC
from openjai.eval.anchors.webp import WebP

ANCHORS: dict[str, Callable[[], Codec]] = {
    "jpeg": lambda: JPEG("420"),
    "jpeg444": lambda: JPEG("444"),
    "jpeg2000": JPEG2000,
    "hevc": lambda: HEVC("444"),
    "hevc420": lambda: HEVC("420"),
    "vvc": VVC,
    "avif": AVIF,
    "jxl": JXL,
    "webp": WebP,
}

__all__ = [
    "ANCHORS",
    "AVIF",
    "HEVC",
    "JPEG",
    "JPEG2000",
    "JXL",
    "VVC",
    "Codec",
    "ParamRange",
    "WebP",
    "bits_per_pixel",
]
