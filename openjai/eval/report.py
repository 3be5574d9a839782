"""BD-rate tables and RD plots from a CTTC results CSV.

```
cttc.py ──▶ results.csv (one row per image × codec × target rate)
              │ load_results()            rows with reached=False are dropped from every curve
              ▼
        list[ResultRow] ──bd_table()──▶ BDTable: per metric, BD-rate of test vs anchor computed
              │                          per image (bdrate.bd_rate), then averaged over images,
              │                          plus the mean of the 7 CTTC objective metrics present
              ▼
        write_report() ──▶ out_dir/bdrate.md, bdrate.csv, rd_<metric>.png, rd_<metric>.svg
```

CSV columns: ``image, codec, target_bpp, bpp, reached`` are required; every column named in
``METRICS`` that exists is a metric (an empty cell is a missing value). ``reached`` is true when
the codec hit the target rate within the CTTC tolerance; a row that did not is excluded from
the RD curves, the BD-rate and the plots, and the markdown says how many were excluded.

BD-rate follows JPEG AI reporting: computed for each image on that image's RD points (one
point per target rate), then the arithmetic mean over the images for which both codecs give a
usable curve. Images whose curve cannot be used (fewer points than the method needs after
excluding unreached rows, no overlap) are left out of that mean and counted in the table.
By default dominated points (more rate, no better quality) are dropped from a per-image curve
(``non_monotonic="pareto"``, see :mod:`openjai.eval.bdrate`) rather than refusing the image;
the markdown reports how many points that removed.

NLPD is lower-is-better (``LOWER_IS_BETTER``); all other metrics here are higher-is-better.
The "CTTC average" is the mean of the per-metric BD-rates of the 7 CTTC objective metrics
(MS-SSIM, IW-SSIM, VMAF, VIF(P), PSNR-HVS-M, NLPD, FSIM) among those present; the markdown
says which were present when fewer than 7.

Plots use matplotlib (pinned in pyproject) through the object-oriented API on the Agg canvas,
so the global pyplot backend is never touched: mean bpp against mean metric over the images
that reached each target, one line per codec.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError, OutputError, ToolMissingError
from ..files import atomic_write
from .bdrate import BDRateError, Method, NonMonotonic, bd_rate, pareto_front

__all__ = [
    "METRICS",
    "CTTC_METRICS",
    "LOWER_IS_BETTER",
    "DEFAULT_ANCHORS",
    "ResultRow",
    "BDCell",
    "BDTable",
    "load_results",
    "bd_table",
    "write_report",
]

#: Metric columns recognised in a results CSV, in report order.
METRICS: tuple[str, ...] = (
    "psnr_y", "psnr_u", "psnr_v", "psnr_yuv", "psnr_rgb",
    "ms_ssim", "iw_ssim", "vmaf", "vif_p", "psnr_hvs_m", "nlpd", "fsim",
)
#: The 7 objective metrics whose BD-rates JPEG AI averages.
CTTC_METRICS: tuple[str, ...] = ("ms_ssim", "iw_ssim", "vmaf", "vif_p", "psnr_hvs_m", "nlpd", "fsim")
LOWER_IS_BETTER: frozenset[str] = frozenset({"nlpd"})
#: Anchor codecs in report column order (those absent from the CSV are skipped).
DEFAULT_ANCHORS: tuple[str, ...] = ("vvc", "hevc", "jpeg2000", "jpeg", "avif", "jxl", "webp")
#: Anchor whose per-image differences the report tabulates (issue 3's bar is stated against JPEG).
PAIRED_ANCHOR = "jpeg"
#: a row under this fraction of its target is "short" of it (the rate control's 5 % band)
SHORT_OF_TARGET = 0.95
REQUIRED_COLUMNS: tuple[str, ...] = ("image", "codec", "target_bpp", "bpp", "reached")

_LABELS: dict[str, str] = {
    "psnr_y": "PSNR-Y [dB]", "psnr_u": "PSNR-U [dB]", "psnr_v": "PSNR-V [dB]", "psnr_yuv": "PSNR-YUV [dB]",
    "psnr_rgb": "PSNR-RGB [dB]",
    "ms_ssim": "MS-SSIM", "iw_ssim": "IW-SSIM", "vmaf": "VMAF", "vif_p": "VIF(P)",
    "psnr_hvs_m": "PSNR-HVS-M [dB]", "nlpd": "NLPD (lower is better)", "fsim": "FSIM",
}
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


@dataclass(frozen=True)
class ResultRow:
    """One CSV row: one image coded by one codec at one target rate."""

    image: str
    codec: str
    target_bpp: float
    bpp: float
    reached: bool
    metrics: dict[str, float] = field(default_factory=dict)  # NaN where the cell was empty


@dataclass(frozen=True)
class BDCell:
    """Mean BD-rate (percent) over images for one metric and one anchor."""

    bd_rate: float  # NaN when no image gave a usable pair of curves
    n_images: int  # images that entered the mean
    skipped: tuple[tuple[str, str], ...] = ()  # (image, reason) left out of the mean
    dropped_points: int = 0  # dominated points removed by the Pareto rule


@dataclass(frozen=True)
class BDTable:
    """BD-rates of ``test_codec`` against ``anchor_codec``, per metric."""

    test_codec: str
    anchor_codec: str
    method: str
    cells: dict[str, BDCell]
    cttc_average: float  # NaN when none of the CTTC metrics has a value
    cttc_metrics_used: tuple[str, ...]


# --------------------------------------------------------------------------------------------
# Loading


def _parse_float(text: str, column: str, line: int, path: Path, allow_empty: bool) -> float:
    s = text.strip()
    if s == "" or s.lower() in ("nan", "na", "none"):
        if allow_empty:
            return math.nan
        raise DataError(f"{path}:{line}: empty value in column {column!r}")
    try:
        return float(s)
    except ValueError:
        raise DataError(f"{path}:{line}: column {column!r}: {text!r} is not a number") from None


def load_results(csv_path: str | os.PathLike[str], metrics: Sequence[str] = METRICS) -> list[ResultRow]:
    """Read a CTTC results CSV; metric columns are those of ``metrics`` that exist in it.

    Raises:
        DataError: missing file or column, unparsable value.
    """
    path = Path(csv_path)
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                raise DataError(f"{path}: missing column(s) {', '.join(missing)} (have: {', '.join(header)})")
            reader.fieldnames = header
            present = [m for m in metrics if m in header]
            rows: list[ResultRow] = []
            for rec in reader:
                line = reader.line_num
                reached_text = (rec["reached"] or "").strip().lower()
                if reached_text in _TRUE:
                    reached = True
                elif reached_text in _FALSE:
                    reached = False
                else:
                    raise DataError(f"{path}:{line}: column 'reached': {rec['reached']!r} is not a boolean")
                rows.append(ResultRow(
                    image=(rec["image"] or "").strip(),
                    codec=(rec["codec"] or "").strip(),
                    target_bpp=_parse_float(rec["target_bpp"] or "", "target_bpp", line, path, False),
                    bpp=_parse_float(rec["bpp"] or "", "bpp", line, path, not reached),
                    reached=reached,
                    metrics={m: _parse_float(rec[m] or "", m, line, path, True) for m in present},
                ))
    except FileNotFoundError:
        raise DataError(f"{path}: results CSV not found") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read results CSV ({exc})") from exc
    return rows


def _metrics_in(rows: Iterable[ResultRow], candidates: Sequence[str] = METRICS) -> list[str]:
    have: set[str] = set()
    for r in rows:
        have.update(m for m, v in r.metrics.items() if not math.isnan(v))
    return [m for m in candidates if m in have]


# --------------------------------------------------------------------------------------------
# BD table


def _curve(rows: Iterable[ResultRow], metric: str) -> tuple[np.ndarray, np.ndarray]:
    pts = [(r.bpp, r.metrics[metric]) for r in rows
           if r.reached and metric in r.metrics and not math.isnan(r.metrics[metric])]
    if not pts:
        return np.empty(0), np.empty(0)
    arr = np.asarray(pts, dtype=np.float64)
    return arr[:, 0], arr[:, 1]


def _n_dropped(rate: np.ndarray, q: np.ndarray, higher_is_better: bool) -> int:
    if rate.size == 0:
        return 0
    unique = len({(float(a), float(b)) for a, b in zip(rate, q)})
    return unique - pareto_front(rate, q, higher_is_better)[0].size


def bd_table(rows: Sequence[ResultRow], test_codec: str, anchor_codec: str,
             metrics: Sequence[str] | None = None, method: Method = "pchip",
             non_monotonic: NonMonotonic = "pareto") -> BDTable:
    """Per-metric BD-rate of ``test_codec`` against ``anchor_codec``, averaged over images.

    For each image, each codec's curve is its reached rows (bpp, metric); the BD-rate is
    computed per image and the mean over images is reported. ``metrics`` defaults to every
    metric with at least one value in ``rows``.
    """
    by_key: dict[tuple[str, str], list[ResultRow]] = {}
    for r in rows:
        by_key.setdefault((r.codec, r.image), []).append(r)
    codecs = {c for c, _ in by_key}
    for c in (test_codec, anchor_codec):
        if c not in codecs:
            raise DataError(f"codec {c!r} not in results (have: {', '.join(sorted(codecs))})")
    images = sorted({i for c, i in by_key if c in (test_codec, anchor_codec)})
    metric_list = list(metrics) if metrics is not None else _metrics_in(rows)

    cells: dict[str, BDCell] = {}
    for m in metric_list:
        hib = m not in LOWER_IS_BETTER
        values: list[float] = []
        skipped: list[tuple[str, str]] = []
        dropped = 0
        for img in images:
            ta, tq = _curve(by_key.get((test_codec, img), []), m)
            aa, aq = _curve(by_key.get((anchor_codec, img), []), m)
            if ta.size == 0 or aa.size == 0:
                who = test_codec if ta.size == 0 else anchor_codec
                skipped.append((img, f"no reached {m} points for {who}"))
                continue
            try:
                v = bd_rate(aa, aq, ta, tq, method, higher_is_better=hib, non_monotonic=non_monotonic)
            except BDRateError as exc:
                skipped.append((img, str(exc)))
                continue
            values.append(v)
            if non_monotonic == "pareto":
                dropped += _n_dropped(ta, tq, hib) + _n_dropped(aa, aq, hib)
        mean = float(np.mean(values)) if values else math.nan
        cells[m] = BDCell(bd_rate=mean, n_images=len(values), skipped=tuple(skipped), dropped_points=dropped)

    used = tuple(m for m in CTTC_METRICS if m in cells and not math.isnan(cells[m].bd_rate))
    cttc = float(np.mean([cells[m].bd_rate for m in used])) if used else math.nan
    return BDTable(test_codec=test_codec, anchor_codec=anchor_codec, method=method, cells=cells,
                   cttc_average=cttc, cttc_metrics_used=used)


# --------------------------------------------------------------------------------------------
# Writing


def _fmt(v: float) -> str:
    return "n/a" if math.isnan(v) else f"{v:+.2f} %"


def _rd_points(rows: Sequence[ResultRow], codec: str, metric: str) -> tuple[list[float], list[float], list[int]]:
    """Per target: mean bpp and mean metric over the images that reached it."""
    groups: dict[float, list[ResultRow]] = {}
    for r in rows:
        if r.codec == codec and r.reached and not math.isnan(r.metrics.get(metric, math.nan)):
            groups.setdefault(r.target_bpp, []).append(r)
    xs, ys, ns = [], [], []
    for t in sorted(groups):
        g = groups[t]
        xs.append(float(np.mean([r.bpp for r in g])))
        ys.append(float(np.mean([r.metrics[metric] for r in g])))
        ns.append(len(g))
    return xs, ys, ns


def rd_points_markdown(rows: Sequence[ResultRow], codecs: Sequence[str], metrics: Sequence[str]) -> list[str]:
    """Markdown table: per target rate and codec, images reached, mean bpp and mean of each metric."""
    md = ["## Mean RD points per target", "",
          "Means over the images that reached the target (n); targets no image reached are left out.", "",
          "| target | codec | n | bpp | " + " | ".join(_LABELS.get(m, m) for m in metrics) + " |",
          "|---:|---|---:|---:|" + "---:|" * len(metrics)]
    for target in sorted({r.target_bpp for r in rows}):
        for codec in codecs:
            got = [r for r in rows if r.codec == codec and r.target_bpp == target and r.reached]
            if got:
                vals = [float(np.nanmean([r.metrics.get(m, math.nan) for r in got])) for m in metrics]
                md.append(f"| {target:g} | {codec} | {len(got)} | {np.mean([r.bpp for r in got]):.4f} | "
                          + " | ".join(f"{v:.4f}" for v in vals) + " |")
    md.append("")
    return md


def paired_delta_markdown(rows: Sequence[ResultRow], test_codec: str, anchor: str,
                          metrics: Sequence[str]) -> list[str]:
    """Markdown table: per target, ``test_codec`` minus ``anchor`` on the same images.

    Every coded row counts, as "at matched bpp" comparisons do: unreached rows (the codec's
    lowest rate is above the target) and rows short of the target (its top rate is below it)
    are included and counted. The median and the count of images ahead show when a mean is
    carried by a few images.
    """
    md = [f"## `{test_codec}` minus `{anchor}` per image", "",
          "Same images at each target, every coded row included. `unreached`: lowest rate above the "
          f"target + 10 %; `short`: bpp under {SHORT_OF_TARGET:g} × target (top of the codec's range). "
          "NLPD is lower-is-better: a negative difference is ahead.", "",
          f"| target | n | unreached ({test_codec} / {anchor}) | short | bpp | "
          + " | ".join(f"Δ {_LABELS.get(m, m)} mean / median / ahead" for m in metrics) + " |",
          "|---:|---:|---:|---:|---:|" + "---:|" * len(metrics)]
    by_key = {(r.codec, r.image, r.target_bpp): r for r in rows if r.codec in (test_codec, anchor)}
    for target in sorted({r.target_bpp for r in rows}):
        pairs = [(t, by_key[(anchor, t.image, target)]) for (c, _, tb), t in by_key.items()
                 if c == test_codec and tb == target and (anchor, t.image, target) in by_key]
        if not pairs:
            continue
        cells = []
        for m in metrics:
            d = np.array([t.metrics.get(m, math.nan) - a.metrics.get(m, math.nan) for t, a in pairs])
            d = d[~np.isnan(d)]
            ahead = int(np.sum(d < 0 if m in LOWER_IS_BETTER else d > 0))
            cells.append(f"{np.mean(d):+.4g} / {np.median(d):+.4g} / {ahead}/{len(d)}" if len(d) else "–")

        def count(test: Callable[[ResultRow], bool]) -> str:
            return f"{sum(test(t) for t, _ in pairs)} / {sum(test(a) for _, a in pairs)}"

        unreached = count(lambda r: not r.reached)
        short = count(lambda r: r.bpp < SHORT_OF_TARGET * target)
        bpp = f"{np.mean([t.bpp for t, _ in pairs]):.3f} / {np.mean([a.bpp for _, a in pairs]):.3f}"
        md.append(f"| {target:g} | {len(pairs)} | {unreached} | {short} | {bpp} | " + " | ".join(cells) + " |")
    md.append("")
    return md


def rate_error_markdown(rows: Sequence[ResultRow], codec: str) -> list[str]:
    """Markdown table: how close ``codec``'s rate matching came to each target (bpp / target − 1)."""
    md = [f"## Rate matching of `{codec}`", "",
          "| target | reached | mean error | min | max |", "|---:|---:|---:|---:|---:|"]
    for target in sorted({r.target_bpp for r in rows if r.codec == codec}):
        got = [r for r in rows if r.codec == codec and r.target_bpp == target]
        err = [r.bpp / target - 1 for r in got if r.reached]
        cells = [f"{100 * np.mean(err):+.1f} %", f"{100 * min(err):+.1f} %", f"{100 * max(err):+.1f} %"] if err \
            else ["–", "–", "–"]
        md.append(f"| {target:g} | {len(err)}/{len(got)} | " + " | ".join(cells) + " |")
    md.append("")
    return md


def _plot(rows: Sequence[ResultRow], codecs: Sequence[str], metric: str, test_codec: str) -> tuple[bytes, bytes]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - matplotlib is a dependency
        raise ToolMissingError("RD plots need matplotlib (pip install matplotlib==3.11.2)") from exc
    import io

    fig = Figure(figsize=(6.4, 4.8), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for c in codecs:
        xs, ys, _ = _rd_points(rows, c, metric)
        if not xs:
            continue
        ax.plot(xs, ys, marker="o", linewidth=2.2 if c == test_codec else 1.4, label=c)
    ax.set_xlabel("bits per pixel (mean over images)")
    ax.set_ylabel(_LABELS.get(metric, metric) + " (mean over images)")
    ax.set_title(f"RD curves, {metric} (reached targets only)")
    ax.grid(True, alpha=0.4)
    ax.legend()
    fig.tight_layout()
    png, svg = io.BytesIO(), io.BytesIO()
    fig.savefig(png, format="png", metadata={"Software": None})
    fig.savefig(svg, format="svg", metadata={"Date": None})
    return png.getvalue(), svg.getvalue()


def write_report(csv_path: str | os.PathLike[str], out_dir: str | os.PathLike[str],
                 test_codec: str = "openjai", anchors: Sequence[str] | None = DEFAULT_ANCHORS,
                 metrics: Sequence[str] | None = None, method: Method = "pchip",
                 non_monotonic: NonMonotonic = "pareto", force: bool = False) -> dict[str, BDTable]:
    """Write ``bdrate.md``, ``bdrate.csv`` and ``rd_<metric>.{png,svg}`` into ``out_dir``.

    ``anchors``: anchor codecs in column order; those absent from the CSV are skipped (and
    named in the markdown). ``None`` means every codec in the CSV except ``test_codec``.
    Existing output files are only replaced with ``force=True``. Returns the tables by anchor.

    Raises:
        DataError: unreadable CSV, test codec absent, no anchor present, no metric.
        OutputError: output exists without ``force``, or cannot be written.
    """
    rows = load_results(csv_path)
    codecs_in = sorted({r.codec for r in rows})
    if test_codec not in codecs_in:
        raise DataError(f"{csv_path}: test codec {test_codec!r} not in results (have: {', '.join(codecs_in)})")
    wanted = [c for c in codecs_in if c != test_codec] if anchors is None else list(anchors)
    present = [a for a in wanted if a in codecs_in and a != test_codec]
    absent = [a for a in wanted if a not in codecs_in]
    if not present:
        raise DataError(f"{csv_path}: none of the anchors {', '.join(wanted)} is in the results")
    metric_list = list(metrics) if metrics is not None else _metrics_in(rows)
    if not metric_list:
        raise DataError(f"{csv_path}: no metric column with values (known: {', '.join(METRICS)})")

    out = Path(out_dir)
    names = ["bdrate.md", "bdrate.csv"] + [f"rd_{m}.{ext}" for m in metric_list for ext in ("png", "svg")]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out}: cannot create output directory ({exc})") from exc
    if not force:
        existing = [n for n in names if (out / n).exists()]
        if existing:
            raise OutputError(f"{out}: {', '.join(existing)} already exist(s); use force=True to replace")

    tables = {a: bd_table(rows, test_codec, a, metric_list, method, non_monotonic) for a in present}
    n_unreached = sum(1 for r in rows if not r.reached)
    n_unreached_by_codec: dict[str, int] = {}
    for r in rows:
        if not r.reached:
            n_unreached_by_codec[r.codec] = n_unreached_by_codec.get(r.codec, 0) + 1

    # --- bdrate.csv (long format: one line per metric and anchor) ---
    lines = ["metric,anchor,test_codec,method,bd_rate_percent,n_images,n_skipped,dropped_points"]
    for m in metric_list + ["cttc_average"]:
        for a in present:
            t = tables[a]
            if m == "cttc_average":
                v, n, s, d = t.cttc_average, "", "", ""
            else:
                c = t.cells[m]
                v, n, s, d = c.bd_rate, str(c.n_images), str(len(c.skipped)), str(c.dropped_points)
            lines.append(f"{m},{a},{test_codec},{method},{'' if math.isnan(v) else f'{v:.6f}'},{n},{s},{d}")
    csv_bytes = ("\n".join(lines) + "\n").encode()

    # --- bdrate.md ---
    md: list[str] = [f"# BD-rate of `{test_codec}` against anchors", ""]
    md.append(f"Method: {'piecewise cubic Hermite (PCHIP)' if method == 'pchip' else 'cubic polynomial (VCEG-M33)'} "
              "interpolation of log-rate over the common quality interval; BD-rate computed per image, "
              "then averaged over images. Negative = fewer bits than the anchor at equal quality.")
    md.append("")
    md.append("| metric | " + " | ".join(present) + " |")
    md.append("|---|" + "---:|" * len(present))
    notes: list[str] = []
    for m in metric_list:
        cells = []
        for a in present:
            c = tables[a].cells[m]
            txt = _fmt(c.bd_rate)
            if c.skipped:
                txt += f" ({c.n_images} img)"
                notes.append(f"- {m} vs {a}: {len(c.skipped)} image(s) left out: "
                             + "; ".join(f"{img}: {why}" for img, why in c.skipped[:5])
                             + (" ..." if len(c.skipped) > 5 else ""))
            cells.append(txt)
        md.append(f"| {_LABELS.get(m, m)} | " + " | ".join(cells) + " |")
    if any(tables[a].cttc_metrics_used for a in present):
        cells = []
        for a in present:
            t = tables[a]
            txt = _fmt(t.cttc_average)
            if 0 < len(t.cttc_metrics_used) < len(CTTC_METRICS):
                txt += f" ({len(t.cttc_metrics_used)}/{len(CTTC_METRICS)})"
            cells.append(txt)
        md.append("| **CTTC average** | " + " | ".join(f"**{c}**" for c in cells) + " |")
        used_any = sorted({m for a in present for m in tables[a].cttc_metrics_used}, key=CTTC_METRICS.index)
        if len(used_any) < len(CTTC_METRICS):
            md.append("")
            md.append(f"CTTC average over the metrics present: {', '.join(used_any)} "
                      f"(missing: {', '.join(m for m in CTTC_METRICS if m not in used_any)}).")
    md.append("")
    md.extend(rd_points_markdown(rows, [test_codec, *present], metric_list))
    if PAIRED_ANCHOR in present:
        md.extend(paired_delta_markdown(rows, test_codec, PAIRED_ANCHOR, metric_list))
    md.extend(rate_error_markdown(rows, test_codec))
    md.append("## Notes")
    md.append("")
    if n_unreached:
        per = ", ".join(f"{c}: {n}" for c, n in sorted(n_unreached_by_codec.items()))
        md.append(f"- {n_unreached} row(s) with `reached=False` (target rate not reached) were excluded "
                  f"from all curves, BD-rates and plots ({per}).")
    else:
        md.append("- Every row reached its target rate; no row was excluded.")
    dropped = sum(tables[a].cells[m].dropped_points for a in present for m in metric_list)
    if non_monotonic == "pareto":
        md.append(f"- Dominated RD points (more rate, no better quality) dropped from per-image curves: {dropped}.")
    if absent:
        md.append(f"- Anchors not in the results, skipped: {', '.join(absent)}.")
    md.append("- Plots: mean bpp against mean metric per target rate, over the images that reached it.")
    md.extend(notes)
    md_bytes = ("\n".join(md) + "\n").encode()

    codecs_plot = [test_codec] + present
    try:
        atomic_write(out / "bdrate.csv", csv_bytes, force=True)
        atomic_write(out / "bdrate.md", md_bytes, force=True)
        for m in metric_list:
            png, svg = _plot(rows, codecs_plot, m, test_codec)
            atomic_write(out / f"rd_{m}.png", png, force=True)
            atomic_write(out / f"rd_{m}.svg", svg, force=True)
    except OSError as exc:
        raise OutputError(f"{out}: cannot write report ({exc})") from exc
    return tables
