"""The residual layer against the learned codec alone, and its quantizer-step scales.

    python benchmarks/residual_layer.py ../shared/data/val [--model high] [--every 4]
        [--crop 512x768] [--betas 3,4,...,11] [--scales 3.5:2.45,2.5:2.0] [--threads 2]

Every photo (every ``--every``-th, top-left ``--crop``) is coded at the same β with the
residual layer off and with it on at each scale (STEP_SCALE:CHROMA_STEP of
openjai/codec/residual.py; the first is the shipped one). Printed per scale, against the
layer off: BD-rate (PCHIP, per photo then averaged) in PSNR-Y, PSNR-RGB, PSNR-YUV and
MS-SSIM, and the mean difference at fixed rates (interpolated in log-bpp on each photo's
curve, where both curves reach it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from compare_models import rd_points  # benchmarks/ is on sys.path when run as a script

import openjai
from openjai import image
from openjai.codec import residual
from openjai.eval.bdrate import bd_rate
from openjai.eval.cttc import find_images

METRICS = ("psnr_y", "psnr_rgb", "psnr_yuv", "ms_ssim")
RATES = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0)


def at_rate(curve: np.ndarray, rate: float, column: int) -> float:
    """Quality at ``rate`` by log-bpp interpolation, NaN outside the curve."""
    if not curve[0, 0] <= rate <= curve[-1, 0]:
        return float("nan")
    return float(np.interp(np.log(rate), np.log(curve[:, 0]), curve[:, column]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--model", default="high")
    ap.add_argument("--every", type=int, default=4, help="every N-th photo (sorted by name), from the second")
    ap.add_argument("--crop", default="512x768", help="top-left crop HxW (default: %(default)s)")
    ap.add_argument("--betas", default="3,4,5,6,7,8,9,10,11")
    ap.add_argument("--scales", default=f"{residual.STEP_SCALE}:{residual.CHROMA_STEP}")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    lc = openjai.load_model(args.model)
    betas = [float(b) for b in args.betas.split(",")]
    scales = [tuple(float(v) for v in s.split(":")) for s in args.scales.split(",")]
    ch, cw = (int(v) for v in args.crop.split("x"))
    off: list[np.ndarray] = []
    on: dict[tuple[float, ...], list[np.ndarray]] = {s: [] for s in scales}
    for name, path in find_images(args.data)[1 :: args.every]:
        inp = image.load(np.ascontiguousarray(image.load(path).rgb[:ch, :cw]))
        off.append(rd_points(lc, inp, betas, residual=False, metrics=METRICS)[0])
        for s in scales:
            residual.STEP_SCALE, residual.CHROMA_STEP = s
            on[s].append(rd_points(lc, inp, betas, metrics=METRICS)[0])
        print(f"{name}: off {off[-1][-1, 0]:.3f} bpp / {off[-1][-1, 1]:.2f} dB at β {betas[-1]:g}; "
              + ", ".join(f"{s[0]:g}:{s[1]:g} {on[s][-1][-1, 0]:.3f} / {on[s][-1][-1, 1]:.2f}" for s in scales),
              flush=True)
    print(f"\n{len(off)} photos ({args.crop} crops), model {lc.model_id}, β = {args.betas}")
    print("| scale | " + " | ".join(f"BD {m}" for m in METRICS) + " | "
          + " | ".join(f"Δ PSNR-Y / RGB [dB], Δ MS-SSIM ×1000 at {r:g} bpp" for r in RATES) + " |")
    print("|---|" + "---:|" * (len(METRICS) + len(RATES)))
    for s in scales:
        bd = [np.nanmean([bd_rate(a[:, 0], a[:, j], b[:, 0], b[:, j], non_monotonic="pareto")
                          for a, b in zip(off, on[s])]) for j in range(1, 1 + len(METRICS))]
        diffs = []
        for r in RATES:
            d = [np.nanmean([at_rate(b, r, j) - at_rate(a, r, j) for a, b in zip(off, on[s])]) for j in (1, 2, 4)]
            diffs.append(f"{d[0]:+.2f} / {d[1]:+.2f}, {1000 * d[2]:+.2f}")
        print(f"| {s[0]:g}:{s[1]:g} | " + " | ".join(f"{v:+.1f} %" for v in bd) + " | " + " | ".join(diffs) + " |")


if __name__ == "__main__":
    main()
