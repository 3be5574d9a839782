"""Foreground extraction: make the composited training set, train (resumably), export weights.

    python -m openjai.tasks.train_segment prepare runs/segment/data --count 3000
    python -m openjai.tasks.train_segment train runs/segment/latent --data runs/segment/data --net latent --minutes 30
    python -m openjai.tasks.train_segment train runs/segment/pixel  --data runs/segment/data --net pixel  --minutes 30
    python -m openjai.tasks.train_segment export runs/segment/latent --net latent

``prepare`` writes shards of SHARD composites (composite.py, train split), each encoded by
``base`` at a random quality (the latent part only: the post-synthesis layers do not change
ŷ) with ŷ (fp16), the exact mask, the original and the decoded image; finished shards are
skipped, so it resumes. ``train`` resumes from ``<run>/state.pt`` (model and optimizer,
loaded with ``weights_only``) and stops after ``--minutes`` of wall time or ``--steps``.
The latent head learns on ŷ (whole 256² composites); the pixel anchor on PIXEL_CROP² crops
(random position, mirrored half the time) of the original or (half the time) the decoded
image, with the same loss, batch, steps and learning-rate schedule.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import openjai

from ..errors import DataError
from . import composite, run_files
from .run_files import save_shard
from .segment import LatentSegmenter, PixelSegmenter

SHARD = 100
PIXEL_CROP = 160  # the pixel net trains on crops (its cost per step is ~7× the head's at full size)
RELOAD_EVERY = 500  # steps between looks for new shards
SIZE = 256
QUALITY_RANGE = (10.0, 100.0)  # rate parameter 0.7..7 of base: ~0.05..1.5 bpp on these composites
DESCRIPTION = "foreground mask from the entropy-decoded latents (segment.py, card: segment.md)"
PLAIN = {"residual": False, "adaptive_filter": False, "lattice": False}


def prepare(folder: Path, count: int, seed: int = 0) -> None:
    """Write ``count`` training composites (in shards; existing shards are kept)."""
    folder.mkdir(parents=True, exist_ok=True)
    lc = openjai.load_model("base")
    for s in range(math.ceil(count / SHARD)):
        path = run_files.shard_path(folder, s)
        if path.exists():
            continue
        ys, masks, rgbs, decs, bpps = [], [], [], [], []
        for i in range(s * SHARD, min(count, (s + 1) * SHARD)):
            sample = composite.make_sample("train", i, SIZE, SIZE, seed)
            q = np.random.default_rng([seed, 7, i]).uniform(*QUALITY_RANGE)
            data = openjai.encode(sample.rgb, quality=q, model=lc, **PLAIN)
            ys.append(openjai.decode_latents(data, model=lc).y_hat[0].half().numpy())
            decs.append(openjai.decode(data, model=lc))
            masks.append(np.packbits(sample.mask))
            rgbs.append(sample.rgb)
            bpps.append(len(data) * 8 / SIZE**2)
        arrays = {"y": np.stack(ys), "mask": np.stack(masks), "rgb": np.stack(rgbs), "dec": np.stack(decs),
                  "bpp": np.array(bpps, np.float32)}
        save_shard(path, arrays)
        print(f"{path.name}: {len(ys)} samples, mean bpp {np.mean(bpps):.3f}", flush=True)


def load_shards(folder: Path) -> dict[str, np.ndarray]:
    """All finished shards, concatenated (masks unpacked to bool (N, H, W))."""
    out = run_files.load_shards(folder, f"python -m openjai.tasks.train_segment prepare {folder}")
    n = out["mask"].shape[0]
    out["mask"] = np.unpackbits(out["mask"], axis=1)[:, : SIZE * SIZE].reshape(n, SIZE, SIZE).astype(bool)
    return out


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE plus soft Dice (1 − 2|P∩T| / (|P| + |T|), per image), on full-resolution logits."""
    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = torch.sigmoid(logits).flatten(1)
    t = target.flatten(1)
    dice = 1 - (2 * (p * t).sum(1) + 1) / (p.sum(1) + t.sum(1) + 1)
    return bce + dice.mean()


def _batch(data: dict[str, np.ndarray], net: str, idx: np.ndarray, rng: np.random.Generator
           ) -> tuple[torch.Tensor, torch.Tensor]:
    target = torch.from_numpy(data["mask"][idx]).float()[:, None]
    if net == "latent":
        return torch.from_numpy(data["y"][idx].astype(np.float32)), target
    use_decoded = rng.random(len(idx)) < 0.5
    rgb = np.where(use_decoded[:, None, None, None], data["dec"][idx], data["rgb"][idx])
    y0, x0 = (int(v) for v in rng.integers(0, SIZE - PIXEL_CROP + 1, 2))
    crop = (..., slice(y0, y0 + PIXEL_CROP), slice(x0, x0 + PIXEL_CROP))
    x = torch.from_numpy(rgb).permute(0, 3, 1, 2).float()[crop] / 255.0
    target = target[crop]
    return (x.flip(-1), target.flip(-1)) if rng.random() < 0.5 else (x, target)


def _network(net: str) -> torch.nn.Module:
    if net == "latent":
        return LatentSegmenter()
    if net == "pixel":
        return PixelSegmenter()
    raise DataError(f"unknown network {net!r}: use 'latent' or 'pixel'")


def _lr(step: int, steps: int, base: float) -> float:
    """Linear warm-up over 100 steps, then cosine decay to 5 % over ``steps``."""
    if step < 100:
        return base * (step + 1) / 100
    return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, step / steps))))


def train(run: Path, data_dir: Path, net: str, minutes: float, steps: int, batch: int, lr: float) -> None:
    """Train (or resume) ``net`` on the shards in ``data_dir``; checkpoint every 100 steps and at the end."""
    run.mkdir(parents=True, exist_ok=True)
    data = load_shards(data_dir)
    n = len(data["bpp"])
    model = _network(net)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    step, cpu_seconds = run_files.load_state(run, model, opt)
    rng = np.random.default_rng(step)
    start, cpu0 = time.time(), time.process_time()

    def save() -> None:
        run_files.save_state(run, model, opt, step, cpu_seconds + time.process_time() - cpu0,
                             {"net": net, "samples": n, "batch": batch})

    model.train()
    running = []
    while step < steps and time.time() - start < minutes * 60:
        x, target = _batch(data, net, rng.integers(0, n, batch), rng)
        for g in opt.param_groups:
            g["lr"] = _lr(step, steps, lr)
        logits = model(x, target.shape[-2:])
        loss = segmentation_loss(logits, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        running.append(float(loss.detach()))
        if step % RELOAD_EVERY == 0 and len(run_files.shard_paths(data_dir)) * SHARD > n:
            data = load_shards(data_dir)  # prepare is still adding shards
            n = len(data["bpp"])
        if step % 50 == 0:
            with open(run / "log.txt", "a") as log:
                print(f"step {step} loss {np.mean(running):.4f} ({time.time() - start:.0f} s)", file=log)
            running = []
        if step % 100 == 0:
            save()
    save()


def export(run: Path, net: str) -> Path:
    """Write the run's weights to openjai/tasks/weights/ (run_files.export_task); returns their path."""
    return run_files.export_task("segment", run, net, DESCRIPTION)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m openjai.tasks.train_segment")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("out", type=Path)
    p.add_argument("--count", type=int, default=3000)
    p.add_argument("--seed", type=int, default=0)
    t = sub.add_parser("train")
    t.add_argument("run", type=Path)
    t.add_argument("--data", type=Path, required=True)
    t.add_argument("--net", choices=("latent", "pixel"), required=True)
    t.add_argument("--minutes", type=float, default=30.0)
    t.add_argument("--steps", type=int, default=6000)
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--lr", type=float, default=2e-3)
    e = sub.add_parser("export")
    e.add_argument("run", type=Path)
    e.add_argument("--net", choices=("latent", "pixel"), required=True)
    a = ap.parse_args(argv)
    if a.cmd == "prepare":
        prepare(a.out, a.count, a.seed)
    elif a.cmd == "train":
        train(a.run, a.data, a.net, a.minutes, a.steps, a.batch, a.lr)
    else:
        print(export(a.run, a.net))


if __name__ == "__main__":
    main()
