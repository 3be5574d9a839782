"""Structured fuzzer for the .jai decoder: ``python -m openjai.fuzz``.

The contract under test (DESIGN.md, docs/bitstream.md): every byte string handed to
``openjai.read_info`` / ``openjai.decode`` ends in a valid image or an ``OpenJAIError``
subclass — never another exception, never a hang, never an allocation beyond what the
validated header allows.

    seeds: tiny images (16×16, 33×7, 64×64; RGB, grey, RGBA, grey+alpha; two qualities,
           plus a few escape-heavy ones) encoded by the shipped model
      │
      ▼  pick a seed, or an input that gave a new outcome earlier (the pool)
    split into parts: header fields │ section table (tag, length) │ payloads      (``Parts``)
      │  1-4 structured mutations: header-field edits, section-length lies, swaps,
      │  duplications, drops, escape garbage, random Z/Y words, alpha bombs, splices …
      ▼
    serialize, CRC recomputed (mostly) so the input gets past the checksum
      │  0-2 byte mutations (bit flips, insertions, deletions, truncation), CRC fixed again
      ▼
    read_info + decode, timed  ──▶ ok │ OpenJAIError subclass │ FAILURE
                                       (other exception, wrong output shape, CPU time over
                                        the timeout, resident memory growth over a bound)

Failures are saved as ``<out>/<sha256>.jai`` with a ``<sha256>.txt`` beside it (exception,
message, traceback, mutation chain, timing); at most ``MAX_SAVED_PER_KIND`` per failure kind.
The run is deterministic given ``--seed`` and the installed model (the seeds are encoded by
it): each iteration draws from its own ``random.Random`` derived from (seed, iteration), and
what enters the pool depends on outcomes, never on timing.

Timing is process CPU time (``time.process_time``), so a fuzz run niced behind a training job
is not flagged for waiting its turn; wall time is reported too. A decode still running after
``max(10 s, 5 × timeout)`` of CPU is interrupted (SIGPROF) and recorded as a hang. Decodes run
with ``fuzz_limits()`` (≤ 4096 per side, ≤ 2^16 pixels) so a mutated size field cannot make a
legal but large image whose honest decoding takes longer than the timeout; the default limits
allow 2^28 pixels, which no decoder synthesizes in 2 s (see the note in ``Target``).

Engines:
  * ``structured`` (default): the mutator above, no coverage feedback.
  * ``atheris``: libFuzzer with coverage of the openjai package, using the same structured
    mutator as its custom mutator (half the time libFuzzer's own byte mutator, CRC fixed).
    Needs ``pip install atheris`` (3.0.0 has Linux wheels for Python 3.11).

CLI::

    python -m openjai.fuzz --iterations 10000 --seed 1 --out fuzz-out
    python -m openjai.fuzz --seconds 300 --seed 2 --out fuzz-out [--engine atheris]
    python -m openjai.fuzz --replay tests/fuzz_corpus/*.jai
"""

from __future__ import annotations

import argparse
import hashlib
import io
import math
import os
import random
import re
import resource
import signal
import struct
import sys
import time
import traceback
import zlib
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .codec.container import ColourMode, Limits
from .codec.lattice import LatticeParams
from .codec.residual import HEAD, HEAD_MASK_OFFSET, ResidualParams

if TYPE_CHECKING:
    from .codec.weights import LoadedCodec

MAGIC = b"OJAI"
TAG_Z, TAG_ZE, TAG_Y, TAG_YE, TAG_ALPHA, TAG_RES, TAG_RESE, TAG_FILTER, TAG_LAT, TAG_LATE = range(1, 11)
ENTROPY_TAGS = (TAG_Z, TAG_Y, TAG_RES, TAG_LAT)
ESCAPE_TAGS = (TAG_ZE, TAG_YE, TAG_RESE, TAG_LATE)
DEFAULT_TIMEOUT = 2.0
DEFAULT_RSS_GROWTH_MB = 1024
POOL_SIZE = 256
TIMED_KINDS = ("timeout", "memory")  # failures decided by measurement, not by the outcome
MAX_SAVED_PER_KIND = 10


def fuzz_limits() -> Limits:
    """Limits used while fuzzing: small enough that any legal image decodes well within the timeout."""
    return Limits(max_side=4096, max_pixels=1 << 16)


# --------------------------------------------------------------------------------------------
# stream parts


@dataclass
class Sec:
    tag: int
    payload: bytes
    length: int | None = None  # declared length; None = len(payload)


@dataclass
class Parts:
    """A .jai stream split into its fields; every field may hold a value the spec forbids."""

    magic: bytes
    version: int
    model_id: bytes
    width: int
    height: int
    colour: int
    rate: bytes  # the raw 4 bytes of the float32, so NaN payloads survive
    sections: list[Sec]
    id_len: int | None = None  # None = len(model_id)
    count: int | None = None  # None = len(sections)
    crc: str = "fix"  # "fix": recompute; "keep": the original CRC; "zero": four zero bytes
    old_crc: bytes = b""

    def copy(self) -> "Parts":
        return replace(self, sections=[replace(s) for s in self.sections])

    def serialize(self) -> bytes:
        out = bytearray(self.magic[:4].ljust(4, b"\0"))
        out += bytes([self.version & 0xFF, (len(self.model_id) if self.id_len is None else self.id_len) & 0xFF])
        out += self.model_id
        out += struct.pack("<IIB", self.width & 0xFFFFFFFF, self.height & 0xFFFFFFFF, self.colour & 0xFF)
        out += self.rate[:4].ljust(4, b"\0")
        out.append((len(self.sections) if self.count is None else self.count) & 0xFF)
        for s in self.sections:
            out += struct.pack("<BI", s.tag & 0xFF, (len(s.payload) if s.length is None else s.length) & 0xFFFFFFFF)
        for s in self.sections:
            out += s.payload
        if self.crc == "fix":
            out += struct.pack("<I", zlib.crc32(out))
        elif self.crc == "keep":
            out += self.old_crc[:4].ljust(4, b"\0")
        else:
            out += b"\0\0\0\0"
        return bytes(out)


def split(data: bytes) -> Parts | None:
    """Parts of a stream whose layout is self-consistent (section lengths add up), else None.

    Field values are not validated: that is the decoder's job.
    """
    if len(data) < 6 or data[:4] != MAGIC:
        return None
    id_len = data[5]
    pos = 6 + id_len
    if len(data) < pos + 14 + 4:
        return None
    model_id = data[6:pos]
    width, height, colour = struct.unpack_from("<IIB", data, pos)
    rate = data[pos + 9 : pos + 13]
    count = data[pos + 13]
    pos += 14
    if pos + 5 * count + 4 > len(data):
        return None
    table = [struct.unpack_from("<BI", data, pos + 5 * i) for i in range(count)]
    pos += 5 * count
    if pos + sum(n for _, n in table) != len(data) - 4:
        return None
    sections = []
    for tag, n in table:
        sections.append(Sec(tag, data[pos : pos + n]))
        pos += n
    crc_ok = zlib.crc32(data[:-4]) == struct.unpack("<I", data[-4:])[0]
    return Parts(data[:4], data[4], model_id, width, height, colour, rate, sections,
                 crc="fix" if crc_ok else "keep", old_crc=data[-4:])


def fix_crc(data: bytes) -> bytes:
    """Replace the last four bytes by the CRC32 of everything before them."""
    if len(data) < 4:
        return data
    return data[:-4] + struct.pack("<I", zlib.crc32(data[:-4]))


# --------------------------------------------------------------------------------------------
# seeds


def _seed_image(h: int, w: int, channels: int, salt: int) -> np.ndarray:
    rng = np.random.default_rng(1000 + salt)
    yy, xx = np.mgrid[0:h, 0:w]
    base = (xx * 255 // max(w - 1, 1) + yy * 128 // max(h - 1, 1)) % 256
    img = np.stack([base, base[::-1, :], base[:, ::-1]], axis=2).astype(np.int64)
    img[(yy // 4 + xx // 4) % 3 == 0] = 255 - img[(yy // 4 + xx // 4) % 3 == 0]
    img = np.clip(img + rng.integers(-20, 21, img.shape), 0, 255).astype(np.uint8)
    if channels in (1, 2):
        grey = img.mean(axis=2).astype(np.uint8)[:, :, None]
        img = grey if channels == 1 else np.concatenate([grey, (xx * 7 % 256).astype(np.uint8)[:, :, None]], 2)
    elif channels == 4:
        img = np.concatenate([img, ((xx + yy) * 9 % 256).astype(np.uint8)[:, :, None]], 2)
    return np.ascontiguousarray(img[:, :, 0] if channels == 1 else img)


def once_jpeg(img: np.ndarray, quality: int = 50) -> np.ndarray:
    """``img`` (RGB or grey uint8) after a round trip through Pillow's JPEG at ``quality``."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=quality)
    with Image.open(buf) as im:
        return np.asarray(im).copy()


def make_seeds(lc: LoadedCodec, encode: Callable[..., bytes] | None = None) -> list[bytes]:
    """Small valid streams: 3 sizes × (RGB, grey, RGBA, grey+alpha) × 2 qualities, and 2 with escapes."""
    if encode is None:
        from .api import encode
    seeds = []
    sizes = [(16, 16), (7, 33), (64, 64)]  # (h, w): 16×16, 33×7 (W×H), 64×64
    for i, (h, w) in enumerate(sizes):
        for c in (3, 1, 4, 2):
            for q in (10, 70):  # 70: near the top rate point, with a residual layer
                seeds.append(encode(_seed_image(h, w, c, 10 * i + c), quality=q, model=lc))
    # once-JPEG images (RGB, grey): these carry a lattice layer
    for c in (3, 1):
        seeds.append(encode(once_jpeg(_seed_image(64, 64, c, 40)), quality=70, model=lc))
    # saturated patterns at top quality: these produce Y_ESCAPES entries
    yy, xx = np.mgrid[0:16, 0:16]
    chk = np.zeros((16, 16, 3), np.uint8)
    chk[..., 0], chk[..., 1] = (xx % 2) * 255, (yy % 2) * 255
    chk[..., 2] = 255 - chk[..., 0]
    seeds.append(encode(chk, quality=100, model=lc))
    seeds.append(encode(np.full((7, 33, 3), 255, np.uint8), quality=100, model=lc))
    return seeds


def retarget(data: bytes, model_id: str) -> bytes:
    """The same stream with another model id (CRC fixed), so a saved input outlives retraining.

    Inputs whose layout does not split are returned unchanged.
    """
    p = split(data)
    if p is None or p.model_id == model_id.encode("ascii"):
        return data
    p.model_id, p.id_len = model_id.encode("ascii"), None
    if p.crc != "fix":  # keep a deliberately wrong CRC wrong
        p.crc = "zero"
    return p.serialize()


def hostile_cases(seeds: list[bytes]) -> dict[str, bytes]:
    """Hand-made hostile streams derived from ``make_seeds`` output (CRC fixed unless named otherwise)."""
    by_key = {}
    for s in seeds:
        p = split(s)
        by_key.setdefault((p.width, p.height, p.colour), s)
    rgb, rgba, esc = by_key[(16, 16, 0)], by_key[(16, 16, 2)], seeds[-2]
    res = next(s for s in seeds if any(x.tag == TAG_RES for x in split(s).sections))
    filt = next(s for s in seeds if any(x.tag == TAG_FILTER for x in split(s).sections))
    lat = next(s for s in seeds if any(x.tag == TAG_LAT for x in split(s).sections))

    def head_size(b: bytes) -> int:
        return ResidualParams.unpack(b, 256).size

    def lattice_head_size(b: bytes) -> int:
        return LatticeParams.unpack(b, 256).size

    def sec(p: Parts, tag: int) -> Sec:
        return next(x for x in p.sections if x.tag == tag)

    def payload(tag: int, f: Callable[[bytes], bytes]) -> Callable[[Parts], None]:
        return lambda p: setattr(sec(p, tag), "payload", f(sec(p, tag).payload))

    def fields(**kw: Any) -> Callable[[Parts], None]:
        def edit(p: Parts) -> None:
            for k, v in kw.items():
                setattr(p, k, v)

        return edit

    edits: list[tuple[str, bytes, Callable[[Parts], None]]] = [
        ("z-invalid-range-data", rgb, payload(TAG_Z, lambda b: b"\xff" * 16)),
        ("y-invalid-range-data", rgb, payload(TAG_Y, lambda b: b"\xff" * len(b))),
        ("y-empty", rgb, payload(TAG_Y, lambda b: b"")),
        ("y-not-whole-words", rgb, payload(TAG_Y, lambda b: b + b"\0")),
        ("alpha-bomb", rgba, payload(TAG_ALPHA, lambda b: _bomb())),
        ("alpha-truncated", rgba, payload(TAG_ALPHA, lambda b: b[:-3])),
        ("escape-overlong", esc, payload(TAG_YE, lambda b: b"\x80" * 1000 + b"\x01")),
        ("escape-beyond-limit", esc, payload(TAG_YE, lambda b: _varint(65537) + b[1:])),
        ("escape-truncated", esc, payload(TAG_YE, lambda b: b[:-1])),
        ("escape-trailing", esc, payload(TAG_YE, lambda b: b + b"\x05")),
        ("rate-nan", rgb, fields(rate=_f32(math.nan))),
        ("rate-above-range", rgb, fields(rate=_f32(7.0000005))),
        ("rate-negative-denormal", rgb, fields(rate=_f32(-1e-45))),
        ("section-length-lie", rgb, lambda p: setattr(p.sections[1], "length", 0xFFFFFFFF)),
        ("section-duplicate", rgb, lambda p: p.sections.append(replace(sec(p, TAG_Y)))),
        ("sections-reversed", rgb, lambda p: p.sections.reverse()),
        ("section-count-lie", rgb, fields(count=255)),
        ("size-changed-latent-mismatch", rgb, fields(width=4096, height=16)),
        ("size-at-default-limit", rgb, fields(width=1 << 16, height=1 << 12)),
        ("alpha-missing", rgb, fields(colour=2)),
        ("model-id-length", rgb, fields(id_len=255)),
        ("crc-wrong", rgb, fields(crc="zero")),
        ("residual-unpaired", res, lambda p: p.sections.remove(sec(p, TAG_RESE))),
        ("residual-head-only", res, payload(TAG_RES, lambda b: b[: head_size(b)])),
        ("residual-head-short", res, payload(TAG_RES, lambda b: b[: head_size(b) - 1])),
        ("residual-words-garbage", res, payload(TAG_RES, lambda b: b[: head_size(b)] + b"\xff" * 64)),
        ("residual-sigma-beyond-tables", res,
         payload(TAG_RES, lambda b: b[: head_size(b) - 1] + b"\x40" + b[head_size(b) :])),
        ("residual-steps-zero", res, payload(TAG_RES, lambda b: b"\0" * 6 + b[6:])),
        ("residual-escapes-garbage", res, payload(TAG_RESE, lambda b: b"\x80" * 1000 + b"\x01")),
        ("filter-truncated", filt, payload(TAG_FILTER, lambda b: b[: len(b) // 2])),
        ("filter-trailing", filt, payload(TAG_FILTER, lambda b: b + b"\x80")),
        ("filter-endless-code", filt, payload(TAG_FILTER, lambda b: b[:1] + b"\0" * 200)),
        ("filter-all-ones", filt, payload(TAG_FILTER, lambda b: b"\xff" * 300)),
        ("lattice-unpaired", lat, lambda p: p.sections.remove(sec(p, TAG_LATE))),
        ("lattice-head-only", lat, payload(TAG_LAT, lambda b: b[: lattice_head_size(b)])),
        ("lattice-head-short", lat, payload(TAG_LAT, lambda b: b[: lattice_head_size(b) - 1])),
        ("lattice-words-garbage", lat, payload(TAG_LAT, lambda b: b[: lattice_head_size(b)] + b"\xff" * 64)),
        ("lattice-offset-beyond", lat, payload(TAG_LAT, lambda b: b"\x08" + b[1:])),
        ("lattice-steps-zero", lat, payload(TAG_LAT, lambda b: b[:2] + b"\0" * 64 + b[66:])),
        ("lattice-escapes-garbage", lat, payload(TAG_LATE, lambda b: b"\x80" * 1000 + b"\x01")),
    ]
    out = {}
    for name, src, edit in edits:
        p = split(src).copy()
        edit(p)
        out[name] = p.serialize()
    out["truncated-header"] = rgb[:20]
    out["empty"] = b""
    return out


# --------------------------------------------------------------------------------------------
# mutations


INTERESTING_U32 = [0, 1, 2, 3, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 511, 512,
                   1023, 1024, 4095, 4096, 4097, 16383, 16384, 65535, 65536, 65537, 1 << 24, (1 << 31) - 1, 1 << 31,
                   (1 << 32) - 1]
INTERESTING_BYTES = [0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF, 0x20, 0x41]


def _f32(x: float) -> bytes:
    return struct.pack("<f", x)


INTERESTING_RATES = [_f32(v) for v in (0.0, -0.0, 1e-45, -1e-45, 0.5, 1.0, 3.5, 6.999999, 7.0, 7.0000005, 8.0, -1.0,
                                       1e38, -1e38, 3.4028235e38, math.inf, -math.inf, math.nan)] + [
    b"\x01\x00\xc0\x7f", b"\xff\xff\xff\xff", b"\x00\x00\x80\x7f", b"\x00\x00\x00\x00"]


def _u32(rng: random.Random, old: int) -> int:
    r = rng.random()
    if r < 0.5:
        return rng.choice(INTERESTING_U32)
    if r < 0.8:
        return (old + rng.choice([-64, -17, -16, -1, 1, 15, 16, 17, 63, 64, 65, old, -(old // 2)])) & 0xFFFFFFFF
    return rng.randrange(1 << rng.choice([4, 8, 12, 16, 32]))


def _plane(p: Parts) -> int:
    """Bytes of an alpha plane for the declared size, capped so the mutator stays cheap."""
    return max(0, min(p.width * p.height, 1 << 20))


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        b, value = value & 0x7F, value >> 7
        out.append(b | 0x80 if value else b)
        if not value:
            return bytes(out)


def _rand_bytes(rng: random.Random, n: int) -> bytes:
    return rng.getrandbits(8 * n).to_bytes(n, "little") if n > 0 else b""


def _pick_sec(rng: random.Random, p: Parts, tags: tuple[int, ...] | None = None) -> Sec | None:
    cands = [s for s in p.sections if tags is None or s.tag in tags]
    return rng.choice(cands) if cands else None


def m_width(rng: random.Random, p: Parts) -> None:
    p.width = _u32(rng, p.width)


def m_height(rng: random.Random, p: Parts) -> None:
    p.height = _u32(rng, p.height)


def m_size_small(rng: random.Random, p: Parts) -> None:
    """A legal size with a different latent shape (so decoding goes past the container)."""
    p.width, p.height = rng.choice([1, 2, 15, 16, 17, 33, 63, 64, 65, 127, 128, 129, 200, 256]), rng.choice(
        [1, 2, 7, 16, 17, 33, 63, 64, 65, 128, 129, 256])
    if rng.random() < 0.7:
        _resize_alpha(rng, p)


def _resize_alpha(rng: random.Random, p: Parts) -> None:
    n = _plane(p)
    for s in p.sections:
        if s.tag == TAG_ALPHA:
            s.payload, s.length = zlib.compress(_rand_bytes(rng, n) if rng.random() < 0.3 else bytes(n)), None


_ALPHA_MODES = frozenset(int(c) for c in ColourMode if c.has_alpha)
_OPAQUE_MODES = frozenset(int(c) for c in ColourMode if not c.has_alpha)


def m_colour(rng: random.Random, p: Parts) -> None:
    p.colour = rng.choice([0, 1, 2, 3, 0, 1, 2, 3, 4, 5, 127, 128, 255])
    if p.colour in _ALPHA_MODES and not any(s.tag == TAG_ALPHA for s in p.sections) and rng.random() < 0.7:
        p.sections.append(Sec(TAG_ALPHA, zlib.compress(bytes(_plane(p)))))
    elif p.colour in _OPAQUE_MODES and rng.random() < 0.7:
        p.sections = [s for s in p.sections if s.tag != TAG_ALPHA]


def m_rate(rng: random.Random, p: Parts) -> None:
    r = rng.random()
    if r < 0.5:
        p.rate = rng.choice(INTERESTING_RATES)
    elif r < 0.8:
        p.rate = _f32(rng.uniform(-0.5, 7.5))
    else:
        b = bytearray(p.rate)
        b[rng.randrange(4)] ^= 1 << rng.randrange(8)
        p.rate = bytes(b)


def m_model_id(rng: random.Random, p: Parts) -> None:
    r = rng.random()
    mid = bytearray(p.model_id)
    if r < 0.25 and mid:
        mid[rng.randrange(len(mid))] = rng.choice([0x00, 0x0A, 0x20, 0x7F, 0x80, 0xFF, ord("x"), ord("0")])
    elif r < 0.4:
        p.id_len = rng.choice([0, 1, 63, 64, 65, 200, 255, len(mid) - 1, len(mid) + 1])
    elif r < 0.55:
        mid = mid[: rng.randrange(1, max(len(mid), 2))]
    elif r < 0.7:
        mid = bytearray(b"x" * rng.choice([1, 63, 64, 65, 255]))
    elif r < 0.85:
        mid = bytearray(b"openjai-base-00000000")
    else:
        mid += b"-extra"
    p.model_id = bytes(mid)


def m_magic_version(rng: random.Random, p: Parts) -> None:
    if rng.random() < 0.5:
        p.version = rng.choice([0, 2, 255])
    else:
        p.magic = rng.choice([b"OJAJ", b"ojai", b"\0\0\0\0", b"OJA"])


def m_count(rng: random.Random, p: Parts) -> None:
    n = len(p.sections)
    p.count = rng.choice([0, 1, n - 1, n + 1, n + 2, 255, rng.randrange(256)])


def m_tag(rng: random.Random, p: Parts) -> None:
    s = _pick_sec(rng, p)
    if s:
        s.tag = rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 128, 255])


def m_length_lie(rng: random.Random, p: Parts) -> None:
    s = _pick_sec(rng, p)
    if s:
        n = len(s.payload)
        s.length = max(0, rng.choice([0, 1, n - 1, n + 1, n + 4, n - 4, 2 * n, (1 << 32) - 1, 1 << 31, 1 << 20]))


def m_boundary_shift(rng: random.Random, p: Parts) -> None:
    """Move bytes between adjacent sections: the table stays consistent with the file length."""
    if len(p.sections) < 2:
        return
    i = rng.randrange(len(p.sections) - 1)
    a, b = p.sections[i], p.sections[i + 1]
    k = rng.choice([1, 2, 3, 4, 8, 16])
    if rng.random() < 0.5 and len(a.payload) >= k:
        a.payload, b.payload = a.payload[:-k], a.payload[-k:] + b.payload
    elif len(b.payload) >= k:
        a.payload, b.payload = a.payload + b.payload[:k], b.payload[k:]
    a.length = b.length = None


def m_swap(rng: random.Random, p: Parts) -> None:
    if len(p.sections) >= 2:
        i, j = rng.sample(range(len(p.sections)), 2)
        if rng.random() < 0.5:  # swap whole sections (table order changes)
            p.sections[i], p.sections[j] = p.sections[j], p.sections[i]
        else:  # swap payloads only (tags stay in order)
            p.sections[i].payload, p.sections[j].payload = p.sections[j].payload, p.sections[i].payload
            p.sections[i].length = p.sections[j].length = None


def m_duplicate(rng: random.Random, p: Parts) -> None:
    s = _pick_sec(rng, p)
    if s:
        p.sections.insert(rng.randrange(len(p.sections) + 1), replace(s))


def m_drop(rng: random.Random, p: Parts) -> None:
    if p.sections:
        del p.sections[rng.randrange(len(p.sections))]


def m_add(rng: random.Random, p: Parts) -> None:
    tag = rng.choice([TAG_ALPHA, TAG_ALPHA, TAG_ZE, TAG_YE, TAG_RES, TAG_RESE, TAG_FILTER, TAG_LAT, TAG_LATE, 11, 0, 255])
    if tag == TAG_ALPHA:
        payload = zlib.compress(bytes(_plane(p)))
    else:
        payload = _rand_bytes(rng, rng.choice([0, 1, 4, 8]))
    p.sections.insert(rng.randrange(len(p.sections) + 1), Sec(tag, payload))


def m_entropy_random(rng: random.Random, p: Parts) -> None:
    """Z or Y payload replaced by random bytes (usually a whole number of 32-bit words)."""
    s = _pick_sec(rng, p, ENTROPY_TAGS)
    if s:
        n = len(s.payload) if rng.random() < 0.6 else rng.choice([0, 4, 8, 12, 16, 64, 256, 1021, 1024])
        if rng.random() < 0.1:
            n += rng.choice([1, 2, 3])
        s.payload, s.length = _rand_bytes(rng, n), None


def m_entropy_words(rng: random.Random, p: Parts) -> None:
    """A few 32-bit words of Z or Y set to extreme or random values."""
    s = _pick_sec(rng, p, ENTROPY_TAGS)
    if s and len(s.payload) >= 4:
        b = bytearray(s.payload)
        for _ in range(rng.choice([1, 1, 2, 4, 16])):
            i = 4 * rng.randrange(len(b) // 4)
            v = rng.choice([0, 0xFFFFFFFF, 0x80000000, 0x7FFFFFFF, 1, rng.getrandbits(32)])
            b[i : i + 4] = struct.pack("<I", v)
        s.payload = bytes(b)


def m_entropy_resize(rng: random.Random, p: Parts) -> None:
    """Z or Y truncated or extended by whole words (zeros, ones or random)."""
    s = _pick_sec(rng, p, ENTROPY_TAGS)
    if s:
        k = 4 * rng.choice([1, 1, 2, 4, 16, 64])
        if rng.random() < 0.5:
            s.payload = s.payload[: max(0, len(s.payload) - k)] if rng.random() < 0.7 else s.payload[k:]
        else:
            fill = rng.choice([b"\0" * k, b"\xff" * k, _rand_bytes(rng, k)])
            s.payload = s.payload + fill if rng.random() < 0.7 else fill + s.payload
        s.length = None


def m_escapes(rng: random.Random, p: Parts) -> None:
    """Garbage in an escape section: random bytes, endless continuations, huge or boundary values."""
    s = _pick_sec(rng, p, ESCAPE_TAGS)
    if not s:
        return
    r = rng.random()
    if r < 0.2:
        e = _rand_bytes(rng, rng.choice([1, 2, 5, 16, 100]))
    elif r < 0.35:
        e = b"\x80" * rng.choice([1, 5, 9, 10, 64, 1000]) + rng.choice([b"", b"\x00", b"\x01", b"\x7f"])
    elif r < 0.55:
        e = b"".join(_varint(rng.choice([0, 1, 127, 128, 4095, 4096, 4097, 32767, 32768, 65535, 65536, 65537,
                                         1 << 20, 1 << 35, 1 << 64])) for _ in range(rng.choice([1, 2, 8, 64])))
    elif r < 0.7:
        e = s.payload + _varint(rng.randrange(1 << rng.choice([3, 7, 16, 17])))
    elif r < 0.85:
        e = s.payload[: max(0, len(s.payload) - rng.choice([1, 2]))] + (b"\x80" if rng.random() < 0.5 else b"")
    else:
        e = b""
    s.payload, s.length = e, None


_BOMB: list[bytes] = []


def _bomb() -> bytes:
    if not _BOMB:
        _BOMB.append(zlib.compress(bytes(1 << 24), 9))
    return _BOMB[0]


def m_alpha(rng: random.Random, p: Parts) -> None:
    """Alpha section: wrong size, bomb, truncated, trailing data, not zlib."""
    s = _pick_sec(rng, p, (TAG_ALPHA,))
    if not s:
        return
    n = _plane(p)
    r = rng.random()
    if r < 0.2:
        a = zlib.compress(bytes(max(0, n + rng.choice([-1, 1, 100]))))
    elif r < 0.35:
        a = _bomb()  # 16 MB of zeros in ~16 kB
    elif r < 0.5:
        a = s.payload[: rng.randrange(len(s.payload) + 1)]
    elif r < 0.65:
        a = s.payload + rng.choice([b"\0", zlib.compress(b"x"), _rand_bytes(rng, 8)])
    elif r < 0.8:
        a = _rand_bytes(rng, rng.choice([1, 2, 16, 64]))
    else:
        a = zlib.compress(bytes(n), rng.choice([0, 1, 9]))[:-4] + _rand_bytes(rng, 4)  # bad adler
    s.payload, s.length = a, None


def m_residual_head(rng: random.Random, p: Parts) -> None:
    """Residual head fields (steps, activity thresholds, σ-indices) set to extreme values."""
    s = _pick_sec(rng, p, (TAG_RES,))
    if not s or len(s.payload) < HEAD.size:
        return
    b = bytearray(s.payload)
    for _ in range(rng.choice([1, 1, 2, 4])):
        r = rng.random()
        if r < 0.25:  # a step
            i = 2 * rng.randrange(3)
            b[i : i + 2] = struct.pack("<H", rng.choice([0, 1, 2, 16, 0x7FFF, 0xFFFF, rng.getrandbits(16)]))
        elif r < 0.45:  # an activity threshold
            i = 6 + 2 * rng.randrange((HEAD_MASK_OFFSET - 6) // 2)
            b[i : i + 2] = struct.pack("<H", rng.choice([0, 1, 255, 256, 4096, 0xFFFF, rng.getrandbits(16)]))
        elif r < 0.7:  # a bit of the coded-group mask
            b[rng.randrange(HEAD_MASK_OFFSET, HEAD.size)] ^= 1 << rng.randrange(8)
        else:  # a byte just after the fixed part: usually a σ-index
            i = min(len(b) - 1, HEAD.size + rng.randrange(8))
            b[i] = rng.choice([0, 1, 62, 63, 64, 200, 254, 255])
    s.payload = bytes(b)


def m_payload_bytes(rng: random.Random, p: Parts) -> None:
    """A few random bytes of a random section's payload changed (CRC fixed later)."""
    s = _pick_sec(rng, p)
    if s and s.payload:
        b = bytearray(s.payload)
        for _ in range(rng.choice([1, 1, 2, 3, 8])):
            i = rng.randrange(len(b))
            b[i] = rng.choice(INTERESTING_BYTES) if rng.random() < 0.3 else b[i] ^ (1 << rng.randrange(8))
        s.payload = bytes(b)


def m_crc(rng: random.Random, p: Parts) -> None:
    p.crc = rng.choice(["keep", "zero"])


STRUCTURED: list[tuple[Callable[[random.Random, Parts], None], int]] = [
    (m_width, 4), (m_height, 4), (m_size_small, 6), (m_colour, 4), (m_rate, 5), (m_model_id, 2),
    (m_magic_version, 1), (m_count, 3), (m_tag, 3), (m_length_lie, 4), (m_boundary_shift, 4), (m_swap, 3),
    (m_duplicate, 3), (m_drop, 2), (m_add, 2), (m_entropy_random, 8), (m_entropy_words, 8), (m_entropy_resize, 5),
    (m_escapes, 8), (m_alpha, 4), (m_residual_head, 4), (m_payload_bytes, 10), (m_crc, 1),
]


def b_bitflip(rng: random.Random, d: bytearray, other: bytes) -> None:
    for _ in range(rng.choice([1, 1, 2, 4, 8])):
        if d:
            i = rng.randrange(len(d))
            d[i] ^= 1 << rng.randrange(8)


def b_set(rng: random.Random, d: bytearray, other: bytes) -> None:
    if d:
        d[rng.randrange(len(d))] = rng.choice(INTERESTING_BYTES) if rng.random() < 0.5 else rng.randrange(256)


def b_insert(rng: random.Random, d: bytearray, other: bytes) -> None:
    i = rng.randrange(len(d) + 1)
    d[i:i] = _rand_bytes(rng, rng.choice([1, 1, 2, 3, 4, 5, 16]))


def b_delete(rng: random.Random, d: bytearray, other: bytes) -> None:
    if d:
        i = rng.randrange(len(d))
        del d[i : i + rng.choice([1, 1, 2, 3, 4, 5, 16, 64])]


def b_truncate(rng: random.Random, d: bytearray, other: bytes) -> None:
    n = rng.choice([0, 1, 3, 4, 5, 6, 10, 20, 27, 30, rng.randrange(len(d) + 1), len(d) - 1, len(d) - 4])
    del d[max(0, n):]


def b_splice(rng: random.Random, d: bytearray, other: bytes) -> None:
    if d and other:
        i, j = rng.randrange(len(d)), rng.randrange(len(other))
        n = rng.choice([1, 4, 16, 64, 256])
        d[i : i + n] = other[j : j + n]


BYTEWISE: list[tuple[Callable[[random.Random, bytearray, bytes], None], int]] = [
    (b_bitflip, 6), (b_set, 3), (b_insert, 3), (b_delete, 3), (b_truncate, 2), (b_splice, 2),
]


def _weighted(rng: random.Random, table: list[tuple[Callable[..., None], int]]) -> Callable[..., None]:
    return rng.choices([f for f, _ in table], weights=[w for _, w in table])[0]


def mutate(rng: random.Random, data: bytes, other: bytes = b"") -> tuple[bytes, list[str]]:
    """One fuzz input derived from ``data``; returns it and the names of the mutations applied."""
    names: list[str] = []
    parts = split(data)
    if parts is not None and rng.random() < 0.85:
        parts = parts.copy()
        if parts.crc != "fix" and rng.random() < 0.8:
            parts.crc = "fix"
        for _ in range(1 + min(3, int(rng.expovariate(1.2)))):
            f = _weighted(rng, STRUCTURED)
            f(rng, parts)
            names.append(f.__name__)
        data = parts.serialize()
    if not names or rng.random() < 0.3:
        d = bytearray(data)
        for _ in range(1 + (rng.random() < 0.3)):
            f = _weighted(rng, BYTEWISE)
            f(rng, d, other)
            names.append(f.__name__)
        data = bytes(d)
        if rng.random() < 0.8:
            data = fix_crc(data)
            names.append("crc")
    return data, names


# --------------------------------------------------------------------------------------------
# the decoder under test


@dataclass
class Outcome:
    kind: str  # "ok", an OpenJAIError subclass name, or a failure kind
    message: str
    cpu_s: float
    wall_s: float
    failure: bool
    detail: str = ""  # traceback of a failure
    where: str = ""  # innermost openjai source line of a failure, e.g. "codec/coding.py:88"
    untimed: str = ""  # signature before the CPU-time and memory checks (never depends on timing)

    @property
    def signature(self) -> str:
        """Kind and message with numbers blanked (plus the raising line of a failure): 'the same' outcome."""
        if self.kind == "ok":
            return f"ok: {self.message}"
        at = f" @ {self.where}" if self.where else ""
        msg = _MODEL.sub("model *", self.message)  # one signature for all the garbage ids
        return f"{self.kind}: {_NUMBER.sub('#', msg)[:160]}{at}"


_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?(e[-+]?[0-9]+)?")
_MODEL = re.compile(r"model \S+")


class _Hang(BaseException):
    """Raised by the watchdog alarm inside a decode that runs far past the timeout."""


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB


class Target:
    """read_info + decode of one input, classified and timed.

    The oracle: the result is an OpenJAIError, or an image whose shape matches the header
    (and ``read_info`` agreed it was valid). Anything else is a failure, as is CPU time over
    ``timeout`` or a rise of the process's peak resident memory by more than ``rss_growth_mb``
    over what it was after the first decodes.

    Limits: decoding is linear in the declared pixel count, and the default limits allow
    2^28 pixels (minutes of synthesis, far beyond 24 GB of activations) from a stream of a few
    hundred bytes, because peaked tables code flat latents in ~1e-4 bits per symbol. That is
    policy, not a parser bug, so fuzzing uses ``fuzz_limits()``.
    """

    def __init__(self, lc: LoadedCodec, limits: Limits | None = None, timeout: float = DEFAULT_TIMEOUT,
                 rss_growth_mb: float = DEFAULT_RSS_GROWTH_MB, api: Any = None, error: type | None = None) -> None:
        if api is None:
            from . import api
        if error is None:
            from .errors import OpenJAIError as error
        self.lc, self.api, self.error = lc, api, error
        self.limits = fuzz_limits() if limits is None else limits
        self.timeout = timeout
        self.rss_growth_mb = rss_growth_mb
        self.rss_base: float | None = None
        self.hard_timeout = max(10.0, 5 * timeout)
        self.calls = 0
        self._can_alarm = hasattr(signal, "setitimer")

    def _run(self, data: bytes) -> str:
        """Decode; returns a description of a success (latent grid and colour: the 'ok' signature)."""
        info = self.api.read_info(data, self.limits)
        img = self.api.decode(data, model=self.lc, limits=self.limits)
        channels = ColourMode[info.colour.upper()].channels
        want = (info.height, info.width) if channels == 1 else (info.height, info.width, channels)
        if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.shape != want:
            shape = getattr(img, "shape", type(img).__name__)
            raise _BadOutput(f"decoded {shape} {getattr(img, 'dtype', '')}, header says {want} uint8")
        return f"{-(-info.width // 64)}x{-(-info.height // 64)} blocks of 64, {info.colour}"

    def __call__(self, data: bytes) -> Outcome:
        self.calls += 1
        alarm = self._can_alarm and _in_main_thread()
        if alarm:
            old = signal.signal(signal.SIGPROF, _raise_hang)
            signal.setitimer(signal.ITIMER_PROF, self.hard_timeout)  # CPU time, like the soft timeout
        c0, w0 = time.process_time(), time.perf_counter()
        kind, msg, failure, detail, where = "ok", "", False, "", ""
        try:
            msg = self._run(data)
        except _Hang:
            kind, msg, failure = "hang", f"still running after {self.hard_timeout:.0f} s", True
            detail = traceback.format_exc()
        except self.error as e:
            kind, msg = type(e).__name__, str(e)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # noqa: BLE001 - every other exception breaks the contract
            kind, msg, failure = type(e).__name__, str(e), True
            detail = traceback.format_exc()
            where = _where(e)
        finally:
            cpu, wall = time.process_time() - c0, time.perf_counter() - w0
            if alarm:
                signal.setitimer(signal.ITIMER_PROF, 0)
                signal.signal(signal.SIGPROF, old)
        untimed = Outcome(kind, msg, 0, 0, failure, "", where).signature
        if not failure and cpu > self.timeout:
            msg = f"{cpu:.2f} s CPU (limit {self.timeout} s), last outcome {kind}: {msg}"
            kind, failure = "timeout", True
        rss = _rss_mb()
        if self.calls == 64 or self.rss_base is None:
            self.rss_base = rss  # after warm-up (first decodes allocate torch's caches)
        elif rss - self.rss_base > self.rss_growth_mb and not failure:
            kind, msg, failure = "memory", f"peak RSS rose to {rss:.0f} MB (from {self.rss_base:.0f} MB)", True
            self.rss_base = rss  # report each further rise once
        return Outcome(kind, msg, cpu, wall, failure, detail, where, untimed)


class _BadOutput(Exception):
    pass


def _where(e: BaseException) -> str:
    """The innermost line of the openjai package (outside this module) that the exception passed."""
    pkg = Path(__file__).resolve().parent
    at = ""
    for fs in traceback.extract_tb(e.__traceback__):
        f = Path(fs.filename).resolve()
        if f != Path(__file__).resolve() and pkg in f.parents:
            at = f"{f.relative_to(pkg).as_posix()}:{fs.lineno}"
    return at


def _raise_hang(signum: int, frame: Any) -> None:
    raise _Hang()


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


# --------------------------------------------------------------------------------------------
# the run


@dataclass
class Stats:
    iterations: int = 0
    cpu_s: float = 0.0
    wall_s: float = 0.0
    outcomes: Counter = field(default_factory=Counter)
    signatures: Counter = field(default_factory=Counter)
    mutations: Counter = field(default_factory=Counter)
    failures: int = 0
    failure_kinds: dict[str, list[str]] = field(default_factory=dict)  # signature -> saved sha256s
    failure_counts: Counter = field(default_factory=Counter)
    saved: list[Path] = field(default_factory=list)
    slowest: tuple[float, float, str, str, str] = (0.0, 0.0, "", "", "")  # cpu, wall, sha, kind, mutations

    def summary(self, top: int = 0) -> str:
        rate = self.iterations / self.wall_s if self.wall_s else 0.0
        lines = [f"iterations: {self.iterations}   wall {self.wall_s:.1f} s   CPU {self.cpu_s:.1f} s   "
                 f"({rate:.0f} inputs/s)",
                 "outcomes by type:"]
        lines += [f"  {n:8d}  {k}" for k, n in self.outcomes.most_common()]
        lines.append(f"distinct outcome signatures: {len(self.signatures)}")
        lines += [f"  {n:8d}  {k}" for k, n in self.signatures.most_common(top)]
        cpu, wall, sha, kind, muts = self.slowest
        lines.append(f"slowest decode: {cpu * 1000:.1f} ms CPU, {wall * 1000:.1f} ms wall "
                     f"({kind}; {muts}; sha256 {sha[:16]})")
        lines.append(f"failures: {self.failures} in {len(self.failure_kinds)} kind(s), "
                     f"{len(self.saved)} input(s) saved")
        for sig, n in self.failure_counts.most_common():
            lines.append(f"  {n:8d}  {sig}")
        return "\n".join(lines)


class Fuzzer:
    """Deterministic mutation loop over seeds and a pool of inputs that gave new outcomes."""

    def __init__(self, target: Target, seeds: list[bytes], seed: int = 0, out: Path | None = None,
                 max_saved_per_kind: int = MAX_SAVED_PER_KIND, log: Callable[[str], None] | None = None) -> None:
        if not seeds:
            raise ValueError("the fuzzer needs at least one seed stream")
        self.target, self.seeds, self.seed = target, list(seeds), seed
        self.out = Path(out) if out is not None else None
        self.max_saved = max_saved_per_kind
        self.pool: list[bytes] = []
        self._seen: set[str] = set()
        self.stats = Stats()
        self.log = log

    def input_for(self, i: int) -> tuple[bytes, list[str]]:
        rng = random.Random(self.seed * 1_000_003 + i)
        src = rng.choice(self.pool) if self.pool and rng.random() < 0.3 else rng.choice(self.seeds)
        return mutate(rng, src, rng.choice(self.seeds))

    def step(self, data: bytes, names: list[str]) -> Outcome:
        st = self.stats
        o = self.target(data)
        st.iterations += 1
        st.mutations.update(names)
        st.outcomes["FAILURE " + o.kind if o.failure else o.kind] += 1
        if o.failure:
            self._record_failure(data, names, o)
        # the pool grows on untimed signatures only, so the run stays deterministic
        crashed = o.failure and o.kind not in TIMED_KINDS
        if o.untimed not in self._seen and not crashed and len(self.pool) < POOL_SIZE:
            self.pool.append(data)
        self._seen.add(o.untimed)
        st.signatures[o.signature] += 1
        if o.cpu_s > st.slowest[0]:
            st.slowest = (o.cpu_s, o.wall_s, hashlib.sha256(data).hexdigest(), o.kind, "+".join(names))
        return o

    def _record_failure(self, data: bytes, names: list[str], o: Outcome) -> None:
        st = self.stats
        st.failures += 1
        sig = o.signature
        st.failure_counts[sig] += 1
        saved = st.failure_kinds.setdefault(sig, [])
        sha = hashlib.sha256(data).hexdigest()
        if self.log and st.failure_counts[sig] == 1:
            self.log(f"FAILURE #{st.failures} at iteration {st.iterations}: {sig}  [{'+'.join(names)}]")
        if self.out is None or len(saved) >= self.max_saved or sha in saved:
            return
        saved.append(sha)
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / f"{sha}.jai"
        path.write_bytes(data)
        (self.out / f"{sha}.txt").write_text(
            f"kind: {o.kind}\nmessage: {o.message}\nsignature: {sig}\ncpu_s: {o.cpu_s:.4f}\nwall_s: {o.wall_s:.4f}\n"
            f"seed: {self.seed}\niteration: {st.iterations - 1}\nmutations: {'+'.join(names)}\n\n{o.detail}")
        st.saved.append(path)

    def run(self, iterations: int | None = None, seconds: float | None = None, progress: int = 0) -> Stats:
        st = self.stats
        c0, w0 = time.process_time(), time.perf_counter()
        i = st.iterations
        while True:
            if iterations is not None and st.iterations >= iterations:
                break
            if seconds is not None and time.perf_counter() - w0 >= seconds:
                break
            data, names = self.input_for(i)
            self.step(data, names)
            i += 1
            if progress and self.log and st.iterations % progress == 0:
                self.log(f"{st.iterations} iterations, {st.failures} failures, "
                         f"{time.perf_counter() - w0:.0f} s, pool {len(self.pool)}")
        st.cpu_s += time.process_time() - c0
        st.wall_s += time.perf_counter() - w0
        return st


def run(iterations: int | None = None, seconds: float | None = None, seed: int = 0, out: Path | None = None,
        lc: LoadedCodec | None = None, limits: Limits | None = None, timeout: float = DEFAULT_TIMEOUT,
        log: Callable[[str], None] | None = None, progress: int = 0) -> Stats:
    """Fuzz the decoder of ``lc`` (default: the shipped model) for N iterations or T seconds."""
    if lc is None:
        from .api import load_model

        lc = load_model()
    fz = Fuzzer(Target(lc, limits, timeout), make_seeds(lc), seed, out, log=log)
    return fz.run(iterations, seconds, progress)


def replay(paths: list[Path], lc: LoadedCodec | None = None, limits: Limits | None = None,
           timeout: float = DEFAULT_TIMEOUT) -> list[tuple[Path, Outcome]]:
    """Decode each file once and classify it (for saved failures and the regression corpus)."""
    if lc is None:
        from .api import load_model

        lc = load_model()
    target = Target(lc, limits, timeout)
    return [(Path(p), target(Path(p).read_bytes())) for p in paths]


# --------------------------------------------------------------------------------------------
# atheris (libFuzzer, coverage-guided)


def run_atheris(args: argparse.Namespace) -> int:
    """libFuzzer over the coverage-instrumented openjai package, our mutator as its custom mutator."""
    try:
        import atheris
    except ImportError:
        print("atheris is not installed: pip install atheris==3.0.0", file=sys.stderr)
        return 2
    # re-import openjai under instrumentation (``python -m`` imported it before we could)
    for name in [m for m in sys.modules if m == "openjai" or m.startswith("openjai.")]:
        if name != __name__:
            del sys.modules[name]
    with atheris.instrument_imports(include=["openjai"]):
        import openjai.api as api  # noqa: PLC0415
        import openjai.errors as errors  # noqa: PLC0415
    lc = api.load_model()
    target = Target(lc, fuzz_limits(), args.timeout, api=api, error=errors.OpenJAIError)
    seeds = make_seeds(lc, api.encode)
    out = Path(args.out)
    fz = Fuzzer(target, seeds, args.seed, out, log=lambda s: print(s, file=sys.stderr, flush=True))
    corpus = out / "atheris-corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for s in seeds:
        (corpus / hashlib.sha256(s).hexdigest()).write_bytes(s)
    w0, c0 = time.perf_counter(), time.process_time()

    def finish() -> None:
        fz.stats.wall_s, fz.stats.cpu_s = time.perf_counter() - w0, time.process_time() - c0
        print(fz.stats.summary(top=40 * args.verbose), flush=True)
        os._exit(1 if fz.stats.failures else 0)

    def test_one(data: bytes) -> None:
        fz.step(data, ["atheris"])
        st = fz.stats
        if args.progress and st.iterations % args.progress == 0:
            print(f"{st.iterations} iterations, {st.failures} failures", file=sys.stderr, flush=True)
        if (args.iterations is not None and st.iterations >= args.iterations) or (
                args.seconds is not None and time.perf_counter() - w0 >= args.seconds):
            finish()

    def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)
        if rng.random() < 0.5:
            new, _ = mutate(rng, data, rng.choice(seeds))
        else:
            new = fix_crc(atheris.Mutate(data, max_size)) if rng.random() < 0.8 else atheris.Mutate(data, max_size)
        return new[:max_size]

    lf_args = [sys.argv[0], f"-seed={args.seed + 1}", f"-timeout={max(1, math.ceil(fz.target.hard_timeout))}",
               "-rss_limit_mb=8192", "-max_len=65536", f"-artifact_prefix={out}/", str(corpus)]
    atheris.Setup(lf_args, test_one, custom_mutator=custom_mutator)
    atheris.Fuzz()
    finish()
    return 0


# --------------------------------------------------------------------------------------------
# CLI


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m openjai.fuzz", description=__doc__.split("\n")[0])
    g = p.add_mutually_exclusive_group()
    g.add_argument("--iterations", type=int, help="number of inputs to try (default 10000)")
    g.add_argument("--seconds", type=float, help="fuzz for this long (wall time)")
    g.add_argument("--replay", nargs="+", type=Path, metavar="FILE", help="decode these files once and classify them")
    p.add_argument("--seed", type=int, default=0, help="random seed (the run is deterministic given it)")
    p.add_argument("--out", type=Path, default=Path("fuzz-out"), help="folder for failing inputs (<sha256>.jai)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="CPU seconds one decode may take")
    p.add_argument("--engine", choices=["structured", "atheris"], default="structured")
    p.add_argument("--progress", type=int, default=0, metavar="N", help="print a line every N iterations")
    p.add_argument("-v", "--verbose", action="count", default=0, help="list the commonest outcome signatures")
    args = p.parse_args(argv)
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    if args.replay:
        bad = 0
        for path, o in replay(args.replay, timeout=args.timeout):
            bad += o.failure
            print(f"{'FAIL' if o.failure else 'ok  '}  {path}  {o.kind}: {o.message}  ({o.cpu_s * 1000:.1f} ms)")
        return 1 if bad else 0
    if args.iterations is None and args.seconds is None:
        args.iterations = 10_000
    if args.engine == "atheris":
        return run_atheris(args)
    stats = run(args.iterations, args.seconds, args.seed, args.out, timeout=args.timeout, log=log,
                progress=args.progress)
    print(stats.summary(top=40 * args.verbose))
    return 1 if stats.failures else 0


if __name__ == "__main__":
    sys.exit(main())
