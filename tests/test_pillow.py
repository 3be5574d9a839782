"""openjai.pillow: Image.open / Image.save for .jai through Pillow's plugin registry."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import openjai
import openjai.pillow  # noqa: F401  (registers the plugin)


@pytest.fixture(scope="module")
def crop(sample_rgb) -> np.ndarray:
    return np.ascontiguousarray(sample_rgb[100:164, 200:296])


def test_open_is_lazy_and_knows_size_mode(tmp_path, crop):
    data = openjai.encode(crop, quality=40)
    path = tmp_path / "renamed.bin"  # sniffed by magic bytes, not by suffix
    path.write_bytes(data)
    with Image.open(path) as im:
        assert im.format == "JAI"
        assert (im.size, im.mode) == ((96, 64), "RGB")
        assert im.info["model"] == openjai.read_info(data).model_id
        assert [t[0] for t in im.tile] == ["jai"]  # header only: decoding waits for load()
        arr = np.asarray(im)
        assert im.tile == []
    np.testing.assert_array_equal(arr, openjai.decode(data))
    assert Image.MIME["JAI"] == "image/x-jai"


@pytest.mark.parametrize("mode", ["L", "RGBA", "LA"])
def test_grey_and_alpha_round_trip(tmp_path, crop, mode):
    src = Image.fromarray(crop).convert(mode)
    if "A" in mode:  # a real alpha ramp, which the codec keeps losslessly
        alpha = np.tile(np.linspace(0, 255, src.width).astype(np.uint8), (src.height, 1))
        src.putalpha(Image.fromarray(alpha))
    path = tmp_path / "x.jai"
    src.save(path, quality=70)
    with Image.open(path) as im:
        assert im.mode == mode and im.size == src.size
        im.load()
        got = np.asarray(im).astype(int)
    want = np.asarray(src).astype(int)
    if "A" in mode:
        np.testing.assert_array_equal(got[..., -1], want[..., -1])
    assert np.abs(got - want).mean() < 8


def test_save_bpp_and_quality(tmp_path, crop):
    im = Image.fromarray(crop)
    buf = io.BytesIO()
    im.save(buf, format="JAI", bpp=0.5)
    info = openjai.read_info(buf.getvalue())
    assert info.bpp <= 0.55 and info.bpp > 0.2
    im.save(tmp_path / "lo.jai", quality=10)
    im.save(tmp_path / "hi.jai", quality=90)
    assert (tmp_path / "lo.jai").stat().st_size < (tmp_path / "hi.jai").stat().st_size
    assert Image.open(tmp_path / "hi.jai").format == "JAI"


def test_broken_files_raise(tmp_path, crop):
    data = openjai.encode(crop, quality=40)
    bad = tmp_path / "bad.jai"
    bad.write_bytes(data[:-20])  # header intact, body truncated: fails on load, not on open
    with Image.open(bad) as im:
        assert im.size == (96, 64)
        with pytest.raises(OSError, match="cannot decode"):
            im.load()
    other = tmp_path / "not.jai"
    other.write_bytes(b"OJAI\x09" + bytes(40))  # right magic, wrong version
    with pytest.raises(Image.UnidentifiedImageError):
        Image.open(other)
