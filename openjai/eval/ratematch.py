"""Rate matching: find a codec's parameter whose coded size hits a CTTC target rate.

Rule (the one JPEG AI-style comparisons need: never report a point above its target class)::

    1. among the parameters tried, the largest rate  <= target            (preferred)
    2. else the smallest rate                        <= target * (1 + tolerance)
    3. else reached=False: even the lowest-rate setting is above target * (1 + tolerance);
       the lowest-rate point is returned, marked, so the caller can report it as unreachable.

A codec whose highest-rate setting stays below the target returns that setting (rule 1): the
point is reported with its real bpp, which is lower than the target.

Search (rate assumed monotone in the parameter, which ``ParamRange.increasing`` orients)::

    t in [0, 1] -> parameter, so that rate grows with t
        integer:  parameter = low + t (high - low) rounded, binary search on the integers
        float:    geometric interpolation when low > 0 (rates span decades), else linear;
                  the probe interpolates log(rate) within the bracket (clamped to its middle
                  80 %, so it never does worse than a 10/90 split) until the best rate
                  <= target is within ``float_rel_tol`` of it
    evaluate the lowest-rate end  -> above target: rule 2 or 3 decides, stop
    evaluate the highest-rate end -> at or below target: rule 1, stop
    bisect keeping  rate(a) <= target < rate(b)

Every encode is cached by parameter value within one call, so no parameter is encoded twice,
and the final choice applies the rule to *all* parameters tried (robust to small
non-monotonicities, which real encoders do have).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from openjai.errors import RateControlError
from openjai.eval.anchors.base import Codec, ParamRange, bits_per_pixel

#: JPEG AI CTTC target rates in bits per pixel.
CTTC_TARGETS: tuple[float, ...] = (0.03, 0.06, 0.12, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)


@dataclass(frozen=True)
class RatePoint:
    """Result of :func:`match_rate`.

    ``bytes`` is the coded stream itself (decode it with the same codec); ``bpp`` is computed by
    :func:`openjai.eval.anchors.base.bits_per_pixel` from its length. ``reached`` is False when
    even the lowest-rate parameter exceeds ``target * (1 + tolerance)``.
    """

    target: float
    param: float
    bytes: bytes
    bpp: float
    reached: bool

    @property
    def num_bytes(self) -> int:
        return len(self.bytes)


def _param_at(pr: ParamRange, t: float) -> float:
    """Parameter at position t in [0, 1] on the rate-increasing axis."""
    u = t if pr.increasing else 1.0 - t
    if pr.integer:
        return float(round(pr.low + u * (pr.high - pr.low)))
    if pr.low > 0:
        return float(pr.low * (pr.high / pr.low) ** u)
    return float(pr.low + u * (pr.high - pr.low))


def _interpolate(lo: float, r_lo: float, hi: float, r_hi: float, target: float) -> float:
    """Next probe in (lo, hi): log-rate interpolation, kept inside the middle 80 % of the bracket.

    Rates of image codecs are close to log-linear in their knob over short spans, so this
    usually lands within a few percent in 2–4 steps; the clamp keeps bisection's guarantee
    (the bracket shrinks by at least 10 % per step) when the curve is not.
    """
    width = hi - lo
    if r_lo > 0 and r_hi > r_lo:
        f = (math.log(target) - math.log(r_lo)) / (math.log(r_hi) - math.log(r_lo))
    else:
        f = 0.5
    return lo + width * min(0.9, max(0.1, f))


def choose(points: dict[float, tuple[bytes, float]], target: float, tolerance: float) -> tuple[float, bool]:
    """Apply the selection rule to {param: (data, bpp)}; returns (param, reached)."""
    if not points:
        raise RateControlError("no rate point to choose from")
    below = [(bpp, p) for p, (_, bpp) in points.items() if bpp <= target]
    if below:
        return max(below)[1], True
    limit = target * (1.0 + tolerance)
    near = [(bpp, p) for p, (_, bpp) in points.items() if bpp <= limit]
    if near:
        return min(near)[1], True
    return min((bpp, p) for p, (_, bpp) in points.items())[1], False


def match_rate(
    codec: Codec,
    img: np.ndarray,
    target_bpp: float,
    tolerance: float = 0.10,
    *,
    float_rel_tol: float = 0.01,
    param_rel_tol: float = 1e-3,
    max_encodes: int = 16,
) -> RatePoint:
    """Search ``codec.param_range`` for the point closest to ``target_bpp`` under the rule above.

    ``float_rel_tol``: for float parameters, stop once a rate in
    ``[target (1 - float_rel_tol), target]`` is found, or once the parameter bracket is narrower
    than ``param_rel_tol`` (relative; codecs with internal rate control such as JPEG 2000 have a
    step-like rate there). ``max_encodes`` bounds the number of
    distinct encodes (integer searches need at most ~2 + log2(range) ≤ 9 for QP/quality knobs).
    """
    if not (isinstance(target_bpp, (int, float)) and math.isfinite(target_bpp) and target_bpp > 0):
        raise RateControlError(f"target bpp must be a positive number, got {target_bpp!r}")
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise RateControlError(f"tolerance must be >= 0, got {tolerance!r}")
    if not isinstance(img, np.ndarray) or img.ndim != 3:
        raise RateControlError("match_rate takes an RGB uint8 (H, W, 3) array")
    pr = codec.param_range
    height, width = int(img.shape[0]), int(img.shape[1])
    cache: dict[float, tuple[bytes, float]] = {}

    def rate(t: float) -> float:
        p = _param_at(pr, t)
        if p not in cache:
            data = codec.encode(img, p)
            cache[p] = (data, bits_per_pixel(len(data), width, height))
        return cache[p][1]

    def result() -> RatePoint:
        p, reached = choose(cache, target_bpp, tolerance)
        data, bpp = cache[p]
        return RatePoint(target=float(target_bpp), param=p, bytes=data, bpp=bpp, reached=reached)

    # lowest-rate end: if it is already above the target, nothing lower exists
    if rate(0.0) > target_bpp:
        return result()
    # highest-rate end: if it is at or below the target, it is the best we can do
    if rate(1.0) <= target_bpp:
        return result()

    lo, hi = 0.0, 1.0  # invariant: rate(lo) <= target < rate(hi)
    if pr.integer:
        span = int(round(pr.high - pr.low))
        a, b = 0, span  # integer steps along the rate-increasing axis
        while b - a > 1 and len(cache) < max_encodes:
            m = (a + b) // 2
            if rate(m / span) <= target_bpp:
                a = m
            else:
                b = m
        return result()

    while len(cache) < max_encodes:
        best_below = max((bpp for _, bpp in cache.values() if bpp <= target_bpp), default=0.0)
        if best_below >= target_bpp * (1.0 - float_rel_tol):
            break
        p_lo, p_hi = _param_at(pr, lo), _param_at(pr, hi)
        if abs(p_hi - p_lo) <= param_rel_tol * max(abs(p_lo), abs(p_hi)):
            break  # the rate is a step function of the knob here: no finer point exists
        m = _interpolate(lo, rate(lo), hi, rate(hi), target_bpp)
        if m in (lo, hi):
            break
        if rate(m) <= target_bpp:
            lo = m
        else:
            hi = m
    return result()
