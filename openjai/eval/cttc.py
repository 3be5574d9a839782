"""The CTTC runner: test images × codecs × target rates → one results CSV (input of ``report``).

```
data_dir ──find_images──▶ images (sorted, relative paths are the CSV ``image`` keys)
codecs   ──resolve_codecs─▶ {name: factory}  (CODECS = ANCHORS + {"openjai": OpenJAICodec})
results.csv (existing rows) ──▶ done (image, codec, target) ──▶ jobs = (image, codec, missing targets)

one job, in a worker (torch threads = 1):
  image.load(path).rgb ─┬─ for each target:  match_rate(codec, img, target)     (ratematch rule)
                        │                    (a codec with alternatives: each searched alike, then
                        │                     codec.preferred picks among the reached points)
                        │                    wall time of the chosen param's encode → encode_s
                        │                      (memoised; re-encoded only for codecs with clear_cache)
                        │                    decode the chosen bytes, timed       → decode_s
                        │                    compute_all(original, decoded)       → metric columns
                        └─ encodes are memoised by parameter across the job's targets
rows of one job ──▶ one append + flush + fsync to results.csv (main process only)
```

Executors (parallel over jobs; one job = all missing targets of one codec on one image):

* ``"process"``: ``concurrent.futures.ProcessPoolExecutor``, spawn context, ``workers`` processes.
* ``"dask"``: ``dask.distributed.Client(scheduler)`` when a scheduler address is given (its
  workers must have openjai installed and see the images at the same path), else a
  ``LocalCluster(processes=True, n_workers=workers, threads_per_worker=1)``.
* ``"serial"``: in this process, one job after another (debugging).

CSV columns (header fixed when the file is created)::

    image, codec, target_bpp, param, bpp, reached, num_bytes, encode_s, decode_s, <metric>...

``target_bpp``/``bpp``/``param`` and metric values are written with ``repr`` (exact round trip);
a metric that cannot be computed for an image (``MetricError``) is an empty cell, which the
report treats as missing. ``reached`` is ``True``/``False`` as returned by ``match_rate``: an
unreached row is still written (with its real bpp and metrics), and the report excludes it.
``encode_s`` is the wall time of one encode of the chosen parameter: the one the rate search
made (the memo records the time of every encode it performs), except for a codec with a
``clear_cache`` method (the openjai adapter caches its analysis transform between encodes, so
its search encodes are not honestly timed), which is cleared and re-encoded once, timed;
``decode_s`` is that of the decode whose output the metrics were computed on. Times are per
worker process with one torch thread, on whatever else the machine runs: compare them only
within one run.

Alternatives: a codec may offer, per image, other codecs that encode it differently
(``alternatives(img) -> list[Codec]``) and a choice among streams of one target
(``preferred(img, streams) -> index``). Each alternative is rate-matched by the same rule, and
the row is the preferred one of the points that reached the target, with that alternative's
parameter, encode and decode. openjai offers its lattice weights for images that were JPEGs
(the choice its ``--bpp`` rate control makes, codec/ratecontrol.py).

Resuming: rows already in the CSV (same image, codec and target) are skipped, so rerunning the
same command completes an interrupted run, and adding a codec or a rate adds only its rows.
Each completed job's rows are appended in one write followed by flush and fsync, so a crash
loses at most the jobs in flight; a trailing partial line (a crash inside that write) is cut
off on the next run. The CSV is never rewritten. An exclusive ``flock`` keeps two runs from
writing one CSV at the same time. Asking for other metric columns than an existing CSV has is
refused (use another output file).

A job that fails with an openjai error (codec or image error) leaves no row; the other jobs
go on, and :class:`CTTCError` lists the failures at the end (rerun to retry them). Any other
exception is a bug: the run stops there (completed rows stay in the CSV).
"""

from __future__ import annotations

from .threads import torch_threads

import contextlib
import csv
import io
import math
import multiprocessing
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

import numpy as np

from openjai.errors import CodecError, DataError, MetricError, OpenJAIError, OutputError, RateControlError
from openjai.eval.anchors import ANCHORS
from openjai.eval.anchors.base import Codec
from openjai.eval.openjai_codec import OpenJAICodec
from openjai.eval.ratematch import CTTC_TARGETS, match_rate

__all__ = [
    "CODECS",
    "BASE_COLUMNS",
    "IMAGE_EXTENSIONS",
    "CTTCError",
    "Job",
    "find_images",
    "parse_rates",
    "resolve_codecs",
    "run_job",
    "run_cttc",
]

#: Every codec the runner knows, by CSV name: the anchors plus openjai itself.
CODECS: dict[str, Callable[[], Codec]] = {**ANCHORS, "openjai": OpenJAICodec}

#: Columns before the metric columns, in CSV order.
BASE_COLUMNS: tuple[str, ...] = (
    "image", "codec", "target_bpp", "param", "bpp", "reached", "num_bytes", "encode_s", "decode_s",
)
#: Files in the data folder that are taken as test images (case-insensitive suffix).
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".pnm", ".tif", ".tiff", ".bmp", ".webp"}
)

Executor = Literal["process", "dask", "serial"]
_EXECUTORS: tuple[str, ...] = ("process", "dask", "serial")
#: Encodes memoised within one job are kept up to this many bytes in total.
_MEMO_BYTES = 256 << 20
_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class CTTCError(OpenJAIError):
    """Some jobs failed; ``failures`` holds (image, codec, message) for each. Rerun to retry them."""

    def __init__(self, message: str, failures: Sequence[tuple[str, str, str]]) -> None:
        super().__init__(message)
        self.failures = tuple(failures)


# --------------------------------------------------------------------------------------------
# Inputs


def find_images(data_dir: str | os.PathLike[str], limit: int | None = None) -> list[tuple[str, Path]]:
    """Test images under ``data_dir`` (recursively, hidden entries skipped), sorted by relative path.

    Returns ``(key, path)`` pairs; ``key`` is the path relative to ``data_dir`` in POSIX form (the
    CSV ``image`` column). ``limit`` keeps the first N.

    Raises:
        DataError: the folder is missing, is not a folder, or holds no image.
    """
    root = Path(data_dir)
    if not root.exists():
        raise DataError(f"{root}: evaluation data folder not found (give the folder of test images with --data)")
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (give the folder of test images, not a file)")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise DataError(f"image limit must be a positive integer, got {limit!r}")
    found: list[tuple[str, Path]] = []
    for p in root.rglob("*"):
        rel = p.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file():
            found.append((rel.as_posix(), p.resolve()))
    if not found:
        raise DataError(f"{root}: no test image found (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")
    found.sort(key=lambda kp: kp[0])
    return found[:limit] if limit is not None else found


def parse_rates(text: str) -> tuple[float, ...]:
    """``"cttc"`` → :data:`CTTC_TARGETS`; ``"0.25,0.5"`` → (0.25, 0.5). RateControlError if invalid."""
    s = text.strip().lower()
    if s == "cttc":
        return CTTC_TARGETS
    out: list[float] = []
    for part in s.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            v = float(part)
        except ValueError:
            raise RateControlError(f"rate {part!r} is not a number (give 'cttc' or bpp values like 0.25,0.5)") from None
        out.append(v)
    return _check_targets(out)


def _check_targets(targets: Sequence[float]) -> tuple[float, ...]:
    out: list[float] = []
    for t in targets:
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0:
            raise RateControlError(f"target rates must be positive bpp values, got {t!r}")
        if float(t) not in out:
            out.append(float(t))
    if not out:
        raise RateControlError("no target rate given")
    return tuple(out)


def resolve_codecs(codecs: Sequence[str] | str | Mapping[str, Callable[[], Codec]]) -> dict[str, Callable[[], Codec]]:
    """Names (a list or ``"a,b"``) looked up in :data:`CODECS`, or a ``{name: factory}`` mapping as is.

    A factory builds the codec inside the worker; for the process executor it must be picklable
    (a class, a module-level function or a ``functools.partial`` of one), for Dask cloudpickle is
    used. Raises DataError for an unknown name or an empty list.
    """
    if isinstance(codecs, Mapping):
        out = {str(k): v for k, v in codecs.items()}
        bad = [k for k, v in out.items() if not callable(v)]
        if bad:
            raise DataError(f"codec factories must be callables returning a codec: {', '.join(bad)}")
    else:
        items = codecs.split(",") if isinstance(codecs, str) else list(codecs)
        names = list(dict.fromkeys(n.strip() for n in items if n.strip()))
        unknown = [n for n in names if n not in CODECS]
        if unknown:
            raise DataError(f"unknown codec(s) {', '.join(unknown)}; known: {', '.join(CODECS)}")
        out = {n: CODECS[n] for n in names}
    if not out:
        raise DataError("no codec given")
    return out


def _check_metrics(metrics: Sequence[str]) -> tuple[str, ...]:
    from openjai.eval.metrics import METRICS

    names = tuple(dict.fromkeys(m.strip() for m in metrics if m.strip()))
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise DataError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}")
    if not names:
        raise DataError("no metric given")
    return names


# --------------------------------------------------------------------------------------------
# One job (runs in a worker)


@dataclass(frozen=True)
class Job:
    """All missing targets of one codec on one image.

    ``factory`` is None for a codec of :data:`CODECS` (looked up by ``codec`` in the worker, so
    the anchors' lambdas never need pickling).
    """

    image: str
    path: str
    codec: str
    targets: tuple[float, ...]
    metrics: tuple[str, ...]
    tolerance: float = 0.10
    factory: Callable[[], Codec] | None = None

    def build(self) -> Codec:
        if self.factory is not None:
            return self.factory()
        try:
            return CODECS[self.codec]()
        except KeyError:
            raise DataError(f"unknown codec {self.codec!r}") from None


class _MemoCodec:
    """Memoises encodes by parameter within one job: the rate searches of the job's targets share
    their probes (both ends of the range, and any parameter tried before). ``times`` holds the
    wall time (s) of the latest encode performed for each parameter (kept even when the bytes
    do not fit in the memo)."""

    def __init__(self, codec: Codec, max_bytes: int = _MEMO_BYTES) -> None:
        self.codec = codec
        self.name = codec.name
        self.param_range = codec.param_range
        self._memo: dict[float, bytes] = {}
        self._room = max_bytes
        self.times: dict[float, float] = {}

    def encode(self, img: np.ndarray, param: float) -> bytes:
        key = float(param)
        data = self._memo.get(key)
        if data is None:
            t0 = time.perf_counter()
            data = self.codec.encode(img, param)
            self.times[key] = time.perf_counter() - t0
            if len(data) <= self._room:
                self._memo[key] = data
                self._room -= len(data)
        return data

    def decode(self, data: bytes) -> np.ndarray:
        return self.codec.decode(data)


def _metric_values(ref: np.ndarray, dist: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    from openjai.eval.metrics import compute_all

    try:
        return compute_all(ref, dist, names)
    except MetricError:
        pass  # one metric refused these images: compute the others one by one
    out: dict[str, float] = {}
    for n in names:
        try:
            out[n] = float(compute_all(ref, dist, [n])[n])
        except MetricError:
            out[n] = math.nan
    return out


def _num(v: float) -> str:
    v = float(v)
    if math.isnan(v):
        return ""
    return str(int(v)) if v.is_integer() and abs(v) < 2**53 else repr(v)


def run_job(job: Job) -> list[dict[str, str]]:
    """Rate-match, time, decode and measure every target of ``job``; returns its CSV rows.

    Runs in whatever process calls it (the executors call it in their workers).
    """
    from openjai import image

    img = image.load(job.path).rgb
    codec = job.build()
    memos = [_MemoCodec(codec)]
    ask = callable(getattr(codec, "alternatives", None))
    rows: list[dict[str, str]] = []
    for target in job.targets:
        point = match_rate(memos[0], img, target, job.tolerance)
        memo = memos[0]
        if ask:  # asked once per image, after the first search analysed it
            memos += [_MemoCodec(alt) for alt in codec.alternatives(img)]
            ask = False
        if point.reached and len(memos) > 1:
            points = [point] + [match_rate(m, img, target, job.tolerance) for m in memos[1:]]
            usable = [i for i, p in enumerate(points) if p.reached]
            best = usable[codec.preferred(img, [points[u].bytes for u in usable])]
            point, memo = points[best], memos[best]
        chosen = memo.codec
        clear = getattr(chosen, "clear_cache", None)
        if callable(clear):  # a cached analysis makes the search's times dishonest: clean re-encode
            clear()
            t0 = time.perf_counter()
            chosen.encode(img, point.param)
            encode_s = time.perf_counter() - t0
        else:  # the search encoded this parameter (through the memo), which timed it
            encode_s = memo.times[float(point.param)]
        t0 = time.perf_counter()
        decoded = chosen.decode(point.bytes)
        decode_s = time.perf_counter() - t0
        if not isinstance(decoded, np.ndarray) or decoded.shape != img.shape or decoded.dtype != np.uint8:
            got = f"{getattr(decoded, 'dtype', type(decoded).__name__)} {getattr(decoded, 'shape', '')}"
            raise CodecError(f"{job.codec}: decoded {got} for a uint8 {img.shape} image")
        values = _metric_values(img, decoded, job.metrics)
        row = {
            "image": job.image,
            "codec": job.codec,
            "target_bpp": repr(float(target)),
            "param": _num(point.param),
            "bpp": repr(float(point.bpp)),
            "reached": "True" if point.reached else "False",
            "num_bytes": str(point.num_bytes),
            "encode_s": f"{encode_s:.6f}",
            "decode_s": f"{decode_s:.6f}",
        }
        row.update({m: _num(values[m]) for m in job.metrics})
        rows.append(row)
    return rows


def _limit_threads() -> None:
    for var in _THREAD_ENV:
        os.environ[var] = "1"
    import torch

    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)
    with contextlib.suppress(RuntimeError):  # only settable before the first parallel region
        torch.set_num_interop_threads(1)


def _worker_run_job(job: Job) -> list[dict[str, str]]:
    """Entry point in a worker process: one torch thread, then the job."""
    _limit_threads()
    return run_job(job)


@contextlib.contextmanager
def _single_thread_env() -> Iterator[None]:
    """Child processes started inside inherit 1-thread OpenMP/BLAS settings (restored after)."""
    saved = {v: os.environ.get(v) for v in _THREAD_ENV}
    os.environ.update({v: "1" for v in _THREAD_ENV})
    try:
        yield
    finally:
        for v, old in saved.items():
            if old is None:
                os.environ.pop(v, None)
            else:
                os.environ[v] = old


# --------------------------------------------------------------------------------------------
# Executors: each yields (job, rows | None, error | None) as jobs complete


Outcome = tuple[Job, "list[dict[str, str]] | None", "OpenJAIError | None"]


def _serial(jobs: Sequence[Job]) -> Iterator[Outcome]:
    with torch_threads(1):
        for job in jobs:
            try:
                rows = run_job(job)
            except OpenJAIError as exc:
                yield job, None, exc
            else:
                yield job, rows, None


def _process(jobs: Sequence[Job], workers: int) -> Iterator[Outcome]:
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx)
    try:
        with _single_thread_env():  # workers are spawned while the jobs are submitted
            futures = {pool.submit(_worker_run_job, job): job for job in jobs}
        for fut in as_completed(futures):
            job = futures[fut]
            try:
                rows = fut.result()
            except OpenJAIError as exc:
                yield job, None, exc
            else:
                yield job, rows, None
    except BaseException:
        # interrupted, a bug, or the consumer stopped: jobs in flight would write no row anyway,
        # so stop the workers now instead of waiting for them (3.11 has no public terminate)
        for proc in list((getattr(pool, "_processes", None) or {}).values()):
            with contextlib.suppress(Exception):
                proc.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _dask(jobs: Sequence[Job], workers: int, scheduler: str | None) -> Iterator[Outcome]:
    try:
        from dask.distributed import Client, LocalCluster
        from dask.distributed import as_completed as dask_as_completed
    except ImportError as exc:
        from openjai.errors import ToolMissingError

        raise ToolMissingError("the dask executor needs dask[distributed] "
                               "(pip install 'dask[distributed]==2026.8.0')") from exc
    import logging

    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        with _single_thread_env():
            cluster = LocalCluster(processes=True, n_workers=min(workers, len(jobs)), threads_per_worker=1,
                                   dashboard_address=":0", silence_logs=logging.ERROR)
        client = Client(cluster)
    try:
        futures = [client.submit(_worker_run_job, job, pure=False) for job in jobs]
        by_key = {f.key: job for f, job in zip(futures, jobs)}
        try:
            for fut in dask_as_completed(futures):
                job = by_key[fut.key]
                try:
                    rows = fut.result()
                except OpenJAIError as exc:
                    yield job, None, exc
                else:
                    yield job, rows, None
        finally:
            client.cancel(futures)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# --------------------------------------------------------------------------------------------
# The results CSV


class _ResultsFile:
    """The results CSV opened for appending under an exclusive lock; knows which rows exist."""

    def __init__(self, path: Path, metrics: Sequence[str] | None) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.f: IO[bytes] = open(path, "a+b")  # noqa: SIM115 (closed by close())
        except OSError as exc:
            raise OutputError(f"{path}: cannot open results CSV ({exc})") from exc
        try:
            self._lock()
            self.metrics, self.done = self._load(metrics)
        except BaseException:
            self.f.close()
            raise
        self.columns = BASE_COLUMNS + self.metrics

    def _lock(self) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock
            return
        try:
            fcntl.flock(self.f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise OutputError(f"{self.path}: another evaluation is writing to this CSV") from None

    def _load(self, metrics: Sequence[str] | None) -> tuple[tuple[str, ...], set[tuple[str, str, float]]]:
        self.f.seek(0)
        content = self.f.read()
        if content and not content.endswith(b"\n"):
            cut = content.rfind(b"\n") + 1
            warnings.warn(f"{self.path}: removing an incomplete last line (interrupted write)", stacklevel=3)
            self.f.truncate(cut)
            self._sync()
            content = content[:cut]
        if not content:
            chosen = _check_metrics(metrics) if metrics is not None else _default_metrics()
            self._append(_csv_text([list(BASE_COLUMNS + chosen)]))
            return chosen, set()
        try:
            records = list(csv.reader(io.StringIO(content.decode("utf-8"))))
        except (UnicodeDecodeError, csv.Error) as exc:
            raise DataError(f"{self.path}: not a readable results CSV ({exc})") from exc
        header = [h.strip() for h in records[0]]
        if tuple(header[: len(BASE_COLUMNS)]) != BASE_COLUMNS:
            raise DataError(f"{self.path}: not a CTTC results CSV (header {', '.join(header)}; "
                            f"expected {', '.join(BASE_COLUMNS)}, metrics...)")
        have = tuple(header[len(BASE_COLUMNS):])
        if have:
            _check_metrics(have)
        if metrics is not None and _check_metrics(metrics) != have:
            raise DataError(f"{self.path} has metric columns {', '.join(have) or '(none)'}, but "
                            f"{', '.join(metrics)} were asked for: use the same metrics to resume, "
                            "or another output")
        done: set[tuple[str, str, float]] = set()
        for line, rec in enumerate(records[1:], start=2):
            if not rec:
                continue
            if len(rec) != len(header):
                raise DataError(f"{self.path}:{line}: {len(rec)} fields, the header has {len(header)}")
            try:
                target = float(rec[2])
            except ValueError:
                raise DataError(f"{self.path}:{line}: target_bpp {rec[2]!r} is not a number") from None
            done.add((rec[0], rec[1], target))
        return have, done

    def _sync(self) -> None:
        self.f.flush()
        os.fsync(self.f.fileno())

    def _append(self, text: str) -> None:
        try:
            self.f.seek(0, os.SEEK_END)
            self.f.write(text.encode("utf-8"))
            self._sync()
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot append results ({exc})") from exc

    def append_rows(self, rows: Sequence[Mapping[str, str]]) -> None:
        """All rows of one job in one write, then flush + fsync."""
        if rows:
            self._append(_csv_text([[r.get(c, "") for c in self.columns] for r in rows]))
            for r in rows:
                self.done.add((r["image"], r["codec"], float(r["target_bpp"])))

    def close(self) -> None:
        self.f.close()  # closing releases the lock


def _csv_text(records: Sequence[Sequence[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(records)
    return buf.getvalue()


def _default_metrics() -> tuple[str, ...]:
    from openjai.eval.metrics import METRICS

    return tuple(METRICS)


# --------------------------------------------------------------------------------------------
# The runner


def run_cttc(
    data_dir: str | os.PathLike[str],
    codecs: Sequence[str] | str | Mapping[str, Callable[[], Codec]],
    targets: Sequence[float] = CTTC_TARGETS,
    csv_path: str | os.PathLike[str] = "results.csv",
    metrics: Sequence[str] | None = None,
    workers: int | None = None,
    executor: Executor = "process",
    scheduler: str | None = None,
    limit: int | None = None,
    *,
    tolerance: float = 0.10,
    progress: bool = True,
) -> Path:
    """Evaluate ``codecs`` on the images of ``data_dir`` at ``targets`` (bpp); rows go to ``csv_path``.

    ``codecs``: names from :data:`CODECS` (or a ``{name: factory}`` mapping, see
    :func:`resolve_codecs`). ``metrics``: metric names (``openjai.eval.metrics.METRICS``); None
    means the columns of an existing CSV, or every metric for a new one. ``workers``: parallel
    processes (default: CPU count). ``executor``: ``"process"``, ``"dask"`` (``scheduler`` =
    address of a running Dask scheduler, or None for a local cluster) or ``"serial"``.
    ``limit``: only the first N images. ``tolerance``: the rate-matching overshoot allowance.
    Returns the CSV path.

    Raises:
        DataError: missing data folder, no image, unknown codec or metric, CSV of another layout.
        RateControlError: an invalid target rate.
        OutputError: the CSV cannot be written, or another run holds it.
        CTTCError: some jobs failed (their rows are missing; the others are written).
    """
    if executor not in _EXECUTORS:
        raise DataError(f"unknown executor {executor!r}; choose one of {', '.join(_EXECUTORS)}")
    n_workers = (os.cpu_count() or 1) if workers is None else workers
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise DataError(f"workers must be a positive integer, got {workers!r}")
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise RateControlError(f"tolerance must be >= 0, got {tolerance!r}")
    target_list = _check_targets(targets)
    factories = resolve_codecs(codecs)
    if metrics is not None:
        metrics = _check_metrics(metrics)
    images = find_images(data_dir, limit)

    out = _ResultsFile(Path(csv_path), metrics)
    try:
        jobs: list[Job] = []
        for key, path in images:
            for name, factory in factories.items():
                todo = tuple(t for t in target_list if (key, name, t) not in out.done)
                if todo:
                    jobs.append(Job(key, str(path), name, todo, out.metrics, tolerance,
                                    None if CODECS.get(name) is factory else factory))
        if not jobs:
            return out.path
        if executor == "serial":
            outcomes = _serial(jobs)
        elif executor == "process":
            outcomes = _process(jobs, n_workers)
        else:
            outcomes = _dask(jobs, n_workers, scheduler)
        failures: list[tuple[str, str, str]] = []
        from tqdm.auto import tqdm

        # a bar on a terminal only (disable=None): logs and pipes get no carriage-return noise
        with tqdm(total=len(jobs), unit="job", desc="CTTC", disable=None if progress else True,
                  file=sys.stderr) as bar:
            try:
                for job, rows, error in outcomes:
                    if error is not None:
                        failures.append((job.image, job.codec, f"{type(error).__name__}: {error}"))
                    else:
                        out.append_rows(rows or [])
                    bar.set_postfix_str(f"{job.codec} {job.image}", refresh=False)
                    bar.update(1)
            finally:
                close = getattr(outcomes, "close", None)
                if close is not None:
                    close()
        if failures:
            lines = "; ".join(f"{img} / {c}: {msg}" for img, c, msg in failures[:10])
            more = f" (and {len(failures) - 10} more)" if len(failures) > 10 else ""
            raise CTTCError(f"{len(failures)} of {len(jobs)} job(s) failed, their rows are missing from "
                            f"{out.path} (rerun to retry): {lines}{more}", failures)
        return out.path
    finally:
        out.close()
