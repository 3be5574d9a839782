"""``openjai eval``: run the CTTC into ``OUT/results.csv``, then write the report into ``OUT/``.

    openjai eval --data DIR --codecs openjai,jpeg,... --rates cttc|0.25,0.5 --out results/
                 [--workers N] [--executor process|dask|serial] [--scheduler ADDR]
                 [--metrics a,b] [--limit N] [--model POINT] [--effort E] [--no-residual] [--no-filter] [--no-lattice] [--label NAME]
                 [--test-codec openjai] [-q]
    openjai eval report RESULTS_DIR [--test-codec openjai] [--anchors vvc,hevc,...] [--out DIR]
    openjai eval tasks [--tasks classify,...] [--rates 0.12,0.25,...] [--limit N] [--out docs/results/tasks]

Two openjai models in one CSV: ``--model high --label openjai-high`` names the second one's
rows; ``openjai eval report DIR --test-codec openjai-high --out DIR/high`` reports it.

The CSV is resumed, never overwritten: rerunning the same command only codes what is missing
(see :mod:`openjai.eval.cttc`). The report files (bdrate.md, bdrate.csv, rd_*.png/svg) are
regenerated from the CSV on every run and replaced.

Wiring (in ``openjai/cli.py``)::

    from .eval import cli as eval_cli
    ev = sub.add_parser("eval", help="CTTC evaluation against the anchors")
    eval_cli.add_arguments(ev)
    ev.set_defaults(func=eval_cli.run)
    evsub = ev.add_subparsers(dest="eval_command")          # optional: `openjai eval report DIR`
    rep = evsub.add_parser("report", help="regenerate the report from OUT/results.csv")
    eval_cli.add_report_arguments(rep)
    rep.set_defaults(func=eval_cli.run_report)

``--data`` and ``--out`` are therefore checked by :func:`run`, not by argparse (a required
option of ``eval`` would also be demanded by ``eval report``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import DataError

RESULTS_CSV = "results.csv"


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``openjai eval`` (the run)."""
    p.add_argument("--data", type=Path, help="folder of test images (PNG, PPM, ...; searched recursively)")
    p.add_argument("--codecs", default="openjai,jpeg",
                   help="comma-separated codecs: openjai and the anchors "
                        "jpeg, jpeg444, jpeg2000, hevc, hevc420, vvc, avif, jxl, webp (default: %(default)s)")
    p.add_argument("--rates", default="cttc",
                   help="'cttc' (0.03 ... 2.0 bpp, the 9 CTTC targets) or comma-separated bpp values "
                        "(default: %(default)s)")
    p.add_argument("--out", type=Path, help="output folder: results.csv (resumed) and the report")
    p.add_argument("--workers", type=int, default=None, help="parallel worker processes (default: CPU count)")
    p.add_argument("--executor", choices=("process", "dask", "serial"), default="process",
                   help="process pool, Dask (local cluster, or --scheduler), or serial (default: %(default)s)")
    p.add_argument("--scheduler", default=None, metavar="ADDR",
                   help="address of a running Dask scheduler (implies --executor dask); its workers need "
                        "openjai and the images at the same path")
    p.add_argument("--metrics", default=None,
                   help="comma-separated metrics (default: those of an existing results.csv, else all)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N images (sorted by name)")
    p.add_argument("--model", default="base", help="openjai operating point to evaluate (default: %(default)s)")
    p.add_argument("--effort", type=int, choices=range(4), default=0, metavar="0..3",
                   help="openjai encoder effort (give each effort its own --label or --out; default: %(default)s)")
    p.add_argument("--no-residual", action="store_true",
                   help="openjai without its residual layer (give it its own --label or --out)")
    p.add_argument("--no-filter", action="store_true",
                   help="openjai without its adaptive filter (give it its own --label or --out)")
    p.add_argument("--no-lattice", action="store_true",
                   help="openjai without its lattice layer for once-JPEG images (give it its own --label or --out)")
    p.add_argument("--label", default="openjai",
                   help="codec name of openjai's rows in results.csv, to keep several models or efforts "
                        "in one CSV (default: %(default)s)")
    p.add_argument("--test-codec", default=None,
                   help="codec whose BD-rates the report gives against the others (default: the --label)")
    p.add_argument("--tolerance", type=float, default=0.10,
                   help="rate matching: allowed overshoot above a target (default: %(default)s, the CTTC's 10 %%)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar (there is none when stderr is not a terminal)")


def run(args: argparse.Namespace) -> int:
    """Run the CTTC into ``args.out/results.csv`` and write the report next to it."""
    from functools import partial

    from .cttc import CODECS, parse_rates, resolve_codecs, run_cttc
    from .openjai_codec import OpenJAICodec

    if args.data is None or args.out is None:
        raise DataError("openjai eval needs --data DIR and --out DIR (or: openjai eval report RESULTS_DIR)")
    codecs = resolve_codecs(args.codecs)
    if "openjai" in codecs:
        from ..api import load_model

        load_model(args.model)  # an unknown or corrupted model fails here, not in every job
        if args.model != "base" or args.effort or args.no_residual or args.no_filter or args.no_lattice:
            # picklable, built in each worker
            codecs["openjai"] = partial(OpenJAICodec, args.model, args.effort, not args.no_residual,
                                        not args.no_filter, not args.no_lattice)
        if args.label != "openjai":
            if args.label in CODECS:
                raise DataError(f"--label {args.label} is the name of another codec; choose another")
            codecs = {args.label if k == "openjai" else k: v for k, v in codecs.items()}
    executor = "dask" if args.scheduler else args.executor
    out = Path(args.out)
    csv_path = run_cttc(args.data, codecs, parse_rates(args.rates), out / RESULTS_CSV, metrics=_split(args.metrics),
                        workers=args.workers, executor=executor, scheduler=args.scheduler, limit=args.limit,
                        tolerance=args.tolerance, progress=not args.quiet)
    if not args.quiet:
        print(f"results: {csv_path}")
    return _report(csv_path, out, args.test_codec or args.label, None, quiet=args.quiet, skip_if_impossible=True)


def add_report_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``openjai eval report RESULTS_DIR``."""
    p.add_argument("results_dir", type=Path, help="folder holding results.csv; the report is written there")
    p.add_argument("--test-codec", default="openjai",
                   help="codec whose BD-rates are given against the others (default: %(default)s)")
    p.add_argument("--anchors", default=None,
                   help="comma-separated anchors in column order (default: every other codec in the CSV, "
                        "vvc,hevc,jpeg2000,jpeg,avif,jxl,webp first)")
    p.add_argument("--out", type=Path, default=None,
                   help="folder for the report (default: RESULTS_DIR), e.g. one per test codec")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")


def run_report(args: argparse.Namespace) -> int:
    """Regenerate the report in ``args.results_dir`` (or ``args.out``) from its results.csv."""
    d = Path(args.results_dir)
    return _report(d / RESULTS_CSV, args.out or d, args.test_codec, _split(args.anchors), quiet=args.quiet,
                   skip_if_impossible=False)


def _report(csv_path: Path, out: Path, test_codec: str, anchors: list[str] | None, *, quiet: bool,
            skip_if_impossible: bool) -> int:
    """Write the report; anchors default to every other codec in the CSV, the usual ones first."""
    from .report import DEFAULT_ANCHORS, load_results, write_report

    codecs = {r.codec for r in load_results(csv_path)}
    others = codecs - {test_codec}
    if skip_if_impossible and (test_codec not in codecs or not others):
        # after a run: a CSV without the test codec, or with nothing to compare it to, has no
        # BD-rate to report; that is not a failure of the run
        why = f"no {test_codec!r} rows" if test_codec not in codecs else "no other codec to compare with"
        print(f"openjai: report skipped ({why} in {csv_path})", file=sys.stderr)
        return 0
    if anchors is None:
        anchors = [a for a in DEFAULT_ANCHORS if a in others] + sorted(others - set(DEFAULT_ANCHORS))
    write_report(csv_path, out, test_codec=test_codec, anchors=anchors, force=True)
    if not quiet:
        print(f"report: {out / 'bdrate.md'}")
    return 0


def add_tasks_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``openjai eval tasks`` (openjai/tasks/evaluate.py)."""
    from ..tasks import evaluate

    evaluate.add_arguments(p)


def run_tasks(args: argparse.Namespace) -> int:
    """``openjai eval tasks``: every task on latents against its anchors (openjai/tasks/evaluate.py)."""
    from ..tasks import evaluate

    return evaluate.run(args)
