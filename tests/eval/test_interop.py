"""Interoperability: a stream encoded with 1 CPU thread decodes to the same integer latents with 2."""

from __future__ import annotations

import numpy as np
import pytest

from openjai.eval.complexity import photo
from openjai.eval.interop import LATENT_FIELDS, Setting, _identical, check_interop, default_settings


def test_latents_identical_across_thread_counts(shipped) -> None:
    r = check_interop(shipped, [photo(192, 128)], [Setting("cpu", 1), Setting("cpu", 2)])
    assert len(r.comparisons) == 1
    c = r.comparisons[0]
    assert c.threads_used == 2  # the decoding subprocess really ran with 2 threads
    assert r.latents_identical
    assert r.max_abs_pixel_diff <= 1
    assert r.mean_abs_delta_psnr_db < 0.05
    assert 10 < r.reference_psnr_db[0] < 100  # a real decode (the model is still being trained)
    assert "latents identical: True" in r.summary()


def test_identical_detects_any_difference() -> None:
    a = {f: np.arange(12, dtype=np.int64).reshape(1, 3, 2, 2) for f in LATENT_FIELDS}
    assert _identical(a, {k: v.copy() for k, v in a.items()})
    b = {k: v.copy() for k, v in a.items()}
    b["sigma_index"][0, 0, 0, 0] += 1
    assert not _identical(a, b)
    c = {k: v.astype(np.int32) for k, v in a.items()}  # same values, other dtype: not byte-identical
    assert not _identical(a, c)


def test_settings_validation(tiny) -> None:
    with pytest.raises(ValueError):
        Setting("cpu", 0)
    with pytest.raises(ValueError):
        Setting("tpu", 1)
    with pytest.raises(ValueError):
        check_interop(tiny, [photo(64, 64)], [Setting("cpu", 1)])
    with pytest.raises(ValueError):
        check_interop(tiny, [photo(64, 64)], [Setting("cuda", 1), Setting("cpu", 1)])
    s = default_settings()
    assert s[0] == Setting("cpu", 1) and s[1].device == "cpu" and s[1].threads >= 2
