"""Stage profile of encoding and decoding: wall seconds, CPU seconds and calls per named stage.

    with collect() as prof:          # openjai encode --verbose, benchmarks/bench_codec.py
        openjai.encode(img, bpp=0.5)
    print(prof.table(megapixels))

The coder marks its stages with ``with stage("synthesis"):``. Stages nest, and each row counts
only the time outside the stages inside it, so the rows add up to the time spent in stages.
A stage opened with ``absorb=True`` keeps the stages inside it in its own row (the decodes
rate control runs to compare distortions are one row, not spread over the decoder's rows).
CPU seconds are the process's (all threads): on a busy machine they show the work done, where
wall seconds also show the waiting. Outside ``collect`` a stage costs one context lookup.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass
class StageTime:
    """Accumulated time of one stage, excluding the stages inside it."""

    wall: float = 0.0
    cpu: float = 0.0
    calls: int = 0


@dataclass
class _Open:
    name: str
    wall: float
    cpu: float
    absorb: bool
    child_wall: float = 0.0
    child_cpu: float = 0.0


@dataclass
class Profile:
    """Stage name → accumulated time, in the order the stages first ran."""

    stages: dict[str, StageTime] = field(default_factory=dict)
    _stack: list[_Open] = field(default_factory=list)

    @property
    def wall(self) -> float:
        return sum(s.wall for s in self.stages.values())

    @property
    def cpu(self) -> float:
        return sum(s.cpu for s in self.stages.values())

    def table(self, megapixels: float | None = None) -> str:
        """One line per stage: wall s, CPU s, calls (and wall s/MP with ``megapixels``), then the total."""
        per_mp = megapixels is not None and megapixels > 0
        head = f"{'stage':<28} {'wall s':>8} {'cpu s':>8} {'calls':>6}" + (f" {'s/MP':>8}" if per_mp else "")

        def line(name: str, wall: float, cpu: float, calls: str) -> str:
            return f"{name:<28} {wall:>8.3f} {cpu:>8.3f} {calls:>6}" + (f" {wall / megapixels:>8.3f}" if per_mp else "")

        rows = [line(n, s.wall, s.cpu, str(s.calls)) for n, s in self.stages.items()]
        return "\n".join([head, *rows, line("total", self.wall, self.cpu, "")])


_current: ContextVar[Profile | None] = ContextVar("openjai_profile", default=None)


@contextmanager
def collect() -> Iterator[Profile]:
    """Profile the stages run inside this block (in this thread)."""
    prof = Profile()
    token = _current.set(prof)
    try:
        yield prof
    finally:
        _current.reset(token)


@contextmanager
def stage(name: str, absorb: bool = False) -> Iterator[None]:
    """Count the block as stage ``name`` of the profile being collected, if any."""
    prof = _current.get()
    if prof is None or (prof._stack and prof._stack[-1].absorb):
        yield
        return
    entry = _Open(name, time.perf_counter(), time.process_time(), absorb)
    prof._stack.append(entry)
    try:
        yield
    finally:
        prof._stack.pop()
        wall, cpu = time.perf_counter() - entry.wall, time.process_time() - entry.cpu
        s = prof.stages.setdefault(name, StageTime())
        s.wall += wall - entry.child_wall
        s.cpu += cpu - entry.child_cpu
        s.calls += 1
        if prof._stack:
            prof._stack[-1].child_wall += wall
            prof._stack[-1].child_cpu += cpu
