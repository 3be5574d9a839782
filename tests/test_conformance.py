"""Committed streams must decode to the committed integers exactly and to the committed images
within the manifest's tolerance, on any CPU; the encoder must write them again within its
tolerance (tests/conformance/check.py says what is exact and why the rest is not). A failure
of an exact check means decoding changed: if that was deliberate, run
tests/conformance/regenerate.py and commit the new streams with the change."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import openjai

HERE = Path(__file__).resolve().parent / "conformance"
sys.path.insert(0, str(HERE))
import check  # noqa: E402
import regenerate  # noqa: E402

STREAMS = sorted(check.MANIFEST["streams"])


@pytest.mark.parametrize("point", sorted(check.MANIFEST["models"]))
def test_made_with_the_shipped_model(point):
    assert check.MANIFEST["models"][point] == openjai.load_model(point).model_id, (
        f"the shipped weights of {point!r} changed: regenerate the conformance streams deliberately")


@pytest.mark.parametrize("name", STREAMS)
def test_reference_image_is_the_committed_one(name):
    assert regenerate.pixel_digest(check.reference(name)) == check.MANIFEST["streams"][name]["image_sha256"]


@pytest.mark.parametrize("name", STREAMS)
def test_decode(name):
    assert check.check_decode(name) == []


@pytest.mark.parametrize("name", STREAMS)
def test_encoder_within_tolerance(name):
    assert check.check_encode(name) == []


def test_tolerance_rejects_what_it_should():
    ref = check.reference("sample_q20")
    tol = check.MANIFEST["tolerance"]["decode"]
    assert check.compare(ref, ref).problems(tol) == []
    few = ref.copy()
    few[:2, :5] ^= 1  # 30 samples one level off: what another CPU's synthesis does
    assert check.compare(few, ref).problems(tol) == []
    two = ref.copy()
    two[0, 0, 0] = ref[0, 0, 0] + (2 if ref[0, 0, 0] < 128 else -2)
    assert "levels" in check.compare(two, ref).problems(tol)[0]
    many = ref.copy()
    many[::20] ^= 1  # 5 % of the rows
    assert any("identical" in p for p in check.compare(many, ref).problems(tol))
    with pytest.raises(ValueError):
        check.compare(ref[1:], ref)


def test_a_changed_decoder_fails(monkeypatch):
    """The check catches a decoder whose image drifts (here: one level added everywhere)."""
    decode = openjai.decode
    monkeypatch.setattr(check.openjai, "decode", lambda data: np.clip(decode(data).astype(int) + 1, 0, 255).astype(np.uint8))
    assert check.check_decode("crop_rgba")


#: CPU kernels that another machine would use: torch's ATen dispatch limited to AVX2 or to
#: no SIMD, and oneDNN (the convolutions) limited to AVX2. Each makes the float synthesis sum
#: in another order, as an AVX2-only or an AVX-512 CPU does; only integers must not move.
CPU_VARIANTS = {
    "aten-avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "aten-default": {"ATEN_CPU_CAPABILITY": "default"},
    "onednn-avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
}


@pytest.mark.parametrize("variant", sorted(CPU_VARIANTS))
def test_decode_on_other_cpu_kernels(variant):
    env = {**os.environ, **CPU_VARIANTS[variant], "OMP_NUM_THREADS": "2"}
    run = subprocess.run([sys.executable, str(HERE / "check.py")], env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count(": ok") == len(STREAMS)
