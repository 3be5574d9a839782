"""Common path of the video-codec anchors (HEVC, VVC): numpy YCbCr planes -> ffmpeg -> Annex-B.

Raw planes are written as ``yuv4xxp10le`` and handed to ffmpeg with the pixel format, size,
range (``pc`` = full) and BT.709 colourspace/primaries/transfer declared *before* ``-i``; the
encoder's pixel format equals the input's, so ffmpeg inserts no conversion (a range tag
given only on the output makes ffmpeg convert ranges silently: a real bug seen here).
Decoding writes one YUV4MPEG2 frame in the same pixel format; the planes go back to RGB in
numpy (see ``_common``).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from openjai.errors import CodecError, ToolMissingError
from openjai.eval.anchors._common import (
    add_crop_nal,
    check_decoded,
    check_image,
    from_planes,
    read_output,
    read_y4m,
    run_tool,
    strip_crop_nal,
    to_planes,
    workdir,
    write_raw,
)

_PIX_FMT = {("444", 10): "yuv444p10le", ("420", 10): "yuv420p10le"}


@functools.lru_cache(maxsize=16)
def _ffmpeg_components(exe: str) -> tuple[frozenset[str], frozenset[str]]:
    """(encoders, decoders) that an ffmpeg binary offers, read once per binary."""
    names: list[frozenset[str]] = []
    for flag in ("-encoders", "-decoders"):
        proc = run_tool([exe, "-hide_banner", "-nostdin", flag], f"{exe} {flag}", timeout=60)
        found = set()
        for line in proc.stdout.decode("utf-8", "replace").splitlines():
            parts = line.split()
            if len(parts) >= 2 and len(parts[0]) == 6 and parts[0][0] in "VAS":
                found.add(parts[1])
        names.append(frozenset(found))
    return names[0], names[1]


def require_components(exe: str, encoder: str, decoder: str, install: str) -> None:
    enc, dec = _ffmpeg_components(exe)
    for kind, name, have in (("encoder", encoder, enc), ("decoder", decoder, dec)):
        if name not in have:
            raise ToolMissingError(f"ffmpeg at {exe} has no '{name}' {kind}; install one that does: {install}")


class FfmpegVideoAnchor:
    """Base class: subclasses set the attributes below and implement ``_ffmpeg`` / ``_encoder_args``."""

    name: str
    chroma: str  # "444" | "420"
    bits: int = 10
    demuxer: str  # raw elementary-stream format name in ffmpeg ("hevc", "vvc")
    decoder: str  # ffmpeg decoder name
    encoder: str  # ffmpeg encoder name
    crop_nal_header: bytes
    install_hint: str

    def _ffmpeg(self) -> str:
        raise NotImplementedError

    def _encoder_args(self, qp: int) -> list[str]:
        raise NotImplementedError

    def _check_qp(self, param: float) -> int:
        qp = int(round(param))
        pr = self.param_range  # type: ignore[attr-defined]
        if not (math.isfinite(param) and pr.low <= qp <= pr.high):
            raise CodecError(f"{self.name}: QP {param} outside {int(pr.low)}..{int(pr.high)}")
        return qp

    def encode(self, img: np.ndarray, param: float) -> bytes:
        img = check_image(img)
        qp = self._check_qp(param)
        exe = self._ffmpeg()
        require_components(exe, self.encoder, self.decoder, self.install_hint)
        h, w = img.shape[:2]
        planes, cw, ch = to_planes(img, self.bits, self.chroma)
        pix_fmt = _PIX_FMT[(self.chroma, self.bits)]
        with workdir(self.name) as d:
            src, out = d / "in.yuv", d / f"out.{self.demuxer}"
            write_raw(src, planes, self.bits)
            args = [
                exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
                # input description: everything about the raw planes goes BEFORE -i
                "-f", "rawvideo", "-pix_fmt", pix_fmt, "-s", f"{cw}x{ch}", "-framerate", "25",
                "-color_range", "pc", "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709",
                "-i", str(src),
                "-frames:v", "1", "-an", "-pix_fmt", pix_fmt,
                *self._encoder_args(qp),
                "-f", self.demuxer, str(out),
            ]  # fmt: skip
            run_tool(args, f"{self.name} encode ({self.encoder})")
            stream = read_output(out, f"{self.name} encode")
        if (cw, ch) == (w, h):
            return stream
        return add_crop_nal(stream, self.crop_nal_header, w, h)

    def decode(self, data: bytes) -> np.ndarray:
        exe = self._ffmpeg()
        require_components(exe, self.encoder, self.decoder, self.install_hint)
        stream, drop_w, drop_h = strip_crop_nal(data, self.crop_nal_header)
        pix_fmt = _PIX_FMT[(self.chroma, self.bits)]
        with workdir(self.name) as d:
            src, out = d / f"in.{self.demuxer}", d / "out.y4m"
            src.write_bytes(stream)
            args = [
                exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
                "-f", self.demuxer, "-c:v", self.decoder, "-i", str(src),
                "-frames:v", "1", "-pix_fmt", pix_fmt, "-strict", "-1", "-f", "yuv4mpegpipe", str(out),
            ]  # fmt: skip
            run_tool(args, f"{self.name} decode ({self.decoder})")
            planes, cw, ch, bits, chroma, _ = read_y4m(read_output(out, f"{self.name} decode"))
        if (bits, chroma) != (self.bits, self.chroma):
            raise CodecError(
                f"{self.name}: decoder returned {chroma} {bits}-bit, expected {self.chroma} {self.bits}-bit"
            )
        rgb = from_planes(planes, bits, chroma, cw - drop_w, ch - drop_h)
        return check_decoded(rgb, self.name)
