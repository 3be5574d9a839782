"""openjai keeps freed memory for reuse: a warm decode does not page its arrays in afresh."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from openjai.allocator import USER_SETTINGS, keep_freed_memory

STREAM = Path(__file__).resolve().parent / "conformance" / "sample_q90.jai"

# minor page faults per decode after the first: with a fixed 128 KiB trim threshold (glibc's
# default value) a 600×400 decode pages ~500 MiB in afresh, with openjai's thresholds ~1 000
FAULTS = """
import resource, sys
import openjai
data = open(sys.argv[1], "rb").read()
openjai.decode(data)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
    openjai.decode(data)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) // 3)
"""


def _faults_per_decode(env: dict[str, str]) -> int:
    out = subprocess.run([sys.executable, "-c", FAULTS, str(STREAM)], env=env, check=True,
                         capture_output=True, text=True)
    return int(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_warm_decode_reuses_freed_memory():
    env = {k: v for k, v in os.environ.items() if k not in USER_SETTINGS}
    tuned = _faults_per_decode(env)
    # a user's own setting is left alone: here glibc's default trim threshold, made fixed
    untuned = _faults_per_decode(env | {"MALLOC_TRIM_THRESHOLD_": "131072"})
    assert 10 * tuned < untuned


def test_a_users_own_setting_wins(monkeypatch):
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert keep_freed_memory() is False
