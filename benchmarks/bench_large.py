"""Large images: peak RSS and seconds per megapixel from 0.4 to 64 MP, every layer on.

Each operation (encode at a bpp target, encode at a quality, decode) runs in a fresh process,
so its resident-set high-water mark (VmHWM) belongs to that operation alone; it includes the
interpreter, torch and the model (the `baseline` column: the mark after loading them). The
first size is the reference the slowdown columns divide by: a large image should cost no more
per pixel than a small one, and its memory should stay far below its area × the bytes of a
float image.

    python benchmarks/bench_large.py [--sizes 0.4,1,4,16,7680x4320,64] [--threads 2] [--once-jpeg]

Sizes are megapixels (4:3, multiples of 16) or WIDTHxHEIGHT. The photo is openjai/data/sample.png
(600×400) mirrored at its own scale to fill the size; ``--once-jpeg`` stores it as a JPEG (quality 85) first, so the lattice layer
finds a lattice and runs too.
"""

from __future__ import annotations

import argparse
import io
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
if spec["op"] == "decode":
    img = openjai.decode(open(spec["input"], "rb").read())
else:
    kwargs = {"bpp": spec["bpp"]} if spec["op"] == "encode --bpp" else {"quality": spec["quality"]}
    out = openjai.encode(np.load(spec["input"]), **kwargs)
    open(spec["output"], "wb").write(out)
print(json.dumps({"seconds": time.perf_counter() - t, "baseline_mib": base, "peak_mib": hwm()}))
"""

OPERATIONS = ("encode --bpp", "encode --quality", "decode")


def run(spec: dict, threads: int) -> dict:
    """One operation in a fresh process: seconds, baseline and peak MiB."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    p = subprocess.run([sys.executable, "-c", _WORKER, json.dumps(spec)], capture_output=True, text=True, env=env)
    if p.returncode:
        raise SystemExit(p.stderr[-2000:])
    return json.loads(p.stdout.strip().splitlines()[-1])


def size_of(text: str) -> tuple[int, int]:
    """(width, height) of a size argument: megapixels (4:3) or WIDTHxHEIGHT."""
    if "x" in text:
        w, h = text.split("x")
        return int(w), int(h)
    mp = float(text)
    w = int(round((mp * 1e6 * 4 / 3) ** 0.5 / 16) * 16)
    return w, int(round(mp * 1e6 / w / 16) * 16)


def test_photo(width: int, height: int, once_jpeg: bool) -> np.ndarray:
    """The sample photo at its own scale, mirrored to fill ``width`` × ``height``: every size has
    the detail of a real photo per pixel (scaling the sample up would make a smooth image that
    costs the codec less per pixel than a photo does)."""
    from PIL import Image

    from openjai.eval.complexity import SAMPLE

    with Image.open(SAMPLE) as im:
        img = np.asarray(im.convert("RGB"))
    while img.shape[0] < height or img.shape[1] < width:  # each pad at most doubles a side
        img = np.pad(img, ((0, max(0, min(height - img.shape[0], img.shape[0]))),
                           (0, max(0, min(width - img.shape[1], img.shape[1]))), (0, 0)), mode="symmetric")
    img = np.ascontiguousarray(img[:height, :width])
    if not once_jpeg:
        return img
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=85)
    return np.asarray(Image.open(buf).convert("RGB"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="0.4,1,4,16,7680x4320,64", help="comma-separated megapixels or WxH")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--bpp", type=float, default=0.5)
    ap.add_argument("--quality", type=float, default=50.0)
    ap.add_argument("--once-jpeg", action="store_true", help="JPEG the photo first (the lattice layer runs)")
    args = ap.parse_args(argv)

    print(f"threads {args.threads}, --bpp {args.bpp}, --quality {args.quality}; photo: openjai/data/sample.png "
          f"mirrored to size{', stored as JPEG q85' if args.once_jpeg else ''}; slowdown: s/MP ÷ the first size's")
    print(f"{'MP':>5} {'size':>11} {'operation':<17} {'bpp':>6} {'s/MP':>7} {'slowdown':>8} {'peak MiB':>9} "
          f"{'baseline MiB':>12}")
    reference: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as d:
        for text in args.sizes.split(","):
            w, h = size_of(text)
            npy, jai = Path(d) / "in.npy", Path(d) / "out.jai"
            np.save(npy, test_photo(w, h, args.once_jpeg))
            mp = w * h / 1e6
            for op in OPERATIONS:
                spec = {"op": op, "input": str(jai if op == "decode" else npy), "output": str(jai),
                        "bpp": args.bpp, "quality": args.quality, "threads": args.threads}
                r = run(spec, args.threads)
                s_mp = r["seconds"] / mp
                reference.setdefault(op, s_mp)
                bpp = 8 * jai.stat().st_size / (w * h)
                print(f"{mp:5.1f} {w:>5}x{h:<5} {op:<17} {bpp:6.3f} {s_mp:7.2f} {s_mp / reference[op]:8.2f} "
                      f"{r['peak_mib']:9.0f} {r['baseline_mib']:12.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
