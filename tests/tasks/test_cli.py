"""``openjai task`` and ``openjai eval tasks``: output format, one-line errors, nothing written on failure."""

from __future__ import annotations

import re

import pytest

from openjai.cli import main


def _run(argv, capsys) -> tuple[int, str, str]:
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_classify_prints_five_lines(resnet_available, base_stream, tmp_path, capsys):
    src = tmp_path / "in.jai"
    src.write_bytes(base_stream)
    rc, out, err = _run(["task", "classify", str(src)], capsys)
    assert rc == 0 and err == ""
    lines = out.splitlines()
    assert len(lines) == 5
    for line in lines:
        assert re.fullmatch(r"[01]\.\d{4}  +\d{1,3}  \S.*", line), line
    probs = [float(line.split()[0]) for line in lines]
    assert probs == sorted(probs, reverse=True)


@pytest.mark.parametrize("content", [b"", b"not a jai stream at all", None])
def test_bad_input_is_one_line_error(content, tmp_path, capsys):
    src = tmp_path / "in.jai"
    if content is not None:
        src.write_bytes(content)
    before = sorted(tmp_path.iterdir())
    rc, out, err = _run(["task", "classify", str(src)], capsys)
    assert rc == 1 and out == ""
    assert err.startswith("openjai: error: ") and err.count("\n") == 1
    assert sorted(tmp_path.iterdir()) == before


def test_stream_of_another_model_is_one_line_error(high_stream, tmp_path, capsys):
    src = tmp_path / "in.jai"
    src.write_bytes(high_stream)
    rc, out, err = _run(["task", "classify", str(src)], capsys)
    assert rc == 1 and out == "" and err.count("\n") == 1 and "openjai-base" in err


def test_classify_takes_no_output(base_stream, tmp_path, capsys):
    src = tmp_path / "in.jai"
    src.write_bytes(base_stream)
    rc, _, err = _run(["task", "classify", str(src), "-o", str(tmp_path / "out.txt")], capsys)
    assert rc == 1 and "takes no -o" in err
    assert not (tmp_path / "out.txt").exists()


@pytest.mark.parametrize("args,message", [(["--rates", "0.5,x"], "comma-separated"), (["--rates", "-1"], "(0, 8]"),
                                          (["--limit", "0"], "at least 1"), (["--tasks", "nosuchtask"], "nosuchtask")])
def test_eval_tasks_bad_options(args, message, tmp_path, capsys):
    rc, _, err = _run(["eval", "tasks", "--out", str(tmp_path / "r"), *args], capsys)
    assert rc == 1 and message in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists() and not (tmp_path / "r.md").exists()
