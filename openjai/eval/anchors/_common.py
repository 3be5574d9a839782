"""Shared plumbing of the anchor codecs: tool lookup, subprocess calls, colour conversion, files.

Colour conversion (used by hevc, vvc, avif; the other anchors convert inside their library)
-------------------------------------------------------------------------------------------
RGB uint8 is taken as gamma-encoded R'G'B' in [0, 1] (value / 255) and converted with the
Rec. ITU-R BT.709 luma coefficients, the conversion JPEG AI uses::

    Y' = 0.2126 R' + 0.7152 G' + 0.0722 B'
    Pb = (B' - Y') / 1.8556          # 1.8556 = 2 (1 - 0.0722)
    Pr = (R' - Y') / 1.5748          # 1.5748 = 2 (1 - 0.2126)

and quantised to ``n``-bit *full range* integers as in Rec. ITU-T H.273 (video_full_range_flag=1)::

    Y  = round((2^n - 1) Y')
    Cb = round((2^n - 1) Pb + 2^(n-1)),  Cr likewise, all clipped to [0, 2^n - 1]

The inverse undoes both steps in float64 and rounds to uint8 with clipping. At n = 10 the
round trip alone is well above 55 dB PSNR, so it does not limit any anchor.

4:2:0 chroma: the image is first padded to even width and height by edge replication; each
chroma plane is then averaged over 2×2 blocks (centre-sited chroma, as in JPEG/JFIF). The
decoder side upsamples with the matching centre-sited bilinear filter (taps 3/4, 1/4 in each
direction, edge replication) and crops the padding away. The codec never sees the chroma
siting: we upsample ourselves, so encoder and decoder always agree.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from openjai.errors import CodecError, ImageError, ToolMissingError

KR, KB = 0.2126, 0.0722  # BT.709
KG = 1.0 - KR - KB


def check_image(img: np.ndarray) -> np.ndarray:
    """Validate an RGB uint8 (H, W, 3) image and return it C-contiguous."""
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ImageError(
            f"anchor codecs take RGB uint8 arrays of shape (H, W, 3); got "
            f"{getattr(img, 'dtype', type(img))} {getattr(img, 'shape', '')}"
        )
    if img.shape[0] < 1 or img.shape[1] < 1:
        raise ImageError(f"empty image {img.shape}")
    return np.ascontiguousarray(img)


# ----------------------------------------------------------------------------- tools


def find_tool(path: str, package: str) -> str:
    """Resolve an executable name or path; raise ToolMissingError naming how to install it."""
    found = shutil.which(path)
    if found is None:
        raise ToolMissingError(f"'{path}' not found; install it with: {package}")
    return found


def run_tool(args: Sequence[str], what: str, timeout: float | None = 600.0) -> subprocess.CompletedProcess[bytes]:
    """Run a tool; on a non-zero exit raise CodecError with the tail of its stderr."""
    try:
        proc = subprocess.run(list(args), stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:  # raced away between which() and run()
        raise ToolMissingError(f"{what}: cannot execute {args[0]!r}: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise CodecError(f"{what}: timed out after {timeout} s") from exc
    if proc.returncode != 0:
        tail = (proc.stderr or b"").decode("utf-8", "replace").strip()[-1500:]
        out = (proc.stdout or b"").decode("utf-8", "replace").strip()[-500:]
        raise CodecError(f"{what} failed (exit {proc.returncode}): {tail or out or '(no output)'}")
    return proc


@contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    """A temporary directory that is removed whatever happens."""
    with tempfile.TemporaryDirectory(prefix=f"openjai-{prefix}-") as d:
        yield Path(d)


def read_output(path: Path, what: str) -> bytes:
    if not path.is_file() or path.stat().st_size == 0:
        raise CodecError(f"{what}: the tool reported success but wrote no output")
    return path.read_bytes()


# ----------------------------------------------------------------------------- colour


def rgb_to_ycbcr(img: np.ndarray, bits: int) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> BT.709 full-range YCbCr, uint16 (3, H, W) with ``bits`` bits."""
    rgb = img.astype(np.float64) / 255.0
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = KR * r + KG * g + KB * b
    pb = (b - y) / (2.0 * (1.0 - KB))
    pr = (r - y) / (2.0 * (1.0 - KR))
    m = float((1 << bits) - 1)
    half = float(1 << (bits - 1))
    out = np.stack([m * y, m * pb + half, m * pr + half])
    return np.clip(np.rint(out), 0, m).astype(np.uint16)


def ycbcr_to_rgb(ycc: np.ndarray, bits: int) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycbcr`: (3, H, W) integer planes -> RGB uint8 (H, W, 3)."""
    m = float((1 << bits) - 1)
    half = float(1 << (bits - 1))
    y = ycc[0].astype(np.float64) / m
    pb = (ycc[1].astype(np.float64) - half) / m
    pr = (ycc[2].astype(np.float64) - half) / m
    r = y + 2.0 * (1.0 - KR) * pr
    b = y + 2.0 * (1.0 - KB) * pb
    g = (y - KR * r - KB * b) / KG
    rgb = np.stack([r, g, b], axis=-1) * 255.0
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def pad_even(img: np.ndarray) -> np.ndarray:
    """Pad (H, W, 3) to even H and W by replicating the last row/column."""
    h, w = img.shape[:2]
    return np.pad(img, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def downsample_420(plane: np.ndarray) -> np.ndarray:
    """2×2 mean of an even-sized plane (float result)."""
    p = plane.astype(np.float64)
    return 0.25 * (p[0::2, 0::2] + p[1::2, 0::2] + p[0::2, 1::2] + p[1::2, 1::2])


def _up2(p: np.ndarray, axis: int) -> np.ndarray:
    """Centre-sited 2× bilinear upsampling along one axis (taps 3/4 and 1/4, edge replication)."""
    n = p.shape[axis]
    prev = np.take(p, np.r_[0, 0 : n - 1], axis=axis)
    nxt = np.take(p, np.r_[1:n, n - 1], axis=axis)
    even = 0.75 * p + 0.25 * prev
    odd = 0.75 * p + 0.25 * nxt
    out = np.stack([even, odd], axis=axis + 1)
    shape = list(p.shape)
    shape[axis] = 2 * n
    return out.reshape(shape)


def upsample_420(plane: np.ndarray) -> np.ndarray:
    """Inverse-sited partner of :func:`downsample_420` (float result, twice the size)."""
    return _up2(_up2(plane.astype(np.float64), 0), 1)


def to_planes(img: np.ndarray, bits: int, chroma: str) -> tuple[list[np.ndarray], int, int]:
    """RGB uint8 -> list of uint16 planes [Y, Cb, Cr] for 4:4:4 or 4:2:0, plus coded (W, H).

    4:2:0 pads to even size first; the caller crops back to the original size after decoding.
    """
    if chroma == "444":
        ycc = rgb_to_ycbcr(img, bits)
        return [ycc[0], ycc[1], ycc[2]], img.shape[1], img.shape[0]
    if chroma != "420":
        raise ValueError(chroma)
    padded = pad_even(img)
    ycc = rgb_to_ycbcr(padded, bits)  # integer full-resolution planes
    m = (1 << bits) - 1
    cb = np.clip(np.rint(downsample_420(ycc[1])), 0, m).astype(np.uint16)
    cr = np.clip(np.rint(downsample_420(ycc[2])), 0, m).astype(np.uint16)
    return [ycc[0], cb, cr], padded.shape[1], padded.shape[0]


def from_planes(planes: Sequence[np.ndarray], bits: int, chroma: str, width: int, height: int) -> np.ndarray:
    """Inverse of :func:`to_planes`, cropping to (height, width)."""
    y = planes[0].astype(np.float64)
    if chroma == "444":
        cb, cr = planes[1].astype(np.float64), planes[2].astype(np.float64)
    else:
        cb, cr = upsample_420(planes[1]), upsample_420(planes[2])
    rgb = ycbcr_to_rgb(np.stack([y, cb, cr]), bits)
    return np.ascontiguousarray(rgb[:height, :width])


def plane_shapes(width: int, height: int, chroma: str) -> list[tuple[int, int]]:
    if chroma == "444":
        return [(height, width)] * 3
    return [(height, width)] + [((height + 1) // 2, (width + 1) // 2)] * 2


def write_raw(path: Path, planes: Sequence[np.ndarray], bits: int) -> None:
    """Planar raw file: 8-bit samples as bytes, >8-bit as little-endian uint16 (yuv4xxp10le)."""
    dtype = "<u2" if bits > 8 else np.uint8
    with open(path, "wb") as f:
        for p in planes:
            f.write(np.ascontiguousarray(p.astype(dtype)).tobytes())


def read_raw(data: bytes, width: int, height: int, bits: int, chroma: str) -> list[np.ndarray]:
    """Parse planar raw data written by a decoder into planes; checks the size exactly."""
    dtype = np.dtype("<u2") if bits > 8 else np.dtype(np.uint8)
    shapes = plane_shapes(width, height, chroma)
    need = sum(h * w for h, w in shapes) * dtype.itemsize
    if len(data) != need:
        raise CodecError(
            f"decoder returned {len(data)} bytes of raw video, expected {need} ({width}x{height} {chroma})"
        )
    out: list[np.ndarray] = []
    off = 0
    for h, w in shapes:
        n = h * w * dtype.itemsize
        out.append(np.frombuffer(data, dtype=dtype, count=h * w, offset=off).reshape(h, w).astype(np.uint16))
        off += n
    return out


# ----------------------------------------------------------------------------- PNM


def write_ppm(path: Path, img: np.ndarray) -> None:
    h, w = img.shape[:2]
    with open(path, "wb") as f:
        f.write(f"P6\n{w} {h}\n255\n".encode("ascii"))
        f.write(np.ascontiguousarray(img).tobytes())


def read_ppm(path: Path) -> np.ndarray:
    """Read a binary P6 PPM (maxval 255 or 65535) as RGB uint8."""
    data = path.read_bytes()
    tokens: list[bytes] = []
    i = 0
    while len(tokens) < 4:
        while i < len(data) and data[i : i + 1].isspace():
            i += 1
        if data[i : i + 1] == b"#":
            while i < len(data) and data[i : i + 1] not in (b"\n", b"\r"):
                i += 1
            continue
        j = i
        while j < len(data) and not data[j : j + 1].isspace():
            j += 1
        if j == i:
            raise CodecError(f"truncated PPM header in {path.name}")
        tokens.append(data[i:j])
        i = j
    i += 1  # the single whitespace byte after maxval
    if tokens[0] != b"P6":
        raise CodecError(f"decoder wrote {tokens[0]!r}, expected a P6 PPM")
    w, h, maxval = (int(t) for t in tokens[1:])
    dtype = np.dtype(">u2") if maxval > 255 else np.dtype(np.uint8)
    n = w * h * 3
    if len(data) - i < n * dtype.itemsize:
        raise CodecError(f"truncated PPM pixel data in {path.name}")
    arr = np.frombuffer(data, dtype=dtype, count=n, offset=i).reshape(h, w, 3)
    if maxval != 255:
        arr = np.rint(arr.astype(np.float64) * (255.0 / maxval)).astype(np.uint8)
    return np.ascontiguousarray(arr)


def check_decoded(out: np.ndarray, what: str) -> np.ndarray:
    if out.dtype != np.uint8 or out.ndim != 3 or out.shape[2] != 3:
        raise CodecError(f"{what}: decoder produced {out.dtype} {out.shape}, expected RGB uint8")
    return out


# ----------------------------------------------------------------------------- Y4M

_Y4M_CHROMA = {"444": "444", "420": "420jpeg"}


def write_y4m(path: Path, planes: Sequence[np.ndarray], width: int, height: int, bits: int, chroma: str) -> None:
    """One-frame YUV4MPEG2 file tagged full range (``XCOLORRANGE=FULL``)."""
    tag = _Y4M_CHROMA[chroma] if bits == 8 else f"{chroma}p{bits}"
    header = f"YUV4MPEG2 W{width} H{height} F25:1 Ip A1:1 C{tag} XCOLORRANGE=FULL\nFRAME\n"
    dtype = "<u2" if bits > 8 else np.uint8
    with open(path, "wb") as f:
        f.write(header.encode("ascii"))
        for p in planes:
            f.write(np.ascontiguousarray(p.astype(dtype)).tobytes())


def read_y4m(data: bytes) -> tuple[list[np.ndarray], int, int, int, str, str]:
    """Parse the first frame of a YUV4MPEG2 stream.

    Returns (planes, width, height, bits, chroma "444"|"420", range "FULL"|"LIMITED"|"").
    """
    end = data.find(b"\n")
    if not data.startswith(b"YUV4MPEG2 ") or end < 0:
        raise CodecError("decoder did not write a YUV4MPEG2 stream")
    fields = data[10:end].decode("ascii", "replace").split()
    width = height = 0
    cspace = "420jpeg"
    crange = ""
    try:
        for fld in fields:
            if fld[0] == "W":
                width = int(fld[1:])
            elif fld[0] == "H":
                height = int(fld[1:])
            elif fld[0] == "C":
                cspace = fld[1:]
            elif fld.startswith("XCOLORRANGE="):
                crange = fld.split("=", 1)[1].upper()
    except ValueError as exc:
        raise CodecError(f"malformed YUV4MPEG2 header: {data[:end]!r}") from exc
    m = re.fullmatch(r"(444|420)(?:jpeg|paldv|mpeg2)?(?:p(\d+))?", cspace)
    if m is None or width <= 0 or height <= 0:
        raise CodecError(f"unsupported YUV4MPEG2 header: {data[:end]!r}")
    chroma, bits = m.group(1), int(m.group(2) or 8)
    frame = data.find(b"\n", end + 1)
    if not data[end + 1 : end + 6] == b"FRAME" or frame < 0:
        raise CodecError("YUV4MPEG2 stream has no frame")
    planes = read_raw_prefix(data[frame + 1 :], width, height, bits, chroma)
    return planes, width, height, bits, chroma, crange


def read_raw_prefix(data: bytes, width: int, height: int, bits: int, chroma: str) -> list[np.ndarray]:
    """Like :func:`read_raw` but ignores bytes after the first frame."""
    itemsize = 2 if bits > 8 else 1
    need = sum(h * w for h, w in plane_shapes(width, height, chroma)) * itemsize
    if len(data) < need:
        raise CodecError(f"truncated YUV4MPEG2 frame ({len(data)} of {need} bytes)")
    return read_raw(data[:need], width, height, bits, chroma)


# ----------------------------------------------------------------------------- odd sizes in 4:2:0

# HEVC and VVC cannot signal an odd picture size in 4:2:0 (conformance-window offsets count in
# units of 2 luma samples), so odd images are coded at even size and the crop travels in one
# extra NAL unit of an *unspecified* type, which conforming decoders ignore. It is 6 bytes
# (start code 00 00 01, 2-byte NAL header, 1 flag byte), is counted in the bpp, and is only
# present for odd sizes. A start code cannot occur inside a NAL unit (emulation prevention),
# so a stream ending in 00 00 01 + header + flag is unambiguous.

CROP_NAL_HEVC = b"\x7e\x01"  # forbidden 0, nal_unit_type 63 (UNSPEC63), layer 0, tid+1 = 1
CROP_NAL_VVC = b"\x00\xf9"  # forbidden 0, reserved 0, layer 0, nal_unit_type 31 (UNSPEC_31), tid+1 = 1


def add_crop_nal(stream: bytes, header: bytes, width: int, height: int) -> bytes:
    flag = (width % 2) | ((height % 2) << 1)
    if flag == 0:
        return stream
    return stream + b"\x00\x00\x01" + header + bytes([0x80 | flag])


def strip_crop_nal(stream: bytes, header: bytes) -> tuple[bytes, int, int]:
    """Remove the crop NAL unit if present; return (stream, columns to drop, rows to drop)."""
    tail = stream[-6:]
    if len(stream) > 6 and tail[:5] == b"\x00\x00\x01" + header and tail[5] & 0xFC == 0x80:
        flag = tail[5] & 0x03
        return stream[:-6], flag & 1, (flag >> 1) & 1
    return stream, 0, 0
