"""Rate matching: the selection rule on synthetic codecs, then on real anchors (small images)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from openjai.errors import RateControlError
from openjai.eval.anchors import ANCHORS
from openjai.eval.anchors.base import ParamRange, bits_per_pixel
from openjai.eval.ratematch import CTTC_TARGETS, RatePoint, choose, match_rate

W, H = 32, 32  # 1024 pixels: 128 bytes = 1 bpp
IMG = np.zeros((H, W, 3), dtype=np.uint8)


class FakeCodec:
    """Coded size = size(param) bytes; records every encode."""

    name = "fake"

    def __init__(self, param_range: ParamRange, size) -> None:
        self.param_range = param_range
        self.size = size
        self.calls: list[float] = []

    def encode(self, img: np.ndarray, param: float) -> bytes:
        self.calls.append(param)
        return bytes(int(self.size(param)))

    def decode(self, data: bytes) -> np.ndarray:
        return IMG


def _bpp(nbytes: int) -> float:
    return bits_per_pixel(nbytes, W, H)


def test_cttc_targets() -> None:
    assert CTTC_TARGETS == (0.03, 0.06, 0.12, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)


def test_quality_knob_largest_rate_not_above_target() -> None:
    # quality q in 1..100 -> 4 q bytes (0.03125 bpp per step)
    codec = FakeCodec(ParamRange(1, 100, increasing=True, integer=True), lambda q: 4 * q)
    point = match_rate(codec, IMG, 0.5)
    assert isinstance(point, RatePoint)
    assert point.reached and point.param == 16 and point.bpp == 0.5 and point.num_bytes == 64
    assert len(codec.calls) == len(set(codec.calls)), "a parameter was encoded twice"
    assert len(codec.calls) <= 10
    point = match_rate(codec, IMG, 0.51)  # between steps: take the one below, not the closer one above
    assert point.param == 16 and point.bpp <= 0.51


def test_qp_knob_decreasing() -> None:
    # QP 0..51, rate halves every 6 QP, from 40 bpp at QP 0
    codec = FakeCodec(ParamRange(0, 51, increasing=False, integer=True), lambda qp: 5120 * 2 ** (-qp / 6))
    for target in CTTC_TARGETS[2:]:
        codec.calls.clear()
        point = match_rate(codec, IMG, target)
        assert point.reached and point.bpp <= target
        # the next lower QP (more bits) must exceed the target: we took the largest rate below it
        assert _bpp(int(5120 * 2 ** (-(point.param - 1) / 6))) > target
        assert len(codec.calls) == len(set(codec.calls)) and len(codec.calls) <= 9


def test_falls_back_to_smallest_rate_within_tolerance() -> None:
    # lowest-rate setting gives 0.53 bpp: above 0.5, but within +10 %
    codec = FakeCodec(ParamRange(1, 10, increasing=True, integer=True), lambda q: 58 + 10 * q)
    point = match_rate(codec, IMG, 0.5)
    assert point.reached and point.param == 1 and point.bpp == _bpp(68)
    assert point.bpp <= 0.5 * 1.1
    assert codec.calls == [1.0]


def test_unreachable_target_is_marked_not_dropped() -> None:
    codec = FakeCodec(ParamRange(1, 10, increasing=True, integer=True), lambda q: 100 + q)
    point = match_rate(codec, IMG, 0.25)
    assert point.reached is False
    assert point.param == 1 and point.bpp == _bpp(101) and point.num_bytes == 101
    assert point.target == 0.25


def test_tolerance_argument() -> None:
    codec = FakeCodec(ParamRange(1, 10, increasing=True, integer=True), lambda q: 58 + 10 * q)
    assert match_rate(codec, IMG, 0.5, tolerance=0.0).reached is False
    assert match_rate(codec, IMG, 0.5, tolerance=0.10).reached is True


def test_target_above_maximum_rate_returns_highest_rate() -> None:
    codec = FakeCodec(ParamRange(1, 100, increasing=True, integer=True), lambda q: q)
    point = match_rate(codec, IMG, 2.0)
    assert point.reached and point.param == 100 and point.bpp == _bpp(100)


def test_float_knob_converges_from_below() -> None:
    # rate parameter is a distance: bytes = 100 / d  (decreasing in d; 0.03 .. 15.6 bpp)
    codec = FakeCodec(ParamRange(0.05, 25.0, increasing=False, integer=False), lambda d: 100.0 / d)
    for target in (0.25, 0.5, 1.5):
        codec.calls.clear()
        point = match_rate(codec, IMG, target)
        assert point.reached
        assert target * 0.98 <= point.bpp <= target, (target, point.bpp)
        assert len(codec.calls) == len(set(codec.calls)) and len(codec.calls) <= 16


def test_step_like_float_knob_terminates() -> None:
    # internal rate control with coarse steps: bytes jump by 16 (0.125 bpp)
    codec = FakeCodec(ParamRange(0.01, 12.0, increasing=True, integer=False), lambda b: 16 * math.floor(b * 8))
    point = match_rate(codec, IMG, 0.3)
    assert point.reached and point.bpp == 0.25
    assert len(codec.calls) <= 16


def test_non_monotone_codec_never_exceeds_tolerance() -> None:
    wobble = [40, 44, 38, 60, 58, 75, 71, 90, 120, 110]  # bytes per quality 1..10
    codec = FakeCodec(ParamRange(1, 10, increasing=True, integer=True), lambda q: wobble[int(q) - 1])
    for target in np.linspace(0.2, 1.0, 17):
        point = match_rate(codec, IMG, float(target))
        if point.reached:
            assert point.bpp <= target * 1.1
        assert len(codec.calls) == len(set(codec.calls))
        codec.calls.clear()


def test_choose_rule_directly() -> None:
    pts = {1.0: (b"", 0.40), 2.0: (b"", 0.49), 3.0: (b"", 0.52), 4.0: (b"", 0.6)}
    assert choose(pts, 0.5, 0.1) == (2.0, True)
    assert choose({3.0: (b"", 0.52), 4.0: (b"", 0.54)}, 0.5, 0.1) == (3.0, True)
    assert choose({3.0: (b"", 0.56), 4.0: (b"", 0.58)}, 0.5, 0.1) == (3.0, False)
    with pytest.raises(RateControlError):
        choose({}, 0.5, 0.1)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_invalid_target(bad: float) -> None:
    codec = FakeCodec(ParamRange(1, 10, increasing=True, integer=True), lambda q: q)
    with pytest.raises(RateControlError):
        match_rate(codec, IMG, bad)


# ---------------------------------------------------------------------------- real anchors


def _photo(height: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    lum = 90 + 80 * xx / width + 30 * np.sin(xx / 4.0) * np.cos(yy / 6.0) + 50 * ((xx - 40) ** 2 + (yy - 30) ** 2 < 300)
    lum += rng.normal(0, 3, (height, width))
    img = lum[..., None] + np.stack([25 * np.cos(yy / 20), 5 * np.sin(xx / 30), -25 * np.cos(yy / 20)], -1)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


PHOTO = _photo(64, 96)


@pytest.mark.parametrize("name", ["jpeg", "jpeg2000", "hevc420", "jxl", "webp", "vvc"])
def test_real_anchor_never_exceeds_tolerance(name: str) -> None:
    codec = ANCHORS[name]()
    seen: list[float] = []
    encode = codec.encode

    def counting_encode(img: np.ndarray, param: float) -> bytes:
        seen.append(param)
        return encode(img, param)

    codec.encode = counting_encode  # type: ignore[method-assign]
    for target in (0.25, 1.0, 2.0):
        seen.clear()
        point = match_rate(codec, PHOTO, target)
        assert point.bpp == bits_per_pixel(len(point.bytes), 96, 64)
        assert len(seen) == len(set(seen)), "a parameter was encoded twice"
        if point.reached:
            assert point.bpp <= target * 1.1, (name, target, point)
        else:
            assert point.bpp > target * 1.1
        rec = codec.decode(point.bytes)
        assert rec.shape == PHOTO.shape


@pytest.mark.parametrize("name", ["jpeg", "hevc", "avif"])
def test_real_anchor_unreachable_low_rate(name: str) -> None:
    # 0.03 bpp of a 64×96 image is 23 bytes: below any of these formats' headers
    codec = ANCHORS[name]()
    point = match_rate(codec, PHOTO, 0.03)
    assert point.reached is False
    assert point.bpp > 0.03 * 1.1
    pr = codec.param_range
    assert point.param == (pr.low if pr.increasing else pr.high)  # the lowest-rate setting
