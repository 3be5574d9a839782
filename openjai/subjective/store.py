"""Scores in SQLite: nothing lost on a crash, a reload or a double submit.

Tables: ``observers`` (id, start time, session seed), ``trials`` (the observer's plan, written
in one transaction when the observer starts), ``scores`` (one row per trial id). Durability:
WAL journal with ``synchronous=FULL``, so a committed score survives a kill of the server (and
of the machine); the server answers a submit only after its commit. Idempotence: the trial id
is the primary key of ``scores``; submitting the same scores again is accepted and changes
nothing, submitting different ones for an answered trial is refused (the first answer stands:
a second one comes from a stale page, not from the observer's judgement). One connection per
operation, so the store can be used from the server's worker threads and several processes.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import SessionError
from .schedule import Trial

_SCHEMA = """
CREATE TABLE IF NOT EXISTS observers (
    observer TEXT PRIMARY KEY, started TEXT NOT NULL, seed INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    trial_id TEXT PRIMARY KEY, observer TEXT NOT NULL REFERENCES observers(observer), idx INTEGER NOT NULL,
    condition TEXT NOT NULL, ref_side TEXT NOT NULL CHECK (ref_side IN ('A', 'B')), training INTEGER NOT NULL,
    UNIQUE (observer, idx));
CREATE TABLE IF NOT EXISTS scores (
    trial_id TEXT PRIMARY KEY REFERENCES trials(trial_id), score_a REAL NOT NULL, score_b REAL NOT NULL,
    answered TEXT NOT NULL);
"""


class ScoreConflict(SessionError):
    """The trial was answered before with other scores (the first answer is kept)."""


@dataclass(frozen=True)
class Response:
    """One answered trial, with the scores mapped back to reference and test."""

    observer: str
    index: int
    condition: str
    training: bool
    ref_score: float
    test_score: float


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def check_score(v: object) -> float:
    """A score on the 0-100 continuous scale; SessionError otherwise."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 <= v <= 100:
        raise SessionError(f"score {v!r} must be a number within 0..100")
    return float(v)


class Store:
    """The scores of one session, in ``path`` (created on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        with self._db() as db:
            db.executescript(_SCHEMA)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        try:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except sqlite3.Error as e:
            raise SessionError(f"cannot open {self.path}: {e}") from None
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            yield db
        finally:
            db.close()

    def start(self, observer: str, trials: Sequence[Trial], seed: int) -> bool:
        """Record ``observer``'s plan; False (and nothing written) if the observer already started."""
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute("SELECT seed FROM observers WHERE observer = ?", (observer,)).fetchone()
                if row is not None:
                    if row[0] != seed:
                        raise SessionError(f"observer {observer!r} started a session with another seed: "
                                           "use a new results file for a rebuilt session")
                    db.execute("ROLLBACK")
                    return False
                db.execute("INSERT INTO observers VALUES (?, ?, ?)", (observer, _now(), seed))
                db.executemany("INSERT INTO trials VALUES (?, ?, ?, ?, ?, ?)",
                               [(t.trial_id, observer, t.index, t.condition, t.ref_side, int(t.training))
                                for t in trials])
                db.execute("COMMIT")
                return True
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def trials(self, observer: str) -> list[tuple[Trial, bool]]:
        """The observer's plan, each trial with whether it is answered."""
        with self._db() as db:
            rows = db.execute(
                "SELECT t.trial_id, t.idx, t.condition, t.ref_side, t.training, s.trial_id IS NOT NULL "
                "FROM trials t LEFT JOIN scores s USING (trial_id) WHERE t.observer = ? ORDER BY t.idx",
                (observer,)).fetchall()
        return [(Trial(r[0], r[1], r[2], r[3], bool(r[4])), bool(r[5])) for r in rows]

    def trial(self, trial_id: str) -> Trial:
        with self._db() as db:
            r = db.execute("SELECT trial_id, idx, condition, ref_side, training FROM trials WHERE trial_id = ?",
                           (trial_id,)).fetchone()
        if r is None:
            raise SessionError(f"unknown trial {trial_id!r}")
        return Trial(r[0], r[1], r[2], r[3], bool(r[4]))

    def submit(self, trial_id: str, score_a: float, score_b: float) -> bool:
        """Record a trial's two scores; True if new, False if the same scores were already there.

        Raises ScoreConflict when the trial holds other scores, SessionError for an unknown trial.
        """
        a, b = check_score(score_a), check_score(score_b)
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                if db.execute("SELECT 1 FROM trials WHERE trial_id = ?", (trial_id,)).fetchone() is None:
                    raise SessionError(f"unknown trial {trial_id!r}")
                old = db.execute("SELECT score_a, score_b FROM scores WHERE trial_id = ?", (trial_id,)).fetchone()
                if old is None:
                    db.execute("INSERT INTO scores VALUES (?, ?, ?, ?)", (trial_id, a, b, _now()))
                    db.execute("COMMIT")
                    return True
                db.execute("ROLLBACK")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        if (old[0], old[1]) != (a, b):
            raise ScoreConflict(f"trial {trial_id} was already answered with other scores; reload the page")
        return False

    def observers(self) -> list[str]:
        with self._db() as db:
            return [r[0] for r in db.execute("SELECT observer FROM observers ORDER BY observer")]

    def responses(self) -> list[Response]:
        """Every answered trial, reference and test scores separated by the stored A/B side."""
        with self._db() as db:
            rows = db.execute(
                "SELECT t.observer, t.idx, t.condition, t.training, t.ref_side, s.score_a, s.score_b "
                "FROM trials t JOIN scores s USING (trial_id) ORDER BY t.observer, t.idx").fetchall()
        return [Response(o, i, c, bool(tr), a if side == "A" else b, b if side == "A" else a)
                for o, i, c, tr, side, a, b in rows]
