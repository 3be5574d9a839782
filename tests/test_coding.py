import numpy as np
import pytest
import torch

from openjai.codec.coding import MAX_ESCAPE, TableSet, decode_symbols, encode_symbols
from openjai.codec.entropy import PMF_PRECISION, ScaleTable, quantize_pmf
from openjai.errors import BitstreamError


@pytest.fixture(scope="module")
def gaussian_tables():
    return TableSet(ScaleTable().build_tables())


def _sample(rng, n, tables):
    idx = rng.integers(0, len(tables), n)
    scale = ScaleTable().scale(torch.tensor(idx, dtype=torch.float64)).numpy()
    return np.round(rng.normal(0, scale)).astype(np.int64), idx


def test_round_trip_with_escapes(gaussian_tables):
    rng = np.random.default_rng(0)
    values, idx = _sample(rng, 20000, gaussian_tables)
    values[:6] = [500, -500, MAX_ESCAPE, -MAX_ESCAPE, 0, 7]  # far beyond small tables: escapes
    idx[:6] = 0
    data, esc = encode_symbols(values, idx, gaussian_tables)
    assert len(esc) > 0
    np.testing.assert_array_equal(decode_symbols(data, esc, idx, gaussian_tables), values)


def test_rate_close_to_entropy(gaussian_tables):
    """The coded size is within 2 % of the ideal code length of the integer tables."""
    rng = np.random.default_rng(1)
    values, idx = _sample(rng, 50000, gaussian_tables)
    data, _ = encode_symbols(values, idx, gaussian_tables)
    ideal = 0.0
    for v, k in zip(values, idx):
        t = gaussian_tables.tables[k]
        s = min(max(v - t.offset, 0), len(t.counts) - 1)
        ideal -= np.log2(t.counts[s] / 2**PMF_PRECISION)
    assert len(data) * 8 < ideal * 1.02 + 64


def test_escape_limit_enforced(gaussian_tables):
    with pytest.raises(ValueError):
        encode_symbols(np.array([MAX_ESCAPE + 10]), np.array([0]), gaussian_tables)


def test_malformed_inputs_raise(gaussian_tables):
    values = np.array([0, 1, 300, -2])
    idx = np.array([3, 3, 3, 3])
    data, esc = encode_symbols(values, idx, gaussian_tables)
    with pytest.raises(BitstreamError):
        decode_symbols(data[:-1], esc, idx, gaussian_tables)  # not whole words
    with pytest.raises(BitstreamError):
        decode_symbols(data, esc[:-1], idx, gaussian_tables)  # truncated escape
    with pytest.raises(BitstreamError):
        decode_symbols(data, esc + b"\x00", idx, gaussian_tables)  # trailing escape bytes
    with pytest.raises(BitstreamError):
        decode_symbols(data, b"\xff\xff\xff\xff\x0f", idx, gaussian_tables)  # escape beyond limit


def test_quantize_pmf_is_valid():
    counts = quantize_pmf(np.array([1e-20, 0.5, 0.5 - 1e-9, 0.0]))
    assert counts.min() >= 1 and counts.sum() == 2**PMF_PRECISION


def test_collapsed_hyper_channel_still_codes():
    """A factorized-prior channel whose density collapsed onto 0 (seen in training) gets a
    table of at least {-1, 0, 1}; other values escape. A one-entry table would be refused by
    the range coder, and a model with such a channel could not be loaded."""
    from openjai.codec.entropy import FactorizedPrior

    prior = FactorizedPrior(2)
    with torch.no_grad():  # an extremely steep cumulative centred on 0: all mass in the bin of 0
        for name, p in prior.named_parameters():
            p.fill_(5.0 if name.startswith("matrices") else 0.0)
    tables = prior.build_tables()
    assert min(len(t.counts) for t in tables) >= 3
    ts = TableSet(tables)
    values = np.array([0, 0, 1, -1, 7, -300, 0, 2])
    index = np.array([0, 1, 0, 1, 0, 1, 1, 0])
    data, esc = encode_symbols(values, index, ts)
    np.testing.assert_array_equal(decode_symbols(data, esc, index, ts), values)


def test_bit_costs_are_each_tables_code_lengths(gaussian_tables):
    """TableSet.bits holds −log2 P of each value (end bins: the tail mass, plus ESCAPE_BITS for
    an escape), and clipping a value to ±limit keeps its cost."""
    from openjai.codec.coding import ESCAPE_BITS

    bits = gaussian_tables.bits
    limit = (bits.shape[1] - 1) // 2
    for k in (0, 20, len(gaussian_tables) - 1):
        t = gaussian_tables.tables[k]
        n = len(t.counts)
        for v in (0, 1, -2, t.offset, t.offset + n - 1, t.offset - 3, t.offset + n + 5):
            s = min(max(v - t.offset, 0), n - 1)
            expect = PMF_PRECISION - np.log2(t.counts[s]) + (ESCAPE_BITS if s in (0, n - 1) and v else 0.0)
            assert bits[k, min(max(v, -limit), limit) + limit] == pytest.approx(expect, rel=1e-12)
        assert limit > max(-t.offset, t.offset + n - 1)


def test_ideal_bits_predict_the_coded_size(gaussian_tables):
    rng = np.random.default_rng(3)
    values, idx = _sample(rng, 40000, gaussian_tables)
    data, esc = encode_symbols(values, idx, gaussian_tables)
    ideal = gaussian_tables.ideal_bits(values, idx)
    assert abs(8 * (len(data) + len(esc)) / ideal - 1) < 0.01
