"""Lattice layer (openjai/codec/lattice.py): table and grid estimation, exact prediction, the
section format and the codec path on images that were once JPEGs."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

import openjai
from openjai.codec import container
from openjai.codec import lattice as lt
from openjai.codec.coder import LATTICE_WEIGHTS, Encoder
from openjai.codec.container import ColourMode, Section
from openjai.codec.distortion import distortion
from openjai.codec.ratecontrol import match_bpp, preferred_stream, search_rate
from openjai.errors import BitstreamError, OpenJAIError
from openjai.eval.metrics.psnr import psnr_y


def _jpeg(rgb: np.ndarray, quality: int, subsampling: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(decoded pixels, libjpeg's luma table in raster order) of ``rgb`` saved as a JPEG."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality, subsampling=subsampling)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB")).copy(), np.array(im.quantization[0]).reshape(8, 8)


@pytest.fixture(scope="module")
def once_jpeg(sample_rgb) -> np.ndarray:
    return _jpeg(np.ascontiguousarray(sample_rgb[:192, :256]), 75)[0]


@pytest.mark.parametrize("quality", [10, 50, 75, 95])
def test_ijg_tables_are_libjpegs(sample_rgb, quality):
    assert np.array_equal(lt.ijg_table(quality), _jpeg(sample_rgb[:16, :16], quality)[1])


@pytest.mark.parametrize("quality, subsampling", [(75, 2), (40, 0), (90, 2)])
def test_fit_finds_the_table_and_the_grid(sample_rgb, quality, subsampling):
    decoded = _jpeg(np.ascontiguousarray(sample_rgb[:200, :264]), quality, subsampling)[0]
    fit = lt.fit_lattice(decoded)
    assert fit is not None and fit.offset == (0, 0) and np.array_equal(fit.table, lt.ijg_table(quality))
    if quality <= 75:  # a crop moves the grid; it is found where the JPEG's blocking shows
        cropped = lt.fit_lattice(np.ascontiguousarray(decoded[3:, 5:]))
        assert cropped is not None and cropped.offset == (3, 5) and np.array_equal(cropped.table, fit.table)


def test_no_lattice_in_images_that_were_not_jpegs(sample_rgb):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert lt.fit_lattice(sample_rgb) is None  # the bundled sample is a PNG photo
    assert lt.fit_lattice(noise) is None
    assert lt.fit_lattice(sample_rgb[:7, :100]) is None  # no full block


def test_integer_prediction_rounds_the_dct(once_jpeg):
    rng = np.random.default_rng(1)
    img = np.clip(once_jpeg.astype(int) + rng.integers(-3, 4, once_jpeg.shape), 0, 255).astype(np.uint8)
    table = lt.ijg_table(60)
    k_hat, snap_class = lt.predict(img, (2, 5), table)
    ratio = lt._luma_float(img, (2, 5)) / table
    clear = np.abs(np.abs(ratio - np.floor(ratio)) - 0.5) > 1e-3  # away from rounding boundaries
    assert clear.mean() > 0.99
    assert np.array_equal(k_hat[clear], np.round(ratio[clear]))
    assert k_hat.shape == (23, 31, 8, 8) and snap_class.min() >= 0 and snap_class.max() < lt.CLASSES
    # the uncertainty follows the distance to the boundary
    distance = 0.5 - np.abs(ratio - np.round(ratio))
    uncertainty = snap_class // lt.BANDS
    assert (distance[uncertainty == 3] < 0.05 + 1e-3).all() and (distance[uncertainty == 0] > 0.3 - 1e-3).all()
    assert np.array_equal(snap_class % lt.BANDS, np.broadcast_to(lt.BAND, snap_class.shape))


def _params(rng: np.random.Generator) -> lt.LatticeParams:
    snapped = rng.random((lt.UNCERTAINTIES, lt.BANDS)) < 0.7
    sigma = np.where(rng.random((lt.BUCKETS, lt.BANDS)) < 0.5, rng.integers(0, 40, (lt.BUCKETS, lt.BANDS)), lt.SKIP)
    thresholds = tuple(sorted(int(v) for v in rng.integers(0, 1 << 16, lt.BUCKETS - 1)))
    return lt.LatticeParams((3, 7), rng.integers(1, 256, (8, 8)), thresholds, snapped, sigma.astype(np.uint8))


def test_section_head_round_trips():
    p = _params(np.random.default_rng(2))
    q = lt.LatticeParams.unpack(p.pack(), 64)
    assert q.offset == p.offset and q.thresholds == p.thresholds and q.size == len(p.pack())
    for a, b in ((q.table, p.table), (q.snapped, p.snapped), (q.sigma, p.sigma)):
        assert np.array_equal(a, b)


_HEAD = _params(np.random.default_rng(3)).pack()


@pytest.mark.parametrize("data", [
    _HEAD[: lt.HEAD.size - 1],  # too short
    _HEAD[:-1],  # σ-indices missing
    b"\x08" + _HEAD[1:],  # offset beyond the block
    _HEAD[:2] + b"\0" + _HEAD[3:],  # a zero step
    _HEAD[:66] + b"\xff\xff\0\0" + _HEAD[70:],  # thresholds decreasing
    _HEAD[:-1] + b"\xff",  # σ-index beyond the tables
], ids=["short", "sigma-missing", "offset", "zero-step", "thresholds", "sigma-beyond"])
def test_malformed_heads_refused(data):
    with pytest.raises(BitstreamError):
        lt.LatticeParams.unpack(data, 64)


@pytest.fixture(scope="module")
def jpeg_stream(shipped, once_jpeg) -> bytes:
    return Encoder(shipped, once_jpeg, ColourMode.RGB, None).code(5.0)


def test_codec_snaps_the_luma_of_a_once_jpeg_image(shipped, once_jpeg, jpeg_stream):
    sections = container.parse(jpeg_stream).sections
    assert Section.LATTICE in sections and Section.LATTICE_ESCAPES in sections
    without = Encoder(shipped, once_jpeg, ColourMode.RGB, None, lattice=False).code(5.0)
    assert Section.LATTICE not in container.parse(without).sections
    gain = psnr_y(once_jpeg, openjai.decode(jpeg_stream)) - psnr_y(once_jpeg, openjai.decode(without))
    extra = (len(jpeg_stream) - len(without)) / len(without)
    assert gain > 1.0 and extra < 0.5  # a large gain in luma for a fraction more bits
    assert np.array_equal(openjai.decode(jpeg_stream), openjai.decode(jpeg_stream))


def test_rate_controlled_once_jpeg_beats_the_plain_codec(shipped, once_jpeg):
    with_lattice = openjai.encode(once_jpeg, bpp=1.0, model=shipped)
    plain = openjai.encode(once_jpeg, bpp=1.0, model=shipped, lattice=False)
    assert len(with_lattice) <= 1.1 * len(plain) + 8
    assert psnr_y(once_jpeg, openjai.decode(with_lattice)) > psnr_y(once_jpeg, openjai.decode(plain)) + 1.0


def test_a_heavier_lattice_weight_corrects_more(shipped, once_jpeg, jpeg_stream):
    enc = Encoder(shipped, once_jpeg, ColourMode.RGB, None)
    assert enc.lattice_weights == LATTICE_WEIGHTS and LATTICE_WEIGHTS[0] == 1.0 < LATTICE_WEIGHTS[-1]
    heavy = enc.code(5.0, lattice_weight=LATTICE_WEIGHTS[-1])
    light, heavy_sections = container.parse(jpeg_stream).sections, container.parse(heavy).sections
    assert heavy_sections[Section.Y] == light[Section.Y]  # the weight moves the layers only
    assert len(heavy_sections[Section.LATTICE]) > len(light[Section.LATTICE])
    assert psnr_y(once_jpeg, openjai.decode(heavy)) > psnr_y(once_jpeg, openjai.decode(jpeg_stream)) + 0.2


def test_encoder_distortion_is_the_models_on_the_decoded_image(shipped, once_jpeg, jpeg_stream):
    enc = Encoder(shipped, once_jpeg, ColourMode.RGB, None)
    as_float = [torch.from_numpy(a.astype(np.float32)).permute(2, 0, 1)[None] / 255.0
                for a in (openjai.decode(jpeg_stream), once_jpeg)]
    kind = shipped.model.cfg.distortion
    parts = enc.distortion(jpeg_stream)
    assert len(parts) == (2 if kind.endswith("+msssim") else 1)
    assert np.mean(parts) == pytest.approx(float(distortion(*as_float, kind)))
    bare = Encoder(shipped, once_jpeg, ColourMode.RGB, None, residual=False, adaptive_filter=False, lattice=False)
    with pytest.raises(OpenJAIError, match="no pixels"):
        bare.distortion(jpeg_stream)


def test_rate_control_keeps_the_preferred_weight(shipped, once_jpeg):
    enc = Encoder(shipped, once_jpeg, ColourMode.RGB, None)
    target = 0.8
    each = [search_rate(enc, target, w) for w in enc.lattice_weights]
    assert all(r.bpp <= target and r.lattice_weight == w for r, w in zip(each, enc.lattice_weights))
    chosen = match_bpp(enc, target)
    assert chosen.data == each[preferred_stream(enc, [r.data for r in each])].data
    assert chosen.iterations == sum(r.iterations for r in each)
    assert openjai.encode(once_jpeg, bpp=target, model=shipped) == chosen.data


def test_an_alternative_replaces_the_first_stream_only_if_no_worse_in_every_part(shipped, once_jpeg,
                                                                               jpeg_stream, monkeypatch):
    enc = Encoder(shipped, once_jpeg, ColourMode.RGB, None)
    coarse = enc.code(1.0)
    assert preferred_stream(enc, [coarse, jpeg_stream]) == 1  # the higher rate is better in both parts
    assert preferred_stream(enc, [jpeg_stream, coarse, jpeg_stream]) == 0
    assert preferred_stream(enc, [b"not decoded", b"not decoded"]) == 0  # one stream: nothing to measure
    parts = {b"a": (5.0, 5.0), b"b": (1.0, 6.0), b"c": (4.0, 5.0), b"d": (4.0, 4.0)}
    monkeypatch.setattr(enc, "distortion", parts.__getitem__)
    assert preferred_stream(enc, [b"a", b"b"]) == 0  # a lower sum bought with a worse part
    assert preferred_stream(enc, [b"a", b"b", b"c"]) == 2
    assert preferred_stream(enc, [b"a", b"c", b"d"]) == 2


def test_no_lattice_section_for_other_images(shipped, sample_rgb):
    enc = Encoder(shipped, np.ascontiguousarray(sample_rgb[:96, :128]), ColourMode.RGB, None)
    assert enc.lattice is None and enc.lattice_weights == (1.0,)
    assert Section.LATTICE not in container.parse(enc.code(5.0)).sections


def _without_lattice(data: bytes) -> bytes:
    stream = container.parse(data)
    del stream.sections[Section.LATTICE], stream.sections[Section.LATTICE_ESCAPES]
    return container.write(stream)


def test_pixels_outside_full_blocks_are_left_alone(shipped, once_jpeg):
    img = np.ascontiguousarray(once_jpeg[:125, :141])
    stream = Encoder(shipped, img, ColourMode.RGB, None).code(7.0)
    assert Section.LATTICE in container.parse(stream).sections
    a, b = openjai.decode(stream), openjai.decode(_without_lattice(stream))
    assert np.array_equal(a[120:], b[120:]) and np.array_equal(a[:, 136:], b[:, 136:])
    assert not np.array_equal(a[:120, :136], b[:120, :136])


def test_garbage_lattice_sections_are_bitstream_errors(shipped, jpeg_stream):
    from openjai.codec.coding import SymbolEncoder

    stream = container.parse(jpeg_stream)
    payloads = [b"", stream.sections[Section.LATTICE][: lt.HEAD.size]]
    # well-formed corrections that put every coefficient far beyond 8-bit luma
    params = lt.LatticeParams.unpack(stream.sections[Section.LATTICE], len(shipped.y_tables))
    widest = len(shipped.y_tables) - 1
    wide = lt.LatticeParams(params.offset, np.full((8, 8), 255), params.thresholds,
                            np.ones((lt.UNCERTAINTIES, lt.BANDS), bool), np.full((lt.BUCKETS, lt.BANDS), widest, np.uint8))
    n = (192 // 8) * (256 // 8) * 64
    enc = SymbolEncoder(shipped.y_tables)
    enc.encode(np.full(n, 100, np.int64), np.full(n, widest))
    data, escapes = enc.finish()
    payloads.append(wide.pack() + data)
    for payload in payloads:
        stream.sections[Section.LATTICE] = payload
        if payload is payloads[-1]:
            stream.sections[Section.LATTICE_ESCAPES] = escapes
        with pytest.raises(BitstreamError):
            openjai.decode(container.write(stream))
    with pytest.raises(BitstreamError, match="beyond the range"):
        openjai.decode(container.write(stream))


def test_lattice_sections_come_in_pairs(jpeg_stream):
    stream = container.parse(jpeg_stream)
    del stream.sections[Section.LATTICE_ESCAPES]
    with pytest.raises(BitstreamError, match="pairs"):
        container.parse(container.write(stream))


def test_a_moved_pixel_moves_only_its_own_block(shipped, jpeg_stream):
    """Another machine's synthesis may differ by a level: the symbols still decode alike."""
    from openjai.codec.residual import block_activity

    stream = container.parse(jpeg_stream)
    base = openjai.decode(_without_lattice(jpeg_stream))
    activity = block_activity(openjai.decode_latents(jpeg_stream).sigma_index.numpy(), 192, 256)
    args = (stream.sections[Section.LATTICE], stream.sections[Section.LATTICE_ESCAPES])
    out = lt.apply_lattice(*args, base, activity, shipped.y_tables)
    assert np.array_equal(out, openjai.decode(jpeg_stream))
    changed = 0
    for y, x in ((27, 29), (100, 200), (5, 250)):
        moved = base.copy()
        moved[y, x] = np.where(moved[y, x] < 255, moved[y, x] + 1, moved[y, x] - 1)
        diff = np.any(lt.apply_lattice(*args, moved, activity, shipped.y_tables) != out, axis=2)
        outside = diff.copy()
        outside[y // 8 * 8 : y // 8 * 8 + 8, x // 8 * 8 : x // 8 * 8 + 8] = False
        assert not outside.any()
        changed += diff.any()
    assert changed  # the layer does follow its input
