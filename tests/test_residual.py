"""Residual layer (codec/residual.py): it lifts quality where it is coded, it is left out
where it does not pay, decoding is exact, and a malformed layer is refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import psnr

import openjai
from openjai.codec import container, residual
from openjai.codec.coder import Encoder
from openjai.codec.container import ColourMode, Section
from openjai.errors import BitstreamError, RateControlError


def _without_residual(data: bytes) -> bytes:
    """The same stream with its residual layer dropped (the base layer alone)."""
    stream = container.parse(data)
    for tag in (Section.RESIDUAL, Section.RESIDUAL_ESCAPES):
        stream.sections.pop(tag)
    return container.write(stream)


@pytest.fixture(scope="module")
def top_stream(shipped, sample_rgb) -> bytes:
    """The sample coded at the model's top rate point: the residual layer pays there."""
    return Encoder(shipped, sample_rgb, ColourMode.RGB, None).code(float(shipped.model.cfg.levels - 1))


def test_colour_conversion_round_trips():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (512, 1024, 3), dtype=np.uint8)
    x[0, :8] = [[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255],
                [255, 0, 255]]
    np.testing.assert_array_equal(residual.to_rgb(residual.to_ycbcr(x)), x)


def test_dct_is_orthonormal():
    d = residual.DCT
    np.testing.assert_allclose(d @ d.T, np.eye(residual.BLOCK), atol=1e-12)


def test_layer_lifts_quality_at_the_top(shipped, sample_rgb, top_stream):
    stream = container.parse(top_stream)
    assert Section.RESIDUAL in stream.sections
    base_only = _without_residual(top_stream)
    with_layer, without = openjai.decode(top_stream), openjai.decode(base_only)
    assert psnr(sample_rgb, with_layer) > psnr(sample_rgb, without) + 1.0
    # the same as the encoder without the layer: the base layer is unchanged by it
    plain = Encoder(shipped, sample_rgb, ColourMode.RGB, None, residual=False).code(stream.header.rate)
    assert plain == base_only


def test_layer_left_out_where_it_does_not_pay(shipped, sample_rgb):
    data = Encoder(shipped, sample_rgb, ColourMode.RGB, None).code(0.0)
    assert Section.RESIDUAL not in container.parse(data).sections


def test_nothing_to_code_gives_no_layer(shipped):
    rgb = np.random.default_rng(0).integers(0, 256, (24, 40, 3), dtype=np.uint8)
    activity = np.zeros((3, 5), dtype=np.int64)
    assert residual.encode_residual(rgb, rgb, activity, (16, 32, 32), shipped.y_tables) is None


def test_layer_adds_no_thread_dependence(top_stream):
    """g_s is float, so a few base pixels may differ between thread counts; the layer's
    symbols are exact and it acts per pixel, so the final image differs nowhere else."""
    before = torch.get_num_threads()
    base_only = _without_residual(top_stream)
    try:
        finals, bases = [], []
        for n in (1, 2):
            torch.set_num_threads(n)
            finals.append(openjai.decode(top_stream))
            bases.append(openjai.decode(base_only))
    finally:
        torch.set_num_threads(before)
    base_differs = (bases[0] != bases[1]).any(axis=2)
    final_differs = (finals[0] != finals[1]).any(axis=2)
    assert not (final_differs & ~base_differs).any()


def test_grey_codes_luma_only(shipped, sample_rgb):
    grey = np.ascontiguousarray(sample_rgb[:, :, 1])
    data = Encoder(shipped, np.repeat(grey[:, :, None], 3, axis=2), ColourMode.GREY, None).code(
        float(shipped.model.cfg.levels - 1))
    stream = container.parse(data)
    head = residual.ResidualParams.unpack(stream.sections[Section.RESIDUAL], len(shipped.y_tables))
    assert head.steps[0] > 0 and head.steps[1:] == (0, 0)
    out = openjai.decode(data)
    assert out.shape == grey.shape
    assert psnr(grey, out) > psnr(grey, openjai.decode(_without_residual(data))) + 1.0


def _with_head(data: bytes, mutate) -> bytes:
    """``data`` with its residual head rewritten by ``mutate(steps, thresholds, sigma)``."""
    stream = container.parse(data)
    section = stream.sections[Section.RESIDUAL]
    head = residual.ResidualParams.unpack(section, 64)
    steps, thresholds, sigma = list(head.steps), list(head.thresholds), head.sigma.copy()
    mutate(steps, thresholds, sigma)
    new = residual.ResidualParams(tuple(steps), tuple(thresholds), sigma)
    stream.sections[Section.RESIDUAL] = new.pack() + section[len(new.pack()):]
    return container.write(stream)


def _set(seq, i, v):
    seq[i] = v


@pytest.mark.parametrize("mutate, message", [
    (lambda s, t, g: _set(t, 0, t[-1] + 1), "increasing"),
    (lambda s, t, g: g.__setitem__((0, 0, 0), 64), "σ-index"),
    (lambda s, t, g: (_set(s, 0, 0), g.__setitem__((0, 0, 0), 3)), "step is 0"),
])
def test_malformed_head_refused(top_stream, mutate, message):
    with pytest.raises(BitstreamError, match=message):
        openjai.decode(_with_head(top_stream, mutate))


def test_sigma_byte_255_refused(top_stream):
    """255 marks a group not coded in memory; in the head a coded group's index must name a table."""
    stream = container.parse(top_stream)
    section = bytearray(stream.sections[Section.RESIDUAL])
    section[residual.HEAD.size] = 255
    stream.sections[Section.RESIDUAL] = bytes(section)
    with pytest.raises(BitstreamError, match="σ-index 255"):
        openjai.decode(container.write(stream))


def test_truncated_or_unpaired_layer_refused(shipped, top_stream):
    stream = container.parse(top_stream)
    short = container.Stream(stream.header, dict(stream.sections))
    head = residual.ResidualParams.unpack(stream.sections[Section.RESIDUAL], len(shipped.y_tables)).size
    short.sections[Section.RESIDUAL] = stream.sections[Section.RESIDUAL][: head - 1]  # cut in the σ-indices
    with pytest.raises(BitstreamError, match="too short"):
        openjai.decode(container.write(short))
    stream.sections.pop(Section.RESIDUAL_ESCAPES)
    with pytest.raises(BitstreamError, match="pairs"):
        container.parse(container.write(stream))


def test_rate_range_goes_past_the_top_point(shipped, sample_rgb):
    top = shipped.model.cfg.levels - 1
    crop = np.ascontiguousarray(sample_rgb[:128, :192])
    enc = Encoder(shipped, crop, ColourMode.RGB, None)
    assert enc.top_rate == top + residual.RESIDUAL_EXTENSION
    assert Encoder(shipped, crop, ColourMode.RGB, None, residual=False).top_rate == top
    streams = [enc.code(r) for r in (top, top + 1.0, enc.top_rate)]
    assert [container.parse(d).header.rate for d in streams] == [top] * 3  # β stays at the top point
    sizes = [len(d) for d in streams]
    quality = [psnr(crop, openjai.decode(d)) for d in streams]
    assert sizes[0] < sizes[1] < sizes[2] and quality[0] < quality[1] < quality[2]
    assert quality[2] > 50  # near-lossless at the end of the range
    with pytest.raises(RateControlError, match="outside"):
        enc.code(enc.top_rate + 0.5)


def test_coefficients_beyond_int16_decode_exactly(shipped):
    """The decoder keeps a whole image's coefficients in int16, and in int32 where a stream
    holds one int16 cannot (|q| ≤ Q_LIMIT = 2¹⁵ is legal)."""
    from openjai.codec import residual as rl
    from openjai.codec.coding import SymbolEncoder
    from openjai.codec.group_rdo import Q_LIMIT

    tables = shipped.y_tables
    activity = np.zeros((2, 2), dtype=np.int64)
    sigma = np.full((3, rl.BUCKETS, rl.BANDS), rl.SKIP, dtype=np.uint8)
    sigma[0, -1, :] = 20  # luma, top bucket (where activity 0 falls with zero thresholds), every band
    params = rl.ResidualParams((16, 0, 0), (0,) * (rl.BUCKETS - 1), sigma)
    for big in (Q_LIMIT - 1000, Q_LIMIT):
        q = np.zeros((2, 2, 8, 8), dtype=np.int64)
        q[1, 0, 0, 0], q[0, 1, 3, 2] = big, -7
        enc = SymbolEncoder(tables)
        enc.encode(q.ravel(), np.full(q.size, 20))
        data, escapes = enc.finish()
        _, planes = rl.decode_coefficients(params.pack() + data, escapes, activity, tables)
        assert planes[0].dtype == (np.int16 if big < 2**15 else np.int32)
        assert np.array_equal(planes[0], q) and planes[1] is None
