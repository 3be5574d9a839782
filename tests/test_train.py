"""Training is resumable: kill -9 at random moments never corrupts the checkpoint, and a
restarted run continues from the last one."""

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from openjai.train.checkpoint import load_model_from_checkpoint, read_metadata


def _make_data(folder: Path, height: int = 160, width: int = 200) -> None:
    folder.mkdir()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    for i in range(3):
        img = np.stack([np.sin(xx / (5 + i) + c) * np.cos(yy / (7 + c)) for c in range(3)], axis=2)
        img = (127 + 100 * img + rng.normal(0, 8, img.shape)).clip(0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"img{i}.png")


def _train_cmd(run: Path, data: Path, steps: int) -> list[str]:
    return [sys.executable, "-m", "openjai.train", str(run), "--tiny", "--data", str(data), "--no-wallpapers",
            "--steps", str(steps), "--crop", "64", "--batch", "2", "--threads", "1",
            "--checkpoint-minutes", "0.005"]


def _step(ckpt: Path) -> int:
    return int(read_metadata(ckpt)["step"])


def test_resume_after_kill9(tmp_path):
    data, run = tmp_path / "data", tmp_path / "run"
    _make_data(data)
    ckpt = run / "checkpoint.safetensors"
    rnd = random.Random(0)
    steps_seen = []
    for _ in range(5):
        proc = subprocess.Popen(_train_cmd(run, data, 1_000_000), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline and (not ckpt.exists() or (steps_seen and _step(ckpt) <= steps_seen[-1])):
            time.sleep(0.2)
        time.sleep(rnd.uniform(0.0, 1.5))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        step = _step(ckpt)  # always a complete, readable checkpoint
        load_model_from_checkpoint(ckpt)
        assert not steps_seen or step > steps_seen[-1], "a restarted run must continue, not start over"
        steps_seen.append(step)
    final = steps_seen[-1] + 20
    subprocess.run(_train_cmd(run, data, final), check=True, capture_output=True)
    assert _step(ckpt) == final
    with open(run / "log.csv") as f:
        logged = [int(r["step"]) for r in csv.DictReader(f)]
    assert logged == sorted(set(logged)), "log rows after the last checkpoint are dropped on resume"
    assert not list(run.glob(".*tmp*")), "no temporary checkpoint left behind"


def test_sigterm_saves_and_exits(tmp_path):
    data, run = tmp_path / "data", tmp_path / "run"
    _make_data(data)
    proc = subprocess.Popen(_train_cmd(run, data, 1_000_000), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline and not (run / "log.csv").exists():
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert _step(run / "checkpoint.safetensors") > 0


def test_bf16_training_runs(tmp_path):
    data, run = tmp_path / "data", tmp_path / "run"
    _make_data(data)
    subprocess.run(_train_cmd(run, data, 3) + ["--bf16"], check=True, capture_output=True)
    model, step = load_model_from_checkpoint(run / "checkpoint.safetensors")
    assert step == 3 and all(p.dtype == torch.float32 and p.isfinite().all() for p in model.parameters())


def test_missing_data_is_a_clear_error(tmp_path):
    r = subprocess.run([sys.executable, "-m", "openjai", "train", str(tmp_path / "run"), "--tiny",
                        "--data", str(tmp_path / "nothing")], capture_output=True, text=True)
    assert r.returncode == 1
    assert "not found" in r.stderr and "Traceback" not in r.stderr


def test_losses_units_and_values():
    """Both distortions are in 255²·MSE units: 0 for a perfect reconstruction, the MSE part
    exact, the MS-SSIM part positive for a distorted image; unknown names are refused."""
    from openjai.codec.distortion import MSSSIM_SCALE, YCBCR3_SCALE, YCBCR_SCALE, distortion

    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 192, 192, generator=g)
    noisy = (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    mse = ((noisy - x) ** 2).flatten(1).mean(1) * 255.0**2
    assert torch.allclose(distortion(noisy, x, "mse"), mse)
    assert torch.allclose(distortion(x, x, "mse+msssim"), torch.zeros(2), atol=1e-3)
    ssim_part = 2 * distortion(noisy, x, "mse+msssim") - mse
    assert ((ssim_part > 0) & (ssim_part < MSSSIM_SCALE)).all()
    with pytest.raises(ValueError, match="distortion"):
        distortion(x, x, "l1")
    # ycbcr-mse: a grey error (equal in R, G, B) is pure luma, a luma-free one pure chroma
    grey = x + 0.01
    assert torch.allclose(distortion(grey, x, "ycbcr-mse"), torch.full((2,), YCBCR_SCALE * 255.0**2 * 1e-4 * 6 / 8))
    chroma = x + torch.tensor([0.01, -0.01 * 0.2126 / 0.7152, 0.0]).view(1, 3, 1, 1)  # ΔY = 0, ΔCr ≠ 0
    d = distortion(chroma, x, "ycbcr-mse")
    assert torch.allclose(d, torch.full((2,), YCBCR_SCALE * 255.0**2 * (0.01 / 1.5748) ** 2 / 8), rtol=1e-3)
    # ycbcr3-mse: the same planes weighted 3:1:1
    assert torch.allclose(distortion(grey, x, "ycbcr3-mse"), torch.full((2,), YCBCR3_SCALE * 255.0**2 * 1e-4 * 3 / 5))
    assert torch.allclose(distortion(chroma, x, "ycbcr3-mse"),
                          torch.full((2,), YCBCR3_SCALE * 255.0**2 * (0.01 / 1.5748) ** 2 / 5), rtol=1e-3)
    # the '+msssim' variants add the same MS-SSIM half to either pixel term
    assert torch.allclose(2 * distortion(noisy, x, "ycbcr-mse+msssim") - distortion(noisy, x, "ycbcr-mse"),
                          ssim_part, rtol=1e-4)


def test_msssim_loss_training_runs(tmp_path):
    data, run = tmp_path / "data", tmp_path / "run"
    _make_data(data, 200, 200)
    cmd = _train_cmd(run, data, 2) + ["--loss", "mse+msssim"]
    cmd[cmd.index("--crop") + 1] = "192"  # MS-SSIM's 5 scales need > 160 px
    subprocess.run(cmd, check=True, capture_output=True)
    model, step = load_model_from_checkpoint(run / "checkpoint.safetensors")
    assert step == 2 and all(p.isfinite().all() for p in model.parameters())
    assert model.cfg.distortion == "mse+msssim"  # recorded for encoder refinement


def test_weight_average_math_and_restart():
    from openjai.train.ema import WeightAverage

    net = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(0.0)
    ema = WeightAverage(net, decay=0.5)
    with torch.no_grad():
        net.weight.fill_(1.0)
    ema.update(net)  # warm-up: d = min(0.5, 1/10) = 0.1
    assert torch.allclose(ema.state["weight"], torch.full((1, 2), 0.9))
    ema.update(net)  # d = min(0.5, 2/11)
    assert torch.allclose(ema.state["weight"], torch.full((1, 2), 0.9 * 2 / 11 + 9 / 11))
    # a stored average of another architecture is not reused
    other = WeightAverage(torch.nn.Linear(3, 1), 0.5, state=ema.state, updates=2)
    assert other.updates == 0 and other.state["weight"].shape == (1, 3)
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(net, 1.0)


def test_checkpoint_keeps_the_weight_average(tmp_path):
    data, run = tmp_path / "data", tmp_path / "run"
    _make_data(data)
    subprocess.run(_train_cmd(run, data, 3) + ["--ema", "0.9"], check=True, capture_output=True)
    ckpt = run / "checkpoint.safetensors"
    averaged, _ = load_model_from_checkpoint(ckpt)
    raw, _ = load_model_from_checkpoint(ckpt, average=False)
    differs = [not torch.equal(a, b) for a, b in zip(averaged.parameters(), raw.parameters())]
    assert any(differs)
    assert json.loads(read_metadata(ckpt)["extra"])["ema_updates"] == 3
    subprocess.run(_train_cmd(run, data, 5) + ["--ema", "0.9"], check=True, capture_output=True)
    assert json.loads(read_metadata(ckpt)["extra"])["ema_updates"] == 5  # resumed, not restarted


@pytest.mark.parametrize("shape", [(2, 1, 192, 192), (1, 1, 203, 330)])
def test_ms_ssim_matches_pytorch_msssim(shape):
    """The training/refinement MS-SSIM is pytorch_msssim's (the CTTC metric's library): same
    values and gradients, odd sizes included (avg-pool padding)."""
    from pytorch_msssim import ms_ssim as reference

    from openjai.codec.distortion import ms_ssim

    g = torch.Generator().manual_seed(1)
    x = torch.rand(shape, generator=g)
    y = (x + 0.08 * torch.randn(shape, generator=g)).clamp(0, 1)
    a, b = y.clone().requires_grad_(True), y.clone().requires_grad_(True)
    ours, ref = ms_ssim(a, x), reference(b, x, data_range=1.0, size_average=False)
    assert torch.allclose(ours, ref, atol=2e-6)
    ours.sum().backward()
    ref.sum().backward()
    assert torch.allclose(a.grad, b.grad, atol=1e-7, rtol=1e-3)
    with pytest.raises(ValueError, match="160"):
        ms_ssim(x[..., :160, :], x[..., :160, :])


def test_compiled_training_step(tmp_path, monkeypatch):
    """--compile trains (checkpoint written, weights finite), and the compiled loss is the eager
    one: the same reconstruction error exactly enough, the loss up to the rate term's noise
    (inductor draws its own random numbers).

    Inductor compiles into a cache of the test's own: the machine-wide one
    (/tmp/torchinductor_<user>) holds kernels that other runs built, and one such cache (left
    by runs that included ATEN_CPU_CAPABILITY=avx2 ones) aborted this process; a fresh one did not."""
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    from openjai.codec.config import TINY
    from openjai.codec.model import Codec
    from openjai.train.loop import _loss

    torch.manual_seed(0)
    model = Codec(TINY).train()
    x, level, lambdas = torch.rand(2, 3, 64, 64), torch.tensor([0, 5]), torch.tensor(TINY.lambdas)
    eager = _loss(model, x, level, lambdas, "ycbcr-mse", False)
    compiled = torch.compile(_loss)(model, x, level, lambdas, "ycbcr-mse", False)
    assert torch.allclose(compiled[2], eager[2], rtol=1e-4)
    assert torch.allclose(compiled[0], eager[0], rtol=2e-2) and torch.allclose(compiled[1], eager[1], rtol=5e-2)
    data, run = tmp_path / "data", tmp_path / "run"
    _make_data(data)
    subprocess.run(_train_cmd(run, data, 2) + ["--compile"], check=True, capture_output=True)
    trained, step = load_model_from_checkpoint(run / "checkpoint.safetensors")
    assert step == 2 and all(p.isfinite().all() for p in trained.parameters())


def test_pack_for_a_gpu_machine(tmp_path):
    """train.pack re-encodes a photo folder as WebP that the sampler reads; a missing folder is
    a one-line error."""
    from openjai.train.data import CropSampler

    data, out = tmp_path / "data", tmp_path / "packed"
    _make_data(data)
    r = subprocess.run([sys.executable, "-m", "openjai.train.pack", str(out), "--data", str(data), "--no-wallpapers"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    originals = sorted(p.stem for p in data.iterdir())
    assert sorted(p.stem for p in out.glob("*.webp")) == originals
    for p in out.glob("*.webp"):
        with Image.open(p) as im, Image.open(next(data.glob(p.stem + ".*"))) as ref:
            assert im.format == "WEBP" and im.size == ref.size
    assert CropSampler(out, 64, use_wallpapers=False).batch(np.random.default_rng(0), 2).shape == (2, 3, 64, 64)
    r = subprocess.run([sys.executable, "-m", "openjai.train.pack", str(out), "--data", str(tmp_path / "none")],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "not found" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("device, message", [("cuda", "no CUDA"), ("toaster", "--device toaster")])
def test_unusable_device_is_a_clear_error(tmp_path, device, message):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    data = tmp_path / "data"
    _make_data(data)
    r = subprocess.run(_train_cmd(tmp_path / "run", data, 2) + ["--device", device], capture_output=True, text=True)
    assert r.returncode != 0 and message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "run").exists()


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path):
    """A kill -9 during a checkpoint write leaves .checkpoint.safetensors.tmpPID behind; the
    next run removes it, but not a live process's."""
    from openjai.train.loop import _remove_stale_temporaries

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".checkpoint.safetensors.tmp{dead.pid}"
    live = tmp_path / f".log.csv.tmp{os.getpid()}"
    for p in (stale, live):
        p.write_bytes(b"partial")
    _remove_stale_temporaries(tmp_path)
    assert not stale.exists() and live.exists()


def test_export_cli_writes_a_loadable_named_point(tmp_path):
    from openjai.codec.config import TINY
    from openjai.codec.model import Codec
    from openjai.codec.weights import load_codec_weights
    from openjai.codec.zoo import entries
    from openjai.train.checkpoint import save_checkpoint

    model = Codec(TINY)
    ckpt = tmp_path / "run" / "checkpoint.safetensors"
    save_checkpoint(ckpt, model, torch.optim.Adam(model.parameters()), 7, {})
    out = tmp_path / "weights"
    cmd = [sys.executable, "-m", "openjai", "export", str(ckpt), "--outdir", str(out), "--point", "high"]
    subprocess.run(cmd + ["--name", "openjai-high"], check=True, capture_output=True)
    entry = entries(out)["high"]
    assert entry.model_id.startswith("openjai-high-") and entry.path == out / "high.safetensors"
    loaded = load_codec_weights(entry.path)
    assert loaded.model_id == entry.model_id and loaded.model.cfg.name == "openjai-high"
    assert all(torch.equal(a, b) for a, b in zip(loaded.model.state_dict().values(), model.state_dict().values()))
    assert "7 training steps" in entry.description
    r = subprocess.run(cmd[:4] + [str(tmp_path / "nothing.safetensors")], capture_output=True, text=True)
    assert r.returncode != 0 and "not found" in r.stderr and "Traceback" not in r.stderr
