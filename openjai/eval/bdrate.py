"""Bjøntegaard delta rate (BD-rate) and delta quality (BD-quality) between two RD curves.

The one place where openjai computes the BD numbers it reports (report.py and the CLI call
these two functions, nothing else does the integral).

```
 quality                                   BD-rate: mean horizontal gap, in log10(rate),
   ^            anchor  ....o                        over the quality interval both curves
   |                 ..o'  /                         cover; reported as (10^gap - 1) * 100 %.
   |      test  ..o'   ..o'
   |          .o'  ..o'  <-- gap          BD-quality: mean vertical gap over the log10-rate
   |        o'  .o'                                   interval both curves cover.
   |          o'
   +------------------------> log10(rate)
```

Methods
-------
``"pchip"`` (default): piecewise cubic Hermite interpolation of log10(rate) as a function of
quality (Fritsch & Carlson 1980 / Fritsch & Butland 1984 slopes, the three-point shape-
preserving end slopes of Moler, *Numerical Computing with MATLAB*, ch. 3.4), integrated exactly
segment by segment over the overlapping quality interval. This is the scheme of the JCT-VC/JVET
common-test-condition Excel sheets (JCTVC-L1100, JVET-T2010; the ``bdRIntEnh``/``pchipend``
code also used by JPEG AI reporting) generalised to any number of points >= 2 (two points:
a straight line). References with the same arithmetic: Netflix VMAF ``BDrateCalculator``
("validated against JCTVC-E137") and the FAU ``bjontegaard`` package (Herglotz et al.), which
uses ``scipy.interpolate.PchipInterpolator``.

``"cubic"``: the original VCEG-M33 method (G. Bjøntegaard, "Calculation of average PSNR
differences between RD-curves", 2001): a least-squares 3rd-order polynomial per curve (exact
interpolation with 4 points), integrated over the overlap. Needs >= 4 points per curve. Kept for
comparison with older publications; it can oscillate and is not what JPEG AI reports.

Only numpy is used; the implementation is ours (cross-checked in the tests against the
``bjontegaard`` package and against published JCT-VC examples).

Input handling
--------------
* Each curve is a sequence of (rate, quality) points in any order; rates must be finite and
  > 0 (bpp, bytes, kbit/s: any unit, the same for both curves), qualities finite.
* Points are sorted by rate; exact duplicate points are merged.
* ``higher_is_better=False`` (e.g. NLPD) negates the quality before anything else, so the curve
  becomes increasing. ``bd_quality`` then negates its result back: it is always
  ``test - anchor`` in the metric's own unit (negative = test better for such a metric).
* A curve must be strictly increasing: more rate, strictly better quality. A curve that is not
  is not a function of quality and BD-rate is undefined for it. ``non_monotonic="error"``
  (default) raises :class:`BDRateError` naming the offending points; this is what the
  JCTVC-E137-validated VMAF calculator does, and what ``bjontegaard``/scipy do (PCHIP rejects
  non-increasing abscissae). The JVET Excel sheet computes a number anyway (it skips decreasing
  segments), which we do not reproduce. ``non_monotonic="pareto"`` instead keeps the Pareto
  front: a point is dropped when a point of the same curve with lower or equal rate has equal
  or better quality (:func:`pareto_front`).
* Only the interval covered by both curves is integrated (no extrapolation). No overlap raises
  :class:`BDRateError`; ``min_overlap`` (fraction of the union of both intervals, 0 by
  default; the ``bjontegaard`` package warns under 0.75) raises when the overlap is smaller.
* Every failure is a :class:`BDRateError` (an ``OpenJAIError``), never a bare ValueError.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from ..errors import OpenJAIError

__all__ = [
    "BDRateError",
    "Method",
    "NonMonotonic",
    "METHODS",
    "MIN_POINTS",
    "bd_rate",
    "bd_quality",
    "pareto_front",
]

Method = Literal["pchip", "cubic"]
NonMonotonic = Literal["error", "pareto"]

METHODS: tuple[str, ...] = ("pchip", "cubic")
#: Fewest distinct points per curve each method accepts.
MIN_POINTS: dict[str, int] = {"pchip": 2, "cubic": 4}


class BDRateError(OpenJAIError):
    """A Bjøntegaard delta cannot be computed for these curves (the message says why)."""


# --------------------------------------------------------------------------------------------
# Curve preparation


def _as_points(rate: Sequence[float] | np.ndarray, quality: Sequence[float] | np.ndarray,
               name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        r = np.asarray(rate, dtype=np.float64).reshape(-1)
        q = np.asarray(quality, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise BDRateError(f"{name}: rate and quality must be numbers ({exc})") from exc
    if r.shape != q.shape:
        raise BDRateError(f"{name}: {r.size} rates but {q.size} quality values")
    if not np.all(np.isfinite(r)) or not np.all(np.isfinite(q)):
        raise BDRateError(f"{name}: rates and qualities must be finite (got rate={r.tolist()}, "
                          f"quality={q.tolist()})")
    if np.any(r <= 0):
        raise BDRateError(f"{name}: rates must be > 0 (got {r.tolist()})")
    return r, q


def _sorted_unique(r: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort by rate (then quality) and merge exact duplicate points."""
    order = np.lexsort((q, r))
    r, q = r[order], q[order]
    if r.size > 1:
        keep = np.ones(r.size, dtype=bool)
        keep[1:] = (r[1:] != r[:-1]) | (q[1:] != q[:-1])
        r, q = r[keep], q[keep]
    return r, q


def pareto_front(rate: Sequence[float] | np.ndarray, quality: Sequence[float] | np.ndarray,
                 higher_is_better: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The points of a curve that no other point dominates, sorted by increasing rate.

    A point is dominated when another point has lower or equal rate and equal or better
    quality. The result is strictly increasing in rate and strictly improving in quality.
    Qualities are returned in their original sign.
    """
    r, q = _as_points(rate, quality, "curve")
    s = q if higher_is_better else -q
    # rate ascending; for equal rates, best quality first
    order = np.lexsort((-s, r))
    r, s = r[order], s[order]
    keep = np.zeros(r.size, dtype=bool)
    best = -np.inf
    for i in range(r.size):
        if s[i] > best:
            keep[i] = True
            best = s[i]
    r, s = r[keep], s[keep]
    return r, (s if higher_is_better else -s)


def _prepare(rate: Sequence[float] | np.ndarray, quality: Sequence[float] | np.ndarray, name: str,
             higher_is_better: bool, non_monotonic: str, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Validated curve as (log10 rate, quality with higher = better), both strictly increasing."""
    if non_monotonic not in ("error", "pareto"):
        raise BDRateError(f"non_monotonic must be 'error' or 'pareto', not {non_monotonic!r}")
    r, q = _as_points(rate, quality, name)
    s = q if higher_is_better else -q
    r, s = _sorted_unique(r, s)
    if r.size > 1:
        bad = np.flatnonzero((np.diff(r) <= 0) | (np.diff(s) <= 0))
        if bad.size:
            if non_monotonic == "error":
                sign = 1.0 if higher_is_better else -1.0
                pairs = "; ".join(
                    f"(rate {r[i]:.6g}, q {sign * s[i]:.6g}) -> (rate {r[i + 1]:.6g}, q {sign * s[i + 1]:.6g})"
                    for i in bad[:3])
                better = "higher" if higher_is_better else "lower"
                raise BDRateError(
                    f"{name}: curve is not monotonic (more rate must give strictly {better} quality): "
                    f"{pairs}; pass non_monotonic='pareto' to drop dominated points")
            r, s = pareto_front(r, s, higher_is_better=True)
    need = MIN_POINTS[method]
    if r.size < need:
        raise BDRateError(f"{name}: {r.size} distinct usable point(s), method {method!r} needs at least {need}")
    return np.log10(r), s


# --------------------------------------------------------------------------------------------
# Interpolation and exact integration


def _pchip_end_slope(h1: float, h2: float, d1: float, d2: float) -> float:
    """Shape-preserving three-point end slope (Moler, 'pchipend'; same as scipy and JVET)."""
    d = ((2.0 * h1 + h2) * d1 - h1 * d2) / (h1 + h2)
    if np.sign(d) != np.sign(d1):
        return 0.0
    if np.sign(d1) != np.sign(d2) and abs(d) > abs(3.0 * d1):
        return 3.0 * d1
    return float(d)


def _pchip_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    h = np.diff(x)
    delta = np.diff(y) / h
    n = x.size
    if n == 2:
        return np.array([delta[0], delta[0]])
    d = np.zeros(n)
    # interior: weighted harmonic mean of the neighbouring secants, 0 at local extrema
    w1 = 2.0 * h[1:] + h[:-1]
    w2 = h[1:] + 2.0 * h[:-1]
    same = (delta[:-1] * delta[1:]) > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        hm = (w1 + w2) / (w1 / delta[:-1] + w2 / delta[1:])
    d[1:-1] = np.where(same, hm, 0.0)
    d[0] = _pchip_end_slope(h[0], h[1], delta[0], delta[1])
    d[-1] = _pchip_end_slope(h[-1], h[-2], delta[-1], delta[-2])
    return d


def _integrate_pchip(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> float:
    """Exact integral over [lo, hi] (inside [x0, xn]) of the PCHIP interpolant of (x, y)."""
    h = np.diff(x)
    delta = np.diff(y) / h
    d = _pchip_slopes(x, y)
    # segment i: p(s) = y_i + d_i s + c_i s^2 + b_i s^3, s = x - x_i in [0, h_i]
    c = (3.0 * delta - 2.0 * d[:-1] - d[1:]) / h
    b = (d[:-1] - 2.0 * delta + d[1:]) / (h * h)
    s0 = np.clip(x[:-1], lo, hi) - x[:-1]
    s1 = np.clip(x[1:], lo, hi) - x[:-1]

    def prim(s: np.ndarray) -> np.ndarray:
        return s * (y[:-1] + s * (d[:-1] / 2.0 + s * (c / 3.0 + s * (b / 4.0))))

    return float(np.sum(prim(s1) - prim(s0)))


def _integrate_cubic(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> float:
    """Integral over [lo, hi] of the least-squares cubic through (x, y) (VCEG-M33)."""
    # Centre and scale the abscissa for conditioning; mathematically the same fit.
    m = float(np.mean(x))
    sc = float(np.max(np.abs(x - m)))
    p = np.polyfit((x - m) / sc, y, 3)
    pi = np.polyint(p)
    return float(sc * (np.polyval(pi, (hi - m) / sc) - np.polyval(pi, (lo - m) / sc)))


def _mean_gap(xa: np.ndarray, ya: np.ndarray, xt: np.ndarray, yt: np.ndarray, method: str,
              min_overlap: float, axis: str) -> float:
    """Mean of (test - anchor) over the common abscissa interval."""
    lo = max(xa[0], xt[0])
    hi = min(xa[-1], xt[-1])
    if not hi > lo:
        raise BDRateError(
            f"curves do not overlap in {axis}: anchor [{xa[0]:.6g}, {xa[-1]:.6g}], "
            f"test [{xt[0]:.6g}, {xt[-1]:.6g}]")
    union = max(xa[-1], xt[-1]) - min(xa[0], xt[0])
    overlap = (hi - lo) / union
    if overlap < min_overlap:
        raise BDRateError(f"curves overlap on {overlap:.1%} of their {axis} range, "
                          f"less than min_overlap={min_overlap:.1%}")
    integrate = _integrate_pchip if method == "pchip" else _integrate_cubic
    return (integrate(xt, yt, lo, hi) - integrate(xa, ya, lo, hi)) / (hi - lo)


def _check_method(method: str, min_overlap: float) -> None:
    if method not in METHODS:
        raise BDRateError(f"unknown BD method {method!r}; use one of {', '.join(METHODS)}")
    if not 0.0 <= min_overlap <= 1.0:
        raise BDRateError(f"min_overlap must be in [0, 1], not {min_overlap}")


# --------------------------------------------------------------------------------------------
# Public API


def bd_rate(rate_anchor: Sequence[float] | np.ndarray, q_anchor: Sequence[float] | np.ndarray,
            rate_test: Sequence[float] | np.ndarray, q_test: Sequence[float] | np.ndarray,
            method: Method = "pchip", *, higher_is_better: bool = True,
            non_monotonic: NonMonotonic = "error", min_overlap: float = 0.0) -> float:
    """Average rate difference of test against anchor at equal quality, in percent.

    Negative means the test codec needs fewer bits (e.g. -20.0: 20 % less rate on average
    over the common quality interval). log10(rate) is interpolated as a function of quality
    and integrated over the quality interval both curves cover; the mean log-rate gap ``g``
    is reported as ``(10**g - 1) * 100``. See the module docstring for input handling.

    Raises:
        BDRateError: bad input, too few points, non-monotonic curve (with
            ``non_monotonic="error"``), or no (or too little) overlap.
    """
    _check_method(method, min_overlap)
    la, qa = _prepare(rate_anchor, q_anchor, "anchor", higher_is_better, non_monotonic, method)
    lt, qt = _prepare(rate_test, q_test, "test", higher_is_better, non_monotonic, method)
    gap = _mean_gap(qa, la, qt, lt, method, min_overlap, "quality")
    return float((10.0 ** gap - 1.0) * 100.0)


def bd_quality(rate_anchor: Sequence[float] | np.ndarray, q_anchor: Sequence[float] | np.ndarray,
               rate_test: Sequence[float] | np.ndarray, q_test: Sequence[float] | np.ndarray,
               method: Method = "pchip", *, higher_is_better: bool = True,
               non_monotonic: NonMonotonic = "error", min_overlap: float = 0.0) -> float:
    """Average quality difference (test - anchor) at equal rate, in the metric's unit.

    BD-PSNR when the quality is PSNR (dB). Quality is interpolated as a function of
    log10(rate) and integrated over the log-rate interval both curves cover. For a metric
    where lower is better (``higher_is_better=False``) the value is still test - anchor, so
    a negative value means the test codec is better.

    Raises:
        BDRateError: as :func:`bd_rate`, with the overlap taken on the rate axis.
    """
    _check_method(method, min_overlap)
    la, qa = _prepare(rate_anchor, q_anchor, "anchor", higher_is_better, non_monotonic, method)
    lt, qt = _prepare(rate_test, q_test, "test", higher_is_better, non_monotonic, method)
    gap = _mean_gap(la, qa, lt, qt, method, min_overlap, "log10(rate)")
    return float(gap if higher_is_better else -gap)
