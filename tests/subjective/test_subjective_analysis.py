"""analysis.py: BT.500 screening, DMOS with Student-t intervals, the files analyze writes."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from scipy import stats

from openjai.errors import OutputError
from openjai.subjective import session as sess
from openjai.subjective.analysis import analyze, difference_scores, dmos, kurtosis_beta2, mean_ci95, screen
from openjai.subjective.simulate import simulate
from openjai.subjective.store import Response


def _panel(rng: np.random.Generator, observers: int, presentations: int) -> dict[str, dict[str, float]]:
    truth = rng.uniform(5, 60, presentations)
    return {f"o{i:02d}": {f"p{j:02d}": float(truth[j] + rng.normal(0, 5)) for j in range(presentations)}
            for i in range(observers)}


def test_screening_rejects_the_inconsistent_observer():
    rng = np.random.default_rng(3)
    scores = _panel(rng, 20, 24)
    # o07 scatters 3 noise deviations to both sides (BT.500 rejects scatter, not a bias)
    scores["o07"] = {p: v + (15 if k % 2 else -15) for k, (p, v) in enumerate(scores["o07"].items())}
    result = {o.observer: o for o in screen(scores)}
    assert result["o07"].rejected and result["o07"].p > 0 and result["o07"].q > 0
    assert len([o for o, r in result.items() if r.rejected]) <= 2  # the test's 5 % false alarms allow one more


def test_screening_keeps_a_consistently_biased_observer():
    rng = np.random.default_rng(4)
    scores = _panel(rng, 20, 24)
    scores["o03"] = {p: v + 15 for p, v in scores["o03"].items()}  # always above: P large, Q = 0
    result = {o.observer: o for o in screen(scores)}
    assert result["o03"].p > 0 and result["o03"].q == 0 and not result["o03"].rejected


def test_kurtosis_and_interval_match_scipy():
    rng = np.random.default_rng(5)
    x = rng.normal(size=200)
    assert kurtosis_beta2(x) == pytest.approx(stats.kurtosis(x, fisher=False, bias=True))
    y = rng.uniform(0, 100, 9)
    m, h = mean_ci95(y)
    lo, hi = stats.t.interval(0.95, len(y) - 1, loc=y.mean(), scale=stats.sem(y))
    assert (m - h, m + h) == pytest.approx((lo, hi))
    assert math.isnan(mean_ci95([3.0])[1])


def test_difference_scores_drop_training_and_dmos_is_mean():
    rs = [Response("a", 0, "c1", True, 90, 10), Response("a", 1, "c1", False, 80, 30),
          Response("b", 0, "c1", False, 70, 40), Response("a", 2, "c2", False, 50, 55)]
    d = difference_scores(rs)
    assert d == {"a": {"c1": 50.0, "c2": -5.0}, "b": {"c1": 30.0}}
    res = dmos(d, ["a", "b"])
    assert res["c1"].dmos == 40.0 and res["c1"].n == 2 and res["c2"].n == 1


def test_analyze_writes_tables_plot_and_rejects_random_observer(session_dir, tmp_path):
    simulate(session_dir, observers=16, outliers=1, seed=1)
    out = tmp_path / "analysis"
    res = analyze(session_dir, out)
    assert {p.name for p in res.files} == {"dmos.csv", "dmos_by_rate.csv", "screening.csv", "dmos.md",
                                           "dmos_vs_bpp.png"}
    rejected = [o.observer for o in res.screening if o.rejected]
    assert "sim1-15" in rejected and len(rejected) <= 2  # the inattentive one (and at most one false alarm)
    kept = 16 - len(rejected)
    assert abs(res.hidden_reference.dmos) < 5 and res.hidden_reference.n == kept
    by = {(p.codec, p.target_bpp): p for p in res.points}
    for codec in ("jpeg", "openjai"):  # more bits, less impairment (the scripted observers follow PSNR)
        assert by[(codec, 1.0)].dmos.dmos < by[(codec, 0.5)].dmos.dmos
        assert by[(codec, 1.0)].metrics["psnr_y"] > by[(codec, 0.5)].metrics["psnr_y"]
    rows = list(csv.DictReader((out / "dmos.csv").open()))
    s = sess.load(session_dir)
    assert {r["condition"] for r in rows} == {c.id for c in s.conditions}
    assert all(int(r["n"]) == kept for r in rows)
    assert (out / "dmos_vs_bpp.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| jpeg | 0.5 |" in (out / "dmos.md").read_text()
    with pytest.raises(OutputError, match="--force"):
        analyze(session_dir, out)
    assert analyze(session_dir, out, force=True, screening=False).hidden_reference.n == 16
