"""VVC (H.266) intra anchor: Fraunhofer VVenC through the static ffmpeg of the PyPI wheel ``imageio-ffmpeg``.

Debian has no VVC encoder; the ffmpeg binary inside ``imageio-ffmpeg`` (found with
``imageio_ffmpeg.get_ffmpeg_exe()``) is built with ``libvvenc`` and ffmpeg's native ``vvc``
decoder, which decodes independently of VVenC.

Settings
    ``ffmpeg -f rawvideo -pix_fmt yuv420p10le … -i in.yuv -frames:v 1 -c:v libvvenc -preset
    medium -qp Q -qpa 0 -vvenc-params IntraPeriod=1 -f vvc out.vvc``

    * One frame coded with VVenC's all-intra configuration (``IntraPeriod=1``, which also sets
      GOPSize=1). Without it VVenC uses its random-access GOP and writes 24+24 unused
      reference-picture lists into the SPS (SPS 165 instead of 58 bytes); pixels and slice
      bits are practically the same (measured: ±0.3 % rate, ±0.01 dB) and it is ~1.5× faster.
    * Constant QP ``Q`` (integer 12–63, the rate parameter; larger = fewer bits; lower QPs
      fail on some photos, see ``VVC.param_range``).
    * ``-qpa 0``: VVenC's perceptual QP adaptation (on by default) is switched off, so the
      encoder optimises plain squared error like VTM.
    * ``-preset medium`` (VVenC's default; ~3–6 s per 768×512 picture per QP on this machine).

The 10-bit 4:2:0 constraint
    libvvenc in ffmpeg accepts **only yuv420p10le** (VVenC implements the Main 10 profile:
    4:2:0/4:0:0, no 4:4:4). So this anchor is always 10-bit 4:2:0; there is no 4:4:4 VVC
    variant. Compare it with ``hevc420`` for a same-format comparison.

Colour
    RGB → YCbCr in numpy: BT.709 matrix, full range, 10 bits; 4:2:0 by a 2×2 mean, back by a
    centre-sited bilinear upsampler (``_common``). Range/colourspace are declared before
    ``-i`` and land in the VUI (full range, BT.709).

bpp
    The raw Annex-B elementary stream from ffmpeg's ``vvc`` muxer (AUD 7 bytes, SPS ≈ 58 and
    PPS ≈ 13 bytes, slice data; no container). Odd sizes: coded at even size plus a counted 6-byte
    unspecified-type NAL unit carrying the crop (``_common``).

CTTC
    JPEG AI's CTTC VVC anchor is the VTM reference encoder, all-intra, on YCbCr 4:4:4 (to our
    reading of the CTTC documents). VTM is not
    installable here; VVenC is the practical VVC encoder we can run, and it supports only
    4:2:0, so this anchor deviates in chroma format (4:2:0) and encoder (VVenC, somewhat less
    efficient than VTM at medium preset). Treat it as slightly weak against the CTTC VVC anchor.
"""

from __future__ import annotations

from openjai.errors import ToolMissingError
from openjai.eval.anchors._common import CROP_NAL_VVC, find_tool
from openjai.eval.anchors._video import FfmpegVideoAnchor
from openjai.eval.anchors.base import ParamRange

#: ffmpeg with libvvenc; ``None`` = ``imageio_ffmpeg.get_ffmpeg_exe()``. Tests set a missing path.
FFMPEG: str | None = None
_PIP = "pip install imageio-ffmpeg==0.8.1"


def ffmpeg_exe() -> str:
    if FFMPEG is not None:
        return find_tool(FFMPEG, _PIP)
    try:
        import imageio_ffmpeg
    except ImportError as exc:
        raise ToolMissingError(f"the VVC anchor needs the ffmpeg of imageio-ffmpeg; install it with: {_PIP}") from exc
    try:
        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as exc:
        raise ToolMissingError(f"imageio-ffmpeg has no ffmpeg binary for this platform ({exc}); {_PIP}") from exc
    return find_tool(exe, _PIP)


class VVC(FfmpegVideoAnchor):
    """VVenC all-intra VVC at constant QP, 10-bit 4:2:0, ``-qpa 0``."""

    name = "vvc"
    # QPs below 12 are left out: ffmpeg 9's libvvenc fails on detailed photos at very low QP
    # ("Error submitting video frame", exit 187): at QP 0 on 7 of the 23 val photos, on one
    # (dpst_tar10, 700×393) at QP ≤ 4 while QP 6 gives 7.4 bpp. QP 12 is still ~5.7 bpp there,
    # far above the CTTC's top target (2 bpp)
    param_range = ParamRange(low=12, high=63, increasing=False, integer=True)
    demuxer = "vvc"
    decoder = "vvc"
    encoder = "libvvenc"
    crop_nal_header = CROP_NAL_VVC
    install_hint = _PIP

    def __init__(self, preset: str = "medium") -> None:
        self.chroma = "420"
        self.bits = 10
        self.preset = preset

    def _ffmpeg(self) -> str:
        return ffmpeg_exe()

    def _encoder_args(self, qp: int) -> list[str]:
        return [
            "-c:v", "libvvenc", "-preset", self.preset, "-qp", str(qp), "-qpa", "0",
            "-vvenc-params", "IntraPeriod=1",
        ]  # fmt: skip
