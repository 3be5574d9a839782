"""Tests of openjai.eval.report on a synthetic CTTC results CSV with known BD-rates."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from openjai.errors import DataError, OutputError
from openjai.eval.report import ResultRow, bd_table, load_results, paired_delta_markdown, write_report

TARGETS = (0.12, 0.25, 0.5, 0.75)
COLUMNS = ["image", "codec", "target_bpp", "bpp", "reached", "psnr_y", "ms_ssim", "nlpd", "unrelated"]


def _quality(image: int, bpp: float) -> dict[str, float]:
    """A plausible RD relation per image: metrics as functions of the *anchor* rate."""
    lr = math.log(bpp)
    return {
        "psnr_y": 38.0 + 4.0 * image + 6.0 * lr,
        "ms_ssim": 1.0 - 0.03 * math.exp(-lr - 0.2 * image),
        "nlpd": 0.25 * math.exp(-0.8 * lr) + 0.05 * image,  # lower is better
    }


def _write_csv(path: Path, extra: list[dict] | None = None) -> Path:
    """2 images x 3 codecs x 4 targets.

    anchor "jpeg": rate b at quality Q(b). "openjai": the same qualities at 0.8 b (BD -20 %).
    "vvc": the same qualities at 0.5 b, so openjai vs vvc is 0.8/0.5 - 1 = +60 %.
    """
    rows = []
    for img in range(2):
        for t in TARGETS:
            base = t * (1.0 + 0.03 * img)
            q = _quality(img, base)
            for codec, factor in (("jpeg", 1.0), ("openjai", 0.8), ("vvc", 0.5)):
                rows.append({"image": f"img{img}.png", "codec": codec, "target_bpp": t,
                             "bpp": base * factor, "reached": "True", **q, "unrelated": "x"})
    rows.extend(extra or [])
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in COLUMNS})
    return path


# An unreached openjai row that would wreck the curve (and the plot) if it were used.
UNREACHED = {"image": "img0.png", "codec": "openjai", "target_bpp": 1.0, "bpp": 0.01, "reached": "False",
             "psnr_y": 99.0, "ms_ssim": 0.99999, "nlpd": 0.0001}


def test_load_results(tmp_path):
    rows = load_results(_write_csv(tmp_path / "r.csv", [UNREACHED]))
    assert len(rows) == 2 * 3 * 4 + 1
    r = rows[0]
    assert r.image == "img0.png" and r.codec == "jpeg" and r.reached is True
    assert set(r.metrics) == {"psnr_y", "ms_ssim", "nlpd"}  # "unrelated" is not a metric
    assert sum(not r.reached for r in rows) == 1


def test_load_results_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_results(tmp_path / "missing.csv")
    p = tmp_path / "bad.csv"
    p.write_text("image,codec,bpp\na,b,1\n")
    with pytest.raises(DataError, match="missing column"):
        load_results(p)
    p.write_text("image,codec,target_bpp,bpp,reached\na,b,0.1,0.1,maybe\n")
    with pytest.raises(DataError, match="boolean"):
        load_results(p)


def test_bd_table_values(tmp_path):
    rows = load_results(_write_csv(tmp_path / "r.csv", [UNREACHED]))
    t = bd_table(rows, "openjai", "jpeg")
    assert list(t.cells) == ["psnr_y", "ms_ssim", "nlpd"]
    for m, cell in t.cells.items():
        assert cell.bd_rate == pytest.approx(-20.0, abs=1e-9), m
        assert cell.n_images == 2 and cell.skipped == ()
    # CTTC average over the CTTC metrics present (ms_ssim, nlpd), PSNR-Y is not one of them
    assert t.cttc_metrics_used == ("ms_ssim", "nlpd")
    assert t.cttc_average == pytest.approx(-20.0, abs=1e-9)
    t2 = bd_table(rows, "openjai", "vvc", method="cubic")
    for cell in t2.cells.values():
        assert cell.bd_rate == pytest.approx(60.0, abs=1e-9)
    with pytest.raises(DataError, match="not in results"):
        bd_table(rows, "openjai", "hevc")


def test_per_image_then_average(tmp_path):
    # img1's openjai rates become 0.5x instead of 0.8x: mean of (-20, -50) = -35 (not a pooled fit)
    p = _write_csv(tmp_path / "r.csv")
    rows = load_results(p)
    rows = [type(r)(r.image, r.codec, r.target_bpp, r.bpp * (0.5 / 0.8), r.reached, r.metrics)
            if (r.codec == "openjai" and r.image == "img1.png") else r for r in rows]
    t = bd_table(rows, "openjai", "jpeg", metrics=["psnr_y"])
    assert t.cells["psnr_y"].bd_rate == pytest.approx(-35.0, abs=1e-9)


def test_unreached_excluded_and_image_skipped(tmp_path):
    # Mark 3 of img1's openjai rows unreached: 1 point left, img1 skipped for every metric.
    extra = []
    p = _write_csv(tmp_path / "r.csv", extra)
    rows = load_results(p)
    rows = [type(r)(r.image, r.codec, r.target_bpp, r.bpp, False, r.metrics)
            if (r.codec == "openjai" and r.image == "img1.png" and r.target_bpp != 0.25) else r for r in rows]
    t = bd_table(rows, "openjai", "jpeg")
    cell = t.cells["psnr_y"]
    assert cell.n_images == 1 and cell.bd_rate == pytest.approx(-20.0, abs=1e-9)
    assert cell.skipped[0][0] == "img1.png" and "needs at least 2" in cell.skipped[0][1]


def test_write_report(tmp_path):
    p = _write_csv(tmp_path / "r.csv", [UNREACHED])
    out = tmp_path / "report"
    tables = write_report(p, out, test_codec="openjai", anchors=("vvc", "jpeg", "hevc"))
    assert set(tables) == {"vvc", "jpeg"}
    for m in ("psnr_y", "ms_ssim", "nlpd"):
        png = (out / f"rd_{m}.png").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 1000
        assert (out / f"rd_{m}.svg").read_text().lstrip().startswith("<?xml")
    md = (out / "bdrate.md").read_text()
    assert "| metric | vvc | jpeg |" in md
    assert "-20.00 %" in md and "+60.00 %" in md
    assert "CTTC average" in md and "ms_ssim, nlpd" in md
    assert "reached=False" in md and "openjai: 1" in md
    assert "hevc" in md  # named as absent
    with (out / "bdrate.csv").open() as f:
        recs = list(csv.DictReader(f))
    got = {(r["metric"], r["anchor"]): float(r["bd_rate_percent"]) for r in recs}
    assert got[("psnr_y", "jpeg")] == pytest.approx(-20.0, abs=1e-5)
    assert got[("nlpd", "vvc")] == pytest.approx(60.0, abs=1e-5)
    assert got[("cttc_average", "jpeg")] == pytest.approx(-20.0, abs=1e-5)
    # no silent overwrite
    with pytest.raises(OutputError, match="already exist"):
        write_report(p, out, anchors=("jpeg",))
    write_report(p, out, anchors=("jpeg",), force=True)
    assert "| metric | jpeg |" in (out / "bdrate.md").read_text()


def test_plot_points_exclude_unreached(tmp_path):
    from openjai.eval.report import _rd_points

    rows = load_results(_write_csv(tmp_path / "r.csv", [UNREACHED]))
    xs, ys, ns = _rd_points(rows, "openjai", "psnr_y")
    assert len(xs) == len(TARGETS) and ns == [2] * len(TARGETS)
    assert min(xs) == pytest.approx(np.mean([0.12 * 0.8, 0.12 * 1.03 * 0.8]))
    assert max(ys) < 99.0


def test_paired_delta_counts_unreached_and_short_rows():
    def row(img: str, codec: str, psnr: float, nlpd: float, bpp: float = 0.98, reached: bool = True) -> ResultRow:
        return ResultRow(img, codec, 1.0, bpp, reached, {"psnr_y": psnr, "nlpd": nlpd})

    rows = [row("a", "jpeg", 30.0, 0.2), row("a", "openjai", 32.0, 0.1),
            row("b", "jpeg", 30.0, 0.2, bpp=1.3, reached=False), row("b", "openjai", 31.0, 0.3),
            row("c", "jpeg", 40.0, 0.1), row("c", "openjai", 30.0, 0.05, bpp=0.5),  # top of range
            row("d", "openjai", 50.0, 0.0)]  # no JPEG row for d: not paired
    md = paired_delta_markdown(rows, "openjai", "jpeg", ["psnr_y", "nlpd"])
    line = next(x for x in md if x.startswith("| 1 |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[:5] == ["1", "3", "0 / 1", "1 / 0", "0.820 / 1.087"]
    # Δ PSNR-Y: +2, +1, −10 → mean −2.333, median +1, 2 of 3 ahead; NLPD is ahead when lower
    assert cells[5] == "-2.333 / +1 / 2/3"
    assert cells[6] == "-0.01667 / -0.05 / 2/3"
