"""Training of the latent → image tasks (superres, denoise): data, resumable training, export.

    python -m openjai.tasks.train_image prepare superres runs/superres/data --count 1200
    python -m openjai.tasks.train_image train superres runs/superres/latent --net latent --minutes 40
    python -m openjai.tasks.train_image train superres runs/superres/pixel --net pixel --minutes 40
    python -m openjai.tasks.train_image export superres runs/superres/latent --net latent
    (the same with ``denoise``; it has no pixel net: its anchor is FFDNet, eval_denoise.py)

``prepare`` cuts crops from /work/shared/data/train and the Debian wallpapers (composite.backgrounds,
each photo first scaled so its short side is SHORT_SIDE), CROPS_PER_PHOTO per photo, and codes the
task's input with ``base`` at a log-uniform target bpp in BPP_RANGE (the learned codec only: the
post-synthesis layers leave ŷ unchanged). Per sample it stores ŷ (fp16), the target and the decoded
input, in shards of SHARD that are skipped when present (it resumes):

    superres  HR crop HR_CROP² → LR = bicubic ÷4 (PIL, as the test set) → coded; target HR
    denoise   clean crop DN_CROP² → noise (denoise.add_noise: σ ~ U(SIGMA_RANGE) or Poisson-Gaussian)
              → coded; target the clean crop

``train`` minimises the MSE to the target (Adam; the g_s-initialised synthesis at lr/5, the new
head at lr), resumes from ``<run>/state.pt`` and stops after ``--minutes`` or ``--steps``.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import openjai

from ..errors import DataError, RateControlError
from ..train.stop import StopRequest
from . import composite, run_files
from .denoise import add_noise
from .image_net import LatentImageNet, ResidualHead
from .run_files import save_shard
from .superres import FACTOR

SHARD = 100
CROPS_PER_PHOTO = 4
SHORT_SIDE = (320, 800)
HR_CROP = 256
DN_CROP = 128
BPP_RANGE = (0.08, 1.3)
SIGMA_RANGE = (5.0, 55.0)
PG_SHARE = 0.25
RELOAD_EVERY = 100  # steps between looks for new shards
PLAIN = {"residual": False, "adaptive_filter": False, "lattice": False}
TASKS = ("superres", "denoise")
#: the head after the synthesis (image_net.ResidualHead): SR at the LR size (the shipped shape: a
#: 64×8 head gained nothing, weights/superres.md); denoising at half resolution, as FFDNet works
HEADS = {"superres": {"factor": FACTOR, "width": 32, "depth": 5},
         "denoise": {"factor": 1, "width": 64, "depth": 8, "unshuffle": 2}}
DESCRIPTIONS = {
    "superres": "x4 super-resolution from the entropy-decoded latents (superres.py, card: superres.md)",
    "denoise": "denoising from the entropy-decoded latents (denoise.py, card: denoise.md)",
}


def _crops(path: Path, size: int, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``count`` random size² crops of the photo scaled to a random short side in SHORT_SIDE."""
    with Image.open(path) as im:
        side = rng.uniform(*SHORT_SIDE)
        im.draft("RGB", (int(im.width * side / min(im.size)) + 1, int(im.height * side / min(im.size)) + 1))
        im = im.convert("RGB")
        s = max(side, size) / min(im.size)
        im = im.resize((max(size, round(im.width * s)), max(size, round(im.height * s))), Image.LANCZOS)
        a = np.asarray(im)
    out = []
    for _ in range(count):
        y, x = int(rng.integers(0, a.shape[0] - size + 1)), int(rng.integers(0, a.shape[1] - size + 1))
        out.append(a[y:y + size, x:x + size])
    return out


def _code(rgb: np.ndarray, bpp: float, lc) -> bytes:
    try:
        return openjai.encode(rgb, bpp=bpp, model=lc, **PLAIN)
    except RateControlError:  # the model's lowest rate lies above the target
        return openjai.encode(rgb, quality=0, model=lc, **PLAIN)


def _sample(task: str, crop: np.ndarray, rng: np.random.Generator, lc) -> dict[str, np.ndarray]:
    if task == "superres":
        lr = np.asarray(Image.fromarray(crop).resize((HR_CROP // FACTOR,) * 2, Image.BICUBIC))
        src, target = lr, crop
    else:
        model = "poisson-gaussian" if rng.random() < PG_SHARE else f"gaussian{rng.uniform(*SIGMA_RANGE):.1f}"
        src, target = add_noise(crop, model, rng), crop
    data = _code(src, float(np.exp(rng.uniform(*np.log(BPP_RANGE)))), lc)
    return {"y": openjai.decode_latents(data, model=lc).y_hat[0].half().numpy(), "target": target,
            "dec": openjai.decode(data, model=lc), "bpp": np.float32(len(data) * 8 / (src.shape[0] * src.shape[1]))}


def prepare(task: str, folder: Path, count: int, seed: int = 0) -> None:
    """Write ``count`` training samples of ``task`` in shards (existing shards are kept)."""
    folder.mkdir(parents=True, exist_ok=True)
    lc = openjai.load_model("base")
    photos = composite.backgrounds("train")
    size = HR_CROP if task == "superres" else DN_CROP
    for s in range(math.ceil(count / SHARD)):
        path = run_files.shard_path(folder, s)
        if path.exists():
            continue
        rng = np.random.default_rng([seed, s])
        rows: list[dict[str, np.ndarray]] = []
        while len(rows) < min(SHARD, count - s * SHARD):
            photo = photos[int(rng.integers(len(photos)))]
            rows += [_sample(task, c, rng, lc) for c in _crops(photo, size, CROPS_PER_PHOTO, rng)]
        rows = rows[: min(SHARD, count - s * SHARD)]
        save_shard(path, {k: np.stack([r[k] for r in rows]) for k in rows[0]})
        print(f"{path.name}: {len(rows)} samples, mean bpp {np.mean([r['bpp'] for r in rows]):.3f}", flush=True)


def load_shards(folder: Path) -> dict[str, np.ndarray]:
    """All finished shards, concatenated."""
    return run_files.load_shards(folder, f"python -m openjai.tasks.train_image prepare TASK {folder}")


def network(task: str, net: str) -> torch.nn.Module:
    """A training start: the latent network (g_s copy [+ head]) or, for superres, the pixel anchor."""
    if task not in TASKS:
        raise DataError(f"unknown task {task!r}: use {' or '.join(TASKS)}")
    if net == "latent":
        return LatentImageNet.from_codec(ResidualHead(**HEADS[task]))
    if net == "pixel" and task == "superres":
        return ResidualHead(**HEADS[task])
    raise DataError(f"no {net!r} network for task {task!r}")


def _rgb(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a).permute(0, 3, 1, 2).float() / 255.0


def _lr(step: int, steps: int, base: float) -> float:
    """Warm-up over 50 steps, cosine decay to 10 % at ``steps``."""
    return base * min(1.0, (step + 1) / 50) * (0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, step / steps))))


def train(task: str, run: Path, data_dir: Path, net: str, minutes: float, steps: int, batch: int, lr: float) -> None:
    """Train (or resume) ``net`` of ``task``; checkpoint every 50 steps and at the end (also when
    stopped by SIGTERM or Ctrl-C: train/stop.py)."""
    run.mkdir(parents=True, exist_ok=True)
    data = load_shards(data_dir)
    n = len(data["bpp"])
    model = network(task, net)
    groups = ([{"params": model.synthesis.parameters(), "scale": 0.2}] if net == "latent" else [])
    head = model.head if net == "latent" else model
    if head is not None:
        groups.append({"params": head.parameters(), "scale": 1.0})
    opt = torch.optim.Adam(groups, lr=lr)
    step, cpu_seconds = run_files.load_state(run, model, opt)
    rng = np.random.default_rng(step)
    start, cpu0 = time.time(), time.process_time()
    log = open(run / "log.txt", "a")

    def save() -> None:
        run_files.save_state(run, model, opt, step, cpu_seconds + time.process_time() - cpu0,
                             {"task": task, "net": net, "samples": n, "batch": batch, "lr": lr})

    model.train()
    running = []
    with StopRequest() as stop:  # SIGTERM / Ctrl-C finish the step; the save below keeps it
        while step < steps and time.time() - start < minutes * 60 and not stop.requested:
            idx = rng.integers(0, n, batch)
            x = torch.from_numpy(data["y"][idx].astype(np.float32)) if net == "latent" else _rgb(data["dec"][idx])
            target = _rgb(data["target"][idx])
            for g in opt.param_groups:
                g["lr"] = _lr(step, steps, lr) * g["scale"]
            loss = F.mse_loss(model(x), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            running.append(float(loss.detach()))
            if step % 25 == 0:
                psnr = -10 * math.log10(np.mean(running))
                print(f"step {step} mse {np.mean(running):.5f} psnr {psnr:.2f} ({time.time() - start:.0f} s)",
                      file=log, flush=True)
                running = []
            if step % 50 == 0:
                save()
            if step % RELOAD_EVERY == 0 and len(run_files.shard_paths(data_dir)) * SHARD > n:
                data = load_shards(data_dir)  # prepare is still adding shards
                n = len(data["bpp"])
        save()


def export(task: str, run: Path, net: str) -> Path:
    """Write the run's weights to openjai/tasks/weights/ (run_files.export_task); returns their path."""
    return run_files.export_task(task, run, net, DESCRIPTIONS[task])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m openjai.tasks.train_image")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("task", choices=TASKS)
    p.add_argument("out", type=Path)
    p.add_argument("--count", type=int, default=1200)
    p.add_argument("--seed", type=int, default=0)
    t = sub.add_parser("train")
    t.add_argument("task", choices=TASKS)
    t.add_argument("run", type=Path)
    t.add_argument("--data", type=Path, required=True)
    t.add_argument("--net", choices=("latent", "pixel"), default="latent")
    t.add_argument("--minutes", type=float, default=40.0)
    t.add_argument("--steps", type=int, default=3000)
    t.add_argument("--batch", type=int, default=8)
    t.add_argument("--lr", type=float, default=1e-3)
    e = sub.add_parser("export")
    e.add_argument("task", choices=TASKS)
    e.add_argument("run", type=Path)
    e.add_argument("--net", choices=("latent", "pixel"), default="latent")
    a = ap.parse_args(argv)
    if a.cmd == "prepare":
        prepare(a.task, a.out, a.count, a.seed)
    elif a.cmd == "train":
        train(a.task, a.run, a.data, a.net, a.minutes, a.steps, a.batch, a.lr)
    else:
        print(export(a.task, a.run, a.net))


if __name__ == "__main__":
    main()
