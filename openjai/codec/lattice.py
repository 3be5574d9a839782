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
as they are. Spec: docs/bitstream.md, sections LATTICE and LATTICE_ESCAPES.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

from ..errors import BitstreamError
from .coding import SymbolDecoder, SymbolEncoder, TableSet
from .residual import BAND, BANDS, BLOCK, DCT, SKIP, bits_tables, group_indices, quantize_group

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


def _luma_int(rgb: np.ndarray) -> np.ndarray:
    """JFIF luma × 1000 of uint8 RGB, exact int64."""
    return rgb.astype(np.int64) @ _LUMA_INT


def _luma_milli(rgb: np.ndarray, offset: tuple[int, int]) -> np.ndarray:
    """(JFIF luma − 128) × 1000, exact int64, as (blocks down, across, 8, 8): the full blocks at ``offset``."""
    ox, oy = offset
    nby, nbx = max(rgb.shape[0] - oy, 0) // BLOCK, max(rgb.shape[1] - ox, 0) // BLOCK
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


def _group_index(thresholds: tuple[int, ...], activity: np.ndarray) -> np.ndarray:
    """(blocks down, across, 8, 8) group of every coefficient: activity bucket · BANDS + band."""
    bucket = np.searchsorted(np.array(thresholds, dtype=np.int64), activity, side="right")
    return bucket[:, :, None, None] * BANDS + BAND[None, None]


def _luma_float(rgb: np.ndarray, offset: tuple[int, int]) -> np.ndarray:
    """Orthonormal DCT coefficients of the JFIF luma (float64) of the full blocks at ``offset``."""
    return DCT @ (_luma_milli(rgb, offset) / 1000.0) @ DCT.T


def _block_phase(rgb: np.ndarray) -> tuple[int, int]:
    """The grid offset where luma steps across block edges are largest (JPEG's blocking)."""
    y = _luma_int(rgb)
    phase = []
    for axis in (1, 0):
        step = np.abs(np.diff(y, axis=axis)).mean(axis=1 - axis)  # per column / row boundary
        n = len(step) // BLOCK * BLOCK
        # boundary i lies between pixels i and i + 1: a block starts at i + 1
        energy = [step[p:n:BLOCK].mean() if n else 0.0 for p in range(BLOCK)]
        phase.append((int(np.argmax(energy)) + 1) % BLOCK)
    return phase[0], phase[1]


def _spread(blocks: np.ndarray) -> np.ndarray:
    """At most about FIT_BLOCKS blocks (n, 8, 8), evenly spread over the image."""
    flat = blocks.reshape(-1, BLOCK, BLOCK)
    return flat[:: max(1, len(flat) // FIT_BLOCKS)]


def _fit_score(coefficients: np.ndarray, table: np.ndarray) -> float:
    """Evidence for a lattice with ``table``: the summed log-likelihood gain (nats, per
    coefficient of the sample) of the coefficients it quantizes to a non-zero multiple, each
    modelled as a lattice point plus Gaussian source noise (or, for OUTLIERS of them, anywhere:
    clipped pixels, edits) against a uniform distribution over its cell, which is what a
    coefficient that is not on the lattice follows (≤ 0 gain on average). Coefficients near 0
    would fit any coarse table, and steps within the noise fit anything: both count 0."""
    table = np.broadcast_to(table, coefficients.shape)
    evidence = (table > 6 * SOURCE_NOISE) & (np.abs(coefficients) >= table / 2)
    c, t = coefficients[evidence], table[evidence]  # the log-likelihood only where it counts
    distance = c - np.round(c / t) * t
    density = t / (SOURCE_NOISE * math.sqrt(2 * math.pi)) * np.exp(-0.5 * (distance / SOURCE_NOISE) ** 2)
    ll = np.zeros(coefficients.shape)
    ll[evidence] = np.log(OUTLIERS + (1 - OUTLIERS) * density)
    return float(ll.sum() / coefficients.size)  # summed over every coefficient, in the same order as ever


@dataclass(frozen=True)
class LatticeFit:
    """What the encoder found in the original: the grid, the table, and the original's
    luma DCT coefficients there."""

    offset: tuple[int, int]
    table: np.ndarray
    coefficients: np.ndarray  # float64 (blocks down, across, 8, 8)


def fit_lattice(original: np.ndarray) -> LatticeFit | None:
    """The JPEG lattice the original's luma lies on (offset, IJG table), or None when none fits."""
    if original.shape[0] < BLOCK or original.shape[1] < BLOCK:
        return None
    samples = {o: DCT @ (_spread(_luma_milli(original, o)) / 1000.0) @ DCT.T for o in {(0, 0), _block_phase(original)}}
    samples = {o: c for o, c in samples.items() if c.size}  # a grid may leave no full block
    if not samples:
        return None
    # a coarse quality ladder at the two likely grids, then every quality near the best
    _, offset, quality = max((_fit_score(samples[o], ijg_table(q)), o, q) for o in samples for q in range(5, 101, 5))
    fine = range(max(1, quality - 4), min(100, quality + 4) + 1)
    score, quality = max((_fit_score(samples[offset], ijg_table(q)), q) for q in fine)
    if score < MIN_FIT:
        return None
    return LatticeFit(offset, ijg_table(quality), _luma_float(original, offset))


def encode_lattice(
    fit: LatticeFit, decoded: np.ndarray, activity: np.ndarray, step: float, tables: TableSet,
    error_weight: float = 1.0,
) -> tuple[bytes, bytes] | None:
    """(LATTICE, LATTICE_ESCAPES) sections that snap ``decoded``'s luma to the lattice of
    ``fit`` where that pays at the slope of a uniform quantizer of ``step`` (the residual
    layer's luma step, levels), or None when it pays nowhere. ``activity``: block_activity
    of the stream's latent. ``error_weight`` > 1 prices the luma error that many times
    higher, so more corrections pay (rate control tries it: see ratecontrol.py)."""
    k_hat, snap_class = predict(decoded, fit.offset, fit.table)
    if k_hat.size == 0:
        return None
    block_activity = _lattice_activity(activity, fit.offset, k_hat.shape[:2])
    quantiles = np.linspace(0, 1, BUCKETS + 1)[1:-1]
    thresholds = tuple(int(v) for v in np.quantile(block_activity, quantiles, method="lower"))
    g = _group_index(thresholds, block_activity)
    x = fit.coefficients / fit.table - k_hat  # the correction each coefficient needs, in steps
    keep_error = ((fit.coefficients - _luma_float(decoded, fit.offset)) / fit.table) ** 2  # in steps²
    scale = np.broadcast_to((fit.table / step) ** 2 * error_weight, x.shape)
    weight = 6.0 / math.log(2.0) * scale  # bits per step²
    bits = bits_tables(tables)
    # which classes snap and which corrections pay depend on each other: start from every
    # class snapped, choose the corrections, then let each class snap where that costs
    # less with them (snapping moves the error from c − ĉ to c − (k̂ + d)·Q), and again
    snapped = np.ones(CLASSES, dtype=bool)
    for _ in range(2):
        zero_error = np.where(snapped[snap_class], x**2, keep_error)
        sigma = np.full(GROUPS, SKIP, dtype=np.uint8)
        d = np.zeros(x.shape, dtype=np.int64)
        net = -8.0 * (HEAD.size + 2 * 5)  # the head's fixed part and two section-table entries
        for group in range(GROUPS):
            sel = g == group
            gd, k, gain = quantize_group(x[sel], bits, scale[sel], zero_error[sel])
            if k != SKIP and gain > 8.0:  # it pays for its σ-index byte
                d[sel] = gd
                sigma[group] = k
                net += gain - 8.0
        error_if_snapped = (x - d) ** 2
        error_if_kept = np.where(d == 0, keep_error, error_if_snapped)
        snap_gain = np.bincount(snap_class.ravel(), (weight * (error_if_kept - error_if_snapped)).ravel(), CLASSES)
        snapped = snap_gain > 0
    net += float(snap_gain[snapped].sum())
    if net <= 0:
        return None
    enc = SymbolEncoder(tables)
    k = sigma[g]
    coded = k != SKIP
    enc.encode(d[coded], k[coded])
    data, escapes = enc.finish()
    params = LatticeParams(fit.offset, fit.table, thresholds, snapped.reshape(UNCERTAINTIES, BANDS),
                           sigma.reshape(BUCKETS, BANDS))
    return params.pack() + data, escapes


def decode_corrections(
    section: bytes, escapes: bytes, activity: np.ndarray, size: tuple[int, int], tables: TableSet
) -> tuple[LatticeParams, np.ndarray]:
    """The head and the corrections δ (int64, blocks down × across × 8 × 8) of a LATTICE
    section for an image of ``size`` (height, width): exact integers. BitstreamError when
    malformed."""
    params = LatticeParams.unpack(section, len(tables))
    ox, oy = params.offset
    blocks = (max(size[0] - oy, 0) // BLOCK, max(size[1] - ox, 0) // BLOCK)
    g = _group_index(params.thresholds, _lattice_activity(activity, params.offset, blocks))
    k = params.sigma.ravel()[g]
    coded = k != SKIP
    dec = SymbolDecoder(section[params.size :], escapes, tables)
    d = np.zeros(g.shape, dtype=np.int64)
    d[coded] = dec.decode(k[coded])
    dec.finish()
    return params, d


def apply_lattice(
    section: bytes, escapes: bytes, decoded: np.ndarray, activity: np.ndarray, tables: TableSet
) -> np.ndarray:
    """``decoded`` (uint8 RGB) with its luma snapped to a LATTICE section's lattice;
    BitstreamError when the section is malformed. ``activity``: block_activity of the
    stream's latent."""
    params, d = decode_corrections(section, escapes, activity, decoded.shape[:2], tables)
    k_hat, snap_class = predict(decoded, params.offset, params.table)
    levels = (k_hat + d) * params.table
    if np.abs(levels).max(initial=0) > COEFFICIENT_LIMIT:
        raise BitstreamError("lattice coefficient beyond the range of 8-bit luma")
    nby, nbx = k_hat.shape[:2]
    if nby == 0 or nbx == 0:
        return decoded
    moved = params.snapped.ravel()[snap_class] | (d != 0)
    change = np.where(moved, levels - _luma_float(decoded, params.offset), 0.0)
    delta = DCT.T @ change @ DCT
    ox, oy = params.offset
    out = decoded.astype(np.float64)
    region = out[oy : oy + nby * BLOCK, ox : ox + nbx * BLOCK]
    region += delta.transpose(0, 2, 1, 3).reshape(nby * BLOCK, nbx * BLOCK)[..., None]
    return np.clip(np.round(out), 0, 255).astype(np.uint8)
