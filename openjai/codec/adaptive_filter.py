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
from dataclasses import dataclass

import numpy as np

from ..errors import BitstreamError
from .residual import STEP_UNIT, to_rgb, to_ycbcr
from .strips import row_strips, run_strips, threaded_strips, with_halo


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
    """(H, W) int32 luma of uint8 RGB, exact on every machine."""
    c = rgb.astype(np.int32)
    return (54 * c[..., 0] + 183 * c[..., 1] + 19 * c[..., 2] + 128) >> 8


def _box_sum(x: np.ndarray) -> np.ndarray:
    r = ACTIVITY_WINDOW // 2
    p = np.pad(x, r, mode="edge")
    c = np.cumsum(np.cumsum(np.pad(p, ((1, 0), (1, 0))), 0), 1)
    n = ACTIVITY_WINDOW
    return c[n:, n:] - c[:-n, n:] - c[n:, :-n] + c[:-n, :-n]


def activity_and_direction(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel: activity (int32, summed |gradient| of integer luma over a 5×5 box) and
    direction class (0 neither, 1 vertical, 2 horizontal)."""
    y = np.pad(integer_luma(rgb), 1, mode="edge")
    v = _box_sum(np.abs(y[2:, 1:-1] - y[:-2, 1:-1]))
    h = _box_sum(np.abs(y[1:-1, 2:] - y[1:-1, :-2]))
    direction = np.where(v > 2 * h, 1, np.where(h > 2 * v, 2, 0)).astype(np.int32)
    return v + h, direction


def _class_map(params: FilterParams, activity: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Each pixel's luma class under the section's layout."""
    cls = np.searchsorted(np.asarray(params.thresholds, dtype=np.int64), activity, side="right")
    return cls * DIRECTIONS + direction if params.directions else cls


def _luma_features(y: np.ndarray, rows: slice) -> np.ndarray:
    """(pixels, LUMA_PARAMS) features of the rows ``rows`` of the padded plane ``y``."""
    h, w = rows.stop - rows.start, y.shape[1] - 2 * HALO
    x0 = y[HALO + rows.start : HALO + rows.stop, HALO : HALO + w]
    cols = [_pair(y, rows, dy, dx, w) - 2 * x0 for dy, dx in LUMA_PAIRS]
    cols += [x0 - 128.0, np.full((h, w), 1.0 / OFFSET_UNIT * COEF_UNIT)]
    return np.stack([c.ravel() for c in cols], 1)


def _chroma_features(c: np.ndarray, y: np.ndarray, rows: slice) -> np.ndarray:
    h, w = rows.stop - rows.start, c.shape[1] - 2 * HALO
    c0 = c[HALO + rows.start : HALO + rows.stop, HALO : HALO + w]
    y0 = y[HALO + rows.start : HALO + rows.stop, HALO : HALO + w]
    cols = [_pair(c, rows, dy, dx, w) - 2 * c0 for dy, dx in CHROMA_PAIRS]
    cols += [_pair(y, rows, dy, dx, w) - 2 * y0 for dy, dx in CROSS_PAIRS]
    cols += [c0, np.full((h, w), 1.0 / OFFSET_UNIT * COEF_UNIT)]
    return np.stack([x.ravel() for x in cols], 1)


def _pair(p: np.ndarray, rows: slice, dy: int, dx: int, w: int) -> np.ndarray:
    a = p[HALO + rows.start + dy : HALO + rows.stop + dy, HALO + dx : HALO + dx + w]
    b = p[HALO + rows.start - dy : HALO + rows.stop - dy, HALO - dx : HALO - dx + w]
    return a + b


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
    """The filtered planes (3, H, W) of ``ycc`` given each pixel's luma class ``cls``; plane by
    plane and tap by tap (the encoder's feature matrices would cost the decoder ~3× the time)."""
    p = _padded(ycc)
    h, w = ycc.shape[1:]
    rows = slice(0, h)
    out = ycc.copy()
    luma = params.luma / COEF_UNIT
    y0 = ycc[0]

    def tap(plane: np.ndarray, dy: int, dx: int, centre_x2: np.ndarray) -> np.ndarray:
        # the same float operations as (a + b) − 2·x0, without the temporaries
        t = _pair(plane, rows, dy, dx, w)
        t -= centre_x2
        return t

    y0_x2 = 2 * y0
    for i, (dy, dx) in enumerate(LUMA_PAIRS):
        t = tap(p[0], dy, dx, y0_x2)
        t *= luma[cls, i]
        out[0] += t
    out[0] += luma[cls, -2] * (y0 - 128.0) + luma[cls, -1] * (COEF_UNIT / OFFSET_UNIT)
    if params.chroma is not None:
        chroma = params.chroma / COEF_UNIT
        cross = [tap(p[0], dy, dx, y0_x2) for dy, dx in CROSS_PAIRS]
        for c in (1, 2):
            coef, x0 = chroma[c - 1], ycc[c]
            x0_x2 = 2 * x0
            for i, (dy, dx) in enumerate(CHROMA_PAIRS):
                t = tap(p[c], dy, dx, x0_x2)
                t *= coef[i]
                out[c] += t
            for i, d in enumerate(cross, len(CHROMA_PAIRS)):
                out[c] += coef[i] * d
            out[c] += coef[-2] * x0 + coef[-1] * (COEF_UNIT / OFFSET_UNIT)
    return out


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
    # pass 2: the Grams, chunk by chunk; every array below is the piece's (its rows start at a)
    for start, stop in strips:
        a, b = with_halo(start, stop, h, STRIP_HALO)
        activity, direction = activity_and_direction(decoded[a:b])
        bins = np.searchsorted(fine, activity, side="right")
        target = to_ycbcr(original[a:b])
        ycc = to_ycbcr(decoded[a:b])
        p = _padded(ycc)
        for chunk in range(start, stop, ROWS_PER_CHUNK):
            rows = slice(chunk - a, min(stop, chunk + ROWS_PER_CHUNK) - a)
            f = _luma_features(p[0], rows)
            t = (target[0, rows] - ycc[0, rows]).ravel()
            cls = (bins[rows] * DIRECTIONS + direction[rows]).ravel()
            order = np.argsort(cls, kind="stable")
            f, t = f[order], t[order]
            ends = np.cumsum(np.bincount(cls, minlength=grams.shape[0]))
            for k in np.flatnonzero(np.diff(ends, prepend=0)):
                seg = slice(ends[k - 1] if k else 0, ends[k])
                grams[k] += f[seg].T @ f[seg]
                rhs[k] += f[seg].T @ t[seg] * COEF_UNIT
            if chroma_on:
                for i in (1, 2):
                    fc = _chroma_features(p[i], p[0], rows)
                    c_gram[i - 1] += fc.T @ fc
                    c_rhs[i - 1] += fc.T @ (target[i, rows] - ycc[i, rows]).ravel() * COEF_UNIT
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
        net = gain + chroma_gain - 8 * (len(params.pack()) + 5)  # + its 5-byte section-table entry
        if net > best_net:
            best, best_net = params, net
    return best

