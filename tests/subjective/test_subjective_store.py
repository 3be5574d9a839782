"""store.py: SQLite results that survive reloads and double submits; the first answer stands."""

from __future__ import annotations

import sqlite3

import pytest

from openjai.errors import SessionError
from openjai.subjective import session as sess
from openjai.subjective.schedule import plan
from openjai.subjective.store import ScoreConflict, Store


def test_start_submit_idempotent_and_conflict(session_dir):
    s = sess.load(session_dir)
    store = Store(session_dir / sess.RESULTS_DB)
    trials = plan(s, "ann")
    assert store.start("ann", trials, s.seed) is True
    assert store.start("ann", plan(s, "ann"), s.seed) is False  # resume: the stored plan is kept
    with pytest.raises(SessionError, match="another seed"):
        store.start("ann", trials, s.seed + 1)
    t = trials[0]
    assert store.submit(t.trial_id, 80, 35.5) is True
    assert store.submit(t.trial_id, 80, 35.5) is False  # double submit: accepted, nothing changes
    with pytest.raises(ScoreConflict):
        store.submit(t.trial_id, 20, 35.5)
    with pytest.raises(SessionError, match="unknown trial"):
        store.submit("ann-999", 1, 2)
    with pytest.raises(SessionError, match="0..100"):
        store.submit(trials[1].trial_id, 101, 2)
    with pytest.raises(SessionError, match="0..100"):
        store.submit(trials[1].trial_id, float("nan"), 2)
    done = [d for _, d in store.trials("ann")]
    assert done.count(True) == 1 and done[0]
    (r,) = store.responses()
    # scores mapped back to reference / test through the stored side
    assert (r.ref_score, r.test_score) == ((80, 35.5) if t.ref_side == "A" else (35.5, 80))
    assert r.condition == t.condition and r.training == t.training
    with sqlite3.connect(session_dir / sess.RESULTS_DB) as con:  # WAL: a kill never leaves a torn database
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # (a SIGKILLed server losing nothing is tested in test_subjective_server.py and the browser test)
