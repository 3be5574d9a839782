"""JPEG 2000 (ISO/IEC 15444-1) anchor: OpenJPEG's ``opj_compress`` / ``opj_decompress``.

Why the command-line tools (Debian ``libopenjp2-tools``) and not Pillow or imagecodecs: the
CLI exposes every coding option directly, its rate control is the reference OpenJPEG one, the
decoder is a separate program, and no extra Python package is needed. Pillow's JPEG 2000 writer
wraps the same library and would be an equivalent fallback.

Settings
    ``opj_compress -i in.ppm -o out.j2k -I -mct 1 -r R -n N``:
    ``-I`` irreversible CDF 9/7 wavelet, ``-mct 1`` the irreversible colour transform (ICT),
    one quality layer whose rate is set by ``-r R`` (compression ratio against the 24-bit raw
    image, ``R = 24 / bpp``), ``N = min(6, floor(log2(min(H, W))) + 1)`` resolution levels (the
    OpenJPEG default of 6, reduced for tiny images where 6 is not allowed), one tile, 64×64
    code blocks, LRCP progression, no SOP/EPH markers — all OpenJPEG defaults.
    The rate parameter is the *requested bpp* (float, larger = more bits); OpenJPEG's PCRD
    rate allocation lands slightly below it, plus the main-header bytes.

Colour
    RGB goes to OpenJPEG unchanged; the ICT is the standard's fixed irreversible transform
    (BT.601 luma coefficients 0.299/0.587/0.114, full range), 4:4:4, 8 bits. No BT.709 here:
    the ICT is what the standard defines and what every JPEG 2000 decoder inverts.

bpp
    The raw JPEG 2000 codestream (.j2k: SOC … EOC, main and tile headers included, no JP2
    file-format boxes), as written by opj_compress (this includes OpenJPEG's short COM marker).

CTTC
    JPEG AI's published anchor results for JPEG 2000 come from Kakadu (not free, not
    installable here); we use OpenJPEG with the same core tools (9/7, ICT, single layer, PCRD
    rate target). Expect small quality differences at equal rate from the different rate
    allocation. Odd sizes are coded natively.
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
OPJ_COMPRESS = "opj_compress"
OPJ_DECOMPRESS = "opj_decompress"
_APT = "apt-get install -y libopenjp2-tools"


def num_resolutions(height: int, width: int, default: int = 6) -> int:
    """Largest allowed number of resolution levels (<= default) for an image this size."""
    return max(1, min(default, int(math.floor(math.log2(max(1, min(height, width))))) + 1))


class JPEG2000:
    """OpenJPEG JPEG 2000, irreversible 9/7 + ICT, rate parameter = requested bpp."""

    name = "jpeg2000"
    param_range = ParamRange(low=0.005, high=12.0, increasing=True, integer=False)

    def encode(self, img: np.ndarray, param: float) -> bytes:
        img = check_image(img)
        if not (param > 0 and math.isfinite(param)):
            raise CodecError(f"jpeg2000: requested bpp must be positive, got {param}")
        exe = find_tool(OPJ_COMPRESS, _APT)
        h, w = img.shape[:2]
        ratio = 24.0 / float(param)
        with workdir("j2k") as d:
            src, out = d / "in.ppm", d / "out.j2k"
            write_ppm(src, img)
            run_tool(
                [exe, "-i", str(src), "-o", str(out), "-I", "-mct", "1",
                 "-r", f"{ratio:.6f}", "-n", str(num_resolutions(h, w))],
                "opj_compress",
            )
            return read_output(out, "opj_compress")

    def decode(self, data: bytes) -> np.ndarray:
        exe = find_tool(OPJ_DECOMPRESS, _APT)
        with workdir("j2k") as d:
            src, out = d / "in.j2k", d / "out.ppm"
            src.write_bytes(data)
            run_tool([exe, "-i", str(src), "-o", str(out)], "opj_decompress")
            if not out.is_file():
                raise CodecError("opj_decompress: no output written")
            return check_decoded(read_ppm(out), self.name)
