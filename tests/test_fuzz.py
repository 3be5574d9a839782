"""The decoder contract under fuzzing: every input ends in an image or an OpenJAIError.

* a smoke run of the structured fuzzer (``openjai.fuzz``) over the shipped model;
* every stream in tests/fuzz_corpus/ (inputs that once broke the contract) decoded once, as
  saved and re-targeted at the installed model (the model id is in the stream, and retraining
  changes it), with its outcome classified by the fuzzer's own oracle;
* the hand-made hostile streams of ``fuzz.hostile_cases``, built from the installed model;
* the mutator's own invariants (determinism, CRC recomputation, split/serialize round trip).
"""

from __future__ import annotations

import random
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

import openjai
from openjai import fuzz
from openjai.errors import BitstreamError, OpenJAIError

CORPUS = Path(__file__).resolve().parent / "fuzz_corpus"
CORPUS_FILES = sorted(CORPUS.glob("*.jai"))


@pytest.fixture(scope="module")
def seeds(shipped):
    return fuzz.make_seeds(shipped)


def test_seeds_are_valid_and_small(shipped, seeds):
    assert len(seeds) >= 24
    colours = set()
    for s in seeds:
        info = openjai.read_info(s)
        colours.add(info.colour)
        assert info.width * info.height <= 64 * 64 and len(s) < 8192  # top-quality seeds carry a residual layer
        openjai.decode(s, model=shipped)
        assert fuzz.split(s) is not None and fuzz.split(s).serialize() == s
    assert colours == {"rgb", "grey", "rgba", "grey_alpha", "rgb_grey"}
    assert sum(fuzz.TAG_RES in {x.tag for x in fuzz.split(s).sections} for s in seeds) >= 4
    assert sum(fuzz.TAG_FILTER in {x.tag for x in fuzz.split(s).sections} for s in seeds) >= 4
    assert sum(fuzz.TAG_LAT in {x.tag for x in fuzz.split(s).sections} for s in seeds) >= 2


def test_mutations_are_deterministic_and_fix_the_crc(seeds):
    a = [fuzz.mutate(random.Random(i), seeds[i % len(seeds)], seeds[0]) for i in range(300)]
    b = [fuzz.mutate(random.Random(i), seeds[i % len(seeds)], seeds[0]) for i in range(300)]
    assert a == b
    crc_ok = sum(len(d) >= 4 and zlib.crc32(d[:-4]) == struct.unpack("<I", d[-4:])[0] for d, _ in a)
    assert crc_ok > 0.7 * len(a)  # most inputs get past the checksum
    assert len({d for d, _ in a}) > 250


def test_fuzz_smoke(shipped, tmp_path):
    """≥ 2000 mutated streams through read_info + decode: zero contract failures.

    One torch thread: the oracle's per-decode limit is process CPU time, which idle OpenMP
    threads spinning beside a loaded machine's other jobs would inflate. How fast the fuzzer
    runs is for ``make fuzz`` to report, not for a test to time."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        stats = fuzz.run(iterations=2000, seed=1234, out=tmp_path, lc=shipped)
    finally:
        torch.set_num_threads(threads)
    assert stats.iterations == 2000
    assert stats.failures == 0, stats.summary()
    # the run really explored: decodes that succeeded and many distinct rejections
    assert stats.outcomes["ok"] > 50 and len(stats.signatures) > 30, stats.summary()


def _check(lc, data: bytes) -> None:
    try:
        openjai.decode(data, model=lc, limits=fuzz.fuzz_limits())
    except OpenJAIError:
        pass
    outcome = fuzz.Target(lc)(data)  # the fuzzer's oracle: also output shape and CPU time
    assert not outcome.failure, f"{outcome.kind}: {outcome.message}\n{outcome.detail}"


@pytest.mark.parametrize("path", CORPUS_FILES, ids=[p.name[:16] for p in CORPUS_FILES])
def test_fuzz_corpus(shipped, path):
    """Each saved input decodes, or is refused with an OpenJAIError, within the time limit."""
    data = path.read_bytes()
    _check(shipped, data)
    _check(shipped, fuzz.retarget(data, shipped.model_id))


HOSTILE = sorted([
    "z-invalid-range-data", "y-invalid-range-data", "y-empty", "y-not-whole-words", "alpha-bomb",
    "alpha-truncated", "escape-overlong", "escape-beyond-limit", "escape-truncated", "escape-trailing", "rate-nan",
    "rate-above-range", "rate-negative-denormal", "section-length-lie", "section-duplicate", "sections-reversed",
    "section-count-lie", "size-changed-latent-mismatch", "size-at-default-limit", "alpha-missing",
    "model-id-length", "crc-wrong", "truncated-header", "empty", "residual-unpaired", "residual-head-only",
    "residual-head-short", "residual-words-garbage", "residual-sigma-beyond-tables", "residual-steps-zero",
    "residual-escapes-garbage", "filter-truncated", "filter-trailing", "filter-endless-code", "filter-all-ones",
    "lattice-unpaired", "lattice-head-only", "lattice-head-short", "lattice-words-garbage", "lattice-offset-beyond",
    "lattice-steps-zero", "lattice-escapes-garbage"])


@pytest.fixture(scope="module")
def hostile(seeds):
    return fuzz.hostile_cases(seeds)


def test_hostile_cases_listed(hostile):
    assert sorted(hostile) == HOSTILE


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_case(shipped, hostile, name):
    """Hand-made hostile streams: refused with an OpenJAIError, except the one valid reordering."""
    data = hostile[name]
    if name == "sections-reversed":  # the spec fixes no table order: same image as the 16×16 RGB seed
        original = fuzz.split(data)
        original.sections.reverse()
        assert (openjai.decode(data, model=shipped) == openjai.decode(original.serialize(), model=shipped)).all()
        return
    if name == "size-at-default-limit":
        # 2^28 pixels are within the default limits; the fuzz limits refuse them up front
        with pytest.raises(OpenJAIError, match="exceeds the limit"):
            openjai.decode(data, model=shipped, limits=fuzz.fuzz_limits())
        return
    _check(shipped, data)
    with pytest.raises(OpenJAIError):
        openjai.decode(data, model=shipped, limits=fuzz.fuzz_limits())


def test_corpus_is_not_empty():
    assert len(CORPUS_FILES) >= 1


def test_target_flags_foreign_exceptions(shipped):
    """The oracle itself: a non-OpenJAIError is a failure, an OpenJAIError is not."""

    class Api:
        @staticmethod
        def read_info(data, limits):
            raise IndexError("boom")

    o = fuzz.Target(shipped, api=Api())(b"x")
    assert o.failure and o.kind == "IndexError"
    o = fuzz.Target(shipped)(b"OJAI")
    assert not o.failure and o.kind == "BitstreamError"


def test_mutator_survives_chains(seeds):
    """Mutating mutated inputs (as the pool and atheris do) never breaks the mutator itself."""
    rng = random.Random(7)
    data = seeds[0]
    for i in range(3000):
        data, names = fuzz.mutate(rng, data if i % 50 else seeds[i % len(seeds)], rng.choice(seeds))
        assert names and isinstance(data, bytes)


def test_target_flags_slow_decodes(shipped):
    class Api:
        @staticmethod
        def read_info(data, limits):
            t = time.process_time()
            while time.process_time() - t < 0.05:
                pass
            raise BitstreamError("slow but polite")

    o = fuzz.Target(shipped, timeout=0.01, api=Api())(b"x")
    assert o.failure and o.kind == "timeout" and "BitstreamError" in o.message


def test_run_is_deterministic(shipped, tmp_path):
    a = fuzz.run(iterations=150, seed=99, lc=shipped)
    b = fuzz.run(iterations=150, seed=99, lc=shipped)
    assert a.signatures == b.signatures and a.mutations == b.mutations


@pytest.mark.parametrize("which", ["z", "y"])
def test_range_decoder_rejection_is_a_bitstream_error(shipped, which):
    """Found by the fuzzer: constriction raises AssertionError on data no encoder produces."""
    from openjai.codec.coding import decode_symbols

    tables = shipped.z_tables if which == "z" else shipped.y_tables
    for k in (0, len(tables) - 1):
        with pytest.raises(BitstreamError):
            decode_symbols(b"\xff" * 16, b"", np.full(64, k), tables)
