"""The command line: round trip, refusals, and one-line errors for bad input (never a traceback)."""

import fcntl
import os
import struct
import subprocess
import sys
import termios
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SAMPLE = Path(__file__).resolve().parents[1] / "openjai" / "data" / "sample.png"


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "openjai", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def assert_clean_error(r):
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("openjai:"), r.stderr
    assert "Traceback" not in r.stderr


@pytest.fixture(scope="module")
def stream(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "s.jai"
    r = run("encode", SAMPLE, "-o", out, "--bpp", "0.5", "-v")
    assert r.returncode == 0, r.stderr
    assert "bpp" in r.stdout
    return out


def test_encode_decode_info(stream, tmp_path):
    png = tmp_path / "d.png"
    r = run("decode", stream, "-o", png)
    assert r.returncode == 0, r.stderr
    assert Image.open(png).size == (600, 400)
    r = run("info", stream)
    assert r.returncode == 0 and "600x400" in r.stdout and "bpp" in r.stdout


def test_refuses_to_overwrite_without_force(stream, tmp_path):
    png = tmp_path / "d.png"
    png.write_bytes(b"keep me")
    assert_clean_error(run("decode", stream, "-o", png))
    assert png.read_bytes() == b"keep me"
    assert run("decode", stream, "-o", png, "--force").returncode == 0
    assert png.read_bytes() != b"keep me"
    assert_clean_error(run("encode", SAMPLE, "-o", SAMPLE))  # never over the input


@pytest.mark.parametrize("content", [b"", b"OJAI", os.urandom(300), b"\x89PNG\r\n\x1a\n" + os.urandom(50)])
def test_bad_streams(tmp_path, content):
    bad = tmp_path / "bad.jai"
    bad.write_bytes(content)
    out = tmp_path / "o.png"
    assert_clean_error(run("decode", bad, "-o", out))
    assert not out.exists() and not list(tmp_path.glob(".o.png*"))
    assert_clean_error(run("info", bad))


def test_truncated_and_flipped_stream(stream, tmp_path):
    data = stream.read_bytes()
    out = tmp_path / "o.png"
    for cut in (5, 20, len(data) // 2, len(data) - 1):
        p = tmp_path / f"cut{cut}.jai"
        p.write_bytes(data[:cut])
        assert_clean_error(run("decode", p, "-o", out))
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 1
    p = tmp_path / "flip.jai"
    p.write_bytes(bytes(flipped))
    r = run("decode", p, "-o", out)
    assert_clean_error(r)
    assert "CRC" in r.stderr
    assert not out.exists()


def test_bad_images_and_paths(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.png"
    junk.write_bytes(os.urandom(500))
    for src in (empty, junk, tmp_path / "missing.png", tmp_path):
        assert_clean_error(run("encode", src, "-o", tmp_path / "x.jai"))
    assert not (tmp_path / "x.jai").exists()
    assert_clean_error(run("decode", tmp_path, "-o", tmp_path / "y.png"))
    assert_clean_error(run("encode", SAMPLE, "-o", "/proc/openjai-cannot-write.jai"))
    assert_clean_error(run("encode", SAMPLE, "-o", tmp_path / "no" / "dir" / "x.jai"))


def test_usage_errors_exit_2(tmp_path):
    assert run("encode", SAMPLE).returncode == 1  # no -o: an openjai error naming the fix
    assert run("encode", SAMPLE, "-o", tmp_path / "a.jai", "--bpp", "x").returncode == 2
    assert run("frobnicate").returncode == 2


def test_batch_continues_past_bad_input(tmp_path):
    """Batch encode and decode (-d) go on past a bad input and exit 1; with stderr piped, as
    here, only the error lines reach it: no progress bar."""
    good = tmp_path / "good.png"
    Image.fromarray(np.full((20, 30, 3), 120, np.uint8)).save(good)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    outdir = tmp_path / "out"
    outdir.mkdir()
    r = run("encode", bad, good, "-d", outdir, "--quality", "40")
    assert r.returncode == 1
    assert "bad.png" in r.stderr and "1 of 2" in r.stderr
    assert (outdir / "good.jai").exists() and not (outdir / "bad.jai").exists()
    assert r.stderr.count("\n") == 2 and "\r" not in r.stderr
    (outdir / "bad.jai").write_bytes(b"OJAI broken")
    pngs = tmp_path / "png"
    pngs.mkdir()
    r = run("decode", outdir / "good.jai", outdir / "bad.jai", "-d", pngs)
    assert r.returncode == 1 and "bad.jai" in r.stderr and "1 of 2" in r.stderr
    assert r.stderr.count("\n") == 2 and "\r" not in r.stderr
    assert Image.open(pngs / "good.png").size == (30, 20) and not (pngs / "bad.png").exists()
    assert_clean_error(run("decode", outdir / "good.jai", outdir / "good.jai", "-o", tmp_path / "x.png"))


def test_batch_shows_progress_on_a_terminal(tmp_path):
    src = tmp_path / "a.png"
    Image.fromarray(np.full((20, 30, 3), 90, np.uint8)).save(src)
    outdir = tmp_path / "out"
    outdir.mkdir()
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a new pty is 0 columns wide
    try:
        r = subprocess.run([sys.executable, "-m", "openjai", "encode", str(src), "-d", str(outdir)],
                           stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        shown = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the pty's other side is closed: all read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(master)
    assert r.returncode == 0 and (outdir / "a.jai").exists()
    assert b"1/1" in shown and b"image" in shown


def test_effort_option(tmp_path):
    small = tmp_path / "small.png"
    Image.open(SAMPLE).crop((0, 0, 96, 64)).save(small)
    out = tmp_path / "e.jai"
    r = run("encode", small, "-o", out, "--quality", "50", "--effort", "1")
    assert r.returncode == 0, r.stderr
    assert run("decode", out, "-o", tmp_path / "e.png").returncode == 0
    r = run("encode", small, "-o", tmp_path / "f.jai", "--effort", "7")
    assert r.returncode == 2 and "effort" in r.stderr and not (tmp_path / "f.jai").exists()


def test_no_residual_no_filter_and_no_lattice_options(tmp_path):
    from openjai.codec import container

    small = tmp_path / "small.jpg"  # a JPEG input: its luma gets the lattice layer
    Image.open(SAMPLE).crop((0, 0, 192, 128)).save(small, quality=75)
    sections = {}
    for flag in ((), ("--no-residual",), ("--no-filter",), ("--no-lattice",)):
        out = tmp_path / f"r{len(sections)}.jai"
        r = run("encode", small, "-o", out, "--quality", "80", *flag)
        assert r.returncode == 0, r.stderr
        sections[flag] = container.parse(out.read_bytes()).sections
    S = container.Section
    assert {S.RESIDUAL, S.FILTER, S.LATTICE} <= set(sections[()])
    assert S.RESIDUAL not in sections[("--no-residual",)]
    assert {S.FILTER, S.LATTICE} <= set(sections[("--no-residual",)])
    assert S.FILTER not in sections[("--no-filter",)]
    assert {S.RESIDUAL, S.LATTICE} <= set(sections[("--no-filter",)])
    assert S.LATTICE not in sections[("--no-lattice",)]
    assert {S.RESIDUAL, S.FILTER} <= set(sections[("--no-lattice",)])
