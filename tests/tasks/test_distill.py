"""The latent classifier's distillation set and its resumable training (small, real runs)."""

from __future__ import annotations

import json
import signal

import pytest
import torch
from safetensors.torch import load_file, save_file

from openjai.tasks import distill_set, train_classify
from openjai.tasks.resnet import JOIN_CHANNELS

from .conftest import sigterm_on_second_call


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(distill_set, "CHUNK", 2)


@pytest.mark.parametrize("composites", [0.0, 1.0])
def test_chunk_is_a_function_of_its_index(resnet_available, small_chunks, composites):
    photos = distill_set.list_images(distill_set.SHARED_DATA / "train")[:8]
    if not photos:
        pytest.skip("no training photos under /work/shared/data/train")
    a = distill_set.make_chunk(3, photos, composites)
    assert a["y_hat"].shape == (2, 2, 128, 14, 14)  # crops × rates × ŷ of a 224² crop
    assert a["feat_layer2"].shape == (2, 512, 14, 14) and a["feat_layer3"].shape == (2, 1024, 14, 14)
    assert a["logits"].shape == (2, 1000)
    low, high = a["bpp"].unbind(1)
    assert (low > 0).all() and (high > 0).all()
    b = distill_set.make_chunk(3, photos, composites)
    assert torch.equal(a["y_hat"], b["y_hat"])  # entropy-decoded latents: exact
    torch.testing.assert_close(a["feat_layer3"], b["feat_layer3"], rtol=1e-2, atol=1e-2)


def _synthetic_set(folder, chunks: int = 16, crops: int = 2) -> None:
    g = torch.Generator().manual_seed(0)
    folder.mkdir()
    for i in range(chunks):
        save_file({"y_hat": torch.randn(crops, 2, 128, 14, 14, generator=g).half(),
                   **{f"feat_{j}": torch.randn(crops, c, 14, 14, generator=g).relu().half()
                      for j, c in JOIN_CHANNELS.items()},
                   "logits": torch.randn(crops, 1000, generator=g).half(),
                   "bpp": torch.ones(crops, 2)}, folder / f"chunk_{i:05d}.safetensors")


def test_training_resumes_from_its_checkpoint(resnet_available, tmp_path):
    _synthetic_set(tmp_path / "set")
    run = tmp_path / "run"
    args = [str(run), "--set", str(tmp_path / "set"), "--batch", "2", "--width", "8", "--blocks", "1", "--every", "1e9"]
    assert train_classify.main([*args, "--steps", "3"]) == 0
    first = load_file(run / train_classify.CKPT)
    assert train_classify.main([*args, "--steps", "5"]) == 0
    second = load_file(run / train_classify.CKPT)
    assert not torch.equal(first["model.stem.weight"], second["model.stem.weight"])  # it trained on
    torch.testing.assert_close(first["model.out_std"], second["model.out_std"], rtol=0, atol=0)  # not re-initialised
    held = [json.loads(line) for line in (run / "log.txt").read_text().splitlines() if "held_mse" in line]
    assert [h["step"] for h in held] == [3, 5]
    assert all(h["train_crops"] == 30 for h in held)  # chunk 15 held out of 16 × 2 crops


def test_training_stops_on_sigterm_and_keeps_its_steps(resnet_available, tmp_path, monkeypatch):
    _synthetic_set(tmp_path / "set")
    run = tmp_path / "run"
    monkeypatch.setattr(train_classify, "_losses", sigterm_on_second_call(train_classify._losses))
    args = [str(run), "--set", str(tmp_path / "set"), "--batch", "2", "--width", "8", "--blocks", "1",
            "--every", "1e9", "--steps", "100"]
    assert train_classify.main(args) == 0
    assert int(train_classify._load(run / train_classify.CKPT)[1]["step"]) == 2
    assert json.loads((run / "log.txt").read_text().splitlines()[-1]) == {"step": 2, "stopped": True}
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is given back


def test_training_starts_from_exported_weights(resnet_available, tmp_path):
    _synthetic_set(tmp_path / "set")
    common = ["--set", str(tmp_path / "set"), "--batch", "2", "--every", "1e9"]
    first = tmp_path / "first"
    assert train_classify.main([str(first), *common, "--width", "8", "--blocks", "1", "--join", "layer3",
                                "--steps", "2"]) == 0
    weights = tmp_path / "bridge.safetensors"
    train_classify.export(first, weights, force=False)
    second = tmp_path / "second"
    assert train_classify.main([str(second), *common, "--init", str(weights), "--steps", "1"]) == 0
    init, ckpt = load_file(weights), load_file(second / train_classify.CKPT)
    assert ckpt["model.stem.weight"].shape == (8, 128, 3, 3)  # its width and join, not the defaults'
    assert ckpt["model.head.weight"].shape[0] == JOIN_CHANNELS["layer3"]
    torch.testing.assert_close(ckpt["model.out_std"], init["out_std"], rtol=0, atol=0)
    torch.testing.assert_close(ckpt["model.stem.weight"], init["stem.weight"], rtol=0, atol=2e-3)  # one Adam step
    assert train_classify.main([str(tmp_path / "third"), *common, "--init", str(tmp_path / "none")]) == 1
