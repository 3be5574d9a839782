"""Stage profile of encoding and decoding: wall seconds, CPU seconds, calls and peak memory per named stage.

    with collect() as prof:          # openjai encode --verbose, benchmarks/bench_codec.py
        openjai.encode(img, bpp=0.5)
    print(prof.table(megapixels))

The coder marks its stages with ``with stage("synthesis"):``. Stages nest, and each row counts
only the time outside the stages inside it, so the rows add up to the time spent in stages.
A stage opened with ``absorb=True`` keeps the stages inside it in its own row (the decodes
rate control runs to compare distortions are one row, not spread over the decoder's rows).
CPU seconds are the process's (all threads): on a busy machine they show the work done, where
wall seconds also show the waiting. Peak MiB is the process's resident-set high-water mark
while the stage (or a stage inside it) ran: on Linux the mark is reset when a stage opens
(``/proc/self/clear_refs``), so each row shows the stage's own peak, not an earlier one;
elsewhere the column is empty. Outside ``collect`` a stage costs one context lookup.
"""

from __future__ import annotations

import math
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
    peak_mib: float = math.nan  # highest resident set while it ran (NaN where not measurable)


@dataclass
class _Open:
    name: str
    wall: float
    cpu: float
    absorb: bool
    child_wall: float = 0.0
    child_cpu: float = 0.0
    peak_mib: float = math.nan


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

    @property
    def peak_mib(self) -> float:
        """The highest resident set of any stage (NaN where not measurable)."""
        return max((s.peak_mib for s in self.stages.values()), default=math.nan, key=_nan_low)

    def table(self, megapixels: float | None = None) -> str:
        """One line per stage: wall s, CPU s, calls, peak MiB (and wall s/MP with ``megapixels``),
        then the total."""
        per_mp = megapixels is not None and megapixels > 0
        head = f"{'stage':<28} {'wall s':>8} {'cpu s':>8} {'calls':>6} {'peak MiB':>9}" + (
            f" {'s/MP':>8}" if per_mp else "")

        def line(name: str, wall: float, cpu: float, calls: str, peak: float) -> str:
            peak_text = "" if math.isnan(peak) else f"{peak:.0f}"
            return f"{name:<28} {wall:>8.3f} {cpu:>8.3f} {calls:>6} {peak_text:>9}" + (
                f" {wall / megapixels:>8.3f}" if per_mp else "")

        rows = [line(n, s.wall, s.cpu, str(s.calls), s.peak_mib) for n, s in self.stages.items()]
        return "\n".join([head, *rows, line("total", self.wall, self.cpu, "", self.peak_mib)])


def _nan_low(x: float) -> float:
    return -math.inf if math.isnan(x) else x


def _high_water_mib(reset: bool) -> float:
    """The resident-set high-water mark (MiB) since the last reset, then reset it to the current
    resident set when ``reset``; NaN where /proc does not offer it (not Linux)."""
    try:
        with open("/proc/self/status") as f:
            peak = next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM:"))
        if reset:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        return peak
    except (OSError, StopIteration, ValueError):
        return math.nan


def _note_peak(stack: list[_Open], reset: bool) -> None:
    """Raise the peak of every open stage to the high-water mark since the last reset."""
    peak = _high_water_mib(reset)
    for entry in stack:
        entry.peak_mib = max(entry.peak_mib, peak, key=_nan_low)


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
    _note_peak(prof._stack, reset=True)  # the enclosing stages keep the peak so far
    entry = _Open(name, time.perf_counter(), time.process_time(), absorb)
    prof._stack.append(entry)
    try:
        yield
    finally:
        _note_peak(prof._stack, reset=False)
        prof._stack.pop()
        wall, cpu = time.perf_counter() - entry.wall, time.process_time() - entry.cpu
        s = prof.stages.setdefault(name, StageTime())
        s.wall += wall - entry.child_wall
        s.cpu += cpu - entry.child_cpu
        s.calls += 1
        s.peak_mib = max(s.peak_mib, entry.peak_mib, key=_nan_low)
        if prof._stack:
            prof._stack[-1].child_wall += wall
            prof._stack[-1].child_cpu += cpu
