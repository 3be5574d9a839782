"""Lattice layer in row strips (openjai/codec/lattice.py, openjai/codec/strips.py): many strips
give bit for bit what one strip (the whole image) gives."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import uniform_filter

from openjai.codec import lattice as lt
from openjai.codec import strips
from openjai.errors import BitstreamError
from openjai.eval.complexity import photo


def _once_jpeg(width: int, height: int, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(photo(width, height)).save(buf, "JPEG", quality=quality)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB")).copy()


def _degraded(img: np.ndarray, seed: int) -> np.ndarray:
    """A stand-in for the image the other layers decode: blurred, noisy."""
    rng = np.random.default_rng(seed)
    x = uniform_filter(img.astype(np.float64), size=(3, 3, 1)) + rng.normal(0, 2, img.shape)
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def _activity(img: np.ndarray, seed: int) -> np.ndarray:
    """A block activity map (one value per residual 8×8 block) of ``img``'s size."""
    return np.random.default_rng(seed).integers(0, 3000, (-(-img.shape[0] // 8), -(-img.shape[1] // 8)))


def _small_strips(monkeypatch: pytest.MonkeyPatch, rows: int) -> None:
    """Make the layer cut every image into strips of about ``rows`` rows (at least its alignment)."""
    monkeypatch.setattr(lt, "row_strips", lambda h, w, align=1: strips.row_strips(h, w, align, pixels=rows * w))


@pytest.mark.parametrize("width, height, crop", [(120, 1000, (0, 0)), (1000, 120, (2, 1)), (300, 400, (5, 3))])
def test_strips_give_the_whole_image_result(shipped, monkeypatch, width, height, crop):
    original = np.ascontiguousarray(_once_jpeg(width, height, 70)[crop[0] :, crop[1] :])
    decoded, activity = _degraded(original, width), _activity(original, height)
    tables = shipped.y_tables
    fit = lt.fit_lattice(original)
    assert fit is not None and fit.offset == (-crop[1] % 8, -crop[0] % 8)  # where the JPEG's grid lies
    layer = lt.encode_lattice(fit, original, decoded, activity, 1.5, tables)
    assert layer is not None
    snapped = lt.apply_lattice(*layer, decoded, activity, tables)
    nby = lt._blocks_at(original.shape, fit.offset)[0]
    assert len(lt._strips(nby, original.shape[1])) == 1  # the reference is one strip
    for rows in (1, 8, 24):  # 1: block phase strips of one row; the lattice's are whole blocks
        _small_strips(monkeypatch, rows)
        assert len(lt._strips(nby, original.shape[1])) > 1
        again = lt.fit_lattice(original)
        assert again is not None and again.offset == fit.offset and np.array_equal(again.table, fit.table)
        assert lt.encode_lattice(fit, original, decoded, activity, 1.5, tables) == layer
        assert np.array_equal(lt.apply_lattice(*layer, decoded, activity, tables), snapped)


def test_sampled_blocks_are_the_spread_of_the_whole_image():
    img = _once_jpeg(700, 420, 60)
    for offset in ((0, 0), (3, 5), (7, 7)):
        blocks = lt._luma_milli(img, offset).reshape(-1, 8, 8)
        spread = blocks[:: max(1, len(blocks) // lt.FIT_BLOCKS)]
        assert len(spread) > lt.FIT_BLOCKS // 2
        assert np.array_equal(lt._sample(img, offset), lt.DCT @ (spread / 1000.0) @ lt.DCT.T)
    assert lt._sample(img[:7], (0, 0)).shape == (0, 8, 8)


def test_block_phase_is_the_whole_image_mean():
    img = _once_jpeg(200, 150, 50)[3:, 6:]
    y = lt._luma_int(img)
    expected = []
    for axis in (1, 0):  # the mean |step| per boundary over the whole image, as floats
        step = np.abs(np.diff(y, axis=axis)).mean(axis=1 - axis)
        n = len(step) // 8 * 8
        expected.append((int(np.argmax([step[p:n:8].mean() for p in range(8)])) + 1) % 8)
    assert lt._block_phase(img) == tuple(expected) == (2, 5)


def test_corrections_beyond_any_lattice_point_are_refused(shipped):
    img = _once_jpeg(64, 48, 70)
    activity = _activity(img, 0)
    params = lt.LatticeParams((0, 0), lt.ijg_table(70), (0, 0, 0), np.ones((lt.UNCERTAINTIES, lt.BANDS), bool),
                              np.full((lt.BUCKETS, lt.BANDS), len(shipped.y_tables) - 1, np.uint8))
    for value, ok in ((2 * lt.COEFFICIENT_LIMIT, True), (2 * lt.COEFFICIENT_LIMIT + 1, False)):
        enc = lt.SymbolEncoder(shipped.y_tables)
        values = np.zeros((6, 8, 8, 8), np.int64)
        values[2, 3, 0, 0] = value
        enc.encode(values, np.full(values.shape, len(shipped.y_tables) - 1))
        data, escapes = enc.finish()
        if ok:
            _, d = lt.decode_corrections(params.pack() + data, escapes, activity, img.shape[:2], shipped.y_tables)
            assert d.dtype == np.int16 and d[2, 3, 0, 0] == value and np.count_nonzero(d) == 1
        else:
            with pytest.raises(BitstreamError, match="beyond the range"):
                lt.decode_corrections(params.pack() + data, escapes, activity, img.shape[:2], shipped.y_tables)
