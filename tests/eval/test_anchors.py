"""Anchor codecs: round trips, odd sizes, colour plumbing, and the missing-tool / failure paths.

Every anchor's tool is installable here (apt: ffmpeg libopenjp2-tools libavif-bin libjxl-tools;
pip: pillow, imageio-ffmpeg), so nothing is skipped: a missing tool is a setup error and fails.
Images are tiny (64×48, 33×17) so that the whole file runs in well under a minute.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from openjai.errors import CodecError, ImageError, ToolMissingError
from openjai.eval.anchors import ANCHORS, avif, hevc, jpeg2000, jxl, vvc
from openjai.eval.anchors import _common as common
from openjai.eval.anchors.base import bits_per_pixel


def _test_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Photo-like synthetic content: detail mostly in luminance (edges, texture, grain) over
    smooth colour, as in natural images, so that 4:2:0 alone does not cap the PSNR."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    lum = 70 + 100 * xx / max(width - 1, 1) + 25 * np.sin(xx / 3.0) * np.cos(yy / 5.0)
    disc = (xx - width * 0.6) ** 2 + (yy - height * 0.45) ** 2 < (min(height, width) * 0.25) ** 2
    lum = lum + 60 * disc + rng.normal(0, 3, (height, width))
    colour = np.stack([30 * np.cos(yy / 20.0), 10 * np.sin(xx / 25.0), -30 * np.cos(yy / 20.0)], axis=-1)
    img = lum[..., None] + colour + rng.normal(0, 1, (height, width, 3))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0**2 / max(mse, 1e-10))


# A low-rate and a high-rate parameter for each anchor, and the PSNR the high-rate one must beat
# on the 64×48 test image (well below what each codec gives, far above a colour/range bug).
SETTINGS: dict[str, tuple[float, float, float]] = {
    "jpeg": (20, 95, 38.0),
    "jpeg444": (20, 95, 38.0),
    "jpeg2000": (0.75, 4.0, 41.0),
    "hevc": (40, 12, 44.0),
    "hevc420": (40, 12, 43.0),
    "vvc": (45, 12, 43.0),
    "avif": (50, 8, 41.0),
    "jxl": (6.0, 0.5, 40.0),
    "webp": (20, 95, 39.0),
}

IMG = _test_image(48, 64)
ODD = _test_image(17, 33, seed=1)


def test_registry_names_and_protocol() -> None:
    assert set(ANCHORS) == {"jpeg", "jpeg444", "jpeg2000", "hevc", "hevc420", "vvc", "avif", "jxl", "webp"}
    assert set(SETTINGS) == set(ANCHORS)
    for name, factory in ANCHORS.items():
        codec = factory()
        assert codec.name == name
        pr = codec.param_range
        assert pr.low < pr.high
        for p in SETTINGS[name][:2]:
            assert pr.low <= p <= pr.high
    assert ANCHORS["hevc"]().chroma == "444" and ANCHORS["hevc420"]().chroma == "420"


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_round_trip(name: str) -> None:
    codec = ANCHORS[name]()
    low, high, min_psnr = SETTINGS[name]
    data_lo = codec.encode(IMG, low)
    data_hi = codec.encode(IMG, high)
    assert isinstance(data_lo, bytes) and isinstance(data_hi, bytes)
    assert len(data_hi) > len(data_lo), "more rate at the high-rate setting"
    rec_lo, rec_hi = codec.decode(data_lo), codec.decode(data_hi)
    for rec in (rec_lo, rec_hi):
        assert rec.shape == IMG.shape and rec.dtype == np.uint8
    p_lo, p_hi = psnr(IMG, rec_lo), psnr(IMG, rec_hi)
    assert p_hi > p_lo + 1.0, (p_lo, p_hi)
    assert p_hi > min_psnr, p_hi
    assert p_lo > 20.0, p_lo
    # decoding is deterministic
    assert np.array_equal(codec.decode(data_hi), rec_hi)
    assert bits_per_pixel(len(data_hi), 64, 48) == 8.0 * len(data_hi) / (64 * 48)


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_odd_size(name: str) -> None:
    codec = ANCHORS[name]()
    data = codec.encode(ODD, SETTINGS[name][1])
    rec = codec.decode(data)
    assert rec.shape == (17, 33, 3) and rec.dtype == np.uint8
    assert psnr(ODD, rec) > 30.0
    # the last row and column are real pixels, not padding artefacts
    assert psnr(ODD[-1:, :], rec[-1:, :]) > 25.0 and psnr(ODD[:, -1:], rec[:, -1:]) > 25.0


@pytest.mark.parametrize("name", ["hevc420", "vvc"])
def test_odd_size_crop_nal_is_counted_and_only_for_odd(name: str) -> None:
    codec = ANCHORS[name]()
    header = common.CROP_NAL_HEVC if name == "hevc420" else common.CROP_NAL_VVC
    odd = codec.encode(ODD, 30)
    even = codec.encode(np.ascontiguousarray(ODD[:16, :32]), 30)
    assert odd[-6:-1] == b"\x00\x00\x01" + header and odd[-1] == 0x83
    assert common.strip_crop_nal(even, header)[1:] == (0, 0)


def test_decode_garbage_raises_codec_error() -> None:
    for name in sorted(ANCHORS):
        with pytest.raises(CodecError):
            ANCHORS[name]().decode(b"\x00\x01garbage" * 4)


def test_bad_input_image() -> None:
    codec = ANCHORS["jpeg"]()
    with pytest.raises(ImageError):
        codec.encode(IMG.astype(np.float32), 50)
    with pytest.raises(ImageError):
        codec.encode(IMG[..., 0], 50)


# ---------------------------------------------------------------------------- missing tools


@pytest.mark.parametrize(
    ("module", "attr", "name", "package", "stage"),
    [
        (jpeg2000, "OPJ_COMPRESS", "jpeg2000", "libopenjp2-tools", "encode"),
        (jpeg2000, "OPJ_DECOMPRESS", "jpeg2000", "libopenjp2-tools", "decode"),
        (hevc, "FFMPEG", "hevc", "ffmpeg", "encode"),
        (hevc, "FFMPEG", "hevc420", "ffmpeg", "decode"),
        (vvc, "FFMPEG", "vvc", "imageio-ffmpeg", "encode"),
        (avif, "AVIFENC", "avif", "libavif-bin", "encode"),
        (avif, "AVIFDEC", "avif", "libavif-bin", "decode"),
        (jxl, "CJXL", "jxl", "libjxl-tools", "encode"),
        (jxl, "DJXL", "jxl", "libjxl-tools", "decode"),
    ],
)
def test_missing_tool(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, module, attr, name, package, stage) -> None:
    codec = ANCHORS[name]()
    data = codec.encode(ODD, SETTINGS[name][0]) if stage == "decode" else b""
    monkeypatch.setattr(module, attr, str(tmp_path / "no-such-tool"))
    with pytest.raises(ToolMissingError, match=package):
        if stage == "encode":
            codec.encode(ODD, SETTINGS[name][0])
        else:
            codec.decode(data)


def test_missing_imageio_ffmpeg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vvc, "FFMPEG", None)
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # makes the import fail
    with pytest.raises(ToolMissingError, match="imageio-ffmpeg"):
        ANCHORS["vvc"]().encode(ODD, 30)


def test_ffmpeg_without_the_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Debian's ffmpeg has no libvvenc: pointing the VVC anchor at it must say so, not fail later."""
    monkeypatch.setattr(vvc, "FFMPEG", hevc.FFMPEG)
    with pytest.raises(ToolMissingError, match="libvvenc"):
        ANCHORS["vvc"]().encode(ODD, 30)


@pytest.mark.parametrize("name", ["jpeg", "webp"])
def test_missing_pillow_codec(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    from PIL import features

    monkeypatch.setattr(features, "check_codec", lambda _: False)
    monkeypatch.setattr(features, "check_module", lambda _: False)
    with pytest.raises(ToolMissingError, match="pillow"):
        ANCHORS[name]().encode(ODD, 50)


def test_tool_failure_carries_stderr(tmp_path: Path) -> None:
    with pytest.raises(CodecError, match="exit 3.*boom"):
        common.run_tool(["sh", "-c", "echo boom >&2; exit 3"], "fake tool")


def test_temp_dirs_are_removed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    for name in ("jpeg2000", "hevc420", "avif", "jxl"):
        codec = ANCHORS[name]()
        codec.decode(codec.encode(ODD, SETTINGS[name][1]))
        with pytest.raises(CodecError):
            codec.decode(b"not a stream")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- colour plumbing


def test_bt709_full_range_values() -> None:
    px = np.array([[[255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 0, 255]]], dtype=np.uint8)
    ycc = common.rgb_to_ycbcr(px, 10)
    assert ycc[:, 0, 0].tolist() == [1023, 512, 512]
    assert ycc[:, 0, 1].tolist() == [0, 512, 512]
    # red: Y' = 0.2126, Pr = 0.5, Pb = -0.2126 / 1.8556
    assert ycc[:, 0, 2].tolist() == [round(1023 * 0.2126), round(512 - 1023 * 0.2126 / 1.8556), 1023]
    assert ycc[0, 0, 3] == round(1023 * 0.0722) and ycc[1, 0, 3] == 1023


def test_colour_round_trip_10bit() -> None:
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (31, 29, 3), dtype=np.uint8)
    back = common.ycbcr_to_rgb(common.rgb_to_ycbcr(img, 10), 10)
    assert np.abs(back.astype(int) - img.astype(int)).max() <= 1
    assert psnr(img, back) > 55.0
    for chroma in ("444", "420"):
        planes, w, h = common.to_planes(img, 10, chroma)
        assert (w, h) == ((29, 31) if chroma == "444" else (30, 32))
        assert [p.shape for p in planes] == common.plane_shapes(w, h, chroma)
        assert common.from_planes(planes, 10, chroma, 29, 31).shape == img.shape


def test_420_constant_image_is_exact() -> None:
    img = np.full((7, 9, 3), [200, 30, 90], dtype=np.uint8)
    planes, w, h = common.to_planes(img, 10, "420")
    expected = common.ycbcr_to_rgb(common.rgb_to_ycbcr(img, 10), 10)
    assert np.array_equal(common.from_planes(planes, 10, "420", 9, 7), expected)


def test_y4m_and_raw_round_trip(tmp_path: Path) -> None:
    img = _test_image(9, 11)
    for chroma in ("444", "420"):
        planes, w, h = common.to_planes(img, 10, chroma)
        common.write_y4m(tmp_path / "a.y4m", planes, w, h, 10, chroma)
        got, gw, gh, bits, gchroma, crange = common.read_y4m((tmp_path / "a.y4m").read_bytes())
        assert (gw, gh, bits, gchroma, crange) == (w, h, 10, chroma, "FULL")
        assert all(np.array_equal(a, b) for a, b in zip(got, planes, strict=True))
    with pytest.raises(CodecError):
        common.read_y4m(b"YUV4MPEG2 W4 H4 C444p10\nFRAME\n\x00\x00")


def test_ppm_round_trip(tmp_path: Path) -> None:
    common.write_ppm(tmp_path / "a.ppm", ODD)
    assert np.array_equal(common.read_ppm(tmp_path / "a.ppm"), ODD)
