"""Subjective quality test (DSCQS, ITU-R BT.500) of openjai and the anchors, and a .jai viewer.

```
openjai eval OUT/results.csv + the test images
   ──design.make_session──▶ SESSION_DIR/session.json + images/*.png      (openjai subjective make)
        (re-encodes each chosen row with its codec and parameter, checks the byte count,
         crops reference and decoded image at native resolution; hidden reference per image)
SESSION_DIR ──server.create_app──▶ browser, one observer id at a time     (openjai subjective serve)
        schedule.plan(session, observer): training first, then the test trials shuffled,
        A/B sides drawn per trial; store.Store: SQLite (WAL), idempotent trial ids
SESSION_DIR/results.sqlite ──analysis.analyze──▶ dmos.csv, dmos.md, dmos_vs_bpp.png
        (BT.500 Annex 2 observer screening, DMOS with 95 % Student-t intervals)   (… analyze)
any .jai + its original ──server (viewer mode)──▶ slider comparison, bpp, model, metrics (… view)
```

Modules: ``session`` (the session.json data model), ``design`` (make), ``schedule`` (per-observer
randomisation), ``store`` (SQLite), ``server`` (Starlette app; pages in ``static/``),
``analysis`` (DMOS, screening, plots), ``viewer`` (items the viewer shows), ``simulate``
(scripted observers for dry runs), ``cli``. Guide: docs/subjective.md.
"""
