"""JPEG XL (ISO/IEC 18181) anchor: libjxl's ``cjxl`` / ``djxl`` (Debian ``libjxl-tools``, 0.7).

Settings
    ``cjxl in.ppm out.jxl -d D -e 7``: VarDCT lossy mode at Butteraugli distance ``D`` (float
    0.05–25, the rate parameter; larger = fewer bits; 1.0 ≈ visually lossless), effort 7
    (libjxl's default), libjxl defaults otherwise (not progressive; resampling automatic, i.e.
    libjxl may code at half resolution at very large distances).
    ``djxl out.jxl out.ppm`` decodes to 8-bit RGB.

Colour
    RGB goes to libjxl unchanged and is declared sRGB (PPM input); libjxl converts to its XYB
    opponent space internally (lossy mode always does) and djxl converts back to sRGB. No
    YCbCr: XYB is JPEG XL's native space, and forcing YCbCr would cripple it.

bpp
    The whole output: a bare JPEG XL codestream (``FF 0A`` …), which is what cjxl writes when
    there is no metadata to box (no ISOBMFF container, no EXIF/XMP/ICC).

CTTC
    JPEG XL is not a JPEG AI CTTC anchor; it is included as the most recent ISO still-image
    standard. Odd sizes are coded natively.
"""

from __future__ import annotations

import math

import numpy as np

from openjai.errors import CodecError
from openjai.eval.anchors._common import (
    check_decoded,
    check_image,
    find_tool,
    read_output,
    read_ppm,
    run_tool,
    workdir,
    write_ppm,
)
from openjai.eval.anchors.base import ParamRange

#: Executables; tests point these at missing paths to check the ToolMissingError path.
CJXL = "cjxl"
DJXL = "djxl"
_APT = "apt-get install -y libjxl-tools"


class JXL:
    """libjxl JPEG XL, VarDCT, effort 7, rate parameter = Butteraugli distance."""

    name = "jxl"
    param_range = ParamRange(low=0.05, high=25.0, increasing=False, integer=False)

    def __init__(self, effort: int = 7) -> None:
        self.effort = effort

    def encode(self, img: np.ndarray, param: float) -> bytes:
        img = check_image(img)
        if not (math.isfinite(param) and self.param_range.low <= param <= self.param_range.high):
            raise CodecError(f"jxl: distance {param} outside {self.param_range.low}..{self.param_range.high}")
        exe = find_tool(CJXL, _APT)
        with workdir("jxl") as d:
            src, out = d / "in.ppm", d / "out.jxl"
            write_ppm(src, img)
            run_tool([exe, str(src), str(out), "-d", f"{param:.6g}", "-e", str(self.effort)], "cjxl")
            return read_output(out, "cjxl")

    def decode(self, data: bytes) -> np.ndarray:
        exe = find_tool(DJXL, _APT)
        with workdir("jxl") as d:
            src, out = d / "in.jxl", d / "out.ppm"
            src.write_bytes(data)
            run_tool([exe, str(src), str(out)], "djxl")
            if not out.is_file():
                raise CodecError("djxl: no output written")
            return check_decoded(read_ppm(out), self.name)
