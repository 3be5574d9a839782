"""Rate control (`openjai encode --bpp T`) error over a folder of photos.

    python benchmarks/rate_control.py ../shared/data/val

Prints, per target, the mean/min/max of bpp / target - 1 and how many photos could not go that low."""
import glob
import sys
import numpy as np
import openjai
from openjai import image
from openjai.codec.coder import Encoder
from openjai.codec.ratecontrol import match_bpp
from openjai.errors import RateControlError

lc = openjai.load_model()
targets = [0.06, 0.12, 0.25, 0.5, 0.75, 1.0, 1.5]
err = {t: [] for t in targets}
miss = {t: 0 for t in targets}
iters = []
for p in sorted(glob.glob(sys.argv[1] + "/*.*")):
    if p.endswith((".csv", ".sha256")):
        continue
    inp = image.load(p)
    enc = Encoder(lc, inp.rgb, inp.colour, inp.alpha)
    for t in targets:
        try:
            r = match_bpp(enc, t)
            err[t].append(r.bpp / t - 1)
            iters.append(r.iterations)
        except RateControlError:
            miss[t] += 1
print("| target | coded | below model range | mean error | min | max |")
print("|---:|---:|---:|---:|---:|---:|")
for t in targets:
    e = err[t]
    if e:
        print(f"| {t} | {len(e)} | {miss[t]} | {100*np.mean(e):+.2f} % | {100*min(e):+.2f} % | {100*max(e):+.2f} % |")
    else:
        print(f"| {t} | 0 | {miss[t]} | – | – | – |")
print(f"mean encodes per search: {np.mean(iters):.1f}")
