"""The CTTC runner on two tiny images: rows, resume, repair, executors, the openjai adapter, CLI.

Kept small (64×48 images, jpeg and webp, two targets, psnr_y and ms_ssim) so the whole file
runs in well under a minute on one core.
"""

from __future__ import annotations

import csv
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import openjai
from openjai.bpp import bits_per_pixel
from openjai.errors import DataError, RateControlError
from openjai.cli import main as cli_main
from openjai.eval.anchors import JPEG, WebP
from openjai.eval.anchors.base import ParamRange
from openjai.eval.cttc import BASE_COLUMNS, CODECS, Job, parse_rates, run_cttc, run_job
from openjai.eval.metrics.psnr import psnr_rgb
from openjai.eval.openjai_codec import OpenJAICodec
from openjai.eval.report import load_results

W, H = 64, 48
TARGETS = (0.5, 1.0)
METRICS = ("psnr_y", "ms_ssim")
TIMING = ("encode_s", "decode_s")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """Two 64×48 PNGs: smooth gradients plus noise (so the codecs have something to code)."""
    d = tmp_path_factory.mktemp("cttc_data")
    yy, xx = np.mgrid[0:H, 0:W]
    rng = np.random.default_rng(7)
    for i in range(2):
        img = np.stack([(xx * 4 + 40 * i) % 256, (yy * 5) % 256, ((xx + yy) * 3) % 256], axis=-1).astype(np.float64)
        img += rng.normal(0, 8, img.shape)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(d / f"img{i}.png")
    (d / "notes.txt").write_text("not an image")  # ignored
    return d


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as f:
        r = csv.DictReader(f)
        return list(r.fieldnames or []), list(r)


def _comparable(rows: list[dict[str, str]]) -> dict[tuple[str, str, str], dict[str, str]]:
    """Rows by (image, codec, target) without the timing columns (which differ run to run)."""
    return {(r["image"], r["codec"], r["target_bpp"]): {k: v for k, v in r.items() if k not in TIMING} for r in rows}


class _Counting:
    """Wraps a codec and counts its encodes (serial executor only: the count lives in this process)."""

    calls: dict[str, int] = {}

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name = inner.name
        self.param_range = inner.param_range

    def encode(self, img, param):
        _Counting.calls[self.name] = _Counting.calls.get(self.name, 0) + 1
        return self.inner.encode(img, param)

    def decode(self, data):
        return self.inner.decode(data)


COUNTING = {"jpeg": lambda: _Counting(JPEG("420")), "webp": lambda: _Counting(WebP())}


@pytest.fixture(scope="module")
def serial_csv(data_dir, tmp_path_factory) -> Path:
    """The reference run: serial, jpeg + webp, 2 images × 2 targets."""
    out = tmp_path_factory.mktemp("serial") / "results.csv"
    return run_cttc(data_dir, ["jpeg", "webp"], TARGETS, out, metrics=METRICS, executor="serial", progress=False)


def test_rows_and_columns(serial_csv):
    header, rows = _read(serial_csv)
    assert header == list(BASE_COLUMNS) + list(METRICS)
    assert len(rows) == 2 * 2 * 2
    assert {(r["image"], r["codec"], float(r["target_bpp"])) for r in rows} == {
        (f"img{i}.png", c, t) for i in range(2) for c in ("jpeg", "webp") for t in TARGETS
    }
    for r in rows:
        bpp, target = float(r["bpp"]), float(r["target_bpp"])
        assert bpp == bits_per_pixel(int(r["num_bytes"]), W, H)
        assert r["reached"] in ("True", "False")
        if r["reached"] == "True":
            assert bpp <= target * 1.1
        else:  # unreached: even the lowest-rate setting is above the allowance
            assert bpp > target * 1.1
        assert float(r["encode_s"]) >= 0 and float(r["decode_s"]) >= 0
        pr = CODECS[r["codec"]]().param_range
        assert pr.low <= float(r["param"]) <= pr.high
        assert 10 < float(r["psnr_y"]) < 80 and 0 < float(r["ms_ssim"]) <= 1
    assert sum(r["reached"] == "True" for r in rows) >= 5
    # the report reads it as is
    loaded = load_results(serial_csv)
    assert len(loaded) == 8 and set(loaded[0].metrics) == set(METRICS)


def test_resume_does_not_reencode(data_dir, tmp_path):
    out = tmp_path / "r.csv"
    _Counting.calls.clear()
    run_cttc(data_dir, COUNTING, TARGETS, out, metrics=METRICS, executor="serial", progress=False)
    assert _Counting.calls["jpeg"] > 0 and _Counting.calls["webp"] > 0
    before = out.read_bytes()
    _Counting.calls.clear()
    run_cttc(data_dir, COUNTING, TARGETS, out, metrics=None, executor="serial", progress=False)  # metrics from CSV
    assert _Counting.calls == {}
    assert out.read_bytes() == before
    # a new target only adds its rows
    run_cttc(data_dir, COUNTING, TARGETS + (2.0,), out, metrics=METRICS, executor="serial", progress=False)
    _, rows = _read(out)
    assert len(rows) == 12 and out.read_bytes().startswith(before)


def test_partial_csv_is_completed(data_dir, serial_csv, tmp_path):
    out = tmp_path / "partial.csv"
    lines = serial_csv.read_text().splitlines(keepends=True)
    header, body = lines[0], lines[1:]
    keep = [ln for ln in body if not ln.startswith("img1.png,webp,") and not ln.startswith("img0.png,jpeg,1.0,")]
    assert len(keep) == 5
    # plus a torn last line, as a crash in the middle of an append leaves it
    out.write_text(header + "".join(keep) + "img1.png,jpeg,0.5,3,0.")
    _Counting.calls.clear()
    with pytest.warns(UserWarning, match="incomplete last line"):
        run_cttc(data_dir, COUNTING, TARGETS, out, executor="serial", progress=False)
    _, rows = _read(out)
    assert len(rows) == 8
    assert _comparable(rows) == _comparable(_read(serial_csv)[1])
    assert set(_Counting.calls) == {"jpeg", "webp"}  # img0/jpeg (one target) and img1/webp re-run only
    assert out.read_text().startswith(header + "".join(keep))


@pytest.mark.parametrize("executor", ["process", "dask"])
def test_executors_match_serial(executor, data_dir, serial_csv, tmp_path):
    out = run_cttc(data_dir, ["jpeg", "webp"], TARGETS, tmp_path / "r.csv", metrics=METRICS, workers=2,
                   executor=executor, progress=False)
    header, rows = _read(out)
    assert header == _read(serial_csv)[0]
    assert len(rows) == 8
    assert _comparable(rows) == _comparable(_read(serial_csv)[1])


def test_openjai_adapter_matches_api(tiny, sample_rgb):
    img = np.ascontiguousarray(sample_rgb[:48, :64])
    codec = OpenJAICodec(tiny)
    assert codec.name == "openjai" and codec.param_range.increasing and not codec.param_range.integer
    for q in (0.0, 37.5, 100.0):
        data = codec.encode(img, q)
        assert data == openjai.encode(img, quality=q, model=tiny)
        out = codec.decode(data)
        assert out.shape == img.shape and out.dtype == np.uint8
        assert np.array_equal(out, openjai.decode(data, model=tiny))
    codec.clear_cache()
    assert codec.encode(img, 37.5) == openjai.encode(img, quality=37.5, model=tiny)
    with pytest.raises(RateControlError):
        codec.encode(img, 101.0)


def test_openjai_through_runner(data_dir, tmp_path):
    """The shipped model, by name, through the runner: one image, one target."""
    out = run_cttc(data_dir, ["openjai"], [1.0], tmp_path / "r.csv", metrics=["psnr_y"], executor="serial",
                   limit=1, progress=False)
    _, rows = _read(out)
    assert len(rows) == 1
    r = rows[0]
    assert r["codec"] == "openjai" and r["image"] == "img0.png"
    assert 0.0 <= float(r["param"]) <= 100.0
    if r["reached"] == "True":
        assert float(r["bpp"]) <= 1.1
    img = np.asarray(Image.open(data_dir / "img0.png").convert("RGB"))
    data = openjai.encode(img, quality=float(r["param"]))
    assert len(data) == int(r["num_bytes"])


def test_errors(data_dir, tmp_path, serial_csv):
    with pytest.raises(DataError, match="not found"):
        run_cttc(tmp_path / "missing", ["jpeg"], TARGETS, tmp_path / "r.csv", executor="serial", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no test image"):
        run_cttc(tmp_path / "empty", ["jpeg"], TARGETS, tmp_path / "r.csv", executor="serial", progress=False)
    with pytest.raises(DataError, match="unknown codec"):
        run_cttc(data_dir, ["jpeg", "nope"], TARGETS, tmp_path / "r.csv", executor="serial", progress=False)
    with pytest.raises(DataError, match="unknown metric"):
        run_cttc(data_dir, ["jpeg"], TARGETS, tmp_path / "r.csv", metrics=["psnr_q"], progress=False)
    with pytest.raises(RateControlError):
        run_cttc(data_dir, ["jpeg"], [0.5, -1.0], tmp_path / "r.csv", executor="serial", progress=False)
    other = tmp_path / "other.csv"
    shutil.copy(serial_csv, other)
    with pytest.raises(DataError, match="metric columns"):
        run_cttc(data_dir, ["jpeg"], TARGETS, other, metrics=["psnr_y"], executor="serial", progress=False)
    assert other.read_bytes() == serial_csv.read_bytes()
    assert parse_rates("cttc")[0] == 0.03 and parse_rates("0.25, 0.5") == (0.25, 0.5)
    with pytest.raises(RateControlError):
        parse_rates("0.25,abc")


def test_cli_run_and_report(data_dir, tmp_path, capsys):
    out = tmp_path / "res"
    argv = ["--data", str(data_dir), "--codecs", "openjai,jpeg", "--rates", "1.0,2.0", "--out", str(out),
            "--executor", "serial", "--metrics", "psnr_y", "-q"]
    assert cli_main(["eval", *argv]) == 0
    rows = load_results(out / "results.csv")
    assert len(rows) == 2 * 2 * 2
    assert (out / "bdrate.md").is_file() and (out / "rd_psnr_y.png").is_file()
    csv_before = (out / "results.csv").read_bytes()
    (out / "bdrate.md").unlink()
    assert cli_main(["eval", "report", str(out), "-q"]) == 0
    assert (out / "bdrate.md").is_file()
    assert cli_main(["eval", *argv]) == 0  # resumed: nothing new, report replaced
    assert (out / "results.csv").read_bytes() == csv_before
    assert cli_main(["eval", "--codecs", "jpeg", "--out", str(out)]) == 1
    assert "--data" in capsys.readouterr().err
    # a second openjai model (here: the same one) joins the CSV under its own label
    assert cli_main(["eval", *argv[:3], "openjai", *argv[4:], "--label", "openjai-b"]) == 0
    rows = load_results(out / "results.csv")
    by_codec = {c: sorted((r.image, r.target_bpp, r.bpp) for r in rows if r.codec == c)
                for c in ("openjai", "openjai-b")}
    assert len(rows) == 2 * 2 * 3 and by_codec["openjai"] == by_codec["openjai-b"]
    assert cli_main(["eval", "report", str(out), "--test-codec", "openjai-b", "--out", str(out / "b"), "-q"]) == 0
    assert "openjai-b" in (out / "b" / "bdrate.md").read_text()
    assert cli_main(["eval", *argv[:3], "openjai", *argv[4:], "--label", "jpeg"]) == 1
    assert "another codec" in capsys.readouterr().err


class _SleepyCodec:
    """Fake codec: ``param`` bytes (rate grows with param), each encode sleeps 10 ms and is counted."""

    name = "sleepy"
    param_range = ParamRange(low=1, high=400, increasing=True, integer=True)

    def __init__(self) -> None:
        self.encodes: list[float] = []

    def encode(self, img, param):
        self.encodes.append(float(param))
        time.sleep(0.01)
        return bytes(int(param))

    def decode(self, data):
        return np.full((H, W, 3), 128 + len(data) % 2, np.uint8)


class _CachingSleepyCodec(_SleepyCodec):
    """Has ``clear_cache`` (as the openjai adapter does): its times need a clean re-encode."""

    def clear_cache(self) -> None:
        pass


@pytest.mark.parametrize("cls", [_SleepyCodec, _CachingSleepyCodec])
def test_encode_time_reuses_the_search_encode(cls, data_dir):
    codecs: list[_SleepyCodec] = []

    def factory():
        codecs.append(cls())
        return codecs[-1]

    targets = (0.25, 0.5, 1.0)
    job = Job("img0.png", str(data_dir / "img0.png"), "sleepy", targets, ("psnr_rgb",), factory=factory)
    rows = run_job(job)
    (codec,) = codecs
    distinct = len(set(codec.encodes))
    extra = len(targets) if cls is _CachingSleepyCodec else 0  # one timed re-encode per target
    assert len(codec.encodes) == distinct + extra
    for r, t in zip(rows, targets):
        assert r["reached"] == "True" and float(r["bpp"]) <= t
        assert 0.01 <= float(r["encode_s"]) < 1.0  # the sleep is inside the timed encode


class _Alternative(_SleepyCodec):
    """The same rates, another stream (bytes of 1s), decoded to another grey."""

    def encode(self, img, param):
        super().encode(img, param)
        return b"\x01" * int(param)

    def decode(self, data):
        return np.full((H, W, 3), 64, np.uint8)


class _ChoosyCodec(_SleepyCodec):
    """Offers one alternative per image and prefers its streams."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = 0
        self.alt = _Alternative()

    def alternatives(self, img):
        self.asked += 1
        return [self.alt]

    def preferred(self, img, streams):
        return next(i for i, s in enumerate(streams) if s[:1] == b"\x01")


def test_a_codec_with_alternatives_gets_the_stream_it_prefers(data_dir):
    codecs: list[_ChoosyCodec] = []

    def factory():
        codecs.append(_ChoosyCodec())
        return codecs[-1]

    targets = (0.25, 0.5)
    rows = run_job(Job("img0.png", str(data_dir / "img0.png"), "sleepy", targets, ("psnr_rgb",), factory=factory))
    (codec,) = codecs
    assert codec.asked == 1  # once per image, not per target
    img = np.asarray(Image.open(data_dir / "img0.png").convert("RGB"))
    alternative = psnr_rgb(img, np.full(img.shape, 64, np.uint8))
    for r, t in zip(rows, targets):
        assert r["reached"] == "True" and float(r["bpp"]) <= t
        assert float(r["psnr_rgb"]) == pytest.approx(alternative)  # decoded by the alternative
        assert float(r["param"]) in codec.alt.encodes and 0.01 <= float(r["encode_s"]) < 1.0  # the alternative's time
