"""Rate control: find the encoder's rate whose *actual coded size* meets a bpp target.

The rate is the model's rate parameter β up to its top point, and beyond it, with the
residual layer, finer residual steps (``Encoder.top_rate``). Coding a stream costs the
synthesis and the layers' fits, so the search codes few: it predicts the latent's size from
the ideal code length of its symbols (``Encoder.latent_bpp``: the hyper networks and the
context, no synthesis), scales the prediction by what the streams coded so far measured (the
layers' share), codes the rate predicted to land in the middle of
[target·(1 − UNDERSHOOT), target], and stops as soon as a stream lands there (on val, 1–3
streams per search, where a plain bracketing search coded 5–7). Above the latent's top point
only the layers grow; there the search steps on the log of their share. Every decision rests
on coded sizes: the search returns the largest-rate stream found that is not above the
target; a target below the model's lowest rate is accepted up to +10 %
(the CTTC allowance; there the optional layers — filter, residual, lattice — are left out
when their bytes are what exceeds it) and refused beyond that.

For an image that was a JPEG (the encoder found its lattice, codec/lattice.py) the split of
bits between the learned codec and the lattice corrections is a choice the λ ladder does not
settle: how much the learned codec buys per bit varies from image to image. The search then
runs once per lattice weight (``Encoder.lattice_weights``) and, among the streams that meet
the target, keeps the first unless another is better in the model's own distortion (its
training distortion, ``Encoder.distortion``) without being worse in any of its parts: a
choice between streams of about the same size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..bpp import bits_per_pixel
from ..errors import RateControlError
from .coder import Encoder

OVERSHOOT = 0.10  # CTTC: a coded point may exceed its target by at most 10 %
UNDERSHOOT = 0.03  # stop searching when this close below the target
MAX_ITERATIONS = 16
#: cheap size predictions (Encoder.latent_bpp) per predicted rate, and how close (|log| of the
#: predicted / aimed size) one must come to end them
PREDICTIONS = 4
PREDICTION_TOLERANCE = 0.003
#: d log(layers' bpp) / d rate that the first step above the latent's top point assumes (measured
#: on val dpst_in2, base: 2.1 per unit from rate 7 to 8.8, 0.9 from 8.8 to 11)
EXTENSION_SLOPE = 1.5
#: a bracket this narrow (rate units) ends the search: the size may jump across it where a layer
#: switches on or off (measured on val dpst_in2 at lattice weight 16: 0.234 ↔ 0.257 bpp within
#: 3e-4), and where it does not, the window of UNDERSHOOT is ~30× wider than its step
RATE_RESOLUTION = 1e-3
#: ... and so does a bracket across which log(bpp) rises faster than this per rate unit (a jump:
#: the latent's size rises ~0.3–0.5 per unit, the residual extension's ~1–2)
JUMP = 10.0
MARGIN = 0.02  # share of a coded bracket next to its ends that the next rate keeps out of


@dataclass(frozen=True)
class RateResult:
    data: bytes
    rate: float
    bpp: float
    iterations: int  # streams coded, all searches together
    lattice_weight: float = 1.0  # the chosen stream's (Encoder.code's lattice_weight)


def quality_to_rate(quality: float, top_rate: float) -> float:
    """--quality 0..100 maps linearly onto the encoder's rate range [0, top_rate]."""
    if not 0 <= quality <= 100 or math.isnan(quality):
        raise RateControlError(f"quality must be between 0 and 100, got {quality}")
    return quality / 100.0 * top_rate


def match_bpp(enc: Encoder, target: float) -> RateResult:
    """Stream of the largest rate ≤ target (or ≤ target·1.1 at the bottom of the range). Where
    the encoder has several lattice weights (an image that was a JPEG), each gets its own
    search and :func:`preferred_stream` chooses among their streams."""
    found = [search_rate(enc, target, w) for w in enc.lattice_weights]
    best = found[preferred_stream(enc, [r.data for r in found])]
    return RateResult(best.data, best.rate, best.bpp, sum(r.iterations for r in found), best.lattice_weight)


def preferred_stream(enc: Encoder, streams: list[bytes]) -> int:
    """Index of the stream to keep: the first, unless another is no worse in every part of the
    model's distortion (``Encoder.distortion``) and better in their sum. A stream that buys one
    part with the other (pixel error with MS-SSIM) does not replace the first: measured, on a
    val photo at 1.5 bpp the lower sum came with PSNR-Y +1.1 dB, MS-SSIM −0.005, VMAF −10."""
    if len(set(streams)) == 1:
        return 0
    parts: dict[bytes, tuple[float, ...]] = {}
    for data in streams:
        if data not in parts:
            parts[data] = enc.distortion(data)
    best = 0
    for i, data in enumerate(streams):
        mine, theirs = parts[data], parts[streams[best]]
        if all(a <= b for a, b in zip(mine, theirs)) and sum(mine) < sum(theirs):
            best = i
    return best


def search_rate(enc: Encoder, target: float, lattice_weight: float = 1.0) -> RateResult:
    """The rate search of :func:`match_bpp` for one lattice weight.

    Each coded stream costs the synthesis and the layers' fits; the latent's size alone is
    cheap to predict (``Encoder.latent_bpp``). So every next rate is where the prediction,
    scaled by the coded / predicted size of the coded streams (the layers' share, interpolated
    in rate), meets the middle of the accepted window: :func:`_predicted_rate`. The coded streams
    keep the bracket, and the result is always a coded stream's real size."""
    if not target > 0 or math.isinf(target):
        raise RateControlError(f"target bpp must be a positive number, got {target}")
    top, latent_top = enc.top_rate, float(enc.lc.model.cfg.levels - 1)
    coded: dict[float, float] = {}  # rate → coded bpp (with the layers)
    calls = 0

    def bpp_at(rate: float, layers: bool = True) -> tuple[float, bytes]:
        nonlocal calls
        calls += 1
        data = enc.code(rate, layers, lattice_weight)
        bpp = bits_per_pixel(len(data), enc.width, enc.height)
        if layers:
            coded[rate] = bpp
        return bpp, data

    def result(rate: float, bpp: float, data: bytes) -> RateResult:
        return RateResult(data, rate, bpp, calls, lattice_weight)

    aim = target * (1 - UNDERSHOOT / 2)
    lo, hi = 0.0, float(top)  # rates known to be below / above the target once coded
    best: tuple[float, float, bytes] | None = None
    while calls < MAX_ITERATIONS:
        rate = _predicted_rate(enc, aim, coded, lo, hi, latent_top)
        if rate is None:  # the latent alone cannot reach: search the residual's extension
            rate = _extension_rate(enc, coded, aim, lo, hi, latent_top)
        if best is None and rate <= lo + 1e-4:
            rate = lo  # the bottom of the range: rate 0 exactly
        elif lo in coded and hi in coded:  # keep clear of the ends, where regula falsi crawls
            rate = min(max(rate, lo + MARGIN * (hi - lo)), hi - MARGIN * (hi - lo))
        r, d = bpp_at(rate)
        if r <= target:
            if best is None or r > best[1]:
                best = (rate, r, d)
            lo = rate
            if r >= target * (1 - UNDERSHOOT) or rate >= top:
                break
        else:
            if rate == 0.0:
                return _bottom(enc, target, r, d, bpp_at, result)
            hi = rate
        if hi - lo < RATE_RESOLUTION or (
            lo in coded and hi in coded and math.log(coded[hi] / coded[lo]) > JUMP * (hi - lo)
        ):
            break
    if best is None:  # every stream was above the target: the smallest one there is
        return _bottom(enc, target, *bpp_at(0.0), bpp_at, result)
    return result(*best)


def _bottom(enc: Encoder, target: float, bpp: float, data: bytes, bpp_at, result) -> RateResult:
    """The stream at rate 0 (``bpp``, ``data``) where it is within the CTTC allowance, else rate
    0 without the layers' bytes where that is; RateControlError when nothing fits."""
    if bpp > target * (1 + OVERSHOOT):
        bpp, data = bpp_at(0.0, layers=False)
    if bpp <= target * (1 + OVERSHOOT):
        return result(0.0, bpp, data)
    raise RateControlError(f"target {target} bpp is below this model's lowest rate for this image ({bpp:.4f} bpp)")


def _scale(coded: dict[float, float], enc: Encoder, rate: float) -> float:
    """Coded / predicted size at ``rate``: linear in rate between the coded streams around it,
    that of the nearest one outside them, 1 before any stream is coded."""
    points = sorted((r, b / enc.latent_bpp(r)) for r, b in coded.items())
    if not points:
        return 1.0
    rates = [p[0] for p in points]
    return float(np.interp(rate, rates, [p[1] for p in points]))


def _predicted_rate(
    enc: Encoder, aim: float, coded: dict[float, float], lo: float, hi: float, latent_top: float
) -> float | None:
    """Rate in [lo, min(hi, latent_top)] whose predicted size (``Encoder.latent_bpp`` × ``_scale``)
    is ``aim``: secant steps on log size, a few predictions only; ``lo`` when even that rate is
    predicted above ``aim``; None when the latent's top rate is predicted below it."""
    right = min(hi, latent_top)

    def f(rate: float) -> float:
        return math.log(enc.latent_bpp(rate) * _scale(coded, enc, rate)) - math.log(aim)

    a, b = lo, right
    fa, fb = f(a), f(b)
    if fa >= 0:
        return lo
    if fb < 0:
        return None if right >= latent_top else right
    for _ in range(PREDICTIONS):
        rate = b - fb * (b - a) / (fb - fa)
        fr = f(rate)
        if abs(fr) < PREDICTION_TOLERANCE:
            return rate
        if fr < 0:
            a, fa = rate, fr
        else:
            b, fb = rate, fr
    return a - fa * (b - a) / (fb - fa)


def _extension_rate(
    enc: Encoder, coded: dict[float, float], aim: float, lo: float, hi: float, latent_top: float
) -> float:
    """Next rate above the latent's top point, where only the layers grow: the latent's top rate
    first, then secant steps through the last two streams coded there on the log of the layers'
    share (coded bpp − the latent's), which grows about linearly with rate; from one stream,
    EXTENSION_SLOPE. Kept inside the bracket (lo, hi)."""
    if lo < latent_top or lo not in coded:
        return latent_top
    base = enc.latent_bpp(latent_top)

    def g(bpp: float) -> float:
        return math.log(max(bpp - base, 1e-9))

    (r1, b1), *rest = [(r, b) for r, b in reversed(coded.items()) if r >= latent_top]
    slope = EXTENSION_SLOPE
    if rest and rest[0][0] != r1 and g(b1) != g(rest[0][1]):
        slope = (g(b1) - g(rest[0][1])) / (r1 - rest[0][0])
    rate = r1 + (g(aim) - g(b1)) / slope if slope > 0 else 0.5 * (lo + hi)
    return min(max(rate, lo), hi)
