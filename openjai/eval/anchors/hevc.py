"""HEVC (H.265) intra anchor: x265 (libx265) through Debian's ffmpeg, decoded by ffmpeg's own HEVC decoder.

Settings
    ``ffmpeg -f rawvideo -pix_fmt yuv4xxp10le … -i in.yuv -frames:v 1 -c:v libx265 -preset slow
    -tune psnr -x265-params qp=Q:ipratio=1:keyint=1:info=0:range=full:colorprim=bt709:
    transfer=bt709:colormatrix=bt709 -f hevc out.hevc``

    * One frame, ``keyint=1``: a single IDR picture, i.e. all-intra.
    * Constant QP ``Q`` (integer 0–51, the rate parameter; larger = fewer bits). ``ipratio=1``
      makes ``Q`` the coded slice QP (x265 otherwise lowers the QP of I pictures by
      6·log2(1.4) ≈ 3). Constant-QP mode also turns cu-tree off.
    * ``preset slow``: x265's slow defaults (rd=4, rdoq-level=2, rect partitions, deblocking
      and SAO on, strong intra smoothing).
    * ``tune psnr``: psy-rd=0, psy-rdoq=0, aq-mode=0, so the encoder minimises plain squared
      error, as the HM reference encoder does (checked in the settings string x265 embeds
      when ``info`` is on).
    * ``info=0``: x265 otherwise writes an SEI with its whole command line (~1–2 kB), which is
      not codec data. The stream still has VPS/SPS/PPS (~80–100 bytes).
    * Profiles: Main 4:4:4 10 (``hevc``) and Main 10 (``hevc420``).

Colour
    RGB → YCbCr in numpy: BT.709 matrix, full range, 10 bits (``_common``); the VUI says
    so (range=full, BT.709). ``hevc`` codes 4:4:4; ``hevc420`` codes 4:2:0 with a 2×2 mean
    downsampler and a centre-sited bilinear upsampler, both in numpy. 10 bits for both:
    8-bit full-range YCbCr alone would cost ~0.5 LSB of rounding error.

bpp
    The raw Annex-B elementary stream as ffmpeg's ``hevc`` muxer writes it (start codes, VPS,
    SPS, PPS, slice NAL units; no container). For odd sizes in 4:2:0 (not representable in
    HEVC) the picture is coded at even size and a 6-byte unspecified-type NAL unit carrying
    the crop is appended and counted (see ``_common``). 4:4:4 codes odd sizes natively.

CTTC
    JPEG AI's CTTC HEVC anchor is the HM reference encoder, all-intra, on YCbCr 4:4:4 (to our
    reading of the CTTC documents); HM is not packaged anywhere we can install from, so we
    use x265 with the settings above, which bring it closest to HM's objective-quality mode
    (constant QP, no psycho-visual tools, no AQ).
    x265 is faster and somewhat less efficient than HM; treat this anchor as slightly weak.
"""

from __future__ import annotations

from openjai.eval.anchors._common import CROP_NAL_HEVC, find_tool
from openjai.eval.anchors._video import FfmpegVideoAnchor
from openjai.eval.anchors.base import ParamRange

#: ffmpeg executable with libx265 (Debian's ``ffmpeg``); tests point it at a missing path.
FFMPEG = "ffmpeg"
_APT = "apt-get install -y ffmpeg"


class HEVC(FfmpegVideoAnchor):
    """x265 all-intra HEVC at constant QP; ``chroma`` "444" (name ``hevc``) or "420" (``hevc420``)."""

    param_range = ParamRange(low=0, high=51, increasing=False, integer=True)
    demuxer = "hevc"
    decoder = "hevc"
    encoder = "libx265"
    crop_nal_header = CROP_NAL_HEVC
    install_hint = _APT

    def __init__(self, chroma: str = "444", preset: str = "slow", tune: str = "psnr") -> None:
        if chroma not in ("444", "420"):
            raise ValueError(f"chroma must be '444' or '420', not {chroma!r}")
        self.chroma = chroma
        self.bits = 10
        self.preset = preset
        self.tune = tune
        self.name = "hevc" if chroma == "444" else "hevc420"

    def _ffmpeg(self) -> str:
        return find_tool(FFMPEG, _APT)

    def _encoder_args(self, qp: int) -> list[str]:
        params = ":".join([
            f"qp={qp}", "ipratio=1", "keyint=1", "info=0", "log-level=error",
            "range=full", "colorprim=bt709", "transfer=bt709", "colormatrix=bt709",
        ])  # fmt: skip
        return ["-c:v", "libx265", "-preset", self.preset, "-tune", self.tune, "-x265-params", params]
