"""``openjai task <classify|segment|superres|denoise> in.jai [-o out.png] [--force]``.

classify prints its top-5 lines ``probability  index  name``; the image tasks write a PNG
(atomically; an existing file is only replaced with ``--force``). Every failure is one line on
stderr and exit status 1, with nothing written. The dispatch table maps each task to its
module function and how its result is written.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import OutputError


@dataclass(frozen=True)
class TaskCommand:
    module: str
    writes_image: bool  # False: prints lines; True: needs -o and writes the result as an image


COMMANDS = {
    "classify": TaskCommand("classify", False),
    "segment": TaskCommand("segment", True),
    "superres": TaskCommand("superres", True),
    "denoise": TaskCommand("denoise", True),
}


def _function(name: str) -> Callable:
    try:
        module = importlib.import_module(f"openjai.tasks.{COMMANDS[name].module}")
    except ModuleNotFoundError as e:
        if e.name != f"openjai.tasks.{COMMANDS[name].module}":
            raise
        from ..errors import TaskUnavailableError

        raise TaskUnavailableError(f"task {name!r} is not installed in this openjai") from None
    return getattr(module, name)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", choices=sorted(COMMANDS), help="the task to run on the stream's latents")
    p.add_argument("input", type=Path, help=".jai stream (of the base model)")
    p.add_argument("-o", "--output", type=Path, help="output PNG (segment, superres, denoise)")
    p.add_argument("--force", "-f", action="store_true", help="overwrite an existing output")


def run(args: argparse.Namespace) -> int:
    from .. import image
    from ..cli import _read_stream, _same_file

    cmd = COMMANDS[args.task]
    if cmd.writes_image:
        if args.output is None:
            raise OutputError(f"openjai task {args.task} writes an image: give -o OUTPUT.png")
        if _same_file(args.input, args.output):
            raise OutputError(f"refusing to write the output over the input {args.input}")
        if args.output.exists() and not args.force:
            raise OutputError(f"{args.output} exists: use --force to overwrite it")
    elif args.output is not None:
        raise OutputError(f"openjai task {args.task} prints its result; it takes no -o")
    result = _function(args.task)(_read_stream(args.input))
    if cmd.writes_image:
        image.save(args.output, result, force=args.force)
    else:
        for index, name, p in result:
            print(f"{p:.4f}  {index:3d}  {name}")
    return 0
