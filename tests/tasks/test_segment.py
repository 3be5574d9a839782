"""Foreground extraction on latents: output shape, no synthesis, bad input, resumable training."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import openjai
import openjai.tasks
from openjai.errors import BitstreamError, TaskUnavailableError
from openjai.tasks.segment import LatentSegmenter, PixelSegmenter, segment
from openjai.tasks import train_segment


@pytest.fixture(scope="module")
def stream() -> bytes:
    rng = np.random.default_rng(0)
    img = np.full((72, 100, 3), 90, np.uint8)
    img[20:60, 30:80] = rng.integers(150, 256, (40, 50, 3))
    return openjai.encode(img, quality=60)


def test_segment_gives_a_binary_mask_of_the_stream_size_without_synthesis(stream, monkeypatch):
    lc = openjai.load_model("base")

    def no_synthesis(*a, **k):
        raise AssertionError("g_s was called")

    monkeypatch.setattr(lc.model.g_s, "forward", no_synthesis)
    mask = openjai.tasks.segment(stream)
    assert mask.shape == (72, 100) and mask.dtype == np.uint8
    assert set(np.unique(mask)) <= {0, 255}


def test_latent_head_shapes_and_crop():
    head = LatentSegmenter()
    out = head(torch.zeros(2, 128, 3, 5), (40, 70))
    assert out.shape == (2, 1, 40, 70)
    pix = PixelSegmenter()
    assert pix(torch.zeros(1, 3, 37, 50), (37, 50)).shape == (1, 1, 37, 50)


def test_bad_stream_is_a_one_line_error():
    with pytest.raises(BitstreamError) as e:
        segment(b"not a jai stream")
    assert "\n" not in str(e.value)


def test_stream_of_another_model_is_refused():
    data = openjai.encode(np.full((64, 64, 3), 128, np.uint8), quality=30, model="high")
    with pytest.raises(TaskUnavailableError) as e:
        segment(data)
    assert openjai.read_info(data).model_id in str(e.value) and "\n" not in str(e.value)


def test_cli_bad_input_writes_nothing(tmp_path):
    bad = tmp_path / "bad.jai"
    bad.write_bytes(b"garbage")
    out = tmp_path / "mask.png"
    r = subprocess.run([sys.executable, "-m", "openjai", "task", "segment", str(bad), "-o", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_cli_writes_the_mask(stream, tmp_path):
    src = tmp_path / "in.jai"
    src.write_bytes(stream)
    out = tmp_path / "mask.png"
    r = subprocess.run([sys.executable, "-m", "openjai", "task", "segment", str(src), "-o", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    from PIL import Image

    np.testing.assert_array_equal(np.asarray(Image.open(out)), segment(stream))


def test_loss_is_lower_for_the_right_mask():
    target = torch.zeros(1, 1, 8, 8)
    target[..., 2:6, 2:6] = 1
    good = (target * 2 - 1) * 6
    assert train_segment.segmentation_loss(good, target) < train_segment.segmentation_loss(-good, target)


def test_training_resumes(tmp_path):
    rng = np.random.default_rng(0)
    n, s = 4, train_segment.SIZE
    data = tmp_path / "data"
    data.mkdir()
    np.savez(data / "shard0000.npz", y=rng.normal(size=(n, 128, s // 16, s // 16)).astype(np.float16),
             mask=np.packbits(rng.random((n, s * s)) < 0.3, axis=1), rgb=np.zeros((n, s, s, 3), np.uint8),
             dec=np.zeros((n, s, s, 3), np.uint8), bpp=np.ones(n, np.float32))
    run = tmp_path / "run"

    def stem() -> torch.Tensor:
        return torch.load(run / "state.pt", weights_only=True)["model"]["stem.weight"]

    train_segment.train(run, data, "latent", minutes=5, steps=2, batch=2, lr=1e-3)
    first = stem()
    train_segment.train(run, data, "latent", minutes=5, steps=2, batch=2, lr=1e-3)  # resumed: nothing left
    assert torch.equal(first, stem())
    train_segment.train(run, data, "latent", minutes=5, steps=3, batch=2, lr=1e-3)
    meta = json.loads((run / "meta.json").read_text())
    assert meta["step"] == 3 and meta["samples"] == n
    assert not torch.equal(first, stem())
