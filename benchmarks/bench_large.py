"""Large images: peak RSS and seconds per megapixel at 1, 4, 16 and 64 MP (tiled networks).

Each encode and each decode runs in a fresh process, so its resident-set high-water mark
(VmHWM) belongs to that operation alone (it includes the interpreter, torch and the model:
the `baseline` column). Memory should grow linearly with pixels, with a slope far below the
2 GB needed for an 8K × 8K photo.

    python benchmarks/bench_large.py [--sizes 1,4,16,64] [--threads 2] [--quality 50]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

_WORKER = r"""
import json, sys, time
import numpy as np, torch
spec = json.loads(sys.argv[1])
torch.set_num_threads(spec["threads"])
import openjai

def hwm():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) / 1024 for l in f if l.startswith("VmHWM:"))

openjai.load_model()
base = hwm()
t = time.perf_counter()
if spec["op"] == "encode":
    out = openjai.encode(np.load(spec["input"]), quality=spec["quality"])
    open(spec["output"], "wb").write(out)
else:
    img = openjai.decode(open(spec["input"], "rb").read())
print(json.dumps({"seconds": time.perf_counter() - t, "baseline_mib": base, "peak_mib": hwm()}))
"""


def run(spec: dict, threads: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    p = subprocess.run([sys.executable, "-c", _WORKER, json.dumps(spec)], capture_output=True, text=True, env=env)
    if p.returncode:
        raise SystemExit(p.stderr[-2000:])
    return json.loads(p.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1,4,16,64", help="megapixels, comma-separated (square-ish 4:3 images)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--quality", type=float, default=50.0)
    args = ap.parse_args(argv)
    from openjai.eval.complexity import photo

    print(f"threads {args.threads}, quality {args.quality}; photo: openjai/data/sample.png scaled to size")
    print(f"{'MP':>5} {'size':>11} {'bpp':>6} {'enc s/MP':>9} {'dec s/MP':>9} {'enc peak MiB':>13} "
          f"{'dec peak MiB':>13} {'baseline MiB':>13}")
    with tempfile.TemporaryDirectory() as d:
        for mp in (float(s) for s in args.sizes.split(",")):
            w = int(round((mp * 1e6 * 4 / 3) ** 0.5 / 16) * 16)
            h = int(round(mp * 1e6 / w / 16) * 16)
            npy, jai = Path(d) / "in.npy", Path(d) / "out.jai"
            np.save(npy, photo(w, h))
            enc = run({"op": "encode", "input": str(npy), "output": str(jai), "quality": args.quality,
                       "threads": args.threads}, args.threads)
            dec = run({"op": "decode", "input": str(jai), "threads": args.threads}, args.threads)
            px = w * h / 1e6
            bpp = 8 * jai.stat().st_size / (w * h)
            print(f"{px:5.1f} {w:>5}x{h:<5} {bpp:6.3f} {enc['seconds'] / px:9.3f} {dec['seconds'] / px:9.3f} "
                  f"{enc['peak_mib']:13.0f} {dec['peak_mib']:13.0f} {dec['baseline_mib']:13.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
