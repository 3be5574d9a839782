"""Scripted observers for dry runs of a session (the analysis, the lab's procedure), not for results.

A simulated observer scores the reference near the top of the scale and a test image lower by an
amount that grows with its PSNR-Y deficit (from the condition's metrics; without them, with lower
bpp), plus Gaussian noise. The last ``outliers`` observers are inattentive: their difference
scores land about three noise deviations above and below the expected one, alternately, which is
what the BT.500 screening is designed to reject (analysis.py). The answers go through the same Store calls as the server's.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

from . import session as sess
from .schedule import plan
from .store import Store


def _impairment(c: sess.Condition) -> float:
    """Expected difference score (0-100) of a condition: 0 for the hidden reference."""
    if c.hidden_reference:
        return 0.0
    psnr = c.metrics.get("psnr_y", math.nan)
    if math.isfinite(psnr):
        return min(90.0, max(0.0, (48.0 - psnr) * 3.0))
    return min(90.0, 25.0 / max(c.bpp, 0.05))


def simulate(session_dir: Path, observers: int, outliers: int = 0, seed: int = 0, noise: float = 6.0) -> list[str]:
    """Run ``observers`` scripted observers (the last ``outliers`` of them inattentive); returns their ids."""
    s = sess.load(session_dir)
    store = Store(Path(session_dir) / sess.RESULTS_DB)
    ids = []
    for k in range(observers):
        observer = f"sim{seed}-{k:02d}"
        rng = random.Random(f"{seed}/{observer}")
        trials = plan(s, observer)
        store.start(observer, trials, s.seed)
        for t in trials:
            ref = min(100.0, max(0.0, rng.gauss(90, noise / 2)))
            err = rng.gauss(0, noise)
            if k >= observers - outliers:
                err = (3.0 if t.index % 2 else -3.0) * noise + rng.gauss(0, noise / 3)
            test = min(100.0, max(0.0, ref - _impairment(s.condition(t.condition)) + err))
            a, b = (ref, test) if t.ref_side == "A" else (test, ref)
            store.submit(t.trial_id, round(a, 1), round(b, 1))
        ids.append(observer)
    return ids
