"""The stage profile (openjai/codec/profile.py) and `openjai encode --verbose`'s print of it."""

import time

import numpy as np

import openjai
from openjai.cli import main
from openjai.codec.profile import collect, stage


def test_stages_count_their_own_time_and_calls():
    with collect() as prof:
        for _ in range(2):
            with stage("outer"):
                time.sleep(0.02)
                with stage("inner"):
                    time.sleep(0.03)
    outer, inner = prof.stages["outer"], prof.stages["inner"]
    assert (outer.calls, inner.calls) == (2, 2)
    # each row excludes the stages inside it; sleeping costs wall time, not CPU time
    assert 0.04 <= outer.wall < 0.06 + 0.05 and 0.06 <= inner.wall < 0.06 + 0.05
    assert prof.wall == outer.wall + inner.wall
    assert outer.cpu < 0.04


def test_an_absorbing_stage_keeps_the_stages_inside_it():
    with collect() as prof:
        with stage("decodes", absorb=True):
            with stage("synthesis"):
                time.sleep(0.01)
        with stage("synthesis"):
            pass
    assert prof.stages["decodes"].wall >= 0.01
    assert prof.stages["synthesis"].calls == 1


def test_stages_outside_a_profile_record_nothing():
    with stage("anything"):
        pass
    with collect() as prof:
        pass
    assert prof.stages == {}


def test_encode_profile_covers_the_coder(sample_rgb, shipped):
    with collect() as prof:
        openjai.encode(sample_rgb[:128, :192], quality=60, model=shipped)
    for name in ("analysis g_a", "hyper analysis h_a", "hyper σ (integer)", "entropy coding", "synthesis",
                 "filter fit"):
        assert prof.stages[name].calls >= 1, name
    with collect() as prof:
        openjai.encode(sample_rgb[:128, :192], bpp=1.0, model=shipped)
    assert prof.stages["size estimates"].calls >= 1  # rate control predicts before it codes
    assert prof.stages["synthesis"].calls == prof.stages["container"].calls  # one synthesis per coded stream


def test_verbose_encode_prints_the_profile(tmp_path, sample_rgb, capsys):
    from PIL import Image

    src = tmp_path / "in.png"
    Image.fromarray(np.ascontiguousarray(sample_rgb[:96, :128])).save(src)
    assert main(["encode", str(src), "-o", str(tmp_path / "out.jai"), "--quality", "40", "-v"]) == 0
    out = capsys.readouterr().out
    assert "stage" in out and "synthesis" in out and "total" in out


def test_each_stage_reports_its_own_peak_memory():
    """The peak column is the resident-set high-water mark while the stage ran, reset when a
    stage opens (Linux), so a later small stage does not inherit an earlier big one's peak."""
    import mmap
    import sys

    with collect() as prof:
        with stage("big"):
            # 64 MiB mapped afresh and touched (a numpy array may reuse memory malloc kept)
            block = mmap.mmap(-1, 64 << 20)
            np.frombuffer(block, dtype=np.uint8)[:] = 1
            block.close()
        with stage("small"):
            np.ones(1 << 10)
    big, small = prof.stages["big"].peak_mib, prof.stages["small"].peak_mib
    if sys.platform != "linux":
        assert np.isnan(big) and "peak MiB" in prof.table()
        return
    assert big >= small + 48
    assert prof.peak_mib == big
    assert "peak MiB" in prof.table().splitlines()[0]
