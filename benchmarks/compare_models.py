"""Compare trained models (weights files or training checkpoints) on the same photos and β.

    python benchmarks/compare_models.py ../shared/data/val A B [C ...] [--limit N] [--betas 0.5,1.5,...]

A, B, ... are weights files (``*.safetensors`` written by ``openjai export`` or shipped)
or training checkpoints (``runs/X/checkpoint.safetensors``; exported to a temporary weights
file first). Every model codes the same photos at the same rate points (no rate search; β is
read on the first model's λ ladder, and a model with another ladder, from ``train
--extend-rates``, codes at the β with the same λ); its streams are decoded, and PSNR-Y and
MS-SSIM (on Y, as the CTTC) are measured (``--metrics`` for others, e.g. psnr_rgb,psnr_yuv). Printed:
BD-rate (PCHIP, per photo then averaged) of each model against the first, and each model's
mean bpp / PSNR-Y per β. This is the quick check of a training change ("measure val RD for
every change"); the full CTTC is ``openjai eval``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import openjai
from openjai import image
from openjai.codec.coder import Encoder
from openjai.codec.refine import beta_at, lambda_at
from openjai.codec.weights import LoadedCodec, export, load_codec_weights
from openjai.eval.bdrate import bd_rate
from openjai.eval.cttc import find_images
from openjai.eval.metrics import compute_all
from openjai.train.checkpoint import load_any_model

METRICS = ("psnr_y", "ms_ssim")


def load_any(path: Path, tmp: Path) -> tuple[LoadedCodec, str]:
    """A weights file or checkpoint, exported to ``tmp`` (coding tables built); with a label."""
    model, label = load_any_model(path)
    out = tmp / f"{len(list(tmp.iterdir()))}.safetensors"
    export(model, out)
    return load_codec_weights(out), label


def rd_points(lc: LoadedCodec, inp: image.CodecInput, betas: list[float], effort: int = 0,
              residual: bool = True, metrics: tuple[str, ...] = METRICS) -> tuple[np.ndarray, list[float]]:
    """(len(betas), 1 + len(metrics)) bpp and metrics of the streams at each β, and the wall
    seconds of each ``code(β)`` call (also used by benchmarks/effort.py and residual_layer.py)."""
    enc = Encoder(lc, inp.rgb, inp.colour, None, effort=effort, residual=residual)
    pixels = inp.rgb.shape[0] * inp.rgb.shape[1]
    rows, seconds = [], []
    for beta in betas:
        t0 = time.perf_counter()
        data = enc.code(beta)
        seconds.append(time.perf_counter() - t0)
        q = compute_all(inp.rgb, openjai.decode(data, model=lc), metrics)
        rows.append((len(data) * 8 / pixels, *(q[m] for m in metrics)))
    return np.array(rows), seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("models", type=Path, nargs="+", help="weights files or training checkpoints; the first is the reference")
    ap.add_argument("--limit", type=int, default=None, help="first N photos only")
    ap.add_argument("--betas", default="0.5,1.5,2.5,3.5,4.5,5.5,6.5,7", help="rate parameters coded by every model")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--metrics", default=",".join(METRICS), help="metrics of openjai.eval.metrics; the first is printed per photo")
    args = ap.parse_args()
    metrics = tuple(args.metrics.split(","))
    torch.set_num_threads(args.threads)
    betas = [float(b) for b in args.betas.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        models = [load_any(p, Path(tmp)) for p in args.models]
        curves: list[list[np.ndarray]] = [[] for _ in models]
        # each model's β at the first model's λ of each requested β
        model_betas = [[beta_at(lc.model, lambda_at(models[0][0].model, b)) for b in betas] for lc, _ in models]
        for name, path in find_images(args.data, args.limit):
            inp = image.load(path)
            for i, (lc, _) in enumerate(models):
                curves[i].append(rd_points(lc, inp, model_betas[i], metrics=metrics)[0])
            print(f"{name}: " + ", ".join(
                f"{label} {bd_rate(curves[0][-1][:, 0], curves[0][-1][:, 1], c[-1][:, 0], c[-1][:, 1]):+.2f} %"
                for (_, label), c in zip(models[1:], curves[1:])), flush=True)
    print(f"\n{len(curves[0])} photos, β = {args.betas}")
    print("| model | " + " | ".join(f"BD-rate {m}" for m in metrics) + " | "
          + " | ".join(f"β {b:g} bpp / {metrics[0]}" for b in betas) + " |")
    print("|---|" + "---:|" * (len(metrics) + len(betas)))
    for (_, label), c in zip(models, curves):
        bd = [np.mean([bd_rate(r[:, 0], r[:, j], t[:, 0], t[:, j]) for r, t in zip(curves[0], c)])
              for j in range(1, 1 + len(metrics))]
        mean = np.mean(c, axis=0)
        print(f"| {label} | " + " | ".join(f"{v:+.2f} %" for v in bd) + " | "
              + " | ".join(f"{m[0]:.3f} / {m[1]:.2f}" for m in mean) + " |")


if __name__ == "__main__":
    main()
