"""RD against training compute: BD-rate vs VVC of each model in the shipped lineage, against
the CPU-hours that produced it, with issue 6's bars (docs/training.md has the runs table).

    python benchmarks/training_curve.py   # reads and writes docs/results/training/
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

FOLDER = Path(__file__).resolve().parents[1] / "docs" / "results" / "training"
#: issue 6's bars on the average of the 7 CTTC metrics, BD-rate vs VVC Intra (%)
BARS = {"fast: avg of 7 ≤ +5 %": (5.0, 4), "high: avg of 7 ≤ −5 %": (-5.0, -12)}


def main() -> None:
    with open(FOLDER / "curve.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    hours = [float(r["lineage_cpu_hours"]) for r in rows]
    fig = Figure(figsize=(6.4, 4.8), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for column, label in (("bd_vvc_avg7", "avg of 7 CTTC metrics"), ("bd_vvc_psnr_y", "PSNR-Y")):
        # markers only: the runs branch off one another, they are not one sequence
        ax.plot(hours, [float(r[column]) for r in rows], marker="o", linestyle="none", label=label)
    for r, h in zip(rows, hours):
        ax.annotate(r["model"].split(" (")[0], (h, float(r["bd_vvc_avg7"])), textcoords="offset points",
                    xytext=(4, -12), fontsize=8)
    for label, (value, offset) in BARS.items():
        ax.axhline(value, linestyle="--", linewidth=1, color="grey")
        ax.annotate(label, (min(hours), value), textcoords="offset points", xytext=(0, offset), fontsize=8,
                    color="grey")
    ax.set_xlabel("CPU-hours in the model's lineage (2-core machine)")
    ax.set_ylabel("BD-rate vs VVC Intra on val (%, lower is better)")
    ax.set_title("openjai: rate-distortion against training compute")
    ax.grid(True, alpha=0.4)
    ax.legend()
    fig.tight_layout()
    for fmt, meta in (("png", {"Software": None}), ("svg", {"Date": None})):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, metadata=meta)
        (FOLDER / f"curve.{fmt}").write_bytes(buf.getvalue())
    print(f"wrote {FOLDER / 'curve.png'} and .svg")


if __name__ == "__main__":
    main()
