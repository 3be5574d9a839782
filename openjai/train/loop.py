"""Resumable rate-distortion training of one variable-rate model.

Each example gets its own rate point k (uniform over the ladder); the loss is
mean_i(λ_k(i) · D_i + bpp_i), D = 255² · MSE by default (codec/distortion.py for the others).
Checkpoints are atomic and written every ``checkpoint_minutes``; SIGTERM/SIGINT save one and
exit cleanly. Crops are drawn from a
generator seeded with (seed, step), so a resumed run sees the data it would have seen.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..codec.config import CodecConfig
from ..codec.distortion import distortion
from ..codec.model import Codec
from ..files import atomic_write
from .checkpoint import load_checkpoint, save_checkpoint
from .data import CropSampler
from .ema import WeightAverage
from .stop import StopRequest
from .widen import add_context, extend_rates, widen

LOG_FIELDS = ["step", "seconds", "steps_per_s", "loss", "bpp", "psnr"]


@dataclass
class TrainConfig:
    """What a training run needs; CLI flags map one to one onto these fields."""

    run_dir: Path
    data: Path
    steps: int = 100_000
    batch: int = 8
    crop: int = 128
    lr: float = 5e-4
    threads: int = 2
    checkpoint_minutes: float = 5.0
    log_every: int = 100
    seed: int = 0
    use_wallpapers: bool = True
    init_weights: Path | None = None  # warm start (model only) when no checkpoint exists
    widen_to: tuple[int, int] | None = None  # (N, M): widen the warm-start model (train/widen.py)
    bf16: bool = False  # convolutions in bfloat16 (autocast); needs a CPU with AVX512-BF16/AMX to pay
    device: str = "cpu"  # "cuda" on a machine with a GPU (bf16 autocast there too)
    compile: bool = False  # torch.compile the loss (minutes to compile, then faster steps; needs a C++ compiler)
    context: str | None = None  # "checkerboard": add a context model to the warm-start model
    extend_rates: tuple[int, int] | None = None  # (below, above): more rate points (train/widen.py)
    loss: str = "mse"  # distortion term (codec/distortion.py); recorded in the model config
    ema_decay: float = 0.999  # moving average of the weights, what export ships (train/ema.py)


def _loss(model: Codec, x: torch.Tensor, level: torch.Tensor, lambdas: torch.Tensor, kind: str,
          bf16: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Training loss of a batch, and the (B,) bpp and RGB MSE of its examples (for the log)."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        out = model(x, level.float())
    mse = ((out.x_hat - x) ** 2).flatten(1).mean(1).detach()
    bpp = (out.bits_y + out.bits_z) / (x.shape[2] * x.shape[3])
    return (lambdas[level] * distortion(out.x_hat, x, kind) + bpp).mean(), bpp, mse


def _remove_stale_temporaries(run_dir: Path) -> None:
    """Delete temporary files that a killed writer left in ``run_dir`` (atomic_write names them
    ``.NAME.tmpPID``; a live PID's file is another writer's and stays)."""
    for tmp in run_dir.glob(".*.tmp*"):
        pid = tmp.name.rsplit(".tmp", 1)[1]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except PermissionError:  # alive, another user's
            pass


def _truncate_log(path: Path, step: int) -> None:
    """Drop log rows written after the checkpoint a resumed run starts from, and a row or header
    that a kill cut short; a log without a whole header is removed (the run writes a new one)."""
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)
    if not lines or not lines[0].endswith("\n"):  # killed before its header was flushed
        path.unlink()
        return
    keep = lines[:1] + [ln for ln in lines[1:] if ln.endswith("\n") and ln.split(",", 1)[0].isdigit()
                        and int(ln.split(",", 1)[0]) <= step]
    if len(keep) != len(lines):
        atomic_write(path, "".join(keep).encode(), force=True)


#: learning-rate multiplier of the context networks: they start from zero inside a trained model
CONTEXT_LR_FACTOR = 3.0


def _make_optimizer(lr: float):
    def make(model: Codec) -> torch.optim.Adam:
        ctx = [p for n, p in model.named_parameters() if n.startswith("context.")]
        rest = [p for n, p in model.named_parameters() if not n.startswith("context.")]
        groups = [{"params": rest, "lr_factor": 1.0}]
        if ctx:
            groups.append({"params": ctx, "lr_factor": CONTEXT_LR_FACTOR})
        for g in groups:
            g["lr"] = lr * g["lr_factor"]
        return torch.optim.Adam(groups, lr=lr)

    return make


def train(cfg: TrainConfig, model_cfg: CodecConfig = CodecConfig()) -> Path:
    """Train until ``cfg.steps`` (resuming from ``run_dir/checkpoint.safetensors``); returns its path."""
    torch.set_num_threads(cfg.threads)
    ckpt = cfg.run_dir / "checkpoint.safetensors"
    if ckpt.exists():
        model, opt, step, extra, ema_state = load_checkpoint(ckpt, _make_optimizer(cfg.lr), cfg.device)
        for group in opt.param_groups:
            group["lr"] = cfg.lr * group["lr_factor"]
    else:
        model = Codec(model_cfg)
        if cfg.init_weights:
            from ..codec.weights import load_codec_weights  # local: weights imports the coder

            model = load_codec_weights(cfg.init_weights).model
            if cfg.widen_to is not None:
                n, m = cfg.widen_to
                model = widen(model, dataclasses.replace(model.cfg, channels=n, latent_channels=m), cfg.seed)
            if cfg.context and model.context is None:
                model = add_context(model, model.cfg.context_hidden)
            if cfg.extend_rates is not None:
                model = extend_rates(model, *cfg.extend_rates)
        torch.manual_seed(cfg.seed)
        model.to(cfg.device)
        opt = _make_optimizer(cfg.lr)(model)
        step, extra, ema_state = 0, {"train_seconds": 0.0}, {}
    # the weights file names what training minimises, so encoder refinement minimises the same
    model.cfg = dataclasses.replace(model.cfg, distortion=cfg.loss)
    ema = WeightAverage(model, cfg.ema_decay, ema_state or None, extra.get("ema_updates", 0))
    model.train()
    sampler = CropSampler(cfg.data, cfg.crop, cfg.use_wallpapers)
    lambdas = torch.tensor(model.cfg.lambdas, device=cfg.device)
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(cfg.run_dir)
    log_path = cfg.run_dir / "log.csv"
    _truncate_log(log_path, step)
    new_log = not log_path.exists()
    log_file = open(log_path, "a", newline="")
    log = csv.writer(log_file)
    if new_log:
        log.writerow(LOG_FIELDS)
        log_file.flush()

    last_save = time.monotonic()
    window = {"n": 0, "loss": 0.0, "bpp": 0.0, "mse_db": 0.0, "t0": time.monotonic()}
    # inductor fuses the element-wise work (GDN, likelihoods, MS-SSIM), about half of a CPU step
    loss_fn = torch.compile(_loss) if cfg.compile else _loss
    bar = tqdm(total=cfg.steps, initial=step, desc="train", unit="step", disable=None)
    with StopRequest() as stop:
        try:
            while step < cfg.steps and not stop.requested:
                rng = np.random.default_rng([cfg.seed, step])
                x = torch.from_numpy(sampler.batch(rng, cfg.batch)).to(cfg.device)
                level = torch.from_numpy(rng.integers(0, model.cfg.levels, size=cfg.batch)).to(cfg.device)
                loss, bpp, mse = loss_fn(model, x, level, lambdas, cfg.loss, cfg.bf16)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                ema.update(model)
                step += 1
                bar.update(1)
                window["n"] += 1
                # summed as tensors, read once per log row: no device synchronisation per step
                window["loss"] += loss.detach()
                window["bpp"] += bpp.detach().mean()
                window["mse_db"] += (10 * torch.log10(1.0 / mse.clamp_min(1e-10))).mean()
                if step % cfg.log_every == 0:
                    now = time.monotonic()
                    n = window["n"]
                    elapsed = now - window["t0"]
                    extra["train_seconds"] = extra.get("train_seconds", 0.0) + elapsed
                    row = [step, round(extra["train_seconds"], 1), round(n / elapsed, 3),
                           round(float(window["loss"]) / n, 5), round(float(window["bpp"]) / n, 5),
                           round(float(window["mse_db"]) / n, 3)]
                    log.writerow(row)
                    log_file.flush()
                    bar.set_postfix(loss=row[3], bpp=row[4], psnr=row[5])
                    window = {"n": 0, "loss": 0.0, "bpp": 0.0, "mse_db": 0.0, "t0": now}
                if time.monotonic() - last_save > cfg.checkpoint_minutes * 60:
                    save_checkpoint(ckpt, model, opt, step, extra, ema)
                    last_save = time.monotonic()
            save_checkpoint(ckpt, model, opt, step, extra, ema)
        finally:
            bar.close()
            log_file.close()
    return ckpt


def train_config_dict(cfg: TrainConfig) -> dict:
    d = asdict(cfg)
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}

