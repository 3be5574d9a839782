"""Tests of openjai.eval.bdrate against published numbers and a second implementation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from openjai.errors import OpenJAIError
from openjai.eval.bdrate import BDRateError, bd_quality, bd_rate, pareto_front

# --- Published reference values -------------------------------------------------------------
# JCT-VC HM data (rate in kbit/s, PSNR in dB) with the BD-rates of the Netflix VMAF
# BDrateCalculator, whose PCHIP implementation is "validated against JCTVC-E137":
# github.com/Netflix/vmaf, python/test/bd_rate_calculator_test.py, class
# BDrateCalculatorJCTVCTest (values there are fractions; here in percent).
JCTVC_CASES = [
    (
        [108048.8736, 61279.976, 33905.6656, 18883.6928], [43.6471, 40.3953, 37.247, 34.2911],
        [108061.2784, 61299.9936, 33928.7472, 18910.912], [43.6768, 40.4232, 37.2761, 34.3147],
        -0.00465215420752807 * 100,
    ),
    (
        [40433.8848, 7622.7456, 2394.488, 1017.6184], [37.5761, 35.3756, 33.8977, 32.0603],
        [40370.12, 7587.0024, 2390.0944, 1017.0984], [37.5982, 35.4025, 33.9194, 32.0822],
        -0.018779823450567612 * 100,
    ),
]

# x265 preset example of the FAU `bjontegaard` package README / example_usage.py
# (github.com/FAU-LMS/bjontegaard); the README prints no value, so the package itself
# (bjontegaard==1.3.0) gives the reference below.
FAU_ANCHOR = ([9487.76, 4593.60, 2486.44, 1358.24], [40.037, 38.615, 36.845, 34.851])
FAU_TEST = ([9787.80, 4469.00, 2451.52, 1356.24], [40.121, 38.651, 36.970, 34.987])


@pytest.mark.parametrize("ra, qa, rt, qt, expected", JCTVC_CASES)
def test_jctvc_published_values(ra, qa, rt, qt, expected):
    # VMAF's own test asserts 4 decimals of the fraction; our arithmetic is the same PCHIP.
    assert bd_rate(ra, qa, rt, qt, "pchip") == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_fau_example_values():
    # Values from bjontegaard==1.3.0 (bd_rate / bd_psnr, min_overlap=0) on the README data.
    assert bd_rate(*FAU_ANCHOR, *FAU_TEST, "pchip") == pytest.approx(-4.417485350589045, rel=1e-9)
    assert bd_quality(*FAU_ANCHOR, *FAU_TEST, "pchip") == pytest.approx(0.11969278542479489, rel=1e-9)
    assert bd_rate(*FAU_ANCHOR, *FAU_TEST, "cubic") == pytest.approx(-4.420462706125383, rel=1e-8)
    assert bd_quality(*FAU_ANCHOR, *FAU_TEST, "cubic") == pytest.approx(0.12040941911451103, rel=1e-8)


# --- Second implementation on random, plausible curves ----------------------------------------


def _random_curve(rng: np.random.Generator, n: int, rate_scale: float, offset: float):
    bpp = np.sort(np.exp(rng.uniform(np.log(0.04), np.log(1.0), n)))
    # concave, increasing PSNR-like curve in log rate
    lr = np.log(bpp)
    q = offset + 6.0 * lr - 0.25 * (lr + 3.0) ** 2 * rng.uniform(0.3, 1.0) + 45.0
    order = rng.permutation(n)  # unsorted input on purpose
    return (bpp * rate_scale)[order], q[order]


@pytest.mark.parametrize("method", ["pchip", "cubic"])
def test_against_bjontegaard_package(method):
    bd = pytest.importorskip("bjontegaard")
    rng = np.random.default_rng(2024)
    for _ in range(25):
        n = int(rng.integers(4, 8))
        ra, qa = _random_curve(rng, n, 1.0, 0.0)
        rt, qt = _random_curve(rng, n, float(rng.uniform(0.6, 1.3)), float(rng.uniform(-1.0, 1.0)))
        sa, st = np.argsort(ra), np.argsort(rt)  # the package wants sorted points
        args = (ra[sa], qa[sa], rt[st], qt[st])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ref_rate = bd.bd_rate(*args, method=method, min_overlap=0)
                ref_q = bd.bd_psnr(*args, method=method, min_overlap=0)
            except ValueError:
                continue
        if np.isfinite(ref_rate):
            assert bd_rate(ra, qa, rt, qt, method) == pytest.approx(ref_rate, rel=1e-3, abs=1e-9)
        if np.isfinite(ref_q):
            assert bd_quality(ra, qa, rt, qt, method) == pytest.approx(ref_q, rel=1e-3, abs=1e-9)


# --- Exact properties --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["pchip", "cubic"])
def test_identical_curves_give_zero(method):
    assert bd_rate(*FAU_ANCHOR, *FAU_ANCHOR, method) == pytest.approx(0.0, abs=1e-12)
    assert bd_quality(*FAU_ANCHOR, *FAU_ANCHOR, method) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("method", ["pchip", "cubic"])
@pytest.mark.parametrize("factor, expected", [(0.5, -50.0), (0.8, -20.0), (2.0, 100.0)])
def test_constant_rate_factor(method, factor, expected):
    rate, q = np.array(FAU_ANCHOR[0]), np.array(FAU_ANCHOR[1])
    assert bd_rate(rate, q, rate * factor, q, method) == pytest.approx(expected, abs=1e-9)


def test_constant_quality_offset_gives_bd_quality():
    rate, q = np.array(FAU_ANCHOR[0]), np.array(FAU_ANCHOR[1])
    assert bd_quality(rate, q, rate, q + 0.7) == pytest.approx(0.7, abs=1e-12)
    assert bd_quality(rate, q, rate, q + 0.7, "cubic") == pytest.approx(0.7, abs=1e-9)


def test_two_points_pchip_is_linear():
    # log10 rate linear in quality: gap is exactly log10(0.5) everywhere
    assert bd_rate([1, 10], [30, 40], [0.5, 5], [30, 40]) == pytest.approx(-50.0, abs=1e-12)


def test_lower_is_better_metric():
    rate = np.array([0.1, 0.2, 0.4, 0.8])
    nlpd = np.array([0.40, 0.30, 0.22, 0.15])  # decreasing with rate: lower is better
    assert bd_rate(rate, nlpd, rate * 0.8, nlpd, higher_is_better=False) == pytest.approx(-20.0, abs=1e-9)
    # identical to feeding the negated metric as a higher-is-better one
    rt, qt = rate * np.array([0.9, 0.85, 0.8, 0.82]), nlpd - 0.01
    assert bd_rate(rate, nlpd, rt, qt, higher_is_better=False) == pytest.approx(bd_rate(rate, -nlpd, rt, -qt))
    # bd_quality stays test - anchor in NLPD units (negative = test better)
    assert bd_quality(rate, nlpd, rate, nlpd - 0.02, higher_is_better=False) == pytest.approx(-0.02, abs=1e-12)
    # without the flag the curve is decreasing and refused
    with pytest.raises(BDRateError, match="not monotonic"):
        bd_rate(rate, nlpd, rate, nlpd)


def test_order_and_duplicates_do_not_matter():
    ra, qa = FAU_ANCHOR
    ref = bd_rate(ra, qa, *FAU_TEST)
    ra2 = [ra[2], ra[0], ra[3], ra[1], ra[0]]
    qa2 = [qa[2], qa[0], qa[3], qa[1], qa[0]]
    assert bd_rate(ra2, qa2, *FAU_TEST) == pytest.approx(ref, rel=1e-12)


def test_non_monotonic_error_and_pareto():
    rate = [0.1, 0.2, 0.4, 0.8, 1.0]
    q = [30.0, 32.0, 34.0, 36.0, 35.5]  # last point: more rate, lower quality
    with pytest.raises(BDRateError, match="not monotonic"):
        bd_rate(rate, q, rate, q)
    r, qq = pareto_front(rate, q)
    assert r.tolist() == [0.1, 0.2, 0.4, 0.8] and qq.tolist() == [30.0, 32.0, 34.0, 36.0]
    clean = bd_rate(r, qq, np.array(r) * 0.5, qq)
    assert bd_rate(rate, q, np.array(r) * 0.5, qq, non_monotonic="pareto") == pytest.approx(clean)
    # equal rate, different quality: refused, or best kept
    with pytest.raises(BDRateError):
        bd_rate([0.1, 0.1, 0.4], [30, 31, 34], [0.1, 0.2, 0.4], [30, 32, 34])
    r, qq = pareto_front([0.1, 0.1, 0.4], [30, 31, 34])
    assert r.tolist() == [0.1, 0.4] and qq.tolist() == [31, 34]
    r, qq = pareto_front([0.1, 0.2, 0.4], [0.5, 0.5, 0.3], higher_is_better=False)
    assert r.tolist() == [0.1, 0.4] and qq.tolist() == [0.5, 0.3]


def test_insufficient_overlap_and_points():
    with pytest.raises(BDRateError, match="do not overlap"):
        bd_rate([1, 2, 4, 8], [30, 31, 32, 33], [1, 2, 4, 8], [34, 35, 36, 37])
    with pytest.raises(BDRateError, match="do not overlap"):
        bd_quality([1, 2, 4, 8], [30, 31, 32, 33], [16, 32, 64, 128], [30, 31, 32, 33])
    with pytest.raises(BDRateError, match="do not overlap"):  # touching at one point only
        bd_rate([1, 2], [30, 31], [1, 2], [31, 32])
    with pytest.raises(BDRateError, match="min_overlap"):
        bd_rate([1, 2, 4, 8], [30, 31, 32, 33], [1, 2, 4, 8], [32.5, 33.5, 34.5, 35.5], min_overlap=0.75)
    with pytest.raises(BDRateError, match="needs at least 2"):
        bd_rate([1], [30], [1, 2], [30, 31])
    with pytest.raises(BDRateError, match="needs at least 4"):
        bd_rate([1, 2, 4], [30, 31, 32], [1, 2, 4, 8], [30, 31, 32, 33], "cubic")
    with pytest.raises(BDRateError, match="needs at least 4"):  # duplicates do not count twice
        bd_rate([1, 2, 4, 4], [30, 31, 32, 32], [1, 2, 4, 8], [30, 31, 32, 33], "cubic")


def test_bad_input_raises_openjai_error():
    good = ([1, 2, 4, 8], [30, 31, 32, 33])
    for bad in [([0, 2, 4, 8], [30, 31, 32, 33]), ([1, 2, 4, 8], [30, np.nan, 32, 33]),
                ([1, 2, 4], [30, 31, 32, 33]), (["a", 2, 4, 8], [30, 31, 32, 33])]:
        with pytest.raises(BDRateError):
            bd_rate(*bad, *good)
    with pytest.raises(OpenJAIError, match="unknown BD method"):
        bd_rate(*good, *good, method="akima")  # type: ignore[arg-type]
    with pytest.raises(OpenJAIError, match="non_monotonic"):
        bd_rate(*good, *good, non_monotonic="ignore")  # type: ignore[arg-type]
    assert issubclass(BDRateError, OpenJAIError) and not issubclass(BDRateError, ValueError)
