"""Encoder effort levels: BD-rate against effort 0 and encode time, per level.

    python benchmarks/effort.py ../shared/data/val [--limit N] [--betas 1,2,3,4,5,6] [--threads T]

For each photo and level, the same rate parameters β are coded (no rate search, so every level
sees the same operating points), decoded with the one decoder, and measured (PSNR-Y, MS-SSIM on
Y, as the CTTC). BD-rate (PCHIP) of each level against level 0 is computed per photo and
averaged; encode time is the mean seconds per megapixel of one ``code(β)`` call, measured in
this process for all levels alike.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from compare_models import METRICS, rd_points  # benchmarks/ is on sys.path when run as a script

import openjai
from openjai import image
from openjai.codec.refine import EFFORT_ITERATIONS
from openjai.eval.bdrate import bd_rate
from openjai.eval.cttc import find_images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--limit", type=int, default=None, help="first N photos only")
    ap.add_argument("--betas", default="1,2,3,4,5,6", help="rate parameters coded at every level")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default="base")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    lc = openjai.load_model(args.model)
    betas = [float(b) for b in args.betas.split(",")]
    levels = range(len(EFFORT_ITERATIONS))
    bd = {lv: {m: [] for m in METRICS} for lv in levels}
    s_per_mp = {lv: [] for lv in levels}
    for name, path in find_images(args.data, args.limit):
        inp = image.load(path)
        mp = inp.rgb.shape[0] * inp.rgb.shape[1] / 1e6
        curves = {}
        for lv in levels:
            curves[lv], seconds = rd_points(lc, inp, betas, effort=lv)
            s_per_mp[lv] += [s / mp for s in seconds]
        for lv in levels:
            for j, m in enumerate(METRICS, start=1):
                bd[lv][m].append(bd_rate(curves[0][:, 0], curves[0][:, j], curves[lv][:, 0], curves[lv][:, j]))
        print(f"{name}: " + ", ".join(f"e{lv} {bd[lv]['psnr_y'][-1]:+.2f} %" for lv in levels), flush=True)
    print(f"\n{len(bd[0]['psnr_y'])} photos, β = {args.betas}, {args.threads} thread(s)")
    print("| effort | iterations | BD-rate PSNR-Y | BD-rate MS-SSIM | code(β) s/MP |")
    print("|---:|---:|---:|---:|---:|")
    for lv in levels:
        print(f"| {lv} | {EFFORT_ITERATIONS[lv]} | {np.mean(bd[lv]['psnr_y']):+.2f} % | "
              f"{np.mean(bd[lv]['ms_ssim']):+.2f} % | {np.mean(s_per_mp[lv]):.2f} |")


if __name__ == "__main__":
    main()
