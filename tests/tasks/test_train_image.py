"""Training of the image-task networks (train_image.py): resuming and stopping on SIGTERM."""

from __future__ import annotations

import json
import signal

import numpy as np
import pytest
import torch

from openjai.tasks import run_files, train_image

from .conftest import sigterm_on_second_call


@pytest.fixture
def shards(tmp_path):
    """Six denoising samples of 32² pixels (ŷ 2×2) in one shard: random, but in the real format."""
    rng = np.random.default_rng(0)
    n = 6
    (tmp_path / "data").mkdir()
    target = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    run_files.save_shard(run_files.shard_path(tmp_path / "data", 0), {
        "y": rng.normal(0, 2, (n, 128, 2, 2)).astype(np.float16), "target": target,
        "dec": target, "bpp": np.full(n, 0.5, np.float32)})
    return tmp_path / "data"


def _train(run, data, steps: int) -> None:
    train_image.train("denoise", run, data, "latent", minutes=60, steps=steps, batch=2, lr=1e-4)


def _step(run) -> int:
    return json.loads((run / "meta.json").read_text())["step"]


def test_training_resumes_where_it_stopped(shards, tmp_path, monkeypatch):
    torch.manual_seed(0)
    run, calls = tmp_path / "run", []
    mse = train_image.F.mse_loss
    monkeypatch.setattr(train_image.F, "mse_loss", lambda *a, **k: calls.append(1) or mse(*a, **k))
    _train(run, shards, 3)
    assert _step(run) == len(calls) == 3
    _train(run, shards, 5)  # the same run, a higher step count: two more steps, not five
    assert _step(run) == 5 and len(calls) == 5


def test_sigterm_ends_the_step_and_keeps_it(shards, tmp_path, monkeypatch):
    run = tmp_path / "run"
    monkeypatch.setattr(train_image.F, "mse_loss", sigterm_on_second_call(train_image.F.mse_loss))
    _train(run, shards, 40)  # no periodic save before step 50: only the stop's save keeps the steps
    assert _step(run) == 2
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is given back
