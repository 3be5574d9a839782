"""The .jai container: header, length-prefixed sections, CRC32. Spec: docs/bitstream.md.

Every header field is checked against ``Limits`` before anything is allocated from it, and
the CRC is checked before any section is interpreted, so a corrupted or hostile file fails
with a BitstreamError naming the problem.
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass, field
from enum import IntEnum

from ..errors import BitstreamError, LimitError

MAGIC = b"OJAI"
VERSION = 1
MAX_MODEL_ID = 64


class ColourMode(IntEnum):
    """What the decoder gives back; the codec itself always codes three RGB channels."""

    RGB = 0
    GREY = 1  # coded as R=G=B, returned as one channel
    RGBA = 2  # alpha stored losslessly in an ALPHA section (zlib)
    GREY_ALPHA = 3
    RGB_GREY = 4  # an RGB image with R=G=B at every pixel: returned as RGB with R=G=B
    RGBA_GREY = 5  # the same with alpha

    @property
    def has_alpha(self) -> bool:
        """Whether the stream carries an ALPHA section."""
        return self in (ColourMode.RGBA, ColourMode.GREY_ALPHA, ColourMode.RGBA_GREY)

    @property
    def is_grey(self) -> bool:
        """Whether the input had R=G=B everywhere, so the decoder returns one grey value per pixel."""
        return self not in (ColourMode.RGB, ColourMode.RGBA)

    @property
    def channels(self) -> int:
        """Channels of the decoded array, alpha included: 1 (H, W), 2, 3 or 4."""
        colour = 1 if self in (ColourMode.GREY, ColourMode.GREY_ALPHA) else 3
        return colour + self.has_alpha


class Section(IntEnum):
    Z = 1  # range-coded hyper-latent symbols
    Z_ESCAPES = 2
    Y = 3  # range-coded latent residuals
    Y_ESCAPES = 4
    ALPHA = 5  # zlib-compressed 8-bit alpha plane
    RESIDUAL = 6  # optional residual layer (codec/residual.py): head + range-coded DCT coefficients
    RESIDUAL_ESCAPES = 7
    FILTER = 8  # optional adaptive filter (codec/adaptive_filter.py): its class layout and coefficients
    LATTICE = 9  # optional lattice layer (codec/lattice.py): grid, table, range-coded corrections
    LATTICE_ESCAPES = 10


REQUIRED_SECTIONS = (Section.Z, Section.Z_ESCAPES, Section.Y, Section.Y_ESCAPES)


@dataclass(frozen=True)
class Limits:
    """Decoder limits (decompression-bomb protection); raise them deliberately, like Pillow's MAX_IMAGE_PIXELS.

    Memory a size needs (codec/memory.py, measured and rounded up): about 0.7 GiB plus 16 bytes
    per pixel to decode, 1 GiB plus 24 bytes per pixel to encode (8K, 33 MP: ~1.2 / ~1.7 GiB;
    64 MP: ~1.7 / ~2.5 GiB; the default max_pixels, 268 MP: ~4.7 / ~7 GiB). Whatever the limits
    allow, a size needing more memory than the machine has available is refused before it is
    allocated (LimitError).
    """

    max_side: int = 1 << 16
    max_pixels: int = 1 << 28


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Header:
    model_id: str
    width: int
    height: int
    colour: ColourMode
    rate: float  # continuous rate parameter β of the model's gain units


@dataclass
class Stream:
    header: Header
    sections: dict[Section, bytes] = field(default_factory=dict)


_FIXED = struct.Struct("<4sBB")  # magic, version, model-id length
_IMAGE = struct.Struct("<IIBfB")  # width, height, colour, rate, section count
_SECTION = struct.Struct("<BI")  # tag, length


def check_size(width: int, height: int, limits: Limits = DEFAULT_LIMITS) -> None:
    """Raise LimitError unless 1 ≤ side ≤ max_side and pixels ≤ max_pixels."""
    if width < 1 or height < 1:
        raise BitstreamError(f"image size {width}x{height} is empty")
    if width > limits.max_side or height > limits.max_side:
        raise LimitError(f"image side {max(width, height)} exceeds the limit {limits.max_side}")
    if width * height > limits.max_pixels:
        raise LimitError(f"{width}x{height} = {width * height} pixels exceeds the limit {limits.max_pixels}")


def write(stream: Stream) -> bytes:
    h = stream.header
    model_id = h.model_id.encode("ascii")
    if not 0 < len(model_id) <= MAX_MODEL_ID:
        raise ValueError("model id must be 1..64 ASCII characters")
    out = bytearray(_FIXED.pack(MAGIC, VERSION, len(model_id)))
    out += model_id
    out += _IMAGE.pack(h.width, h.height, int(h.colour), h.rate, len(stream.sections))
    for tag in sorted(stream.sections):
        out += _SECTION.pack(int(tag), len(stream.sections[tag]))
    for tag in sorted(stream.sections):
        out += stream.sections[tag]
    out += struct.pack("<I", zlib.crc32(out))
    return bytes(out)


def read_header(data: bytes, limits: Limits = DEFAULT_LIMITS) -> tuple[Header, int]:
    """Parse and validate the header; returns it and the offset of the section table."""
    if len(data) < _FIXED.size:
        raise BitstreamError(f"stream too short ({len(data)} bytes) to be a .jai file")
    magic, version, id_len = _FIXED.unpack_from(data, 0)
    if magic != MAGIC:
        raise BitstreamError("not a .jai stream (wrong magic bytes)")
    if version != VERSION:
        raise BitstreamError(f"unsupported .jai version {version} (this decoder reads version {VERSION})")
    if not 0 < id_len <= MAX_MODEL_ID:
        raise BitstreamError(f"model id length {id_len} out of range")
    pos = _FIXED.size
    if len(data) < pos + id_len + _IMAGE.size:
        raise BitstreamError("stream truncated inside the header")
    try:
        model_id = data[pos : pos + id_len].decode("ascii")
    except UnicodeDecodeError:
        raise BitstreamError("model id is not ASCII") from None
    if not model_id.isprintable():
        raise BitstreamError("model id has non-printable characters")
    pos += id_len
    width, height, colour, rate, _ = _IMAGE.unpack_from(data, pos)
    check_size(width, height, limits)
    try:
        colour = ColourMode(colour)
    except ValueError:
        raise BitstreamError(f"unknown colour mode {colour}") from None
    if not math.isfinite(rate):
        raise BitstreamError("rate parameter is not a finite number")
    return Header(model_id, width, height, colour, rate), pos


def parse(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Stream:
    """Validate a whole .jai stream (header, CRC, section table) and split its sections."""
    header, pos = read_header(data, limits)
    count = data[pos + _IMAGE.size - 1]
    pos += _IMAGE.size
    if len(data) < 4 or zlib.crc32(data[:-4]) != struct.unpack("<I", data[-4:])[0]:
        raise BitstreamError("CRC mismatch: the stream is corrupted or truncated")
    end = len(data) - 4
    if pos + count * _SECTION.size > end:
        raise BitstreamError("stream truncated inside the section table")
    table = [_SECTION.unpack_from(data, pos + i * _SECTION.size) for i in range(count)]
    pos += count * _SECTION.size
    sections: dict[Section, bytes] = {}
    for tag, length in table:
        try:
            tag = Section(tag)
        except ValueError:
            raise BitstreamError(f"unknown section tag {tag}") from None
        if tag in sections:
            raise BitstreamError(f"section {tag.name} appears twice")
        if length > end - pos:
            raise BitstreamError(f"section {tag.name} claims {length} bytes, only {end - pos} left")
        sections[tag] = data[pos : pos + length]
        pos += length
    if pos != end:
        raise BitstreamError(f"{end - pos} unexpected bytes after the last section")
    missing = [s.name for s in REQUIRED_SECTIONS if s not in sections]
    if missing:
        raise BitstreamError(f"missing section(s): {', '.join(missing)}")
    has_alpha = header.colour.has_alpha
    if has_alpha != (Section.ALPHA in sections):
        raise BitstreamError("alpha section does not match the colour mode")
    for layer, escapes in ((Section.RESIDUAL, Section.RESIDUAL_ESCAPES), (Section.LATTICE, Section.LATTICE_ESCAPES)):
        if (layer in sections) != (escapes in sections):
            raise BitstreamError(f"{layer.name.lower()} sections come in pairs: {layer.name} and {escapes.name}")
    return Stream(header, sections)
