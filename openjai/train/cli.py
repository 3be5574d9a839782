"""`openjai train` / `python -m openjai.train`: argument parsing for the training loop."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch

from ..codec.config import DISTORTIONS
from .loop import TrainConfig, train

DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "train"


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = TrainConfig(run_dir=Path("."), data=DEFAULT_DATA)
    p.add_argument("run_dir", type=Path, help="run folder: checkpoint.safetensors and log.csv live here; "
                   "an existing checkpoint is resumed")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of training photos (default: %(default)s)")
    p.add_argument("--steps", type=int, default=d.steps, help="train until this total step count (default: %(default)s)")
    p.add_argument("--batch", type=int, default=d.batch, help="crops per step (default: %(default)s)")
    p.add_argument("--crop", type=int, default=d.crop, help="crop side in px, multiple of 64 (default: %(default)s)")
    p.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate; overrides a resumed one (default: %(default)s)")
    p.add_argument("--threads", type=int, default=d.threads, help="torch threads (default: %(default)s)")
    p.add_argument("--checkpoint-minutes", type=float, default=d.checkpoint_minutes,
                   help="minutes between atomic checkpoints (default: %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="data and init seed (default: %(default)s)")
    p.add_argument("--no-wallpapers", action="store_true", help="train on --data only, without Debian wallpaper photos")
    p.add_argument("--init", type=Path, default=None, help="warm start from a weights file when the run is new")
    p.add_argument("--widen", type=int, nargs=2, default=None, metavar=("N", "M"),
                   help="with --init: grow the warm-start model to N transform and M latent channels, "
                   "keeping what it learned (openjai/train/widen.py)")
    p.add_argument("--bf16", action="store_true",
                   help="mixed precision: convolutions in bfloat16, everything else float32 (~1.35x "
                   "faster on CPUs with AVX512-BF16, slower on others)")
    p.add_argument("--device", default="cpu",
                   help="torch device to train on, e.g. cuda (default: %(default)s; docs/training.md)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the training step: a few minutes of compiling (a C++ compiler is "
                   "needed), then 1.25-1.5x more steps/s on CPU (docs/training.md)")
    p.add_argument("--context", choices=["checkerboard"], default=None,
                   help="with --init: add a checkerboard context model (codec/context.py) to the "
                   "warm-start model, starting from the same function")
    p.add_argument("--extend-rates", type=int, nargs=2, default=None, metavar=("BELOW", "ABOVE"),
                   help="with --init: add rate points under and over the warm-start model's λ ladder, "
                   "same spacing, for lower and higher bit rates (old β b becomes b + BELOW)")
    p.add_argument("--loss", choices=DISTORTIONS, default="mse",
                   help="distortion term: 255²·MSE, or YCbCr MSE weighted 6:1:1; '+msssim': half of that "
                   "plus half of a scaled 1 - MS-SSIM on luma (openjai/codec/distortion.py; the weights file "
                   "records it for encoder refinement; default: %(default)s)")
    p.add_argument("--ema", type=float, default=d.ema_decay, metavar="DECAY",
                   help="decay of the weights' moving average that checkpoints keep and export ships "
                   "(openjai/train/ema.py; default: %(default)s)")
    p.add_argument("--tiny", action="store_true", help="tiny test architecture (for tests and smoke runs)")


def run(args: argparse.Namespace) -> int:
    from ..codec.config import TINY, CodecConfig

    if args.crop % 64:
        raise SystemExit("--crop must be a multiple of 64")
    cfg = TrainConfig(
        run_dir=args.run_dir, data=args.data, steps=args.steps, batch=args.batch, crop=args.crop, lr=args.lr,
        threads=args.threads, checkpoint_minutes=args.checkpoint_minutes, seed=args.seed,
        use_wallpapers=not args.no_wallpapers, init_weights=args.init,
        widen_to=tuple(args.widen) if args.widen else None, bf16=args.bf16, compile=args.compile,
        device=args.device, context=args.context, loss=args.loss, ema_decay=args.ema,
        extend_rates=tuple(args.extend_rates) if args.extend_rates else None,
    )
    try:
        device = torch.device(args.device)
    except RuntimeError as e:
        raise SystemExit(f"--device {args.device}: {e}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: this torch sees no CUDA GPU")
    if (args.widen or args.context or args.extend_rates) and not args.init:
        raise SystemExit("--widen, --context and --extend-rates need --init (the model to grow)")
    path = train(cfg, TINY if args.tiny else CodecConfig())
    print(f"checkpoint: {path}")
    return 0


def add_export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", type=Path, help="training checkpoint (run_dir/checkpoint.safetensors); "
                   "its weights' moving average is exported when it has one")
    p.add_argument("--point", default="base", help="operating point name: writes <point>.safetensors and "
                   "<point>.toml (default: %(default)s)")
    p.add_argument("--outdir", type=Path, default=Path(__file__).resolve().parents[1] / "weights",
                   help="folder of the weights (default: the package's weights folder)")
    p.add_argument("--description", default="", help="one line for the .toml")
    p.add_argument("--name", default=None, help="model name, the first part of the model id (default: the "
                   "trained configuration's, e.g. openjai-base)")


def run_export(args: argparse.Namespace) -> int:
    from ..codec.weights import export
    from ..codec.zoo import write_entry
    from .checkpoint import load_model_from_checkpoint

    model, step = load_model_from_checkpoint(args.checkpoint)
    if args.name:
        model.cfg = dataclasses.replace(model.cfg, name=args.name)
    weights = args.outdir / f"{args.point}.safetensors"
    model_id = export(model, weights)
    write_entry(args.point, model_id, weights, args.description or f"{model.cfg.name}, {step} training steps")
    print(f"{weights}: model {model_id} ({step} steps)")
    return 0
