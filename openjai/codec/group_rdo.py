"""Rate-distortion quantization of coefficient groups (residual and lattice layers).

Both layers code integer coefficients with the model's zero-mean Gaussian tables, one table
(σ-index) per group, chosen by the encoder. Per group, the quantizer

    q₀ = ⌊|x| + ½ − DEAD_ZONE⌋        k₀ = cheapest table for q₀
    q₁ = per coefficient the cheapest of {0, q₀ − 1, q₀} in bits + priced error under k₀;  k₁ likewise
    q₂ = the same under k₁;  k₂, rate = cheapest table for q₂ and its bits
    net = Σ priced error removed by q₂ − rate     (what coding the group saves over not coding it)

(x in units of the quantizer step; the squared error priced at 6 / ln 2 bits per step², times
a per-coefficient ``scale``). A group whose q is all zero at any stage is skipped (SKIP).

The coefficients arrive strip by strip (strips.py), so that no whole-image float array is
needed: ``GroupQuantizer`` makes the three passes over the strips, keeping per group only a
histogram of q (which decides the table exactly as the group's whole array would) and the
running error sum. Within a strip the group's coefficients are taken in raster order and
summed as one array, so an image of one strip gives exactly the same q, tables and sums as a
single array per group.
"""

from __future__ import annotations

import math

import numpy as np

SKIP = 255  # σ-index of a group that is not coded (all its coefficients are zero), in memory only
Q_LIMIT = 1 << 15  # |q| bound
#: encoder dead zone: |x| is rounded down below n + 0.5 + DEAD_ZONE (fewer bits, same decoder)
DEAD_ZONE = 0.2
PASSES = 3


def symbol_bits(q: np.ndarray, row: np.ndarray) -> np.ndarray:
    """Bits of each symbol of ``q`` under one σ table (a row of ``TableSet.bits``)."""
    limit = (len(row) - 1) // 2
    return row[np.clip(q, -limit, limit) + limit]


def best_table(values: np.ndarray, counts: np.ndarray, bits: np.ndarray) -> tuple[int, float]:
    """Cheapest σ-index for symbols given as distinct ``values`` (increasing) with their
    ``counts``, and its cost in bits (all tables at once, each summing the same terms in the
    same order as it would alone)."""
    limit = (bits.shape[1] - 1) // 2
    costs = (bits[:, np.clip(values, -limit, limit) + limit] * counts).sum(axis=1)
    k = int(np.argmin(costs))
    return k, float(costs[k])


class Grouping:
    """Which group each coefficient of a strip is in, as the quantizer reads it: the raster
    positions sorted by group (stably) and where each group's run starts. Made once per strip
    and used for every pass (and component) over it."""

    def __init__(self, group: np.ndarray, groups: int) -> None:
        """``group``: uint8 group of each coefficient (any shape), each < ``groups``."""
        group = np.ravel(group)
        self.order = np.argsort(group, kind="stable")  # uint8: a radix sort
        self.starts = np.concatenate([[0], np.cumsum(np.bincount(group, minlength=groups))])


class GroupQuantizer:
    """Quantizes ``groups`` coefficient groups whose coefficients arrive strip by strip.

    For each of the PASSES passes, call ``add`` once per strip, strips in the same order every
    pass, then ``next_pass``. The last pass's ``add`` returns the strip's q. Afterwards
    ``table[g]`` is the σ-index of group g (SKIP where q is all zero) and ``net[g]`` what
    coding it saves, in bits; a caller that leaves a group out sets its q to zero.
    """

    def __init__(self, groups: int, bits: np.ndarray) -> None:
        self.bits = bits
        self.table = np.zeros(groups, dtype=np.int64)  # the table the current pass prices with
        self.active = np.ones(groups, dtype=bool)  # groups whose q is not (yet) all zero
        self.net = np.zeros(groups)
        self.pass_index = 0
        self._weight = 6.0 / math.log(2.0)
        #: per group, the (distinct values, counts) of q each strip of this pass gave
        self._seen: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(groups)]

    def add(
        self, x: np.ndarray, group: Grouping, scale: np.ndarray | float = 1.0, zero_error: np.ndarray | None = None
    ) -> np.ndarray:
        """Feed one strip: coefficients ``x`` (in steps), the grouping of its coefficients,
        ``scale`` (per coefficient: (its step / Δ)² where the steps differ) and ``zero_error``
        (the squared error, in steps², a coefficient keeps when its q is 0, where that is not
        x²). Returns the strip's q (int64, x's shape; meaningful in the last pass)."""
        shape = np.shape(x)
        scale = np.broadcast_to(scale, shape).ravel() if np.ndim(scale) else None
        x = np.ravel(x)
        zero = None if zero_error is None else np.ravel(zero_error)
        order, starts = group.order, group.starts
        q_out = np.zeros(x.shape, dtype=np.int64)
        for g in np.flatnonzero(np.diff(starts) * self.active):
            sel = order[starts[g] : starts[g + 1]]
            signed, gain = self._quantize_group(g, x[sel], None if scale is None else scale[sel],
                                                None if zero is None else zero[sel])
            self._seen[g].append(_histogram(signed))
            if gain is not None:
                self.net[g] += gain
            q_out[sel] = signed
        return q_out.reshape(shape)

    def _quantize_group(
        self, g: int, x: np.ndarray, scale: np.ndarray | None, zero_error: np.ndarray | None
    ) -> tuple[np.ndarray, float | None]:
        """One pass over one group's coefficients of a strip: signed q, and in the last pass the
        priced error it removes."""
        sign = 1 - 2 * (x < 0).astype(np.int64)
        mag = np.abs(x)
        q = np.minimum(np.floor(mag + 0.5 - DEAD_ZONE), Q_LIMIT).astype(np.int64)
        if self.pass_index == 0:
            return sign * q, None
        zero = mag**2 if zero_error is None else zero_error
        weight = self._weight if scale is None else self._weight * scale
        row = self.bits[self.table[g]]
        # the cheapest of 0, q − 1 and q, the first of equals (as argmin over them in that order)
        best_q, best = np.zeros_like(q), weight * zero + symbol_bits(np.zeros_like(q), row)
        for candidate in (np.maximum(q - 1, 0), q):
            error = np.where(candidate == 0, zero, (mag - candidate) ** 2)
            cost = weight * error + symbol_bits(sign * candidate, row)
            cheaper = cost < best
            best_q[cheaper], best[cheaper] = candidate[cheaper], cost[cheaper]
        q = best_q
        if self.pass_index < PASSES - 1:
            return sign * q, None
        gain = float((weight * (zero - np.where(q == 0, zero, (mag - q) ** 2))).sum())
        return sign * q, gain

    def next_pass(self) -> None:
        """Close a pass: choose each group's table from what the pass saw."""
        for g in np.flatnonzero(self.active):
            values, counts = _merged(self._seen[g])
            self._seen[g] = []
            if not values.any():  # every q of the group is zero (or it has no coefficients)
                self.active[g] = False
                continue
            self.table[g], rate = best_table(values, counts, self.bits)
            if self.pass_index == PASSES - 1:
                self.net[g] -= rate
        self.pass_index += 1
        if self.pass_index == PASSES:
            self.table[~self.active] = SKIP
            self.net[~self.active] = 0.0


def _histogram(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(q, return_counts=True)`` of integers, by counting instead of sorting."""
    if q.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    low = int(q.min())
    counts = np.bincount(q - low)
    values = np.flatnonzero(counts)
    return values + low, counts[values]


def _merged(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values (increasing) and counts of several strips' (values, counts): exactly
    what np.unique gives for all their symbols at once."""
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    values, where = np.unique(np.concatenate([v for v, _ in parts]), return_inverse=True)
    counts = np.zeros(values.size, dtype=np.int64)
    np.add.at(counts, where, np.concatenate([c for _, c in parts]))
    return values, counts
