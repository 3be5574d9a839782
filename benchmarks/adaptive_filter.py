"""The adaptive filter on and off, at matched rates (the quick check behind its design).

    python benchmarks/adaptive_filter.py ../shared/data/val [--model high] [--every 4] [--start 1]
        [--targets 0.25,0.5,1.0] [--threads 2]

Every photo (every ``--every``-th from ``--start``, sorted by name) is coded at each bpp
target by rate control, with the filter off and on (residual layer on in both, as shipped).
Printed per photo and target, and averaged per target: bpp, the change in PSNR-Y, PSNR-RGB
and MS-SSIM that the filter brings, the FILTER section's size, and encode / decode seconds
with the filter.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

import openjai
from openjai import image
from openjai.codec import container
from openjai.codec.coder import Encoder
from openjai.codec.ratecontrol import match_bpp
from openjai.eval.cttc import find_images
from openjai.eval.metrics import compute_all

METRICS = ["psnr_y", "psnr_rgb", "ms_ssim"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--model", default="high")
    ap.add_argument("--every", type=int, default=4, help="every N-th photo (sorted by name)")
    ap.add_argument("--start", type=int, default=1, help="index of the first photo (default: %(default)s)")
    ap.add_argument("--targets", default="0.25,0.5,1.0", help="bpp targets (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    lc = openjai.load_model(args.model)
    targets = [float(t) for t in args.targets.split(",")]
    gains: dict[float, list[tuple[float, float, float]]] = {t: [] for t in targets}
    for name, path in find_images(args.data)[args.start :: args.every]:
        inp = image.load(path)
        for target in targets:
            row = {}
            for on in (False, True):
                enc = Encoder(lc, inp.rgb, inp.colour, inp.alpha, adaptive_filter=on)
                t0 = time.perf_counter()
                data = match_bpp(enc, target)
                t1 = time.perf_counter()
                out = openjai.decode(data.data, model=lc)
                t2 = time.perf_counter()
                size = len(container.parse(data.data).sections.get(container.Section.FILTER, b""))
                row[on] = (data.bpp, compute_all(inp.rgb, out, METRICS), size, t1 - t0, t2 - t1)
            (b0, m0, _, _, _), (b1, m1, size, te, td) = row[False], row[True]
            d = (m1["psnr_y"] - m0["psnr_y"], m1["psnr_rgb"] - m0["psnr_rgb"], 1000 * (m1["ms_ssim"] - m0["ms_ssim"]))
            gains[target].append(d)
            print(f"{name[:24]:24s} {target:5.2f} bpp {b0:.4f} -> {b1:.4f}  PSNR-Y {m0['psnr_y']:6.2f} {d[0]:+.3f}  "
                  f"RGB {d[1]:+.3f}  MS-SSIM {d[2]:+.2f}e-3  filter {size:3d} B  encode {te:5.1f} s  "
                  f"decode {td:4.2f} s", flush=True)
    for target, g in gains.items():
        if g:
            y, rgb, ms = np.mean(g, axis=0)
            print(f"mean at {target} bpp ({len(g)} photos): PSNR-Y {y:+.3f} dB, PSNR-RGB {rgb:+.3f} dB, "
                  f"MS-SSIM {ms:+.2f}e-3")


if __name__ == "__main__":
    main()
