"""``openjai subjective make|serve|analyze|view|simulate``: the DSCQS test and the .jai viewer.

    openjai subjective make SESSION_DIR --eval EVAL_OUT --data IMAGES [--codecs jpeg,openjai] [--rates 0.25,0.5]
                            [--images a.png,b.png] [--crop 512x512] [--seed N] [--training 3] [--grey 3]
    openjai subjective serve SESSION_DIR [--host 127.0.0.1] [--port 8500]
    openjai subjective analyze SESSION_DIR [--out SESSION_DIR/analysis] [--no-screening] [--force]
    openjai subjective view FILE.jai... [--original IMG | --originals DIR] [--port 8500]
    openjai subjective simulate SESSION_DIR [--observers 5] [--outliers 1]   (dry run, scripted observers)

Wiring (openjai/cli.py): ``add_arguments(parser)`` then ``parser.set_defaults(func=run)``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import DataError, OpenJAIError, SessionError


def _csv_list(text: str | None) -> list[str] | None:
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give WxH, e.g. 512x512") from None
    return w, h


def _xy(text: str) -> tuple[int, int]:
    try:
        x, y = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give X,Y, e.g. 100,40") from None
    return x, y


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Sub-commands of ``openjai subjective``."""
    sub = p.add_subparsers(dest="subjective_command", required=True)

    m = sub.add_parser("make", help="build a session folder from openjai eval results",
                       description="Build a self-contained DSCQS session: the chosen results.csv rows are "
                       "re-encoded with their codec and parameter (byte count checked), decoded, and cropped at "
                       "native resolution next to the reference; one hidden-reference condition per image.")
    m.add_argument("session_dir", type=Path)
    m.add_argument("--eval", type=Path, required=True, help="openjai eval output folder (has results.csv)")
    m.add_argument("--data", type=Path, required=True, help="the folder of test images the eval ran on")
    m.add_argument("--images", help="comma-separated image keys of results.csv (default: all)")
    m.add_argument("--codecs", help="comma-separated codecs of results.csv (default: all)")
    m.add_argument("--rates", help="comma-separated target bpp of results.csv (default: all)")
    m.add_argument("--crop", type=_size, default=(512, 512), help="crop size WxH at native resolution, clipped "
                   "to the image; two fit side by side on the display (default: 512x512)")
    m.add_argument("--crop-at", type=_xy, default=None, help="crop corner X,Y (default: centred)")
    m.add_argument("--seed", type=int, default=1, help="randomisation seed, recorded in session.json (default: 1)")
    m.add_argument("--training", type=int, default=3, help="training trials shown first, not analysed (default: 3)")
    m.add_argument("--grey", type=float, default=3.0, help="seconds of mid-grey between trials (default: 3)")
    m.add_argument("--model", default="base", help="openjai operating point the eval used (default: base)")
    m.add_argument("--effort", type=int, default=0, help="openjai encoder effort the eval used (default: 0)")
    m.add_argument("--force", "-f", action="store_true", help="rebuild an existing session folder")

    s = sub.add_parser("serve", help="run the DSCQS web app for a session",
                       description="Serve the DSCQS test of SESSION_DIR; scores go to SESSION_DIR/results.sqlite.")
    s.add_argument("session_dir", type=Path)
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    s.add_argument("--port", type=int, default=8500, help="port (default: %(default)s)")
    s.add_argument("--grey", type=float, default=None, help="override the session's grey seconds")

    a = sub.add_parser("analyze", help="DMOS, confidence intervals, observer screening, plots")
    a.add_argument("session_dir", type=Path)
    a.add_argument("--out", type=Path, default=None, help="output folder (default: SESSION_DIR/analysis)")
    a.add_argument("--no-screening", action="store_true", help="keep every observer (screening still reported)")
    a.add_argument("--force", "-f", action="store_true", help="overwrite earlier analysis files")

    v = sub.add_parser("view", help="show .jai files next to their originals in the browser")
    v.add_argument("files", nargs="+", type=Path, help=".jai files")
    orig = v.add_mutually_exclusive_group()
    orig.add_argument("--original", type=Path, help="the original of a single .jai file")
    orig.add_argument("--originals", type=Path, help="folder of originals: <stem>.png/.ppm/... of each .jai")
    v.add_argument("--host", default="127.0.0.1")
    v.add_argument("--port", type=int, default=8500)

    r = sub.add_parser("simulate", help="scripted observers (dry run of a session and its analysis)")
    r.add_argument("session_dir", type=Path)
    r.add_argument("--observers", type=int, default=5)
    r.add_argument("--outliers", type=int, default=0, help="of them, observers who score at random")
    r.add_argument("--seed", type=int, default=0)


def _find_original(folder: Path, stem: str) -> Path | None:
    from ..eval.cttc import IMAGE_EXTENSIONS

    hits = sorted(p for p in folder.glob(stem + ".*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    return hits[0] if hits else None


def _make(args: argparse.Namespace) -> int:
    from .design import Design, make_session

    try:
        rates = None if args.rates is None else [float(v) for v in _csv_list(args.rates) or []]
    except ValueError:
        raise DataError(f"--rates {args.rates!r}: give bpp values like 0.25,0.5") from None
    d = Design(images=_csv_list(args.images), codecs=_csv_list(args.codecs), rates=rates, crop=args.crop,
               crop_at=args.crop_at, seed=args.seed, training=args.training, grey_seconds=args.grey,
               model=args.model, effort=args.effort)
    s = make_session(args.eval, args.data, args.session_dir, d, args.force,
                     progress=lambda msg: print(f"  {msg}", file=sys.stderr))
    print(f"{args.session_dir}: {len(s.images)} images, {len(s.conditions)} conditions "
          f"({len(s.training)} training), seed {s.seed}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from .server import create_app, serve

    app = create_app(args.session_dir, grey_seconds=args.grey)
    print(f"openjai subjective: {args.session_dir} on http://{args.host}:{args.port}/ (Ctrl-C stops)", flush=True)
    serve(app, args.host, args.port)
    return 0


def _analyze(args: argparse.Namespace) -> int:
    from .analysis import analyze

    out = args.out or args.session_dir / "analysis"
    res = analyze(args.session_dir, out, args.force, screening=not args.no_screening)
    print(res.markdown.split("\nPer condition")[0].rstrip())
    print(f"\nwritten: {', '.join(str(f) for f in res.files)}")
    return 0


def _view(args: argparse.Namespace) -> int:
    from .. import api
    from .server import create_app, serve
    from .viewer import ViewItem

    if args.original is not None and len(args.files) != 1:
        raise SessionError("--original goes with one .jai file; use --originals DIR for several")
    items = []
    for f in args.files:
        if not f.is_file():
            raise SessionError(f"{f}: no such file")
        orig = args.original if args.original is not None else (
            _find_original(args.originals, f.stem) if args.originals is not None else None)
        try:
            api.read_info(f.read_bytes())  # refuse what is no .jai now, not in the browser
        except OpenJAIError as e:
            raise SessionError(f"{f}: {e}") from None
        items.append(ViewItem(f, orig))
    app = create_app(None, items)
    print(f"openjai subjective: viewer on http://{args.host}:{args.port}/view (Ctrl-C stops)", flush=True)
    serve(app, args.host, args.port)
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from .simulate import simulate

    ids = simulate(args.session_dir, args.observers, args.outliers, args.seed)
    print(f"{len(ids)} simulated observers recorded: {', '.join(ids)}")
    return 0


def run(args: argparse.Namespace) -> int:
    return {"make": _make, "serve": _serve, "analyze": _analyze, "view": _view,
            "simulate": _simulate}[args.subjective_command](args)
