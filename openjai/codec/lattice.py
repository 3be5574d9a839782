"""Lattice layer: luma that snaps to the 8×8 DCT lattice of a JPEG the image was decoded from.

Most photos people compress were JPEGs once. A decoded JPEG's luma (JFIF: 0.299 R + 0.587 G
+ 0.114 B), cut into the JPEG's 8×8 blocks and transformed with the orthonormal DCT, has
every coefficient close to a multiple k·Q of that frequency's quantizer step Q (up to the
rounding of the JPEG decoder's output). A codec that knows the table can rebuild such a
luma nearly exactly from a good prediction: where the decoded image's coefficient ĉ is
within Q/2 of the right multiple, rounding ĉ/Q recovers k for free. The layer sends the
table and the few corrections d = k − round(ĉ/Q):

    decoder:  ĉ = DCT(Y(x̂) − 128) per full block at the grid offset  ─▶  k = round(ĉ/Q) + d
              ĉ' = k·Q where the coefficient moves, else ĉ;  Y' = IDCT(ĉ') + 128
              RGB' = round(RGB(x̂) + (Y' − Y(x̂)))   (JFIF chroma unchanged)

x̂ is the image after every other layer (uint8 RGB). round(ĉ/Q) is computed in integers
(JFIF luma ×1000, the DCT matrix in 1/2^16), so every decoder predicts the same k from the
same x̂; where another machine's float synthesis moves a pixel of x̂, a prediction may move
too, but only its own coefficient. The corrections are coded with the model's zero-mean
Gaussian tables, one σ-index per group of (activity bucket, band), as in the residual layer:
integers every decoder has, so that which table decodes which symbol never depends on x̂.
Which coefficients snap is decided per class of (uncertainty, band): uncertainty is how
close ĉ/Q lies to a rounding boundary (a prediction near one is the likeliest to be off;
where the base prediction is poor, snapping moves as many coefficients away from the
original as onto it). A coefficient of a class that does not snap keeps x̂'s value, unless
it has a correction.

The encoder estimates the table from the original: it finds the IJG quality (libjpeg's
scaled standard table, 1…100) whose lattice fits the original's luma best, at the grid
offset that fits best, and sends it only where it pays at the residual layer's slope. The
section carries the whole table, so an encoder may send any other. Pixels outside the full
blocks (the right and bottom edges when the size or offset leaves partial blocks) are left
as they are. Both sides work in row strips of whole blocks (strips.py): of the whole image
they keep only compact integers (corrections, groups, the encoder's predictions), so the
memory grows with the width. Spec: docs/bitstream.md, sections LATTICE and LATTICE_ESCAPES.
"""

from __future__ import annotations

import functools
import math
import struct
from dataclasses import dataclass

import numpy as np

from ..errors import BitstreamError
from .coding import SymbolDecoder, SymbolEncoder, TableSet
from .group_rdo import PASSES, SKIP, GroupQuantizer, Grouping
from .residual import BAND, BANDS, BLOCK, DCT, group_index, group_indices
from .strips import map_threads, row_strips, run_strips, threaded_strips

BUCKETS = 4  # activity buckets of the coding groups (block activity as in the residual layer)
GROUPS = BUCKETS * BANDS
UNCERTAINTIES = 4  # snap classes: how close ĉ/Q is to a rounding boundary, × band
CLASSES = UNCERTAINTIES * BANDS
#: offset x, offset y (u8 each, < 8), the table (64 × u8, raster order, row = vertical
#: frequency), the activity thresholds (u16), a bit per snap class (LSB first) that says
#: whether it snaps, a bit per group whether it is coded; one σ-index byte per coded group
HEAD = struct.Struct(f"<2B{BLOCK * BLOCK}s{BUCKETS - 1}H{CLASSES // 8}s{GROUPS // 8}s")
DCT_BITS = 16
_DCT_INT = np.round(DCT * 2**DCT_BITS).astype(np.int64)
_LUMA_INT = np.array([299, 587, 114])  # JFIF luma × 1000
#: |k·Q| bound: an orthonormal 8×8 DCT coefficient of a level-shifted 8-bit block is ≤ 8 · 128
COEFFICIENT_LIMIT = 1024 + 255
#: libjpeg's standard luminance table (ITU-T T.81 Annex K), scaled by the IJG quality
IJG_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
]).reshape(BLOCK, BLOCK)  # fmt: skip
#: the encoder's model of how far a JPEG source's coefficients lie from the lattice (levels):
#: the decoder's output rounding, ~0.3 per pixel, plus its integer IDCT
SOURCE_NOISE = 0.6
OUTLIERS = 0.1  # the share of coefficients the fit lets lie off the lattice
FIT_BLOCKS = 4096  # blocks the table and offset search look at (evenly spread)
#: evidence (_fit_score, nats per sampled coefficient) below which the encoder does not try
#: the layer
MIN_FIT = 0.05


def ijg_table(quality: int) -> np.ndarray:
    """libjpeg's luminance table for ``quality`` 1…100 (int64, 8 × 8)."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((IJG_LUMA * scale + 50) // 100, 1, 255)


@dataclass(frozen=True)
class LatticeParams:
    """The head of a LATTICE section."""

    offset: tuple[int, int]  # (x, y) of the first full block, each 0…7
    table: np.ndarray  # int64 (8, 8), 1…255
    thresholds: tuple[int, ...]  # BUCKETS − 1 activity thresholds, non-decreasing
    snapped: np.ndarray  # bool (UNCERTAINTIES, BANDS): the class's coefficients move to the lattice
    sigma: np.ndarray  # uint8 (BUCKETS, BANDS), SKIP for a group not coded

    @property
    def size(self) -> int:
        return HEAD.size + int((self.sigma != SKIP).sum())

    def pack(self) -> bytes:
        coded = self.sigma.ravel() != SKIP
        masks = (np.packbits(m, bitorder="little").tobytes() for m in (self.snapped.ravel(), coded))
        table = self.table.astype(np.uint8).tobytes()
        head = HEAD.pack(*self.offset, table, *self.thresholds, *masks)
        return head + self.sigma.ravel()[coded].astype(np.uint8).tobytes()

    @classmethod
    def unpack(cls, data: bytes, levels: int) -> LatticeParams:
        """Parse and validate a head; BitstreamError when malformed."""
        if len(data) < HEAD.size:
            raise BitstreamError(f"lattice section has {len(data)} bytes, its head needs {HEAD.size}")
        ox, oy, table_bytes, *thresholds, snap_mask, mask = HEAD.unpack_from(data, 0)
        if ox >= BLOCK or oy >= BLOCK:
            raise BitstreamError(f"lattice grid offset ({ox}, {oy}) beyond the 8×8 block")
        table = np.frombuffer(table_bytes, dtype=np.uint8).astype(np.int64).reshape(BLOCK, BLOCK)
        if (table == 0).any():
            raise BitstreamError("lattice table has a zero step")
        if any(b < a for a, b in zip(thresholds, thresholds[1:])):
            raise BitstreamError("lattice activity thresholds are not in increasing order")
        snapped = np.unpackbits(np.frombuffer(snap_mask, dtype=np.uint8), bitorder="little").astype(bool)
        sigma = group_indices(data, HEAD.size, mask, levels, "lattice")
        return cls((ox, oy), table, tuple(thresholds), snapped.reshape(UNCERTAINTIES, BANDS),
                   sigma.reshape(BUCKETS, BANDS))


def _blocks_at(shape: tuple[int, ...], offset: tuple[int, int]) -> tuple[int, int]:
    """(blocks down, across): the full blocks of an image of ``shape`` at the grid ``offset``."""
    ox, oy = offset
    return max(shape[0] - oy, 0) // BLOCK, max(shape[1] - ox, 0) // BLOCK


def _strips(blocks_down: int, width: int) -> list[tuple[int, int]]:
    """[start, stop) ranges of block rows, each a strip of about STRIP_PIXELS pixels (strips.py);
    one range when the full blocks hold at most that many."""
    return [(a // BLOCK, b // BLOCK) for a, b in row_strips(blocks_down * BLOCK, width, align=BLOCK)]


def _rows(rgb: np.ndarray, offset: tuple[int, int], start: int, stop: int) -> np.ndarray:
    """The pixel rows of the block rows [start, stop) at ``offset``: full blocks at (offset x, 0)."""
    oy = offset[1]
    return rgb[oy + BLOCK * start : oy + BLOCK * stop]


def _luma_int(rgb: np.ndarray) -> np.ndarray:
    """JFIF luma × 1000 of uint8 RGB, exact int64."""
    return rgb.astype(np.int64) @ _LUMA_INT


def _luma_milli(rgb: np.ndarray, offset: tuple[int, int]) -> np.ndarray:
    """(JFIF luma − 128) × 1000, exact int64, as (blocks down, across, 8, 8): the full blocks at ``offset``."""
    ox, oy = offset
    nby, nbx = _blocks_at(rgb.shape, offset)
    y = _luma_int(rgb[oy : oy + nby * BLOCK, ox : ox + nbx * BLOCK]) - 128_000
    return y.reshape(nby, BLOCK, nbx, BLOCK).transpose(0, 2, 1, 3)


def predict(rgb: np.ndarray, offset: tuple[int, int], table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(round(ĉ/Q), snap class) of every coefficient of the full blocks of ``rgb`` (uint8
    RGB): int64 (blocks down, across, 8, 8) each, computed in integers so that every decoder
    that has the same ``rgb`` agrees."""
    c = _DCT_INT @ _luma_milli(rgb, offset) @ _DCT_INT.T  # exact int64
    d = table * (1000 << (2 * DCT_BITS))  # ĉ/Q = c / d
    k = np.floor_divide(2 * c + d, 2 * d)
    e = np.abs(c - k * d)  # ≤ d/2; near d/2 the prediction is uncertain
    uncertainty = (20 * e > 9 * d).astype(np.int64) + (20 * e > 7 * d) + (5 * e > d)
    return k, uncertainty * BANDS + BAND


def _lattice_activity(activity: np.ndarray, offset: tuple[int, int], shape: tuple[int, int]) -> np.ndarray:
    """Activity of each full block at ``offset``: that of the residual layer's 8×8 block
    (``activity``, from block_activity) holding its centre; ``shape``: (blocks down, across)."""
    ox, oy = offset
    rows = (oy + BLOCK * np.arange(shape[0]) + BLOCK // 2) // BLOCK
    cols = (ox + BLOCK * np.arange(shape[1]) + BLOCK // 2) // BLOCK
    return activity[rows[:, None], cols[None, :]]


def _luma_float(rgb: np.ndarray, offset: tuple[int, int]) -> np.ndarray:
    """Orthonormal DCT coefficients of the JFIF luma (float64) of the full blocks at ``offset``."""
    return DCT @ (_luma_milli(rgb, offset) / 1000.0) @ DCT.T


def _block_phase(rgb: np.ndarray) -> tuple[int, int]:
    """The grid offset where luma steps across block edges are largest (JPEG's blocking)."""
    height, width = rgb.shape[:2]
    # Σ |luma step| across each column boundary (over the rows) and each row boundary (over the
    # columns), in integers strip by strip: exact, so their means are the whole image's
    columns = np.zeros(max(width - 1, 0), dtype=np.int64)
    rows = np.zeros(max(height - 1, 0), dtype=np.int64)
    for start, stop in row_strips(height, width):
        above = max(start - 1, 0)  # the row above the strip: the boundary between strips
        y = _luma_int(rgb[above:stop])
        columns += np.abs(np.diff(y[start - above :], axis=1)).sum(axis=0)
        rows[above : stop - 1] = np.abs(np.diff(y, axis=0)).sum(axis=1)
    phase = []
    for sums, count in ((columns, height), (rows, width)):
        step = sums / count  # mean per boundary
        n = len(step) // BLOCK * BLOCK
        # boundary i lies between pixels i and i + 1: a block starts at i + 1
        energy = [step[p:n:BLOCK].mean() if n else 0.0 for p in range(BLOCK)]
        phase.append((int(np.argmax(energy)) + 1) % BLOCK)
    return phase[0], phase[1]


def _sample(rgb: np.ndarray, offset: tuple[int, int]) -> np.ndarray:
    """Luma DCT coefficients (float64, (n, 8, 8)) of at most about FIT_BLOCKS of the full blocks
    at ``offset``, evenly spread over the image (every m-th block in raster order): read from
    those blocks' pixels only."""
    ox, oy = offset
    nby, nbx = _blocks_at(rgb.shape, offset)
    count = nby * nbx
    index = np.arange(0, count, max(1, count // FIT_BLOCKS))
    by, bx = np.divmod(index, max(nbx, 1))
    r = np.arange(BLOCK)
    pixels = rgb[(oy + BLOCK * by)[:, None, None] + r[None, :, None], (ox + BLOCK * bx)[:, None, None] + r[None, None, :]]
    return DCT @ ((_luma_int(pixels) - 128_000) / 1000.0) @ DCT.T


def _fit_score(coefficients: np.ndarray, magnitude: np.ndarray, table: np.ndarray) -> float:
    """Evidence for a lattice with ``table``: the summed log-likelihood gain (nats, per
    coefficient of the sample) of the coefficients it quantizes to a non-zero multiple, each
    modelled as a lattice point plus Gaussian source noise (or, for OUTLIERS of them, anywhere:
    clipped pixels, edits) against a uniform distribution over its cell, which is what a
    coefficient that is not on the lattice follows (≤ 0 gain on average). Coefficients near 0
    would fit any coarse table, and steps within the noise fit anything: both count 0.
    ``magnitude``: ``np.abs(coefficients)``, computed once for the whole quality ladder."""
    steps = table.astype(np.float64).ravel()
    # |c| ≥ t/2 where t > 6σ; never elsewhere
    bound = np.where(steps > 6 * SOURCE_NOISE, steps / 2, np.inf)
    evidence = np.flatnonzero(magnitude.reshape(-1, steps.size) >= bound)
    c, t = coefficients.ravel()[evidence], steps[evidence % steps.size]  # the log-likelihood only where it counts
    distance = c - np.round(c / t) * t
    density = t / (SOURCE_NOISE * math.sqrt(2 * math.pi)) * np.exp(-0.5 * (distance / SOURCE_NOISE) ** 2)
    ll = np.zeros(coefficients.size)
    ll[evidence] = np.log(OUTLIERS + (1 - OUTLIERS) * density)
    return float(ll.sum() / coefficients.size)  # summed over every coefficient, in the same order as ever


@dataclass(frozen=True)
class LatticeFit:
    """What the encoder found in the original: the grid and the table."""

    offset: tuple[int, int]
    table: np.ndarray


def fit_lattice(original: np.ndarray) -> LatticeFit | None:
    """The JPEG lattice the original's luma lies on (offset, IJG table), or None when none fits."""
    if original.shape[0] < BLOCK or original.shape[1] < BLOCK:
        return None
    samples = {o: _sample(original, o) for o in {(0, 0), _block_phase(original)}}
    samples = {o: (c, np.abs(c)) for o, c in samples.items() if c.size}  # a grid may leave no full block
    if not samples:
        return None

    def score(trial: tuple[tuple[int, int], int]) -> tuple[float, tuple[int, int], int]:
        offset, quality = trial
        return _fit_score(*samples[offset], ijg_table(quality)), offset, quality

    # a coarse quality ladder at the two likely grids, then every quality near the best
    _, offset, quality = max(map_threads(score, [(o, q) for o in samples for q in range(5, 101, 5)]))
    fine = range(max(1, quality - 4), min(100, quality + 4) + 1)
    best, _, quality = max(map_threads(score, [(offset, q) for q in fine]))
    if best < MIN_FIT:
        return None
    return LatticeFit(offset, ijg_table(quality))


def encode_lattice(
    fit: LatticeFit, original: np.ndarray, decoded: np.ndarray, activity: np.ndarray, step: float, tables: TableSet,
    error_weight: float = 1.0,
) -> tuple[bytes, bytes] | None:
    """(LATTICE, LATTICE_ESCAPES) sections that snap ``decoded``'s luma to the lattice of
    ``fit`` (found in ``original``, uint8 RGB of the same shape) where that pays at the slope of
    a uniform quantizer of ``step`` (the residual layer's luma step, levels), or None when it
    pays nowhere. ``activity``: block_activity of the stream's latent. ``error_weight`` > 1
    prices the luma error that many times higher, so more corrections pay (rate control tries
    it: see ratecontrol.py)."""
    nby, nbx = _blocks_at(decoded.shape, fit.offset)
    if nby == 0 or nbx == 0:
        return None
    block_activity = _lattice_activity(activity, fit.offset, (nby, nbx))
    quantiles = np.linspace(0, 1, BUCKETS + 1)[1:-1]
    thresholds = tuple(int(v) for v in np.quantile(block_activity, quantiles, method="lower"))
    g = group_index(thresholds, block_activity)
    q, sigma, snapped, net = _choose(fit, original, decoded, g, step, tables, error_weight)
    if net <= 0:
        return None
    coded = (sigma != SKIP)[g]
    enc = SymbolEncoder(tables)
    enc.encode(q[coded], sigma[g[coded]])
    data, escapes = enc.finish()
    params = LatticeParams(fit.offset, fit.table, thresholds, snapped.reshape(UNCERTAINTIES, BANDS),
                           sigma.reshape(BUCKETS, BANDS))
    return params.pack() + data, escapes


def _choose(
    fit: LatticeFit, original: np.ndarray, decoded: np.ndarray, g: np.ndarray, step: float, tables: TableSet,
    error_weight: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """encode_lattice's choices for the groups ``g`` of the full blocks: (q, the σ-index of each
    group (SKIP: not coded), which snap classes snap, the net gain in bits). The corrections are
    q where the group is coded. Works in row strips of whole blocks (strips.py): the float
    coefficients are computed again in each pass instead of being kept."""
    nby, nbx = g.shape[:2]
    ox = fit.offset[0]
    strips = _strips(nby, decoded.shape[1])
    # what the passes share, in compact integers: the predictions (|k̂| ≤ 1024 + 1) and their classes
    k_hat = np.empty((nby, nbx, BLOCK, BLOCK), dtype=np.int16)
    snap_class = np.empty((nby, nbx, BLOCK, BLOCK), dtype=np.uint8)
    for a, b in strips:
        k_hat[a:b], snap_class[a:b] = predict(_rows(decoded, fit.offset, a, b), (ox, 0), fit.table)
    scale = (fit.table / step) ** 2 * error_weight  # per coefficient of a block
    weight = 6.0 / math.log(2.0) * scale  # bits per step²

    @functools.lru_cache(maxsize=1)  # an image of one strip computes it once for every pass
    def errors(strip: int) -> tuple[np.ndarray, np.ndarray]:
        """(x, keep_error) of a strip: the correction each coefficient needs, in steps, and the
        squared error (steps²) it keeps when it does not move."""
        a, b = strips[strip]
        coefficients = _luma_float(_rows(original, fit.offset, a, b), (ox, 0))
        x = coefficients / fit.table - k_hat[a:b]
        keep_error = ((coefficients - _luma_float(_rows(decoded, fit.offset, a, b), (ox, 0))) / fit.table) ** 2
        return x, keep_error

    # which classes snap and which corrections pay depend on each other: start from every
    # class snapped, choose the corrections, then let each class snap where that costs
    # less with them (snapping moves the error from c − ĉ to c − (k̂ + d)·Q), and again
    snapped = np.ones(CLASSES, dtype=bool)
    # the last pass's q: |x| ≤ 2 · 1024 + 1 (|c|, |ĉ| ≤ 8 · 128 levels), so int16 holds it
    q = np.empty((nby, nbx, BLOCK, BLOCK), dtype=np.int16)
    groupings = [Grouping(g[a:b], GROUPS) for a, b in strips]
    for _ in range(2):
        quantizer = GroupQuantizer(GROUPS, tables.bits)
        for _ in range(PASSES):
            for i, (a, b) in enumerate(strips):
                x, keep_error = errors(i)
                zero_error = np.where(snapped[snap_class[a:b]], x**2, keep_error)
                q[a:b] = quantizer.add(x, groupings[i], scale, zero_error)
            quantizer.next_pass()
        sigma = np.full(GROUPS, SKIP, dtype=np.uint8)
        net = -8.0 * (HEAD.size + 2 * 5)  # the head's fixed part and two section-table entries
        for group in range(GROUPS):
            if quantizer.table[group] != SKIP and quantizer.net[group] > 8.0:  # it pays for its σ-index byte
                sigma[group] = quantizer.table[group]
                net += quantizer.net[group] - 8.0
        snap_gain = np.zeros(CLASSES)
        for i, (a, b) in enumerate(strips):
            x, keep_error = errors(i)
            d = np.where(sigma[g[a:b]] != SKIP, q[a:b], 0)
            error_if_snapped = (x - d) ** 2
            error_if_kept = np.where(d == 0, keep_error, error_if_snapped)
            snap_gain += np.bincount(snap_class[a:b].ravel(), (weight * (error_if_kept - error_if_snapped)).ravel(),
                                     CLASSES)
        snapped = snap_gain > 0
    return q, sigma, snapped, float(net + snap_gain[snapped].sum())


def decode_corrections(
    section: bytes, escapes: bytes, activity: np.ndarray, size: tuple[int, int], tables: TableSet
) -> tuple[LatticeParams, np.ndarray]:
    """The head and the corrections δ (int16, blocks down × across × 8 × 8) of a LATTICE
    section for an image of ``size`` (height, width): exact integers. BitstreamError when
    malformed."""
    params = LatticeParams.unpack(section, len(tables))
    blocks = _blocks_at(size, params.offset)
    k = params.sigma.ravel()[group_index(params.thresholds, _lattice_activity(activity, params.offset, blocks))]
    coded = k != SKIP
    dec = SymbolDecoder(section[params.size :], escapes, tables)
    values = dec.decode(k[coded])
    dec.finish()
    # |k̂| ≤ 1024 + 1 and |k̂ + δ| ≤ COEFFICIENT_LIMIT: a larger δ moves a coefficient beyond range
    if values.size and max(-int(values.min()), int(values.max())) > 2 * COEFFICIENT_LIMIT:
        raise BitstreamError("lattice coefficient beyond the range of 8-bit luma")
    d = np.zeros(k.shape, dtype=np.int16)
    d[coded] = values
    return params, d


def apply_lattice(
    section: bytes, escapes: bytes, decoded: np.ndarray, activity: np.ndarray, tables: TableSet
) -> np.ndarray:
    """``decoded`` (uint8 RGB) with its luma snapped to a LATTICE section's lattice, strip by
    strip on torch's threads (strips.py); BitstreamError when the section is malformed. ``activity``:
    block_activity of the stream's latent."""
    params, d = decode_corrections(section, escapes, activity, decoded.shape[:2], tables)
    nby, nbx = d.shape[:2]
    if nby == 0 or nbx == 0:
        return decoded
    ox = params.offset[0]
    out = decoded.copy()

    def strip(a: int, b: int) -> None:
        rows = _rows(out, params.offset, a, b)  # still decoded's pixels: strips do not overlap
        k_hat, snap_class = predict(rows, (ox, 0), params.table)
        levels = (k_hat + d[a:b]) * params.table
        if np.abs(levels).max(initial=0) > COEFFICIENT_LIMIT:
            raise BitstreamError("lattice coefficient beyond the range of 8-bit luma")
        moved = params.snapped.ravel()[snap_class] | (d[a:b] != 0)
        change = np.where(moved, levels - _luma_float(rows, (ox, 0)), 0.0)
        delta = (DCT.T @ change @ DCT).transpose(0, 2, 1, 3).reshape((b - a) * BLOCK, nbx * BLOCK)
        region = rows[:, ox : ox + nbx * BLOCK]
        region[...] = np.clip(np.round(region + delta[..., None]), 0, 255)

    block_rows = [(a // BLOCK, b // BLOCK) for a, b in threaded_strips(nby * BLOCK, decoded.shape[1], BLOCK)]
    run_strips(strip, block_rows)
    return out
