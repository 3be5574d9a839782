"""Training data: photos held in memory as uint8 arrays, random crops with flips.

Sources: a folder of photos (default ``../shared/data/train``) plus the Debian wallpaper
photos listed in ``wallpapers.txt`` (those not installed are skipped with a warning).
Wallpapers are downscaled once so their short side is ``WALLPAPER_SHORT_SIDE`` px: at
2560-5312 px a 256-px crop is nearly flat, unlike the rest of the set.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".ppm", ".bmp", ".tif", ".tiff"}
WALLPAPER_LIST = Path(__file__).with_name("wallpapers.txt")
WALLPAPER_SHORT_SIDE = 800


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted; raises DataError when there are none."""
    if not folder.is_dir():
        raise DataError(f"data folder {folder} not found: point --data at a folder of photos")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"no images (png/jpg/webp/...) in {folder}")
    return files


def wallpaper_paths() -> list[Path]:
    """Installed wallpaper photos from wallpapers.txt."""
    paths = []
    for line in WALLPAPER_LIST.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        package, path = line.split()
        if Path(path).is_file():
            paths.append(Path(path))
        else:
            warnings.warn(f"{path} missing: apt-get install -y {package}", stacklevel=2)
    return paths


def _load(path: Path, short_side: int | None, min_side: int) -> np.ndarray | None:
    with Image.open(path) as im:
        im = im.convert("RGB")
        if short_side is not None and min(im.size) > short_side:
            f = short_side / min(im.size)
            im = im.resize((round(im.width * f), round(im.height * f)), Image.LANCZOS, reducing_gap=3.0)
        if min(im.size) < min_side:
            return None
        return np.asarray(im, dtype=np.uint8).copy()


class CropSampler:
    """Random crops (B, 3, crop, crop) as float32 in [0, 1] from images held in memory."""

    def __init__(self, folder: Path, crop: int, use_wallpapers: bool = True) -> None:
        self.crop = crop
        self.images: list[np.ndarray] = []
        sources = [(p, None) for p in list_images(folder)]
        if use_wallpapers:
            sources += [(p, WALLPAPER_SHORT_SIDE) for p in wallpaper_paths()]
        for path, short in sources:
            img = _load(path, short, crop)
            if img is not None:
                self.images.append(img)
        if not self.images:
            raise DataError(f"no image in {folder} is at least {crop} px on its short side")
        areas = np.array([im.shape[0] * im.shape[1] for im in self.images], dtype=np.float64)
        # Sample images ∝ sqrt(area): large photos give more distinct crops, but not all of them.
        self.weights = np.sqrt(areas) / np.sqrt(areas).sum()

    def batch(self, rng: np.random.Generator, size: int) -> np.ndarray:
        out = np.empty((size, self.crop, self.crop, 3), dtype=np.uint8)
        for i, k in enumerate(rng.choice(len(self.images), size=size, p=self.weights)):
            img = self.images[k]
            y = rng.integers(0, img.shape[0] - self.crop + 1)
            x = rng.integers(0, img.shape[1] - self.crop + 1)
            patch = img[y : y + self.crop, x : x + self.crop]
            if rng.random() < 0.5:
                patch = patch[:, ::-1]
            out[i] = patch
        return out.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
