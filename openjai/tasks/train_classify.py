"""Train the latent classifier's bridge (classify.py) on the distillation set (distill_set.py).

    python -m openjai.tasks.train_classify runs/classify/train --set runs/classify/set --steps 3000
        [--init openjai/tasks/weights/classify.safetensors]
    python -m openjai.tasks.train_classify runs/classify/train --export openjai/tasks/weights/classify.safetensors

Feature distillation: squared error between the bridge's output and ResNet-50's features of
the original crop at the join ``--join`` (layer2 or layer3, resnet.JOIN_CHANNELS), both
normalised per channel, not counted where the teacher is 0 and the prediction below it
(``_feature_loss``). With ``--kl-weight`` > 0, logit distillation is added from ``--kl-from``
on: KL(teacher ‖ student) of the softmax through ResNet-50's frozen tail. It is off by default:
trained with it from step 0, the bridge found features that please the tail on the training set
and match nothing (held-out feature error above the mean's, labelled top-1 ≤ 1.2 %); on the
feature loss alone the same bridge reached 35–41 % in 1 200 steps (weights/classify.md).
Resumable: ``ckpt.safetensors`` (weights, Adam moments, step, RNG; no pickle) is rewritten
atomically every ``--every`` seconds and on SIGTERM or Ctrl-C (train/stop.py); rerunning the
same command continues. New chunks that the set builder has written since are picked up at
each checkpoint. Chunks whose index is ≡ 15 mod 16 are held out: ``log.txt`` reports the
held-out feature error and how often the student's top-1 agrees with the teacher's (on the
first 256 held-out crops).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save

from .. import api
from ..errors import DataError, exit_status
from ..files import atomic_write
from ..train.stop import StopRequest
from .classify import TASK, Bridge
from .registry import write_task_entry
from .resnet import JOIN_CHANNELS, load_resnet50

CKPT = "ckpt.safetensors"
HELD_OUT = 16
HELD_EVAL = 256  # held-out crops evaluated at each checkpoint (the first ones: the same every time)
NORM_CROPS = 1024  # crops whose statistics normalise a new bridge's inputs and outputs


class DistillSet:
    """The chunks of the distillation set, in memory (fp16), split into training and held-out;
    of the teacher's features only those of ``join`` (as ``feat``)."""

    def __init__(self, folder: Path, join: str) -> None:
        self.folder, self.join = folder, join
        self.loaded: set[Path] = set()
        self.tensors: dict[str, dict[str, torch.Tensor]] = {}
        self.refresh()
        if set(self.tensors) != {"train", "held"}:
            raise DataError(f"{folder} holds too few chunks (need ≥ {HELD_OUT}): "
                            "run python -m openjai.tasks.distill_set")

    def refresh(self) -> int:
        """Load chunks written since the last call; returns the number of training crops."""
        new: dict[str, dict[str, list[torch.Tensor]]] = {}
        for path in sorted(self.folder.glob("chunk_*.safetensors")):
            if path in self.loaded:
                continue
            part = "held" if int(path.stem.split("_")[1]) % HELD_OUT == HELD_OUT - 1 else "train"
            with safe_open(str(path), framework="pt") as f:  # reads only the join's features
                for k, name in (("y_hat", "y_hat"), ("feat", f"feat_{self.join}"), ("logits", "logits")):
                    new.setdefault(part, {}).setdefault(k, []).append(f.get_tensor(name))
            self.loaded.add(path)
        for part, d in new.items():  # one copy of the set in memory (fp16), plus the new chunks while joining
            old = self.tensors.get(part, {})
            self.tensors[part] = {k: torch.cat(([old[k]] if k in old else []) + v) for k, v in d.items()}
        return len(self.tensors["train"]["feat"]) if "train" in self.tensors else 0

    def batch(self, n: int, gen: torch.Generator, part: str = "train") -> tuple[torch.Tensor, ...]:
        t = self.tensors[part]
        i = torch.randint(len(t["feat"]), (n,), generator=gen)
        r = torch.randint(t["y_hat"].shape[1], (n,), generator=gen)  # one of the crop's rates
        return t["y_hat"][i, r].float(), t["feat"][i].float(), t["logits"][i].float()


def _init_normalisation(bridge: Bridge, data: DistillSet) -> None:
    """Per-channel statistics of ŷ and of the teacher's features, from the first ``NORM_CROPS``
    training crops (the whole set in float32 would need 4× its fp16 memory: 17 GB for 20 000 crops)."""
    t = {k: v[:NORM_CROPS] for k, v in data.tensors["train"].items()}
    y = t["y_hat"].float().transpose(0, 2).reshape(t["y_hat"].shape[2], -1)
    f = t["feat"].float().transpose(0, 1).reshape(t["feat"].shape[1], -1)
    bridge.in_mean.copy_(y.mean(1))
    bridge.in_std.copy_(y.std(1).clamp_min(1e-3))
    bridge.out_mean.copy_(f.mean(1))
    bridge.out_std.copy_(f.std(1).clamp_min(1e-3))


def _feature_loss(bridge: Bridge, pred: torch.Tensor, feat: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Normalised squared error, skipping where the teacher is 0 and the prediction ≤ 0: the
    ReLU ahead of layer4 makes both 0 there (the partial L2 of Heo et al., ICCV 2019)."""
    target = (feat - bridge.out_mean[:, None, None]) / bridge.out_std[:, None, None]
    err = (pred - target).square()
    err = torch.where((feat <= 0) & (pred <= target), torch.zeros_like(err), err)
    return err.mean() if reduction == "mean" else err.sum()


def _losses(bridge: Bridge, tail, batch, kl_weight: float, bf16: bool) -> tuple[torch.Tensor, torch.Tensor]:
    y, feat, teacher = batch
    with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        pred = bridge.normalised(y)
    pred = pred.float()
    mse = _feature_loss(bridge, pred, feat)
    if kl_weight == 0:
        return mse, torch.zeros(())
    f = torch.relu(pred * bridge.out_std[:, None, None] + bridge.out_mean[:, None, None])
    with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        logits = tail(f, bridge.join)
    kl = F.kl_div(F.log_softmax(logits.float(), 1), F.log_softmax(teacher, 1), log_target=True, reduction="batchmean")
    return mse, kl


def _save(path: Path, bridge: Bridge, opt: torch.optim.Optimizer, step: int) -> None:
    tensors = {f"model.{k}": v.contiguous() for k, v in bridge.state_dict().items()}
    for i, p in enumerate(bridge.parameters()):
        for k, v in opt.state.get(p, {}).items():
            tensors[f"adam.{i}.{k}"] = torch.as_tensor(v).reshape(-1).float()
    tensors["rng.torch"] = torch.get_rng_state()
    meta = {"step": str(step), "width": str(bridge.stem.out_channels), "blocks": str(len(bridge.blocks)),
            "inner": str(bridge.inner),
            "join": bridge.join}
    atomic_write(path, save(tensors, meta), force=True)


def _load(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata())


def _evaluate(bridge: Bridge, tail, data: DistillSet) -> tuple[float, float]:
    """Held-out normalised feature MSE and top-1 agreement with the teacher (the first ``HELD_EVAL``
    held-out crops at both rates)."""
    t = {k: v[:HELD_EVAL] for k, v in data.tensors["held"].items()}
    mse, agree, n = 0.0, 0, 0
    bridge.eval()
    with torch.no_grad():
        for r in range(t["y_hat"].shape[1]):
            for s in range(0, len(t["feat"]), 64):
                y, feat, teacher = t["y_hat"][s:s + 64, r].float(), t["feat"][s:s + 64].float(), t["logits"][s:s + 64]
                mse += _feature_loss(bridge, bridge.normalised(y), feat, "sum").item() / feat[0].numel()
                agree += (tail(bridge(y), bridge.join).argmax(1) == teacher.float().argmax(1)).sum().item()
                n += len(y)
    bridge.train()
    return mse / n, agree / n


def train(run: Path, set_dir: Path, steps: int, batch: int, lr: float, kl_from: int, kl_weight: float,
          width: int, blocks: int, join: str, every: float, bf16: bool = False, init: Path | None = None,
          inner: int = 0) -> None:
    ckpt = run / CKPT
    start = None
    if init is not None and not ckpt.exists():  # a resumed run ignores --init
        if not init.is_file():
            raise DataError(f"--init {init} not found: give a bridge weights file (e.g. the shipped "
                            "openjai/tasks/weights/classify.safetensors)")
        start = Bridge.from_state(load_file(init))
    run.mkdir(parents=True, exist_ok=True)
    tensors, meta = _load(ckpt) if ckpt.exists() else ({}, {"join": start.join if start else join})
    data = DistillSet(set_dir, meta["join"])
    net, _ = load_resnet50()
    for p in net.parameters():
        p.requires_grad_(False)
    if ckpt.exists():
        bridge = Bridge(width=int(meta["width"]), blocks=int(meta["blocks"]), join=meta["join"],
                        inner=int(meta.get("inner", 0)))
        bridge.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        step = int(meta["step"])
        torch.set_rng_state(tensors["rng.torch"])
    elif start is not None:  # its shape, join and normalisation come with it
        bridge, step = start.train(), 0
    else:
        bridge, step = Bridge(width=width, blocks=blocks, join=join, inner=inner), 0
        _init_normalisation(bridge, data)
    opt = torch.optim.Adam(bridge.parameters(), lr=lr)
    for i, p in enumerate(bridge.parameters()):
        if f"adam.{i}.exp_avg" in tensors:
            opt.state[p] = {"step": tensors[f"adam.{i}.step"].reshape(()),
                            "exp_avg": tensors[f"adam.{i}.exp_avg"].reshape(p.shape),
                            "exp_avg_sq": tensors[f"adam.{i}.exp_avg_sq"].reshape(p.shape)}
    gen = torch.Generator().manual_seed(step)
    log = open(run / "log.txt", "a")
    last, t0 = time.monotonic(), time.monotonic()
    with StopRequest() as stop:
        while step < steps and not stop.requested:
            for g in opt.param_groups:  # cosine decay over the whole run
                g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
            mse, kl = _losses(bridge, net.tail, data.batch(batch, gen), kl_weight if step >= kl_from else 0.0, bf16)
            opt.zero_grad(set_to_none=True)
            (mse + kl * (kl_weight if step >= kl_from else 0.0)).backward()
            opt.step()
            step += 1
            if step % 25 == 0:
                print(json.dumps({"step": step, "mse": round(mse.item(), 4), "kl": round(kl.item(), 4),
                                  "s_per_step": round((time.monotonic() - t0) / 25, 2)}), file=log, flush=True)
                t0 = time.monotonic()
            if time.monotonic() - last > every or step == steps:
                _save(ckpt, bridge, opt, step)
                held_mse, agree = _evaluate(bridge, net.tail, data)
                crops = data.refresh()
                print(json.dumps({"step": step, "held_mse": round(held_mse, 4), "held_top1_agreement": round(agree, 4),
                                  "train_crops": crops}), file=log, flush=True)
                last = time.monotonic()
        if stop.requested and step < steps:  # asked to stop (SIGTERM, Ctrl-C): keep every step taken
            _save(ckpt, bridge, opt, step)
            print(json.dumps({"step": step, "stopped": True}), file=log, flush=True)


def export(run: Path, out: Path, force: bool) -> None:
    """The bridge of ``run``'s checkpoint as shipped weights (fp32, no optimizer state)."""
    tensors, meta = _load(run / CKPT)
    state = {k[6:]: v.float().contiguous() for k, v in tensors.items() if k.startswith("model.")}
    bridge = Bridge.from_state(state)  # loads back as a bridge
    atomic_write(out, save(state, {"step": meta["step"]}), force=force)
    write_task_entry(TASK, api.load_model("base").model_id, out,
                     f"ImageNet classification from base's latents: bridge ({bridge.stem.out_channels} wide, "
                     f"{len(bridge.blocks)} {f'bottleneck ({bridge.inner})' if bridge.inner else 'residual'} blocks) "
                     f"to ResNet-50 {bridge.join}, {meta['step']} steps", force=force)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path)
    p.add_argument("--set", type=Path, default=Path("runs/classify/set"))
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--kl-from", type=int, default=0, help="step from which logit distillation is added")
    p.add_argument("--kl-weight", type=float, default=0.0,
                   help="weight of logit distillation (0: features only, the shipped recipe)")
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--blocks", type=int, default=2)
    p.add_argument("--inner", type=int, default=0,
                   help="bottleneck blocks through this many channels (0: plain residual blocks of --width)")
    p.add_argument("--join", choices=sorted(JOIN_CHANNELS), default="layer2",
                   help="the ResNet-50 feature map the bridge reproduces (a resumed run keeps its own)")
    p.add_argument("--every", type=float, default=300.0, help="seconds between checkpoints")
    p.add_argument("--bf16", action="store_true",
                   help="convolutions in bfloat16 (autocast); pays on CPUs with AVX512-BF16 or AMX")
    p.add_argument("--threads", type=int, default=1, help="torch threads (one leaves the other core free)")
    p.add_argument("--init", type=Path, help="start a new run from these bridge weights (e.g. the shipped ones)")
    p.add_argument("--export", type=Path, help="write the bridge weights here and stop")
    p.add_argument("--force", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    def work() -> None:
        if args.export:
            export(args.run, args.export, args.force)
        else:
            train(args.run, args.set, args.steps, args.batch, args.lr, args.kl_from, args.kl_weight,
                  args.width, args.blocks, args.join, args.every, args.bf16, args.init, args.inner)

    return exit_status(work)

if __name__ == "__main__":
    sys.exit(main())
