import struct
import zlib

import pytest

from openjai.codec import container
from openjai.codec.container import ColourMode, Header, Limits, Section, Stream
from openjai.errors import BitstreamError, LimitError


def _stream(**kw) -> Stream:
    h = dict(model_id="m-12345678", width=17, height=5, colour=ColourMode.RGB, rate=2.5) | kw
    sections = {Section.Z: b"abcd", Section.Z_ESCAPES: b"", Section.Y: b"efghijkl", Section.Y_ESCAPES: b"\x01"}
    return Stream(Header(**h), sections)


def _recrc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def test_round_trip():
    s = _stream()
    parsed = container.parse(container.write(s))
    assert parsed.header == s.header
    assert parsed.sections == s.sections


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda b: b"XJAI" + b[4:], "magic"),
        (lambda b: b[:4] + b"\x09" + b[5:], "version"),
        (lambda b: b[:5] + b"\x00" + b[6:], "model id length"),
        (lambda b: b[:5] + b"\xff" + b[6:], "model id length"),
    ],
)
def test_header_errors(mutate, message):
    data = container.write(_stream())
    with pytest.raises(BitstreamError, match=message):
        container.parse(_recrc(mutate(data[:-4])))


def test_absurd_sizes_refused_before_allocation():
    for w, h in [(0, 5), (1 << 17, 4), (1 << 16, 1 << 16)]:
        data = container.write(_stream(width=w, height=h))
        with pytest.raises(BitstreamError):
            container.read_header(data)
    with pytest.raises(LimitError):
        container.read_header(container.write(_stream(width=1000, height=1000)), Limits(max_pixels=999_999))


def test_crc_detects_every_flipped_byte():
    data = container.write(_stream())
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x40
        with pytest.raises(BitstreamError):
            container.parse(bytes(bad))


def test_truncation_at_every_byte():
    data = container.write(_stream())
    for n in range(len(data)):
        with pytest.raises(BitstreamError):
            container.parse(data[:n])


def test_section_table_lies():
    s = _stream()
    body = container.write(s)[:-4]
    table_at = 6 + len(s.header.model_id) + 14
    # first section claims more bytes than the file has
    lie = body[:table_at] + struct.pack("<BI", 1, 10_000) + body[table_at + 5 :]
    with pytest.raises(BitstreamError, match="claims"):
        container.parse(_recrc(lie))
    # unknown tag
    lie = body[:table_at] + struct.pack("<BI", 99, 4) + body[table_at + 5 :]
    with pytest.raises(BitstreamError, match="unknown section"):
        container.parse(_recrc(lie))
    # trailing garbage after the last section
    with pytest.raises(BitstreamError, match="unexpected bytes"):
        container.parse(_recrc(body + b"zz"))


def test_alpha_section_must_match_colour():
    s = _stream(colour=ColourMode.RGBA)
    with pytest.raises(BitstreamError, match="alpha"):
        container.parse(container.write(s))
