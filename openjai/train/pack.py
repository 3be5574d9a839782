"""Pack the training photos into one small folder, to carry to a lent GPU machine.

    python -m openjai.train.pack .gpu/data [--data ../shared/data/train] [--quality 80]

The device tool carries at most 64 MiB with the working tree, and ../shared is not carried, so
the photos (and the installed Debian wallpapers, downscaled as the sampler does) are
re-encoded as WebP: at quality 80 the 368 photos take 24.8 MiB (39.9 at 90). Training there
reads the folder with ``--data .gpu/data --no-wallpapers`` (docs/training.md, "Training on a
lent GPU").
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from ..errors import OpenJAIError
from ..files import atomic_write
from .data import WALLPAPER_SHORT_SIDE, _load, list_images, wallpaper_paths
from .cli import DEFAULT_DATA


def pack(src: Path, out: Path, quality: int, wallpapers: bool = True) -> tuple[int, int]:
    """Write every photo of ``src`` (and the wallpapers) to ``out`` as WebP; (files, bytes)."""
    out.mkdir(parents=True, exist_ok=True)
    sources = [(p, None, p.stem) for p in list_images(src)]
    if wallpapers:
        sources += [(p, WALLPAPER_SHORT_SIDE, f"wallpaper-{i:03d}") for i, p in enumerate(wallpaper_paths())]
    files = size = 0
    for path, short, name in tqdm(sources, desc="pack", unit="photo", disable=None):
        img = _load(path, short, 1)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "WEBP", quality=quality, method=6)
        atomic_write(out / f"{name}.webp", buf.getvalue(), force=True)
        files, size = files + 1, size + buf.tell()
    return files, size


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="folder to write (existing files of the same name are replaced)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="photos to pack (default: %(default)s)")
    ap.add_argument("--quality", type=int, default=80, help="WebP quality 1-100 (default: %(default)s)")
    ap.add_argument("--no-wallpapers", action="store_true", help="leave the Debian wallpapers out")
    args = ap.parse_args(argv)
    try:
        files, size = pack(args.data, args.out, args.quality, not args.no_wallpapers)
    except OpenJAIError as e:
        print(f"openjai train pack: {e}", file=sys.stderr)
        return 1
    print(f"{files} photos, {size / 2**20:.1f} MiB in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
