"""Rate control (`openjai encode --bpp T`) accuracy and cost over a folder of photos.

    python benchmarks/rate_control.py ../shared/data/val --model base --targets 0.12,0.25,0.5,1.0 --every 3

Prints, per target: the photos coded and those the model cannot bring that low, the mean,
lowest and highest relative error bpp / target − 1 (never above +10 %: the CTTC allowance,
used only below the model's lowest rate), how many streams exceed the target at all, the
streams coded per search (``RateResult.iterations``) and the CPU seconds per search (the
process's, all threads: comparable on a busy machine). Runs against whichever ``openjai`` is
imported, so ``PYTHONPATH=<other checkout>`` measures another version of the codec.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import openjai
from openjai import image
from openjai.codec.coder import Encoder
from openjai.codec.ratecontrol import OVERSHOOT, match_bpp
from openjai.errors import RateControlError

SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".ppm", ".tif", ".tiff", ".bmp")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("folder")
    p.add_argument("--model", default="base")
    p.add_argument("--targets", default="0.06,0.12,0.25,0.5,0.75,1.0,1.5")
    p.add_argument("--limit", type=int, default=0, help="first N photos only (0: all)")
    p.add_argument("--every", type=int, default=1, help="every Nth photo only")
    a = p.parse_args(argv)
    paths = sorted(q for q in Path(a.folder).iterdir() if q.suffix.lower() in SUFFIXES)
    if not paths:
        raise SystemExit(f"no photos in {a.folder}")
    paths = paths[:: a.every][: a.limit or None]
    lc = openjai.load_model(a.model)
    targets = [float(t) for t in a.targets.split(",")]
    err: dict[float, list[float]] = {t: [] for t in targets}
    miss = dict.fromkeys(targets, 0)
    trials: dict[float, list[int]] = {t: [] for t in targets}
    cpu: dict[float, list[float]] = {t: [] for t in targets}
    for path in paths:
        inp = image.load(path)
        enc = Encoder(lc, inp.rgb, inp.colour, inp.alpha)
        row = []
        for t in targets:
            c = time.process_time()
            try:
                r = match_bpp(enc, t)
            except RateControlError:
                miss[t] += 1
                row.append(f"{t}: below range")
                continue
            cpu[t].append(time.process_time() - c)
            err[t].append(r.bpp / t - 1)
            trials[t].append(r.iterations)
            row.append(f"{t}: {100 * err[t][-1]:+.2f} % ({r.iterations} streams)")
        print(f"{path.name}: {', '.join(row)}", file=sys.stderr, flush=True)
    print(f"openjai from {Path(openjai.__file__).parent}, model {lc.model_id}, {len(paths)} photos of {a.folder}")
    print()
    print("| target bpp | coded | below model range | mean error | lowest | highest | above target | "
          f"above +{OVERSHOOT:.0%} | streams coded per search | CPU s per search |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for t in targets:
        e = np.array(err[t])
        if e.size:
            print(f"| {t} | {e.size} | {miss[t]} | {100 * e.mean():+.2f} % | {100 * e.min():+.2f} % | "
                  f"{100 * e.max():+.2f} % | {(e > 0).sum()} | {(e > OVERSHOOT + 1e-12).sum()} | "
                  f"{np.mean(trials[t]):.2f} | {np.mean(cpu[t]):.2f} |")
        else:
            print(f"| {t} | 0 | {miss[t]} | – | – | – | – | – | – | – |")
    every = np.concatenate([np.array(err[t]) for t in targets])
    if every.size:
        print(f"\nall targets: mean error {100 * every.mean():+.2f} %, worst {100 * every.max():+.2f} %, "
              f"mean |error| {100 * np.abs(every).mean():.2f} %, "
              f"streams coded per search {np.mean(sum(trials.values(), [])):.2f}, "
              f"CPU s per search {np.mean(sum(cpu.values(), [])):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
