"""Adaptive filter: a per-image linear filter on the decoded image, fitted by the encoder.

The synthesis transform leaves errors a small linear filter removes: smoothing its
ringing, sharpening what it blurred, and undoing colour biases (the shipped models weight
chroma 1/6 of luma). Like VVC's adaptive loop filter, the encoder fits the filter to the
photo at hand by least squares and sends its coefficients; the decoder applies it to the
synthesis output, before the residual layer (residual.py), which codes what is left.

Filter, in BT.709 YCbCr 8-bit units (x = decoded plane, p = a point-symmetric tap pair):

    luma:    y = x₀ + Σ_p c_p (x_p + x₋p − 2x₀) + a (x₀ − 128) + b      12 pairs: 7×7 diamond
    chroma:  y = x₀ + Σ_p c_p (x_p + x₋p − 2x₀) + Σ_q d_q (Y_q + Y₋q − 2Y₀) + a x₀ + b
             6 pairs (5×5 diamond) of the plane, 2 pairs (3×3 diamond) of luma

The taps act on differences, so the filter keeps flat areas and a coefficient's rounding
error scales with local contrast, not with the pixel value. Luma has one filter per class:
classes split pixels by local activity (A classes, thresholds stored) and optionally by
direction (× 3: vertical, horizontal, neither). Activity and direction come from integer
luma (54 R + 183 G + 19 B + 128) >> 8 of the decoded image, so every decoder classifies
alike. Chroma has one filter per plane. Coefficients are integers in 1/COEF_UNIT (taps and
a) or 1/OFFSET_UNIT levels (b), written as signed Exp-Golomb codes.

The encoder tries a few class layouts, prices each by the squared error it removes (at the
rate-distortion slope of the residual layer's steps, which match the model's λ) minus its
bits, and sends the best one, or none when none pays.

Both sides work in row strips (openjai.codec.strips): each strip is computed with STRIP_HALO
rows around it, which are then dropped, so memory grows with the width and the results are
those of the whole image, bit for bit.
Spec: docs/bitstream.md, section FILTER.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import BitstreamError
from .residual import STEP_UNIT, to_rgb, to_ycbcr
from .strips import map_threads, row_strips, run_strips, threaded_strips, with_halo


def _pairs(radius: int) -> tuple[tuple[int, int], ...]:
    """One offset of each point-symmetric pair in a diamond of ``radius``."""
    return tuple((dy, dx) for dy in range(0, radius + 1) for dx in range(-radius, radius + 1)
                 if abs(dy) + abs(dx) <= radius and (dy, dx) > (0, 0))


LUMA_PAIRS = _pairs(3)  # 12
CHROMA_PAIRS = _pairs(2)  # 6
CROSS_PAIRS = _pairs(1)  # 2
LUMA_PARAMS = len(LUMA_PAIRS) + 2  # + gain a, offset b
CHROMA_PARAMS = len(CHROMA_PAIRS) + len(CROSS_PAIRS) + 2
HALO = 3
COEF_UNIT = 1024
OFFSET_UNIT = 16
ACTIVITY_BITS = 3  # field width of A − 1
MAX_ACTIVITY_CLASSES = 1 << ACTIVITY_BITS
DIRECTIONS = 3
ACTIVITY_WINDOW = 5  # pixels per side of the box that sums luma gradients
#: activity bound: two gradients of 8-bit luma, each summed over the box
MAX_ACTIVITY = 2 * ACTIVITY_WINDOW**2 * 255
#: rows a strip reads above and below: the taps reach HALO rows, activity 1 (gradient) + 2 (box)
STRIP_HALO = max(HALO, 1 + ACTIVITY_WINDOW // 2)
COEF_LIMIT = 1 << 14  # |coefficient| bound in its unit (16 for taps, 1024 levels for b)
MAX_K = 15  # Exp-Golomb order bound
#: class layouts the encoder tries: (activity classes, with direction classes). Measured on 12
#: val photos at 0.5 bpp (`high`), adding (2, F) and (2, T) to the other four gained 0.014 dB
#: PSNR-Y, (8, T) nothing; coefficient units 1/512 and 1/2048 did no better than 1/1024
LAYOUTS = ((1, False), (2, False), (4, False), (8, False), (2, True), (5, True))
#: images smaller than this (pixels) are not filtered: too few samples for a stable fit
MIN_PIXELS = 256
ROWS_PER_CHUNK = 128  # rows of features built at once (bounds the encoder's memory)
FILTER_CHUNK = 1 << 16  # pixels the decoder's filter works on at once (its features stay in cache)
#: activity bins the encoder gathers statistics in; each layout's classes are unions of them
FINE_BINS = 40


@dataclass(frozen=True)
class FilterParams:
    """The contents of a FILTER section."""

    activity_classes: int  # 1 … MAX_ACTIVITY_CLASSES
    directions: bool  # luma classes also split by direction (× DIRECTIONS)
    thresholds: tuple[int, ...]  # activity_classes − 1 non-decreasing activity thresholds
    luma: np.ndarray  # int64 (classes, LUMA_PARAMS)
    chroma: np.ndarray | None  # int64 (2, CHROMA_PARAMS); None: chroma not filtered

    @property
    def classes(self) -> int:
        return self.activity_classes * (DIRECTIONS if self.directions else 1)

    def packed_size(self) -> int:
        """``len(self.pack())``, from the code lengths alone."""
        bits = ACTIVITY_BITS + 2 + 16 * len(self.thresholds)
        for values in (self.luma, self.chroma):
            if values is not None:
                bits += 4 + _golomb_bits(values.ravel(), _best_order(values))
        return -(-bits // 8)

    def pack(self) -> bytes:
        w = _BitWriter()
        w.write(self.activity_classes - 1, ACTIVITY_BITS)
        w.write(int(self.directions), 1)
        w.write(int(self.chroma is not None), 1)
        for t in self.thresholds:
            w.write(t, 16)
        for values in (self.luma, self.chroma):
            if values is not None:
                k = _best_order(values)
                w.write(k, 4)
                for v in values.ravel():
                    w.exp_golomb(int(v), k)
        return w.finish()

    @staticmethod
    def unpack(data: bytes) -> FilterParams:
        """Parse and validate a FILTER section; BitstreamError when malformed."""
        r = _BitReader(data)
        activity_classes = r.read(ACTIVITY_BITS) + 1
        directions = bool(r.read(1))
        has_chroma = bool(r.read(1))
        thresholds = tuple(r.read(16) for _ in range(activity_classes - 1))
        if any(b < a for a, b in zip(thresholds, thresholds[1:])):
            raise BitstreamError("filter activity thresholds are not in increasing order")
        classes = activity_classes * (DIRECTIONS if directions else 1)
        luma = _read_values(r, classes * LUMA_PARAMS).reshape(classes, LUMA_PARAMS)
        chroma = _read_values(r, 2 * CHROMA_PARAMS).reshape(2, CHROMA_PARAMS) if has_chroma else None
        r.finish()
        return FilterParams(activity_classes, directions, thresholds, luma, chroma)


def _read_values(r: _BitReader, n: int) -> np.ndarray:
    k = r.read(4)
    if k > MAX_K:
        raise BitstreamError(f"filter Exp-Golomb order {k} above {MAX_K}")
    values = np.array([r.exp_golomb(k) for _ in range(n)], dtype=np.int64)
    if values.size and np.abs(values).max() > COEF_LIMIT:
        raise BitstreamError("filter coefficient beyond the allowed range")
    return values


class _BitWriter:
    def __init__(self) -> None:
        self.bits: list[int] = []

    def write(self, value: int, n: int) -> None:
        self.bits.extend((value >> (n - 1 - i)) & 1 for i in range(n))

    def exp_golomb(self, value: int, k: int) -> None:
        u = 2 * value - 1 if value > 0 else -2 * value  # signed → unsigned (zigzag)
        u += 1 << k
        n = u.bit_length()
        self.write(0, n - 1 - k)
        self.write(u, n)

    def finish(self) -> bytes:
        return np.packbits(np.array(self.bits, dtype=np.uint8)).tobytes()


class _BitReader:
    def __init__(self, data: bytes) -> None:
        self.bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))
        self.pos = 0

    def read(self, n: int) -> int:
        if self.pos + n > self.bits.size:
            raise BitstreamError("filter section is truncated")
        v = 0
        for b in self.bits[self.pos : self.pos + n]:
            v = (v << 1) | int(b)
        self.pos += n
        return v

    def exp_golomb(self, k: int) -> int:
        zeros = 0
        while self.read(1) == 0:
            zeros += 1
            if zeros > 20:
                raise BitstreamError("filter coefficient code too long")
        u = ((1 << (zeros + k)) | self.read(zeros + k)) - (1 << k)
        return (u + 1) // 2 if u & 1 else -(u // 2)

    def finish(self) -> None:
        rest = self.bits[self.pos :]
        if rest.size >= 8 or rest.any():
            raise BitstreamError("filter section has data after its coefficients")


def _golomb_bits(values: np.ndarray, k: int) -> int:
    u = np.where(values > 0, 2 * values - 1, -2 * values) + (1 << k)
    n = np.floor(np.log2(u)).astype(np.int64) + 1
    return int((2 * n - 1 - k).sum())


def _best_order(values: np.ndarray) -> int:
    return min(range(MAX_K + 1), key=lambda k: _golomb_bits(values.ravel(), k))


def integer_luma(rgb: np.ndarray) -> np.ndarray:
    """(H, W) int16 luma of uint8 RGB, exact on every machine (the sum fits 16 bits: 256·255 + 128)."""
    c = rgb.astype(np.uint16)
    y = c[..., 0] * np.uint16(54)
    y += c[..., 1] * np.uint16(183)
    y += c[..., 2] * np.uint16(19)
    y += np.uint16(128)
    return (y >> 8).astype(np.int16)


def _box_sum(x: np.ndarray) -> np.ndarray:
    """Sums over ACTIVITY_WINDOW² boxes (edges replicated), row pass then column pass, in the
    dtype of ``x`` (int16 holds 25 gradients of 8-bit luma)."""
    n = ACTIVITY_WINDOW
    p = np.pad(x, n // 2, mode="edge")
    rows = p[: p.shape[0] - n + 1].copy()
    for i in range(1, n):
        rows += p[i : p.shape[0] - n + 1 + i]
    out = rows[:, : rows.shape[1] - n + 1].copy()
    for i in range(1, n):
        out += rows[:, i : rows.shape[1] - n + 1 + i]
    return out


def activity_and_direction(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel: activity (int32, summed |gradient| of integer luma over a 5×5 box) and
    direction class (0 neither, 1 vertical, 2 horizontal)."""
    y = np.pad(integer_luma(rgb), 1, mode="edge")
    v = _box_sum(np.abs(y[2:, 1:-1] - y[:-2, 1:-1]))
    h = _box_sum(np.abs(y[1:-1, 2:] - y[1:-1, :-2]))
    # at most one holds (both would need v > 4v); int16 holds 2 · 25 · 255
    direction = (v > 2 * h).astype(np.int32) + 2 * (h > 2 * v)
    return (v + h).astype(np.int32), direction


def _class_map(params: FilterParams, activity: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Each pixel's luma class under the section's layout."""
    cls = _bin_index(params.thresholds, activity)
    return cls * DIRECTIONS + direction if params.directions else cls


def _bin_index(thresholds: Sequence[int], activity: np.ndarray) -> np.ndarray:
    """uint8 ``np.searchsorted(thresholds, activity, side="right")`` for at most 255
    thresholds, by a table over every activity (one lookup a pixel instead of a search)."""
    table = np.searchsorted(np.asarray(thresholds, dtype=np.int64), np.arange(MAX_ACTIVITY + 1), side="right")
    return table.astype(np.uint8)[activity]


def _luma_features(y: np.ndarray, rows: slice) -> np.ndarray:
    """(LUMA_PARAMS, pixels) features of the rows ``rows`` of the padded plane ``y``."""
    x0 = y[HALO + rows.start : HALO + rows.stop, HALO : y.shape[1] - HALO]
    f = _differences(y, x0, rows, LUMA_PAIRS, 2)
    f[-2], f[-1] = x0 - 128.0, 1.0 / OFFSET_UNIT * COEF_UNIT
    return f.reshape(LUMA_PARAMS, -1)


def _chroma_features(c: np.ndarray, cross: np.ndarray, rows: slice) -> np.ndarray:
    """(CHROMA_PARAMS, pixels) features of the rows ``rows`` of the padded chroma plane ``c``;
    ``cross``: luma's features of the CROSS_PAIRS at those pixels."""
    c0 = c[HALO + rows.start : HALO + rows.stop, HALO : c.shape[1] - HALO]
    f = _differences(c, c0, rows, CHROMA_PAIRS, len(CROSS_PAIRS) + 2)
    f[len(CHROMA_PAIRS) : -2] = cross.reshape(len(CROSS_PAIRS), *c0.shape)
    f[-2], f[-1] = c0, 1.0 / OFFSET_UNIT * COEF_UNIT
    return f.reshape(CHROMA_PARAMS, -1)


def _differences(p: np.ndarray, x0: np.ndarray, rows: slice, pairs: tuple[tuple[int, int], ...], extra: int) -> np.ndarray:
    """(len(pairs) + extra, rows, width): x_p + x₋p − 2x₀ of the padded plane ``p`` for each
    pair, then ``extra`` planes for the caller to fill."""
    h, w = x0.shape
    out = np.empty((len(pairs) + extra, h, w))
    x0_x2 = 2 * x0
    for i, (dy, dx) in enumerate(pairs):
        _pair_sum(p, rows, dy, dx, out[i])
        out[i] -= x0_x2
    return out


def _pair_sum(p: np.ndarray, rows: slice, dy: int, dx: int, out: np.ndarray) -> None:
    """``out`` = x_p + x₋p, p = (dy, dx), at the rows ``rows`` of the padded plane ``p`` (the
    encoder's features and the decoder's taps both read the pairs through this)."""
    w = out.shape[1]
    np.add(p[HALO + rows.start + dy : HALO + rows.stop + dy, HALO + dx : HALO + dx + w],
           p[HALO + rows.start - dy : HALO + rows.stop - dy, HALO - dx : HALO - dx + w], out=out)


def _padded(ycc: np.ndarray) -> np.ndarray:
    return np.pad(ycc, ((0, 0), (HALO, HALO), (HALO, HALO)), mode="edge")


def apply_filter(params: FilterParams, decoded: np.ndarray) -> np.ndarray:
    """``decoded`` (uint8 RGB) with the filter applied, uint8 RGB; strip by strip, on torch's threads."""
    h, w = decoded.shape[:2]
    out = np.empty((h, w, 3), dtype=np.uint8)

    def strip(start: int, stop: int) -> None:
        # the piece's own edge replication only reaches its first and last STRIP_HALO rows,
        # which are the halo (or the image's true edge), so the strip's rows are exact
        a, b = with_halo(start, stop, h, STRIP_HALO)
        piece = decoded[a:b]
        activity, direction = activity_and_direction(piece)
        cls = _class_map(params, activity, direction)
        out[start:stop] = to_rgb(filter_ycbcr(params, to_ycbcr(piece), cls)[:, start - a : stop - a])

    run_strips(strip, threaded_strips(h, w))
    return out


def filter_ycbcr(params: FilterParams, ycc: np.ndarray, cls: np.ndarray) -> np.ndarray:
    """The filtered planes (3, H, W), float32, of ``ycc`` given each pixel's luma class ``cls``.

    The taps on differences are folded into taps on the pair sums x_p + x₋p, the centre and a
    constant, Σ c_p (x_p + x₋p − 2x₀) + a (x₀ − 128) + b = Σ c_p (x_p + x₋p) + (a − 2Σc_p) x₀ +
    (b − 128a), and summed tap by tap in float32, FILTER_CHUNK pixels at a time: within 1e-4
    levels of the fit's float64 model, and element-wise (no BLAS), so the same bits on every
    CPU, for every chunk and strip layout."""
    h, w = ycc.shape[1:]
    p = _padded(ycc.astype(np.float32))
    out = np.empty((3, h, w), dtype=np.float32)
    luma = _folded(params.luma, len(LUMA_PAIRS))  # (classes, LUMA_PAIRS + 2)
    chroma = None if params.chroma is None else _folded(params.chroma, len(CHROMA_PAIRS), len(CROSS_PAIRS))
    rows = max(1, FILTER_CHUNK // max(w, 1))
    for r0 in range(0, h, rows):
        r = slice(r0, min(h, r0 + rows))
        k = cls[r]
        y0 = p[0, HALO + r.start : HALO + r.stop, HALO : HALO + w]
        taps = [(luma[:, i][k], (0, dy, dx)) for i, (dy, dx) in enumerate(LUMA_PAIRS)]
        out[0, r] = _taps(p, r, w, taps, [luma[:, -2][k] * y0, luma[:, -1][k]])
        for c in (1, 2):
            x0 = p[c, HALO + r.start : HALO + r.stop, HALO : HALO + w]
            if chroma is None:
                out[c, r] = x0
                continue
            coef = chroma[c - 1]
            pairs = [(c, dy, dx) for dy, dx in CHROMA_PAIRS] + [(0, dy, dx) for dy, dx in CROSS_PAIRS]
            out[c, r] = _taps(p, r, w, list(zip(coef, pairs)), [coef[-3] * x0, coef[-2] * y0, coef[-1]])
    return out


def _taps(p: np.ndarray, rows: slice, w: int, taps: list, rest: list) -> np.ndarray:
    """Σ coefficient · (x_p + x₋p) over ``taps`` ((coefficient: scalar or per pixel, (plane, dy,
    dx)) of the padded planes ``p``, rows ``rows``), then + each term of ``rest``, in order."""
    acc = np.zeros((rows.stop - rows.start, w), dtype=np.float32)
    t = np.empty_like(acc)
    for coefficient, (c, dy, dx) in taps:
        _pair_sum(p[c], rows, dy, dx, t)
        t *= coefficient
        acc += t
    for term in rest:
        acc += term
    return acc


def _folded(values: np.ndarray, pairs: int, cross: int = 0) -> np.ndarray:
    """Integer coefficients (…, pairs [+ cross] + gain + offset) on differences → float32
    coefficients on luma (pair sums, x₀, 1) or chroma (pair sums, luma pair sums, x₀, Y₀, 1)."""
    v = np.atleast_2d(values / COEF_UNIT)
    c, d = v[:, :pairs], v[:, pairs : pairs + cross]
    a, b = v[:, -2], v[:, -1] * (COEF_UNIT / OFFSET_UNIT)
    if cross:  # the chroma gain multiplies x₀ itself
        centre, offset = [1 + a - 2 * c.sum(1), -2 * d.sum(1)], [b]
    else:  # the luma gain multiplies x₀ − 128
        centre, offset = [1 + a - 2 * c.sum(1)], [b - 128 * a]
    return np.concatenate([c, d, np.stack(centre + offset, 1)], 1).astype(np.float32)


def _quantiles_lower(counts: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``np.quantile(values, q, method="lower")`` (int64) of the values whose histogram is
    ``counts`` (``counts[v]``: how many values equal v ≥ 0), without the values: numpy's index
    arithmetic, then the value at that index of the sorted values, read off the cumulative counts."""
    n = int(counts.sum())
    index = np.floor((n - 1) * q).astype(np.intp)
    return np.searchsorted(np.cumsum(counts), index, side="right").astype(np.int64)


def _solve(gram: np.ndarray, rhs: np.ndarray, weight: float) -> tuple[np.ndarray, float]:
    """Quantized least-squares coefficients and the priced gain (bits) they bring."""
    n = gram.shape[0]
    theta = np.linalg.solve(gram + 1e-6 * np.trace(gram) / n * np.eye(n) + 1e-9 * np.eye(n), rhs)
    q = np.clip(np.round(theta), -COEF_LIMIT, COEF_LIMIT).astype(np.int64)
    qf = q.astype(np.float64)
    removed = 2 * qf @ rhs - qf @ gram @ qf  # SSE before minus SSE after, in COEF_UNIT² units
    return q, weight * removed / COEF_UNIT**2


class _FitPiece:
    """One strip of the fit (with its halo rows): what its chunks' statistics are made of."""

    def __init__(self, original: np.ndarray, decoded: np.ndarray, fine: np.ndarray, chroma_on: bool) -> None:
        activity, self.direction = activity_and_direction(decoded)
        self.bins = _bin_index(fine, activity)
        self.target = to_ycbcr(original)
        self.ycc = to_ycbcr(decoded)
        self.p = _padded(self.ycc)
        self.chroma_on = chroma_on

    def statistics(self, rows: slice) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Luma Grams and right-hand sides per fine bin × direction, then chroma's per plane,
        of the piece's rows ``rows``."""
        grams = np.zeros((FINE_BINS * DIRECTIONS, LUMA_PARAMS, LUMA_PARAMS))
        rhs = np.zeros((FINE_BINS * DIRECTIONS, LUMA_PARAMS))
        c_gram = np.zeros((2, CHROMA_PARAMS, CHROMA_PARAMS))
        c_rhs = np.zeros((2, CHROMA_PARAMS))
        ycc, target = self.ycc[:, rows], self.target[:, rows]
        luma = _luma_features(self.p[0], rows)
        # uint8 classes (FINE_BINS · DIRECTIONS < 256) sort by radix
        cls = (self.bins[rows] * np.uint8(DIRECTIONS) + self.direction[rows].astype(np.uint8)).ravel()
        order = np.argsort(cls, kind="stable")
        f, t = luma[:, order], (target[0] - ycc[0]).ravel()[order]
        ends = np.cumsum(np.bincount(cls, minlength=grams.shape[0]))
        for k in np.flatnonzero(np.diff(ends, prepend=0)):
            seg = slice(ends[k - 1] if k else 0, ends[k])
            grams[k] = f[:, seg] @ f[:, seg].T
            rhs[k] = f[:, seg] @ t[seg] * COEF_UNIT
        if self.chroma_on:
            cross = luma[[LUMA_PAIRS.index(q) for q in CROSS_PAIRS]]
            for i in (1, 2):
                fc = _chroma_features(self.p[i], cross, rows)
                c_gram[i - 1] = fc @ fc.T
                c_rhs[i - 1] = fc @ (target[i] - ycc[i]).ravel() * COEF_UNIT
        return grams, rhs, c_gram, c_rhs


def fit_filter(original: np.ndarray, decoded: np.ndarray, steps: tuple[int, int, int]) -> FilterParams | None:
    """The filter that best brings ``decoded`` towards ``original`` (uint8 RGB) at the
    rate-distortion slope of the residual steps ``steps`` (1/STEP_UNIT levels; chroma 0 for
    grey images), or None when no layout pays for its bits."""
    h, w = decoded.shape[:2]
    if h * w < MIN_PIXELS:
        return None
    # bits per squared 8-bit level at the residual's slope: 6 / (ln 2 · Δ²)
    weight = [6.0 / (math.log(2.0) * (s / STEP_UNIT) ** 2) if s else 0.0 for s in steps]
    chroma_on = steps[1] > 0
    # strips start on chunk boundaries, so the chunks, and the order the Grams are summed in,
    # are those of the whole image
    strips = row_strips(h, w, ROWS_PER_CHUNK)
    # Gram matrices per fine activity bin (× direction); every layout's classes are unions of
    # bins, with thresholds taken from the bins' own, so encoder and decoder classify alike.
    # Pass 1: the bins' thresholds, the activity's quantiles, from its histogram
    counts = np.zeros(MAX_ACTIVITY + 1, dtype=np.int64)
    for start, stop in strips:
        a, b = with_halo(start, stop, h, STRIP_HALO)
        activity, _ = activity_and_direction(decoded[a:b])
        counts += np.bincount(activity[start - a : stop - a].ravel(), minlength=counts.size)
    fine = _quantiles_lower(counts, np.arange(1, FINE_BINS) / FINE_BINS)
    grams = np.zeros((FINE_BINS * DIRECTIONS, LUMA_PARAMS, LUMA_PARAMS))
    rhs = np.zeros((FINE_BINS * DIRECTIONS, LUMA_PARAMS))
    c_gram = np.zeros((2, CHROMA_PARAMS, CHROMA_PARAMS))
    c_rhs = np.zeros((2, CHROMA_PARAMS))
    # pass 2: the Grams, chunk by chunk (on torch's threads), summed in chunk order, so the
    # sums are those of one thread
    for start, stop in strips:
        a, b = with_halo(start, stop, h, STRIP_HALO)
        piece = _FitPiece(original[a:b], decoded[a:b], fine, chroma_on)
        chunks = [slice(c - a, min(stop, c + ROWS_PER_CHUNK) - a) for c in range(start, stop, ROWS_PER_CHUNK)]
        for g, r, cg, cr in map_threads(piece.statistics, chunks):
            grams += g
            rhs += r
            c_gram += cg
            c_rhs += cr
    chroma, chroma_gain = None, 0.0  # chroma's gain in bits, before its own bits
    if chroma_on:
        solved = [_solve(c_gram[i], c_rhs[i], weight[i + 1]) for i in range(2)]
        chroma = np.stack([q for q, _ in solved])
        chroma_gain = sum(g for _, g in solved)
        if chroma_gain <= _golomb_bits(chroma, _best_order(chroma)) + 4:  # + its order field
            chroma, chroma_gain = None, 0.0
    best, best_net = None, 0.0
    grams = grams.reshape(FINE_BINS, DIRECTIONS, LUMA_PARAMS, LUMA_PARAMS)
    rhs = rhs.reshape(FINE_BINS, DIRECTIONS, LUMA_PARAMS)
    for a, with_direction in LAYOUTS:
        edges = [i * FINE_BINS // a for i in range(a + 1)]
        thresholds = tuple(int(fine[e - 1]) for e in edges[1:-1])
        coefs, gain = [], 0.0
        for i in range(a):
            g_a, r_a = grams[edges[i] : edges[i + 1]].sum(0), rhs[edges[i] : edges[i + 1]].sum(0)
            for g, r in (zip(g_a, r_a) if with_direction else [(g_a.sum(0), r_a.sum(0))]):
                q, gi = _solve(g, r, weight[0])
                coefs.append(q)
                gain += gi
        luma = np.stack(coefs)
        params = FilterParams(a, with_direction, thresholds, luma, chroma)
        net = gain + chroma_gain - 8 * (params.packed_size() + 5)  # + its 5-byte section-table entry
        if net > best_net:
            best, best_net = params, net
    return best

