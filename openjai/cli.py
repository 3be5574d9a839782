"""Command line: ``openjai encode|decode|info|train|export``.

Like cjpeg/djpeg: one verb, ``-o`` for the output, quiet unless ``-v``. Outputs are written
to a temporary file and renamed; an existing file is only replaced with ``--force``.
Exit status: 0 success, 1 an openjai error (one line on stderr), 2 bad usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .codec import profile
from .errors import OpenJAIError, OutputError, exit_status
from .files import atomic_write


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _encode_one(src: Path, dst: Path, args: argparse.Namespace) -> None:
    from . import api

    if _same_file(src, dst):
        raise OutputError(f"refusing to write the output over the input {src}")
    if dst.exists() and not args.force:
        raise OutputError(f"{dst} exists: use --force to overwrite it")
    t0 = time.perf_counter()
    with profile.collect() as prof:
        data = api.encode(src, bpp=args.bpp, quality=args.quality, model=args.model, effort=args.effort,
                          residual=not args.no_residual, adaptive_filter=not args.no_filter,
                          lattice=not args.no_lattice)
    atomic_write(dst, data, force=args.force)
    if args.verbose:
        info = api.read_info(data)
        print(f"{src} -> {dst}: {info.width}x{info.height}, {info.num_bytes} bytes, {info.bpp:.4f} bpp, "
              f"rate {info.rate:.4f}, {time.perf_counter() - t0:.2f} s")
        print(prof.table(info.width * info.height / 1e6))


def cmd_encode(args: argparse.Namespace) -> int:
    return _each_input(args, _encode_one, ".jai")


def _each_input(args: argparse.Namespace, one: Callable[[Path, Path, argparse.Namespace], None], suffix: str) -> int:
    """``one(src, dst, args)`` for ``-o`` and one input, or for every input into ``-d``'s folder
    (<stem><suffix>), continuing past bad ones with a progress bar on a terminal (none when
    stderr is a file or a pipe); exit status 1 if any failed."""
    from tqdm import tqdm

    inputs = [Path(p) for p in args.inputs]
    if args.outdir is None:
        if len(inputs) != 1 or args.output is None:
            raise OutputError("give -o OUTPUT for one input, or -d OUTDIR for several")
        one(inputs[0], Path(args.output), args)
        return 0
    outdir = Path(args.outdir)
    if not outdir.is_dir():
        raise OutputError(f"output folder {outdir} does not exist")
    failed = 0
    for src in tqdm(inputs, unit="image", disable=None, file=sys.stderr):
        try:
            one(src, outdir / (src.stem + suffix), args)
        except OpenJAIError as e:
            failed += 1
            tqdm.write(f"openjai: {src}: {e}", file=sys.stderr)
    if failed:
        print(f"openjai: {failed} of {len(inputs)} inputs failed", file=sys.stderr)
    return 1 if failed else 0


def _read_stream(path: Path) -> bytes:
    if path.is_dir():
        raise OutputError(f"{path} is a directory, not a .jai file")
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise OutputError(f"{path}: no such file") from None
    except PermissionError:
        raise OutputError(f"{path}: permission denied") from None
    except OSError as e:
        raise OutputError(f"{path}: cannot read ({e.strerror})") from None


def cmd_decode(args: argparse.Namespace) -> int:
    return _each_input(args, _decode_one, ".png")


def _decode_one(src: Path, dst: Path, args: argparse.Namespace) -> None:
    from . import api, image

    if _same_file(src, dst):
        raise OutputError(f"refusing to write the output over the input {src}")
    if dst.exists() and not args.force:
        raise OutputError(f"{dst} exists: use --force to overwrite it")
    t0 = time.perf_counter()
    with profile.collect() as prof:
        img = api.decode(_read_stream(src), device=args.device)
    image.save(dst, img, force=args.force)
    if args.verbose:
        print(f"{src} -> {dst}: {img.shape[1]}x{img.shape[0]}, {time.perf_counter() - t0:.2f} s")
        print(prof.table(img.shape[0] * img.shape[1] / 1e6))


def cmd_info(args: argparse.Namespace) -> int:
    from . import api

    info = api.read_info(_read_stream(Path(args.input)))
    print(f"{args.input}: model {info.model_id}, {info.width}x{info.height} {info.colour}, "
          f"rate {info.rate:.4f}, {info.num_bytes} bytes, {info.bpp:.4f} bpp")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="openjai", description="openjai learned image codec.")
    sub = p.add_subparsers(dest="command", required=True)

    e = sub.add_parser("encode", help="compress images to .jai", description=(
        "Compress images (PNG, JPEG, PPM/PGM, TIFF, BMP, WebP; 8-bit RGB, grey, RGBA) to .jai. "
        "--bpp searches the rate on the actual coded size (never above the target by more than 10%; "
        "for a photo that was a JPEG, once per lattice weight, keeping a heavier weight only where it is "
        "less distorted in every respect); "
        "--quality 0..100 maps linearly onto the rate range: the model's rate points, then (with the "
        "residual layer) four steps of finer residual, up to near-lossless (default 50)."))
    e.add_argument("inputs", nargs="+", help="input image(s)")
    e.add_argument("-o", "--output", help="output .jai file (one input)")
    e.add_argument("-d", "--outdir", help="output folder for several inputs (<stem>.jai each); "
                   "continues past bad inputs and exits 1 at the end if any failed")
    rate = e.add_mutually_exclusive_group()
    rate.add_argument("--bpp", type=float, help="target bits per pixel")
    rate.add_argument("--quality", "-q", type=float, help="quality 0 (smallest) .. 100 (best)")
    e.add_argument("--model", default="base",
                   help="operating point: base (also named fast: 14 kMAC/pixel decoder) or high (44 kMAC/pixel, "
                   "~4.5 %% fewer bits, from 0.03 bpp); openjai/weights/MODEL.md (default: %(default)s)")
    e.add_argument("--effort", type=int, choices=range(4), default=0, metavar="0..3",
                   help="encoder effort: 1-3 refine the latents for each image, fewer bits at the same "
                   "quality for several times the encoding time; decoding is unchanged (default: %(default)s)")
    e.add_argument("--no-residual", action="store_true",
                   help="leave out the residual layer, which the encoder otherwise adds at high rates "
                   "where it pays (with --no-filter too: the learned codec alone; docs/bitstream.md)")
    e.add_argument("--no-filter", action="store_true",
                   help="leave out the adaptive filter, which the encoder otherwise fits to the image and "
                   "sends where it pays (docs/bitstream.md)")
    e.add_argument("--no-lattice", action="store_true",
                   help="leave out the lattice layer, which the encoder otherwise sends when the image was "
                   "once a JPEG (its luma snaps to the JPEG's DCT lattice) and it pays (docs/bitstream.md)")
    e.add_argument("--force", "-f", action="store_true", help="overwrite existing outputs")
    e.add_argument("-v", "--verbose", action="store_true",
                   help="print size, bpp and time, and the time of each encoder stage")
    e.set_defaults(func=cmd_encode)

    d = sub.add_parser("decode", help="decompress a .jai file", description=(
        "Decompress .jai files to PNG (or .ppm/.pgm/.tif/.bmp/.webp by suffix). Grey and alpha come back as coded."))
    d.add_argument("inputs", nargs="+", help="input .jai file(s)")
    d.add_argument("-o", "--output", help="output image (one input)")
    d.add_argument("-d", "--outdir", help="output folder for several inputs (<stem>.png each); "
                   "continues past bad inputs and exits 1 at the end if any failed")
    d.add_argument("--device", default="cpu", help="device for the float networks, e.g. cuda (entropy decoding "
                   "is always exact on the CPU)")
    d.add_argument("--force", "-f", action="store_true", help="overwrite an existing output")
    d.add_argument("-v", "--verbose", action="store_true")
    d.set_defaults(func=cmd_decode)

    i = sub.add_parser("info", help="print a .jai header")
    i.add_argument("input")
    i.set_defaults(func=cmd_info)

    from .train import cli as train_cli

    t = sub.add_parser("train", help="train a model (resumable)", description="Train an openjai model; "
                       "re-running with the same run folder resumes from its last checkpoint.")
    train_cli.add_arguments(t)
    t.set_defaults(func=train_cli.run)

    from .eval import cli as eval_cli

    ev = sub.add_parser("eval", help="CTTC evaluation against the anchors (CSV, BD-rate, plots)",
                        description=eval_cli.__doc__.split("\n\n")[0])
    eval_cli.add_arguments(ev)
    ev.set_defaults(func=eval_cli.run)
    ev_sub = ev.add_subparsers(dest="eval_command")
    rep = ev_sub.add_parser("report", help="regenerate the report from OUT/results.csv")
    eval_cli.add_report_arguments(rep)
    rep.set_defaults(func=eval_cli.run_report)
    evt = ev_sub.add_parser("tasks", help="tasks on latents vs pixel anchors: docs/results/tasks.md")
    eval_cli.add_tasks_arguments(evt)
    evt.set_defaults(func=eval_cli.run_tasks)

    from .tasks import cli as task_cli

    tk = sub.add_parser("task", help="run a machine task on a stream's latents (no synthesis)",
                        description=task_cli.__doc__.split("\n\n")[0])
    task_cli.add_arguments(tk)
    tk.set_defaults(func=task_cli.run)

    x = sub.add_parser("export", help="turn a training checkpoint into shipped weights")
    train_cli.add_export_arguments(x)
    x.set_defaults(func=train_cli.run_export)

    from .subjective import cli as subjective_cli

    sj = sub.add_parser("subjective", help="DSCQS subjective test (BT.500) and .jai viewer in the browser",
                        description="Build, run and analyse a DSCQS subjective test; view .jai files "
                        "(docs/subjective.md).")
    subjective_cli.add_arguments(sj)
    sj.set_defaults(func=subjective_cli.run)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return exit_status(lambda: args.func(args))
    except KeyboardInterrupt:
        print("openjai: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
