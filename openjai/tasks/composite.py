"""Foreground-extraction data: photo cut-outs with alpha composited onto real photos.

    background photo ─random crop, resize─▶ canvas (H, W, 3)
    1-3 stamps (RGBA cut-outs) ─scale, flip, place─▶ alpha-blended over the canvas
    mask = composite alpha > 0.5   (exact: the alpha we blended with, not an estimate)

Stamps are Debian's ``tuxpaint-stamps-default`` PNGs that are photographs: RGBA, outside any
``cartoon`` folder, with many distinct colours per foreground pixel (drawings have few) and
a real shape (alpha not a full rectangle). They are split into train/test *by stamp* with a
hash of the stamp's relative path, so the split never changes as files are added; the test
list is recorded in ``weights/segment_split.txt``. Backgrounds: training on
/work/shared/data/train and the Debian wallpapers (``*.jpg``), testing on
/work/shared/data/val only. Every sample is a pure function of (seed, split, index).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import DataError
from ..files import atomic_write
from . import SHARED_DATA

STAMP_ROOT = Path("/usr/share/tuxpaint/stamps")
WALLPAPER_ROOTS = (Path("/usr/share/wallpapers"), Path("/usr/share/backgrounds"))
SPLIT_FILE = Path(__file__).resolve().parent / "weights" / "segment_split.txt"
TEST_ONE_IN = 5  # one stamp in five is held out for testing
MIN_COLOURS_PER_PIXEL = 0.3  # photos: ~0.6-0.99 distinct colours per foreground pixel; drawings < 0.15
MIN_FOREGROUND_PIXELS = 1500
MAX_COVERAGE = 0.97  # a cut-out, not a rectangle
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".webp", ".png")


def is_photo_stamp(path: Path) -> bool:
    """A stamp that is a photographic cut-out (see the module docstring for the rule)."""
    if "cartoon" in path.parts:
        return False
    with Image.open(path) as im:
        if im.mode != "RGBA":
            return False
        a = np.asarray(im)
    fg = a[..., 3] > 127
    n = int(fg.sum())
    if n < MIN_FOREGROUND_PIXELS or fg.mean() > MAX_COVERAGE:
        return False
    rgb = a[..., :3][fg].astype(np.int64)
    colours = np.unique(rgb[:, 0] << 16 | rgb[:, 1] << 8 | rgb[:, 2]).size
    return colours / n >= MIN_COLOURS_PER_PIXEL


def is_test_stamp(relative: str) -> bool:
    """The held-out split, by a stable hash of the stamp's path relative to the stamp root."""
    return int(hashlib.sha256(relative.encode()).hexdigest(), 16) % TEST_ONE_IN == 0


@lru_cache(maxsize=4)
def stamps(split: str, root: Path = STAMP_ROOT) -> tuple[Path, ...]:
    """Photo stamps of ``split`` ('train' or 'test'), sorted."""
    if split not in ("train", "test"):
        raise DataError(f"unknown split {split!r}: use 'train' or 'test'")
    if not root.is_dir():
        raise DataError(f"{root} is missing: install Debian's tuxpaint-stamps-default")
    found = tuple(p for p in sorted(root.rglob("*.png"))
                  if is_photo_stamp(p) and is_test_stamp(str(p.relative_to(root))) == (split == "test"))
    if not found:
        raise DataError(f"no photo stamps for split {split!r} under {root}")
    return found


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES)


@lru_cache(maxsize=4)
def backgrounds(split: str, data_root: Path = SHARED_DATA) -> tuple[Path, ...]:
    """Background photos: data/train plus Debian wallpapers for 'train', data/val for 'test'."""
    folder = data_root / ("train" if split == "train" else "val")
    if not folder.is_dir():
        raise DataError(f"{folder} is missing: backgrounds come from /work/shared/data (see its README)")
    return tuple(_images(folder)) + (wallpapers() if split == "train" else ())


def wallpapers() -> tuple[Path, ...]:
    """The Debian wallpaper photos (``*.jpg``) installed on this machine (maybe none)."""
    return tuple(p for root in WALLPAPER_ROOTS if root.is_dir() for p in sorted(root.rglob("*.jpg")))


def _crop(path: Path, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A random crop (40-100 % of the largest one with the canvas's aspect) resized to the canvas."""
    with Image.open(path) as im:
        im.draft("RGB", (width * 2, height * 2))  # JPEG: decode at a reduced scale, much faster
        im = im.convert("RGB")
        w, h = im.size
        scale = min(w / width, h / height) * rng.uniform(0.4, 1.0)
        cw, ch = max(1, int(width * scale)), max(1, int(height * scale))
        x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        return np.asarray(im.resize((width, height), Image.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch)))


def _placed_stamp(path: Path, width: int, height: int, rng: np.random.Generator) -> tuple[np.ndarray, int, int]:
    """The stamp as float RGBA in [0, 1], scaled (longer side 25-75 % of the canvas's shorter
    side), maybe mirrored, and its top-left corner (may lie partly outside the canvas)."""
    with Image.open(path) as im:
        im = im.convert("RGBA")
        side = rng.uniform(0.25, 0.75) * min(width, height)
        s = side / max(im.size)
        im = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.LANCZOS)
        if rng.random() < 0.5:
            im = im.transpose(Image.FLIP_LEFT_RIGHT)
        a = np.asarray(im, dtype=np.float32) / 255.0
    x = int(rng.integers(-a.shape[1] // 4, width - 3 * a.shape[1] // 4 + 1))
    y = int(rng.integers(-a.shape[0] // 4, height - 3 * a.shape[0] // 4 + 1))
    return a, x, y


def blend(canvas: np.ndarray, alpha: np.ndarray, stamp: np.ndarray, x: int, y: int) -> None:
    """Alpha-blend float RGBA ``stamp`` at (x, y) over float ``canvas`` (H, W, 3) in place, and
    accumulate the coverage ``alpha`` (H, W): α_out = α_s + α (1 − α_s)."""
    h, w = alpha.shape
    sy0, sx0 = max(0, -y), max(0, -x)
    sy1, sx1 = min(stamp.shape[0], h - y), min(stamp.shape[1], w - x)
    if sy1 <= sy0 or sx1 <= sx0:
        return
    s = stamp[sy0:sy1, sx0:sx1]
    region = (slice(y + sy0, y + sy1), slice(x + sx0, x + sx1))
    a = s[..., 3:]
    canvas[region] = s[..., :3] * a + canvas[region] * (1.0 - a)
    alpha[region] = a[..., 0] + alpha[region] * (1.0 - a[..., 0])


@dataclass(frozen=True)
class Sample:
    """One composite: the image and its exact foreground mask."""

    rgb: np.ndarray  # uint8 (H, W, 3)
    mask: np.ndarray  # bool (H, W)


def compose(background: Path, pool: Sequence[Path], width: int, height: int, rng: np.random.Generator) -> Sample:
    """A crop of ``background`` with 1-3 stamps drawn from ``pool`` blended over it."""
    canvas = _crop(background, width, height, rng).astype(np.float32) / 255.0
    alpha = np.zeros((height, width), np.float32)
    for _ in range(int(rng.integers(1, 4))):
        blend(canvas, alpha, *_placed_stamp(pool[int(rng.integers(len(pool)))], width, height, rng))
    rgb = np.clip(np.rint(canvas * 255.0), 0, 255).astype(np.uint8)
    return Sample(rgb, alpha > 0.5)


def make_sample(split: str, index: int, width: int, height: int, seed: int = 0) -> Sample:
    """Composite number ``index`` of ``split``: a function of (seed, split, index, size) only."""
    rng = np.random.default_rng([seed, 0 if split == "train" else 1, index])
    bgs = backgrounds(split)
    return compose(bgs[int(rng.integers(len(bgs)))], stamps(split), width, height, rng)


def write_split_file(path: Path = SPLIT_FILE) -> None:
    """Record the held-out stamps (relative paths, one a line) next to the weights."""
    lines = [str(p.relative_to(STAMP_ROOT)) for p in stamps("test")]
    text = "# tuxpaint photo stamps held out for testing (composite.is_test_stamp)\n" + "\n".join(lines) + "\n"
    atomic_write(path, text.encode(), force=True)
