"""``openjai subjective make|simulate|analyze`` through the real command line entry point."""

from __future__ import annotations

from openjai.cli import main
from openjai.subjective import session as sess


def test_make_simulate_analyze(tiny_eval, tmp_path, capsys):
    out, data = tiny_eval
    sd = tmp_path / "s"
    args = ["subjective", "make", str(sd), "--eval", str(out), "--data", str(data), "--codecs", "jpeg",
            "--crop", "64x48", "--crop-at", "10,5", "--training", "1", "--seed", "3"]
    assert main(args) == 0
    s = sess.load(sd)
    assert [im.crop for im in s.images] == [(10, 5, 64, 48)] * 2
    assert len(s.conditions) == 6 and len(s.training) == 1 and s.seed == 3
    assert main(args) == 1 and "--force" in capsys.readouterr().err  # never overwritten silently
    assert main(["subjective", "analyze", str(sd)]) == 1
    assert "no observer has been run" in capsys.readouterr().err
    assert main(["subjective", "simulate", str(sd), "--observers", "3"]) == 0
    assert main(["subjective", "analyze", str(sd)]) == 0
    text = capsys.readouterr().out
    assert "| jpeg | 0.5 |" in text and "| hidden reference |" in text
    assert (sd / "analysis" / "dmos_vs_bpp.png").is_file()
    assert main(["subjective", "view", str(sd / "a.jai"), str(sd / "b.jai"), "--original", str(data / "a.png")]) == 1
    assert "--original goes with one .jai" in capsys.readouterr().err
    assert main(["subjective", "view", str(data / "a.png")]) == 1
    assert "not a .jai stream" in capsys.readouterr().err
    assert main(args + ["--force"]) == 1  # a rebuild would orphan the recorded scores
    assert "holds scores" in capsys.readouterr().err
