"""Adaptive filter in row strips (openjai/codec/adaptive_filter.py, openjai/codec/strips.py):
many strips give bit for bit what one strip (the whole image) gives."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import uniform_filter

from openjai.codec import adaptive_filter as af
from openjai.codec import strips
from openjai.codec.residual import residual_steps
from openjai.eval.complexity import photo

STEPS = residual_steps(0.01, grey=False)


def _degraded(img: np.ndarray, seed: int) -> np.ndarray:
    """A stand-in for a decoded image: blurred, noisy, with a colour bias."""
    rng = np.random.default_rng(seed)
    x = uniform_filter(img.astype(np.float64), size=(3, 3, 1)) + rng.normal(0, 3, img.shape) + [4, -2, 1]
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def _small_strips(monkeypatch: pytest.MonkeyPatch, rows: int) -> None:
    """Make the filter cut every image into strips of about ``rows`` rows (at least its alignment)."""
    monkeypatch.setattr(af, "row_strips", lambda h, w, align=1: strips.row_strips(h, w, align, pixels=rows * w))


def _assert_same(p: af.FilterParams | None, q: af.FilterParams | None) -> None:
    assert p is not None and q is not None
    assert (p.activity_classes, p.directions, p.thresholds) == (q.activity_classes, q.directions, q.thresholds)
    assert np.array_equal(p.luma, q.luma)
    assert (p.chroma is None) == (q.chroma is None) and (p.chroma is None or np.array_equal(p.chroma, q.chroma))


@pytest.mark.parametrize("height, width", [(700, 90), (90, 700), (300, 700)])
def test_strips_give_the_whole_image_result(monkeypatch, height, width):
    original = photo(width, height)
    decoded = _degraded(original, height)
    params = af.fit_filter(original, decoded, STEPS)
    filtered = af.apply_filter(params, decoded)
    assert len(strips.row_strips(height, width, af.ROWS_PER_CHUNK)) == 1  # the reference is one strip
    _small_strips(monkeypatch, 5)  # fit_filter's strips: ROWS_PER_CHUNK rows; apply_filter's: 5
    assert len(af.row_strips(height, width)) > 1
    _assert_same(af.fit_filter(original, decoded, STEPS), params)
    assert np.array_equal(af.apply_filter(params, decoded), filtered)


@pytest.mark.parametrize("rows", [1, 2, 3, 7])
def test_strips_thinner_than_the_halo(monkeypatch, rows):
    decoded = _degraded(photo(40, 30), 0)
    rng = np.random.default_rng(rows)
    params = af.FilterParams(5, True, (200, 400, 800, 1600), rng.integers(-300, 301, (15, af.LUMA_PARAMS)),
                             rng.integers(-300, 301, (2, af.CHROMA_PARAMS)))
    filtered = af.apply_filter(params, decoded)
    _small_strips(monkeypatch, rows)
    assert np.array_equal(af.apply_filter(params, decoded), filtered)


def test_activity_reaches_its_bound():
    # a 2-pixel checkerboard: every luma gradient is 255, so the histogram's size is needed in full
    r, c = np.indices((20, 24))
    img = np.repeat((255 * ((r // 2 + c // 2) % 2)).astype(np.uint8)[..., None], 3, axis=2)
    activity, _ = af.activity_and_direction(img)
    assert activity.max() == af.MAX_ACTIVITY
    af.fit_filter(img, img, STEPS)  # the histogram holds it


@pytest.mark.parametrize("n, top", [(1, 0), (2, 5), (39, 3), (40, 100), (1000, 7), (12345, 12750), (100003, 40)])
def test_quantiles_from_the_histogram_are_numpys(n, top):
    rng = np.random.default_rng(n)
    values = rng.integers(0, top + 1, n)  # many ties when top is small
    q = np.concatenate([np.arange(1, af.FINE_BINS) / af.FINE_BINS, [0.0, 1.0], rng.random(20)])
    counts = np.bincount(values, minlength=af.MAX_ACTIVITY + 1)
    expected = np.quantile(values, q, method="lower").astype(np.int64)
    assert np.array_equal(af._quantiles_lower(counts, q), expected)
