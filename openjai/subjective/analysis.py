"""``openjai subjective analyze``: DMOS with 95 % intervals, BT.500 observer screening, plots, CSV.

```
results.sqlite ──store.responses()──▶ test trials (training dropped)
   difference score d = score(reference) − score(test), per observer and condition
   ──screen()──▶ observers rejected by ITU-R BT.500 Annex 2 §2.3.1 (on the difference scores)
   ──dmos()────▶ per condition: mean of d over the kept observers, 95 % CI = t(0.975, N−1)·s/√N
   ──by_rate()─▶ per codec and target rate: each observer's mean d over the images, then mean and
                 CI over observers; bpp and objective metrics averaged over the same images
──▶ OUT/dmos.csv, dmos_by_rate.csv, screening.csv, dmos.md, dmos_vs_bpp.png
```

Screening (BT.500-14, Annex 2, 2.3.1), for each presentation (condition) j with the scores
u_ij of the N observers: mean ū_j, standard deviation s_j (N − 1 in the denominator), kurtosis
β2_j = m4 / m2² (moments about the mean, divided by N). If 2 ≤ β2_j ≤ 4 the scores are taken
as normal and the bounds are ū_j ± 2 s_j, otherwise ū_j ± √20 s_j. Observer i counts P_i
scores above the upper bound and Q_i below the lower one. It is rejected when
(P_i + Q_i) / n_i > 0.05 and |P_i − Q_i| / (P_i + Q_i) < 0.3, n_i being the presentations the
observer scored (J·K·R of the Recommendation: conditions × sequences × repetitions). Presentations
where all observers agree (s_j = 0) count for no one. DSCQS analyses the difference of the two
scores, so the screening runs on the difference scores (the hidden reference included).
What it catches: an observer whose scores scatter on both sides of the panel's (not one who is
consistently harsher or milder: P − Q is then large); and since a single far outlier makes a
presentation's scores heavy-tailed (β2 > 4, hence the √20 bound), it catches moderate scatter
best. It needs a panel: with N observers no score can lie more than (N − 1)/√N standard deviations
from the mean, so with fewer than ~6 observers nobody can be rejected (BT.500 asks for 15 or more).
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from ..errors import OutputError, SessionError, ToolMissingError
from ..files import atomic_write
from . import session as sess
from .session import Session
from .store import Response, Store

#: objective metrics plotted next to DMOS when present, in this order
PLOT_METRICS = ("psnr_y", "ms_ssim", "vmaf", "iw_ssim")


@dataclass(frozen=True)
class ObserverScreen:
    observer: str
    presentations: int
    p: int
    q: int
    rejected: bool


@dataclass(frozen=True)
class DMOS:
    """Mean difference score of one condition (or codec × rate) over ``n`` observers."""

    key: str
    dmos: float
    ci95: float  # half width; NaN with fewer than 2 observers
    n: int


def kurtosis_beta2(x: np.ndarray) -> float:
    """β2 = m4 / m2² with central moments divided by N (NaN when all values are equal)."""
    d = np.asarray(x, dtype=np.float64) - np.mean(x)
    m2 = np.mean(d**2)
    return float(np.mean(d**4) / m2**2) if m2 > 0 else math.nan


def mean_ci95(x: Sequence[float]) -> tuple[float, float]:
    """Mean and half width of its 95 % Student-t confidence interval (NaN for fewer than 2 values)."""
    a = np.asarray(x, dtype=np.float64)
    if a.size == 0:
        return math.nan, math.nan
    if a.size < 2:
        return float(a.mean()), math.nan
    return float(a.mean()), float(stats.t.ppf(0.975, a.size - 1) * a.std(ddof=1) / math.sqrt(a.size))


def difference_scores(responses: Sequence[Response]) -> dict[str, dict[str, float]]:
    """{observer: {condition: ref − test}} over test trials (a repeated condition is averaged)."""
    acc: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in responses:
        if not r.training:
            acc[r.observer][r.condition].append(r.ref_score - r.test_score)
    return {o: {c: float(np.mean(v)) for c, v in conds.items()} for o, conds in acc.items()}


def screen(scores: dict[str, dict[str, float]]) -> list[ObserverScreen]:
    """BT.500 Annex 2 §2.3.1 screening of ``{observer: {presentation: score}}``."""
    by_pres: dict[str, dict[str, float]] = defaultdict(dict)
    for o, conds in scores.items():
        for c, v in conds.items():
            by_pres[c][o] = v
    p: dict[str, int] = defaultdict(int)
    q: dict[str, int] = defaultdict(int)
    for per_obs in by_pres.values():
        if len(per_obs) < 2:
            continue
        vals = np.array(list(per_obs.values()))
        mean, sd = vals.mean(), vals.std(ddof=1)
        if sd == 0:
            continue
        b2 = kurtosis_beta2(vals)
        k = 2.0 if 2.0 <= b2 <= 4.0 else math.sqrt(20.0)
        for o, v in per_obs.items():
            if v > mean + k * sd:
                p[o] += 1
            if v < mean - k * sd:
                q[o] += 1
    out = []
    for o in sorted(scores):
        n, po, qo = len(scores[o]), p[o], q[o]
        rejected = po + qo > 0 and (po + qo) / n > 0.05 and abs(po - qo) / (po + qo) < 0.3
        out.append(ObserverScreen(o, n, po, qo, rejected))
    return out


def dmos(scores: dict[str, dict[str, float]], keep: Sequence[str]) -> dict[str, DMOS]:
    """DMOS and CI per condition over the observers in ``keep``."""
    per: dict[str, list[float]] = defaultdict(list)
    for o in keep:
        for c, v in scores[o].items():
            per[c].append(v)
    return {c: DMOS(c, *mean_ci95(v), len(v)) for c, v in sorted(per.items())}


@dataclass(frozen=True)
class RatePoint:
    """One codec at one target rate, averaged over the session's images."""

    codec: str
    target_bpp: float
    bpp: float
    dmos: DMOS
    metrics: dict[str, float]


def by_rate(s: Session, scores: dict[str, dict[str, float]], keep: Sequence[str]) -> list[RatePoint]:
    """Per codec × target rate: each observer's mean over images, then mean and CI over observers."""
    groups: dict[tuple[str, float], list[sess.Condition]] = defaultdict(list)
    for c in s.conditions:
        if not c.hidden_reference:
            groups[(c.codec, c.target_bpp)].append(c)
    out = []
    for (codec, target), conds in sorted(groups.items()):
        ids = {c.id for c in conds}
        per_obs = [float(np.mean([v for c, v in scores[o].items() if c in ids]))
                   for o in keep if any(c in ids for c in scores[o])]
        metrics = {m: float(np.nanmean([c.metrics.get(m, math.nan) for c in conds]))
                   for m in sorted({m for c in conds for m in c.metrics})
                   if any(math.isfinite(c.metrics.get(m, math.nan)) for c in conds)}
        out.append(RatePoint(codec, target, float(np.mean([c.bpp for c in conds])),
                             DMOS(f"{codec}@{target:g}", *mean_ci95(per_obs), len(per_obs)), metrics))
    return out


def _csv(header: Sequence[str], rows: Sequence[Sequence[object]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow(["" if isinstance(v, float) and math.isnan(v) else (f"{v:.6g}" if isinstance(v, float) else v)
                    for v in r])
    return buf.getvalue().encode()


def _f(v: float, digits: int = 2) -> str:
    return "–" if math.isnan(v) else f"{v:.{digits}f}"


def _plot(points: Sequence[RatePoint], ref: DMOS | None, metrics: Sequence[str]) -> bytes:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - matplotlib is a dependency
        raise ToolMissingError("plots need matplotlib (pip install matplotlib==3.11.2)") from exc
    fig = Figure(figsize=(4.2 * (1 + len(metrics)), 3.8), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 1 + len(metrics), squeeze=False)[0]
    codecs = sorted({p.codec for p in points})
    for codec in codecs:
        pts = sorted((p for p in points if p.codec == codec), key=lambda p: p.bpp)
        x = [p.bpp for p in pts]
        ci = [0.0 if math.isnan(p.dmos.ci95) else p.dmos.ci95 for p in pts]
        axes[0].errorbar(x, [p.dmos.dmos for p in pts], yerr=ci, marker="o", capsize=3, label=codec)
        for ax, m in zip(axes[1:], metrics):
            ax.plot(x, [p.metrics.get(m, math.nan) for p in pts], marker="o", label=codec)
    if ref is not None and not math.isnan(ref.dmos):
        axes[0].axhline(ref.dmos, color="grey", linestyle="--", linewidth=1, label="hidden reference")
    axes[0].set_ylabel("DMOS (reference − test, 0–100 scale)")
    axes[0].set_title("DMOS, 95 % CI (lower is better)")
    for ax, m in zip(axes[1:], metrics):
        ax.set_ylabel(m)
        ax.set_title(f"{m} of the same points")
    for ax in axes:
        ax.set_xlabel("bits per pixel (mean over images)")
        ax.grid(True, alpha=0.4)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


@dataclass(frozen=True)
class Analysis:
    """Everything ``analyze`` computed and wrote."""

    screening: list[ObserverScreen]
    conditions: dict[str, DMOS]
    points: list[RatePoint]
    hidden_reference: DMOS | None
    markdown: str
    files: list[Path]


def _markdown(s: Session, scr: Sequence[ObserverScreen], cond: dict[str, DMOS], points: Sequence[RatePoint],
              ref: DMOS | None, metrics: Sequence[str]) -> str:
    kept = [o for o in scr if not o.rejected]
    lines = [f"# DMOS ({s.title})", "",
             f"{len(scr)} observers, {len(scr) - len(kept)} rejected by BT.500 screening; "
             f"DMOS = score(reference) − score(test) on the 0–100 scale, 95 % Student-t CI.", "",
             "| codec | target bpp | bpp | DMOS | ±95 % CI | N | " + " | ".join(metrics) + " |",
             "|---|---|---|---|---|---|" + "---|" * len(metrics)]
    for p in points:
        lines.append(f"| {p.codec} | {p.target_bpp:g} | {p.bpp:.3f} | {_f(p.dmos.dmos)} | {_f(p.dmos.ci95)} | "
                     f"{p.dmos.n} | " + " | ".join(_f(p.metrics.get(m, math.nan), 3) for m in metrics) + " |")
    if ref is not None:
        lines.append(f"| hidden reference | – | – | {_f(ref.dmos)} | {_f(ref.ci95)} | {ref.n} |" + " |" * len(metrics))
    lines += ["", "Per condition (image × codec × rate):", "", "| condition | image | codec | bpp | DMOS | ±95 % CI | N |",
              "|---|---|---|---|---|---|---|"]
    for c in s.conditions:
        d = cond.get(c.id)
        if d is not None:
            lines.append(f"| {c.id} | {c.image} | {c.codec} | {_f(c.bpp, 3)} | {_f(d.dmos)} | {_f(d.ci95)} | {d.n} |")
    lines += ["", "Observer screening (BT.500 Annex 2 §2.3.1):", "", "| observer | presentations | P | Q | rejected |",
              "|---|---|---|---|---|"]
    lines += [f"| {o.observer} | {o.presentations} | {o.p} | {o.q} | {'yes' if o.rejected else 'no'} |" for o in scr]
    return "\n".join(lines) + "\n"


def analyze(session_dir: Path, out_dir: Path, force: bool = False, screening: bool = True) -> Analysis:
    """Read SESSION_DIR's scores and write the DMOS tables and plot into ``out_dir``."""
    s = sess.load(session_dir)
    db = Path(session_dir) / sess.RESULTS_DB
    if not db.is_file():
        raise SessionError(f"{db} not found: no observer has been run (openjai subjective serve)")
    scores = difference_scores(Store(db).responses())
    if not scores:
        raise SessionError(f"{db} holds no answered test trial yet")
    scr = screen(scores)
    keep = [o.observer for o in scr if not (screening and o.rejected)]
    if not keep:
        raise SessionError("every observer was rejected by the screening: look at screening.csv, or use --no-screening")
    cond = dmos(scores, keep)
    points = by_rate(s, scores, keep)
    refs = {c.id for c in s.conditions if c.hidden_reference}
    ref_obs = [float(np.mean([v for c, v in scores[o].items() if c in refs])) for o in keep
               if any(c in refs for c in scores[o])]
    ref = DMOS("hidden reference", *mean_ci95(ref_obs), len(ref_obs)) if ref_obs else None
    metrics = [m for m in PLOT_METRICS if any(m in p.metrics for p in points)]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    by_id = {c.id: c for c in s.conditions}
    all_metrics = sorted({m for c in s.conditions for m in c.metrics})
    md = _markdown(s, scr, cond, points, ref, metrics)
    outputs = {
        "dmos.csv": _csv(["condition", "image", "codec", "target_bpp", "bpp", "n", "dmos", "ci95", *all_metrics],
                         [[c, by_id[c].image, by_id[c].codec, by_id[c].target_bpp, by_id[c].bpp, d.n, d.dmos, d.ci95,
                           *[by_id[c].metrics.get(m, math.nan) for m in all_metrics]] for c, d in cond.items()]),
        "dmos_by_rate.csv": _csv(["codec", "target_bpp", "bpp", "n", "dmos", "ci95", *all_metrics],
                                 [[p.codec, p.target_bpp, p.bpp, p.dmos.n, p.dmos.dmos, p.dmos.ci95,
                                   *[p.metrics.get(m, math.nan) for m in all_metrics]] for p in points]),
        "screening.csv": _csv(["observer", "presentations", "p", "q", "rejected"],
                              [[o.observer, o.presentations, o.p, o.q, o.rejected] for o in scr]),
        "dmos.md": md.encode(),
        "dmos_vs_bpp.png": _plot(points, ref, metrics),
    }
    existing = [n for n in outputs if (out_dir / n).exists()]
    if existing and not force:
        raise OutputError(f"{out_dir / existing[0]} exists: use --force to overwrite it")
    for name, data in outputs.items():
        atomic_write(out_dir / name, data, force)
    return Analysis(scr, cond, points, ref, md, [out_dir / n for n in outputs])
