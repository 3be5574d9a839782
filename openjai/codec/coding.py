"""Entropy coding of integer symbols with integer PMF tables (constriction's range coder).

Symbols that share a table are coded together with one ``Categorical`` model: both sides
know every symbol's table index (ẑ channel, or σ-index from the exact scale decoder), so
both can group. Groups are coded in increasing table order, symbols within a group in
raster order.

Each table covers [offset, offset + n - 1]; its two end bins also stand for everything
beyond. A symbol in an end bin is followed by an *escape*: the distance past the edge,
stored as an unsigned LEB128 varint in a separate byte string, in coding order. Every
value is therefore representable without clamping, and escapes are bounded by
``MAX_ESCAPE`` so a hostile stream cannot inflate them.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property

import constriction
import numpy as np

from ..errors import BitstreamError
from .entropy import PMF_PRECISION, IntegerTable
from .profile import stage

MAX_ESCAPE = 1 << 16
#: symbols the coder and its estimates handle at once: bounds their memory (8 bytes a symbol)
RUN_CHUNK = 1 << 22
#: bits the encoder's estimates charge for one escape (LEB128: ~2 bytes for the magnitudes seen)
ESCAPE_BITS = 16.0


class TableSet:
    """A list of integer tables and their (cached) constriction models."""

    def __init__(self, tables: list[IntegerTable]) -> None:
        self.tables = tables
        self._models = [
            constriction.stream.model.Categorical(t.counts.astype(np.float64) / (1 << PMF_PRECISION), perfect=False)
            for t in tables
        ]

    def __len__(self) -> int:
        return len(self.tables)

    @cached_property
    def bits(self) -> np.ndarray:
        """Ideal code length in bits (−log2 P) of every value v ∈ [−limit, limit] under each table:
        float64 (tables, 2·limit + 1), column v + limit; a non-zero value in an end bin (which
        escapes) costs ESCAPE_BITS more. Every table's support lies inside ±(limit − 1), so a value
        clipped to ±limit keeps its cost: ``bits[k, clip(v, −limit, limit) + limit]``."""
        limit = 1 + max(max(-t.offset, t.offset + len(t.counts) - 1) for t in self.tables)
        v = np.arange(-limit, limit + 1)
        rows = []
        for t in self.tables:
            n = len(t.counts)
            sym = v - t.offset
            escape = ((sym <= 0) | (sym >= n - 1)) & (v != 0)
            b = PMF_PRECISION - np.log2(t.counts.astype(np.float64))
            rows.append(b[np.clip(sym, 0, n - 1)] + escape * ESCAPE_BITS)
        return np.stack(rows)

    def ideal_bits(self, values: np.ndarray, index: np.ndarray) -> float:
        """Bits of coding int ``values`` with table ``index`` per value, from ``bits``: what the
        range coder spends up to a few bytes, for the encoder's size predictions."""
        bits = self.bits
        limit = (bits.shape[1] - 1) // 2
        values, index = np.asarray(values).ravel(), np.asarray(index).ravel()
        total = 0.0
        for c in range(0, values.size, RUN_CHUNK):  # bounded temporaries; one chunk: one sum
            v = np.clip(values[c : c + RUN_CHUNK], -limit, limit) + limit
            total += float(bits[index[c : c + RUN_CHUNK], v].sum())
        return total


def _table_runs(index: np.ndarray, n_tables: int) -> Iterator[tuple[int, np.ndarray]]:
    """(table, positions of symbols with that table in raster order) in coding order: tables in
    increasing order, each in runs of positions within RUN_CHUNK symbols, so a whole image's
    symbols need no sorted copy. Coding a table's symbols run by run codes the same sequence."""
    chunks = range(0, index.size, RUN_CHUNK)
    counts = sum(np.bincount(index[c : c + RUN_CHUNK], minlength=n_tables)[:n_tables] for c in chunks)
    for k in np.flatnonzero(counts):
        for c in chunks:
            positions = np.flatnonzero(index[c : c + RUN_CHUNK] == k)
            if positions.size:
                yield int(k), positions + c


class SymbolEncoder:
    """Codes several passes of symbols into one range-coded string and one escape string.

    A pass is coded grouped by table (see module docstring); passes follow each other, so a
    decoder may compute the table indices of a pass from the values of the passes before it.
    """

    def __init__(self, tables: TableSet) -> None:
        self.tables = tables
        self._encoder = constriction.stream.queue.RangeEncoder()
        self._escapes = bytearray()

    def encode(self, values: np.ndarray, index: np.ndarray) -> None:
        """Code int ``values`` with table ``index`` per value (same shapes)."""
        with stage("entropy coding"):
            self._encode(values, index)

    def _encode(self, values: np.ndarray, index: np.ndarray) -> None:
        values = np.asarray(values).ravel()
        index = np.asarray(index).ravel()
        tables = self.tables
        for k, positions in _table_runs(index, len(tables)):
            table = tables.tables[k]
            n = len(table.counts)
            v = values[positions].astype(np.int64)
            sym = np.clip(v - table.offset, 0, n - 1)
            edge = (sym == 0) | (sym == n - 1)
            if edge.any():
                excess = np.where(sym[edge] == 0, table.offset - v[edge], v[edge] - (table.offset + n - 1))
                if excess.max() > MAX_ESCAPE:
                    raise ValueError(f"symbol magnitude beyond the coder's limit ({MAX_ESCAPE})")
                for e in excess.tolist():
                    _write_varint(self._escapes, e)
            self._encoder.encode(sym.astype(np.int32), tables._models[k])

    def finish(self) -> tuple[bytes, bytes]:
        """(range-coded bytes, escapes)."""
        with stage("entropy coding"):
            return self._encoder.get_compressed().astype("<u4").tobytes(), bytes(self._escapes)


class SymbolDecoder:
    """Inverse of ``SymbolEncoder``: one ``decode`` per pass, then ``finish``.

    Raises BitstreamError on malformed input.
    """

    def __init__(self, data: bytes, escapes: bytes, tables: TableSet) -> None:
        if len(data) % 4:
            raise BitstreamError("entropy-coded section length is not a multiple of 4 bytes")
        self.tables = tables
        words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
        self._decoder = constriction.stream.queue.RangeDecoder(words)
        self._reader = _VarintReader(escapes)

    def decode(self, index: np.ndarray) -> np.ndarray:
        """int32 values of one pass, one per entry of ``index`` (flattened)."""
        with stage("entropy decoding"):
            return self._decode(index)

    def _decode(self, index: np.ndarray) -> np.ndarray:
        tables = self.tables
        index = np.asarray(index).ravel()
        out = np.empty(index.size, dtype=np.int32)
        for k, positions in _table_runs(index, len(tables)):
            count = positions.size
            table = tables.tables[k]
            n = len(table.counts)
            try:
                sym = np.asarray(self._decoder.decode(tables._models[k], count), dtype=np.int64)
            except AssertionError as e:  # constriction's report of data no encoder could produce
                raise BitstreamError(f"entropy-coded section is corrupted ({e})") from None
            v = sym + table.offset
            low, high = np.flatnonzero(sym == 0), np.flatnonzero(sym == n - 1)
            if low.size or high.size:
                # escapes were written in coding order: merge both edges by position
                pos = np.sort(np.concatenate([low, high]))
                for p in pos.tolist():
                    e = self._reader.read()
                    v[p] = table.offset - e if sym[p] == 0 else v[p] + e
            out[positions] = v
        return out

    def finish(self) -> None:
        """Check that the escape section held nothing more."""
        if not self._reader.done():
            raise BitstreamError("escape section has trailing bytes")


def encode_symbols(values: np.ndarray, index: np.ndarray, tables: TableSet) -> tuple[bytes, bytes]:
    """One-pass ``SymbolEncoder``: (range-coded bytes, escapes)."""
    encoder = SymbolEncoder(tables)
    encoder.encode(values, index)
    return encoder.finish()


def decode_symbols(data: bytes, escapes: bytes, index: np.ndarray, tables: TableSet) -> np.ndarray:
    """Inverse of ``encode_symbols``; raises BitstreamError on malformed input."""
    decoder = SymbolDecoder(data, escapes, tables)
    out = decoder.decode(index)
    decoder.finish()
    return out


def _write_varint(buf: bytearray, value: int) -> None:
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            buf.append(byte | 0x80)
        else:
            buf.append(byte)
            return


class _VarintReader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def read(self) -> int:
        value, shift = 0, 0
        while True:
            if self.pos >= len(self.data):
                raise BitstreamError("escape section truncated")
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if value > MAX_ESCAPE:
                raise BitstreamError("escape value beyond limit")
            if not byte & 0x80:
                return value
            shift += 7

    def done(self) -> bool:
        return self.pos == len(self.data)
