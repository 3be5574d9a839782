"""AVIF (AV1 intra in HEIF) anchor: libavif's ``avifenc`` (libaom encoder) / ``avifdec`` (dav1d decoder).

Debian ``libavif-bin`` is used rather than Pillow 13's AVIF plugin because the CLI takes a
YUV4MPEG2 input, so the colour conversion is ours (as for HEVC/VVC) and the decoder is a
different library (dav1d) from the encoder (libaom).

Settings
    ``avifenc -c aom -s 6 -j 1 --min Q --max Q --cicp 1/13/1 in.y4m out.avif``:
    fixed AV1 quantizer index ``Q`` (integer 0–63 in libavif's scale, the rate parameter; larger =
    fewer bits; 0 is near-lossless), libaom speed 6 (libavif's default), one worker thread
    (``-j 1``, avifenc's default), libaom's defaults otherwise (``tune=psnr``, no film grain),
    no alpha, no EXIF/XMP/ICC. ``avifdec`` writes a YUV4MPEG2 frame that we convert back.

Colour
    RGB → YCbCr in numpy: BT.709 matrix, full range, 10 bits, 4:4:4 (``_common``), handed over
    as a ``C444p10 XCOLORRANGE=FULL`` Y4M, so the AV1 sequence header says 4:4:4 10-bit full
    range (High profile) and the ``nclx`` box says primaries 1 (BT.709), transfer 13 (sRGB),
    matrix 1 (BT.709). Any AVIF viewer therefore reconstructs the same RGB.

bpp
    The whole .avif file (ftyp/meta/… HEIF boxes, ~250–350 bytes, plus the AV1 OBUs): AVIF has
    no standalone image codestream format, and the file is what a user stores.

CTTC
    AVIF is not a JPEG AI CTTC anchor; it is included as the AV1-based reference point. 4:4:4
    10-bit is used to match the ``hevc`` anchor's format. Odd sizes are coded natively.
"""

from __future__ import annotations

import math

import numpy as np

from openjai.errors import CodecError
from openjai.eval.anchors._common import (
    check_decoded,
    check_image,
    find_tool,
    from_planes,
    read_output,
    read_y4m,
    run_tool,
    to_planes,
    workdir,
    write_y4m,
)
from openjai.eval.anchors.base import ParamRange

#: Executables; tests point these at missing paths to check the ToolMissingError path.
AVIFENC = "avifenc"
AVIFDEC = "avifdec"
_APT = "apt-get install -y libavif-bin"


class AVIF:
    """libavif/libaom AVIF at a fixed quantizer, 10-bit 4:4:4 BT.709 full range."""

    name = "avif"
    param_range = ParamRange(low=0, high=63, increasing=False, integer=True)

    def __init__(self, speed: int = 6, bits: int = 10) -> None:
        if bits not in (8, 10):
            raise ValueError("bits must be 8 or 10")
        self.speed = speed
        self.bits = bits

    def encode(self, img: np.ndarray, param: float) -> bytes:
        img = check_image(img)
        q = int(round(param))
        if not (math.isfinite(param) and 0 <= q <= 63):
            raise CodecError(f"avif: quantizer {param} outside 0..63")
        exe = find_tool(AVIFENC, _APT)
        planes, w, h = to_planes(img, self.bits, "444")
        with workdir("avif") as d:
            src, out = d / "in.y4m", d / "out.avif"
            write_y4m(src, planes, w, h, self.bits, "444")
            run_tool(
                [exe, "-c", "aom", "-s", str(self.speed), "-j", "1", "--min", str(q), "--max", str(q),
                 "--cicp", "1/13/1", "--ignore-exif", "--ignore-xmp", "--ignore-icc", str(src), "-o", str(out)],
                "avifenc",
            )  # fmt: skip
            return read_output(out, "avifenc")

    def decode(self, data: bytes) -> np.ndarray:
        exe = find_tool(AVIFDEC, _APT)
        with workdir("avif") as d:
            src, out = d / "in.avif", d / "out.y4m"
            src.write_bytes(data)
            run_tool([exe, str(src), str(out)], "avifdec")
            planes, w, h, bits, chroma, crange = read_y4m(read_output(out, "avifdec"))
        if chroma != "444" or crange not in ("FULL", ""):
            raise CodecError(f"avif: decoder returned {chroma} range {crange!r}, expected 4:4:4 full range")
        return check_decoded(from_planes(planes, bits, "444", w, h), self.name)
