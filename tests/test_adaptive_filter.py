"""Adaptive filter (openjai/codec/adaptive_filter.py): section format, fit, and the codec path."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import psnr
from scipy.ndimage import uniform_filter

import openjai
from openjai.codec import adaptive_filter as af
from openjai.codec import container
from openjai.codec.coder import Encoder
from openjai.codec.container import ColourMode, Section
from openjai.codec.residual import residual_steps
from openjai.errors import BitstreamError, RateControlError

STEPS = residual_steps(0.01, grey=False)  # a mid-rate slope: Δ_Y = 35 levels


def _params(rng: np.random.Generator, a: int, directions: bool, chroma: bool, scale: int) -> af.FilterParams:
    classes = a * (af.DIRECTIONS if directions else 1)
    return af.FilterParams(
        a, directions, tuple(sorted(int(v) for v in rng.integers(0, 1 << 16, a - 1))),
        rng.integers(-scale, scale + 1, (classes, af.LUMA_PARAMS)),
        rng.integers(-scale, scale + 1, (2, af.CHROMA_PARAMS)) if chroma else None,
    )


@pytest.mark.parametrize("a, directions, chroma, scale",
                         [(1, False, False, 0), (1, False, True, 3), (4, True, True, 300), (8, True, False, af.COEF_LIMIT)])
def test_section_round_trips(a, directions, chroma, scale):
    p = _params(np.random.default_rng(a), a, directions, chroma, scale)
    q = af.FilterParams.unpack(p.pack())
    assert p.packed_size() == len(p.pack())
    assert (q.activity_classes, q.directions, q.thresholds) == (p.activity_classes, p.directions, p.thresholds)
    assert np.array_equal(q.luma, p.luma)
    assert (q.chroma is None) == (p.chroma is None) and (p.chroma is None or np.array_equal(q.chroma, p.chroma))


def test_malformed_sections_refused():
    p = _params(np.random.default_rng(0), 4, True, True, 50)
    data = p.pack()
    for bad, message in [
        (data[:-2], "truncated"),
        (data + b"\0", "after its coefficients"),
        (b"", "truncated"),
        (b"\x00" * 64, "too long"),  # one class, then an endless run of zeros
    ]:
        with pytest.raises(BitstreamError, match=message):
            af.FilterParams.unpack(bad)
    decreasing = af.FilterParams(3, False, (900, 100), p.luma[:3], None).pack()
    with pytest.raises(BitstreamError, match="increasing"):
        af.FilterParams.unpack(decreasing)
    beyond = af.FilterParams(1, False, (), np.full((1, af.LUMA_PARAMS), af.COEF_LIMIT + 1), None).pack()
    with pytest.raises(BitstreamError, match="beyond"):
        af.FilterParams.unpack(beyond)


def test_classes_follow_integer_luma_gradients():
    img = np.zeros((40, 40, 3), np.uint8)
    img[:, 20:] = 200  # a vertical edge: gradients across, horizontal
    activity, direction = af.activity_and_direction(img)
    assert activity.dtype.kind == "i" and activity[:, :15].max() == 0 and direction[:, :15].max() == 0
    assert activity[:, 19:21].min() > 0 and (direction[:, 19:21] == 2).all()
    activity_t, direction_t = af.activity_and_direction(np.ascontiguousarray(img.transpose(1, 0, 2)))
    assert np.array_equal(activity_t, activity.T) and (direction_t[19:21] == 1).all()


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (41, 29)])
def test_activity_is_the_direct_box_sum(shape):
    """Activity and direction against a direct int64 sum over sliding windows, on noise
    (saturated extremes included: the 16-bit arithmetic must not overflow)."""
    rng = np.random.default_rng(shape[0])
    img = rng.choice(np.array([0, 1, 128, 254, 255], np.uint8), (*shape, 3))
    c = img.astype(np.int64)
    y = np.pad((54 * c[..., 0] + 183 * c[..., 1] + 19 * c[..., 2] + 128) >> 8, 1, mode="edge")
    r = af.ACTIVITY_WINDOW // 2

    def box(g):
        return np.lib.stride_tricks.sliding_window_view(np.pad(g, r, mode="edge"), (2 * r + 1,) * 2).sum((-1, -2))

    v, h = box(np.abs(y[2:, 1:-1] - y[:-2, 1:-1])), box(np.abs(y[1:-1, 2:] - y[1:-1, :-2]))
    activity, direction = af.activity_and_direction(img)
    assert np.array_equal(activity, v + h)
    assert np.array_equal(direction, np.where(v > 2 * h, 1, np.where(h > 2 * v, 2, 0)))


def test_bin_index_is_the_search():
    rng = np.random.default_rng(3)
    activity = rng.integers(0, af.MAX_ACTIVITY + 1, (30, 40)).astype(np.int32)
    for thresholds in ((), (0,), (5, 5, 900), tuple(sorted(rng.integers(0, af.MAX_ACTIVITY + 1, 39)))):
        expected = np.searchsorted(np.asarray(thresholds, dtype=np.int64), activity, side="right")
        assert np.array_equal(af._bin_index(thresholds, activity), expected)


def _smooth_image(seed: int, shape=(96, 128)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = uniform_filter(rng.uniform(0, 255, (*shape, 3)), (9, 9, 1))
    return np.clip((x - x.mean()) * 4 + 128, 0, 255).round().astype(np.uint8)


def test_fit_removes_a_colour_bias_and_a_blur():
    original = _smooth_image(1)
    biased = np.clip(original.astype(int) + [6, -4, 3], 0, 255).astype(np.uint8)
    blurred = uniform_filter(original.astype(float), (3, 3, 0)).round().astype(np.uint8)
    for decoded in (biased, blurred):
        p = af.fit_filter(original, decoded, STEPS)
        assert p is not None
        out = af.apply_filter(af.FilterParams.unpack(p.pack()), decoded)
        assert psnr(out, original) > psnr(decoded, original) + 3
    assert af.fit_filter(original, original, STEPS) is None  # nothing to remove: no section


def test_zero_filter_is_the_identity():
    decoded = _smooth_image(2)
    p = af.FilterParams(2, True, (40,), np.zeros((6, af.LUMA_PARAMS), np.int64), np.zeros((2, af.CHROMA_PARAMS), np.int64))
    assert np.array_equal(af.apply_filter(p, decoded), decoded)


def test_grey_and_tiny_images():
    grey = np.repeat(_smooth_image(3)[..., :1], 3, axis=2)
    blurred = uniform_filter(grey.astype(float), (3, 3, 0)).round().astype(np.uint8)
    p = af.fit_filter(grey, blurred, residual_steps(0.01, grey=True))
    assert p is not None and p.chroma is None
    tiny = _smooth_image(4, (15, 17))
    assert af.fit_filter(tiny, tiny[::-1].copy(), STEPS) is None  # under MIN_PIXELS


def test_codec_filter_keeps_latents_and_lifts_psnr(shipped, sample_rgb):
    crop = np.ascontiguousarray(sample_rgb[:192, :256])
    rate = 3.0  # low rate, no residual layer: the filter alone
    plain = container.parse(Encoder(shipped, crop, ColourMode.RGB, None, residual=False,
                                    adaptive_filter=False).code(rate))
    data = Encoder(shipped, crop, ColourMode.RGB, None, residual=False).code(rate)
    filtered = container.parse(data)
    assert Section.FILTER in filtered.sections and Section.FILTER not in plain.sections
    for tag in (Section.Z, Section.Y):
        assert filtered.sections[tag] == plain.sections[tag]
    gain = psnr(openjai.decode(data), crop) - psnr(openjai.decode(container.write(plain)), crop)
    assert gain > 0.1
    assert openjai.encode(crop, quality=30, adaptive_filter=False) != openjai.encode(crop, quality=30)


def test_garbage_filter_section_is_a_bitstream_error(shipped, sample_rgb):
    crop = np.ascontiguousarray(sample_rgb[:64, :64])
    stream = container.parse(openjai.encode(crop, quality=40))
    for payload in (b"", b"\xff" * 3, b"\x07" + b"\x00" * 40):
        stream.sections[Section.FILTER] = payload
        with pytest.raises(BitstreamError):
            openjai.decode(container.write(stream))


def test_decoder_filter_matches_the_encoders_features():
    """The decoder's folded float32 filter computes what the fit's float64 feature matrices
    model, within 1e-3 levels (float32 rounding of values up to ~500: ~5e-5)."""
    rng = np.random.default_rng(5)
    ycc = rng.uniform(-100, 255, (3, 37, 29))
    p = _params(rng, 3, True, True, 200)
    cls = rng.integers(0, p.classes, ycc.shape[1:])
    out = af.filter_ycbcr(p, ycc, cls)
    padded = af._padded(ycc)
    rows = slice(0, ycc.shape[1])
    f = af._luma_features(padded[0], rows)
    expected = ycc[0].ravel() + np.einsum("pn,np->n", f, p.luma[cls.ravel()] / af.COEF_UNIT)
    assert np.abs(out[0].ravel() - expected).max() < 1e-3
    for c in (1, 2):
        fc = af._chroma_features(padded[c], f[[af.LUMA_PAIRS.index(q) for q in af.CROSS_PAIRS]], rows)
        assert np.abs(out[c].ravel() - (ycc[c].ravel() + p.chroma[c - 1] / af.COEF_UNIT @ fc)).max() < 1e-3


@pytest.mark.parametrize("width", [1, 5, af.FILTER_CHUNK // 3 + 7])
def test_decoder_filter_chunks_match_one_piece(width, monkeypatch):
    """Row chunks (of FILTER_CHUNK pixels) give the planes one chunk gives, whatever the width."""
    rng = np.random.default_rng(width)
    ycc = rng.uniform(-100, 255, (3, 9, width))
    p = _params(rng, 2, True, True, 200)
    cls = rng.integers(0, p.classes, ycc.shape[1:])
    chunked = af.filter_ycbcr(p, ycc, cls)
    monkeypatch.setattr(af, "FILTER_CHUNK", ycc.shape[1] * width)
    assert np.array_equal(chunked, af.filter_ycbcr(p, ycc, cls))


def test_rate_control_drops_the_layers_below_the_lowest_rate(shipped, sample_rgb, monkeypatch):
    from openjai.codec import coder
    from openjai.codec.ratecontrol import OVERSHOOT, match_bpp

    # a filter sent at every rate (identity, ~100 bytes), whether it pays or not
    identity = af.FilterParams(8, True, tuple(range(7)), np.zeros((24, af.LUMA_PARAMS), np.int64), None)
    monkeypatch.setattr(coder, "fit_filter", lambda *args: identity)
    crop = np.ascontiguousarray(sample_rgb[:192, :256])
    enc = Encoder(shipped, crop, ColourMode.RGB, None)
    with_filter, without = enc.code(0.0), enc.code(0.0, layers=False)
    assert Section.FILTER in container.parse(with_filter).sections
    # a target the filtered lowest stream exceeds by more than the allowance, the plain one does not
    target_bytes = len(with_filter) / (1 + OVERSHOOT) - 1
    assert len(without) < target_bytes
    result = match_bpp(enc, target_bytes * 8 / (192 * 256))
    assert result.data == without and result.rate == 0.0
    with pytest.raises(RateControlError):  # below even that: refused as before
        match_bpp(enc, len(without) / (1 + OVERSHOOT) * 0.9 * 8 / (192 * 256))
