"""End-to-end behaviour of the public API with the shipped model."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import psnr

import openjai
from openjai.errors import BitstreamError, ModelError, RateControlError

sys.path.insert(0, str(Path(__file__).resolve().parent / "conformance"))
import check as conformance_check  # noqa: E402


@pytest.mark.parametrize("h, w", [(1, 1), (5, 17), (3, 1000), (64, 64), (65, 63)])
def test_round_trip_odd_sizes(sample_rgb, h, w):
    img = np.ascontiguousarray(np.resize(sample_rgb, (h, w, 3)))
    data = openjai.encode(img, quality=90)
    out = openjai.decode(data)
    assert out.shape == (h, w, 3) and out.dtype == np.uint8
    info = openjai.read_info(data)
    assert (info.width, info.height, info.colour) == (w, h, "rgb")


def test_quality_increases_with_rate(sample_rgb):
    sizes, quality = [], []
    for q in (0, 50, 100):
        data = openjai.encode(sample_rgb, quality=q)
        sizes.append(len(data))
        quality.append(psnr(sample_rgb, openjai.decode(data)))
    assert sizes[0] < sizes[1] < sizes[2]
    assert quality[0] < quality[1] < quality[2]
    assert quality[1] > 22  # a trained model (an untrained one gives ~10 dB)


def test_grey_and_alpha_layouts(sample_rgb):
    grey = sample_rgb[:40, :50, 1].copy()
    out = openjai.decode(openjai.encode(grey, quality=80))
    assert out.shape == grey.shape and psnr(grey, out) > 25
    rgba = np.dstack([sample_rgb[:40, :50], np.arange(2000, dtype=np.uint8).reshape(40, 50)])
    out = openjai.decode(openjai.encode(rgba, quality=80))
    assert out.shape == (40, 50, 4)
    np.testing.assert_array_equal(out[:, :, 3], rgba[:, :, 3])  # alpha is lossless
    la = rgba[:, :, [0, 3]]
    out = openjai.decode(openjai.encode(la, quality=80))
    assert out.shape == (40, 50, 2)
    np.testing.assert_array_equal(out[:, :, 1], la[:, :, 1])


def test_grey_saved_as_colour_stays_grey(sample_rgb):
    grey = sample_rgb[:40, :50, 1].copy()
    as_rgb = np.repeat(grey[:, :, None], 3, axis=2)
    data = openjai.encode(as_rgb, quality=80)
    # the same coded symbols as the one-channel image: only the colour byte (and CRC) differ
    assert openjai.read_info(data).colour == "rgb_grey"
    assert len(data) == len(openjai.encode(grey, quality=80))
    out = openjai.decode(data)
    assert out.shape == (40, 50, 3)
    np.testing.assert_array_equal(out[:, :, 0], out[:, :, 1])
    np.testing.assert_array_equal(out[:, :, 1], out[:, :, 2])
    np.testing.assert_array_equal(out[:, :, 0], openjai.decode(openjai.encode(grey, quality=80)))
    rgba = np.dstack([as_rgb, np.arange(2000, dtype=np.uint8).reshape(40, 50)])
    data = openjai.encode(rgba, quality=80)
    assert openjai.read_info(data).colour == "rgba_grey"
    out = openjai.decode(data)
    assert out.shape == (40, 50, 4)
    np.testing.assert_array_equal(out[:, :, 3], rgba[:, :, 3])
    np.testing.assert_array_equal(out[:, :, 0], out[:, :, 2])
    # one coloured pixel is enough to code the image as colour
    as_rgb[7, 9, 2] ^= 1
    assert openjai.read_info(openjai.encode(as_rgb, quality=80)).colour == "rgb"


@pytest.fixture(scope="module")
def rate_range(sample_rgb, shipped):
    """bpp of the sample at the lowest and highest rate parameter of the shipped model."""
    lo = openjai.read_info(openjai.encode(sample_rgb, quality=0)).bpp
    hi = openjai.read_info(openjai.encode(sample_rgb, quality=100)).bpp
    return lo, hi


@pytest.mark.parametrize("position", [0.1, 0.5, 0.9])
def test_rate_control_bounds(sample_rgb, rate_range, position):
    lo, hi = rate_range
    target = lo * (hi / lo) ** position
    data = openjai.encode(sample_rgb, bpp=target)
    bpp = openjai.read_info(data).bpp
    assert target * 0.95 <= bpp <= target * 1.10


def test_rate_control_at_range_ends(sample_rgb, rate_range):
    lo, hi = rate_range
    assert openjai.read_info(openjai.encode(sample_rgb, bpp=lo * 1.05)).bpp <= lo * 1.05 * 1.10
    assert openjai.read_info(openjai.encode(sample_rgb, bpp=lo * 0.95)).bpp <= lo * 0.95 * 1.10  # CTTC +10 %
    assert openjai.read_info(openjai.encode(sample_rgb, bpp=hi * 3)).bpp == pytest.approx(hi)  # top of range


def test_rate_control_refuses_unreachable_and_bad_args(sample_rgb):
    with pytest.raises(RateControlError):
        openjai.encode(sample_rgb, bpp=0.0001)
    with pytest.raises(RateControlError):
        openjai.encode(sample_rgb, bpp=-1)
    with pytest.raises(RateControlError):
        openjai.encode(sample_rgb, quality=101)
    with pytest.raises(RateControlError):
        openjai.encode(sample_rgb, bpp=0.5, quality=3)


def test_decode_latents_exposes_y_hat(sample_rgb, shipped):
    data = openjai.encode(sample_rgb, quality=50)
    lat = openjai.decode_latents(data)
    m = shipped.model.cfg.latent_channels
    assert lat.y_hat.shape == (1, m, 448 // 16, 640 // 16)  # padded to multiples of 64
    assert lat.residual.dtype.is_floating_point is False



def test_decoding_on_another_device_leaves_the_shared_model_alone(sample_rgb, shipped):
    """decode_latents(device=...) works on a per-device copy: the integer symbols (computed on
    the CPU) are the CPU decode's, and the shared model stays on the CPU for the next encode.
    The 'meta' device stands in for a GPU: it runs the float path on shapes only."""
    data = openjai.encode(sample_rgb, quality=50)
    cpu = openjai.decode_latents(data)
    other = openjai.decode_latents(data, device="meta")
    assert other.y_hat.device.type == "meta" and cpu.y_hat.device.type == "cpu"
    for field in ("z_hat", "sigma_index", "residual"):
        assert getattr(other, field).equal(getattr(cpu, field))
    assert all(p.device.type == "cpu" for p in shipped.model.parameters())
    assert shipped.on("cpu") is shipped.model and shipped.on("meta") is shipped.on("meta")
    assert openjai.encode(sample_rgb, quality=50) == data


_LATENT_SCRIPT = """
import hashlib, sys, torch, openjai
torch.set_num_threads(int(sys.argv[1]))
lat = openjai.decode_latents(open(sys.argv[2], 'rb').read())
h = hashlib.sha256()
for t in (lat.z_hat, lat.sigma_index, lat.residual):
    h.update(t.numpy().tobytes())
print(h.hexdigest(), float(lat.y_hat.abs().sum()))
"""

_ENCODE_SCRIPT = """
import sys, torch, openjai
torch.set_num_threads(int(sys.argv[1]))
open(sys.argv[2], 'wb').write(openjai.encode(openjai.__path__[0] + '/data/sample.png', quality=60))
"""


def test_latents_identical_across_thread_counts(tmp_path):
    """Write with 1 thread, decode with 1 and 2 threads: identical integer latents. A 2-thread
    encoder sums its float analysis in another order, so its stream is only guaranteed within
    the conformance tolerance of the 1-thread one (docs/bitstream.md, "Conformance")."""
    s1, s2 = tmp_path / "t1.jai", tmp_path / "t2.jai"
    subprocess.run([sys.executable, "-c", _ENCODE_SCRIPT, "1", str(s1)], check=True)
    subprocess.run([sys.executable, "-c", _ENCODE_SCRIPT, "2", str(s2)], check=True)
    assert conformance_check.encode_problems(s2.read_bytes(), s1.read_bytes(), openjai.decode(s1.read_bytes())) == []
    outs = [subprocess.run([sys.executable, "-c", _LATENT_SCRIPT, str(n), str(s1)], check=True,
                           capture_output=True, text=True).stdout.split() for n in (1, 2)]
    assert outs[0][0] == outs[1][0]
    assert abs(float(outs[0][1]) - float(outs[1][1])) <= 1e-4 * abs(float(outs[0][1]))


def test_stream_from_other_model_is_refused(sample_rgb, tiny):
    data = openjai.encode(sample_rgb[:64, :64], quality=50, model=tiny)
    with pytest.raises(ModelError, match=tiny.model_id):
        openjai.decode(data)
    assert openjai.decode(data, model=tiny).shape == (64, 64, 3)
    shipped_data = openjai.encode(sample_rgb[:64, :64], quality=50)
    with pytest.raises(ModelError, match="given model"):
        openjai.decode(shipped_data, model=tiny)


def test_decode_rejects_non_bytes_and_garbage():
    with pytest.raises(BitstreamError):
        openjai.decode("not bytes")
    with pytest.raises(BitstreamError):
        openjai.decode(b"")
    with pytest.raises(BitstreamError):
        openjai.decode(np.random.default_rng(0).bytes(1000))


@pytest.mark.parametrize("suffix, mode", [(".png", "RGB"), (".jpg", "RGB"), (".ppm", "RGB"), (".tif", "RGB"),
                                          (".bmp", "RGB"), (".pgm", "L"), (".png", "RGBA"), (".png", "P"),
                                          (".png", "I;16")])
def test_input_formats(tmp_path, sample_rgb, suffix, mode):
    from PIL import Image

    im = Image.fromarray(sample_rgb[:48, :40])
    im = {"RGB": im, "L": im.convert("L"), "RGBA": im.convert("RGBA"), "P": im.convert("P"),
          "I;16": Image.fromarray((np.asarray(im.convert("L")).astype(np.uint16) * 257))}[mode]
    path = tmp_path / f"in{suffix}"
    im.save(path)
    out = openjai.decode(openjai.encode(path, quality=70))
    channels = {"RGB": 3, "P": 3, "L": 1, "I;16": 1, "RGBA": 4}[mode]
    assert out.shape[:2] == (48, 40) and (out.ndim == 2 if channels == 1 else out.shape[2] == channels)
