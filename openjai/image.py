"""Image input/output: what the codec accepts and how it hands images back.

Accepted: PNG, JPEG, PPM/PGM, TIFF, BMP, WebP (anything Pillow reads), 8-bit, as files,
``PIL.Image`` or numpy arrays. Layouts and their handling:

* RGB             coded as is.
* grey (L)        coded as R=G=B; decoded back to one channel.
* RGB with R=G=B  (a grey photo saved as colour) coded as grey, decoded back to RGB with
                  R=G=B: the output is as grey as the input.
* RGBA / LA       colour coded as above; alpha stored losslessly (zlib) in the stream.
* palette (P)     converted to RGB or RGBA (if it has transparency) first.
* 16-bit, float, CMYK, multi-frame: converted by Pillow to 8-bit RGB where it can,
  otherwise refused with an ImageError.

Arrays: (H, W) grey, (H, W, 1|2|3|4) uint8.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .bt709 import BT709_KB, BT709_KG, BT709_KR
from .codec.container import ColourMode
from .errors import ImageError, OutputError
from .files import atomic_write


@dataclass
class CodecInput:
    """An image split the way the codec stores it."""

    rgb: np.ndarray  # (H, W, 3) uint8
    colour: ColourMode
    alpha: np.ndarray | None  # (H, W) uint8


def _from_array(a: np.ndarray) -> CodecInput:
    if a.dtype != np.uint8:
        raise ImageError(f"image arrays must be uint8, got {a.dtype}")
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4) or a.shape[0] < 1 or a.shape[1] < 1:
        raise ImageError(f"unsupported image array shape {a.shape}: expected (H, W) or (H, W, 1-4)")
    channels = a.shape[2]
    alpha = a[:, :, -1].copy() if channels in (2, 4) else None
    rgb = np.repeat(a[:, :, :1], 3, axis=2) if channels <= 2 else a[:, :, :3]
    if channels <= 2:
        colour = ColourMode.GREY_ALPHA if alpha is not None else ColourMode.GREY
    elif _all_grey(rgb):
        colour = ColourMode.RGBA_GREY if alpha is not None else ColourMode.RGB_GREY
    else:
        colour = ColourMode.RGBA if alpha is not None else ColourMode.RGB
    return CodecInput(np.ascontiguousarray(rgb), colour, alpha)


def _all_grey(rgb: np.ndarray) -> bool:
    """R = G = B at every pixel."""
    return bool(np.array_equal(rgb[:, :, 0], rgb[:, :, 1]) and np.array_equal(rgb[:, :, 1], rgb[:, :, 2]))


def _from_pil(im: Image.Image) -> CodecInput:
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grey: keep the 8 most significant bits
        return _from_array((np.asarray(im, dtype=np.uint32) >> 8).clip(0, 255).astype(np.uint8))
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    target = {"1": "L", "L": "L", "LA": "LA", "RGB": "RGB", "RGBA": "RGBA"}.get(im.mode)
    if target is None:
        target = "RGBA" if "A" in im.getbands() else "RGB"
    try:
        return _from_array(np.asarray(im.convert(target), dtype=np.uint8))
    except (ValueError, OSError) as e:
        raise ImageError(f"cannot convert image mode {im.mode} to {target}: {e}") from None


def load(source: str | os.PathLike | np.ndarray | Image.Image) -> CodecInput:
    """Read an image file, PIL image or array into the codec's layout (ImageError on failure)."""
    if isinstance(source, np.ndarray):
        return _from_array(source)
    if isinstance(source, Image.Image):
        return _from_pil(source)
    path = Path(source)
    if path.is_dir():
        raise ImageError(f"{path} is a directory, not an image")
    try:
        with Image.open(path) as im:
            im.load()
            return _from_pil(im)
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except PermissionError:
        raise ImageError(f"{path}: permission denied") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{path}: not a readable image ({e})") from None
    except Image.DecompressionBombError as e:
        raise ImageError(f"{path}: {e}") from None


def assemble(rgb: np.ndarray, colour: ColourMode, alpha: np.ndarray | None) -> np.ndarray:
    """Decoded planes → the array the user gets: (H, W) grey, (H, W, 2|3|4)."""
    if colour.is_grey:
        # R=G=B was coded. The decoded luma is a better grey estimate than the channels' mean
        # (measured, 3 val photos × 2 models × 3 rates: +0.08 to +0.31 dB): the shipped models
        # were trained with luma errors weighted above chroma errors.
        c = rgb.astype(np.float64)  # element-wise, so the same on every machine (a BLAS product need not be)
        luma = BT709_KR * c[:, :, 0] + BT709_KG * c[:, :, 1] + BT709_KB * c[:, :, 2]
        base = np.clip(np.round(luma), 0, 255).astype(np.uint8)[:, :, None]
        if colour in (ColourMode.RGB_GREY, ColourMode.RGBA_GREY):
            base = np.repeat(base, 3, axis=2)
    else:
        base = rgb
    if alpha is not None:
        base = np.concatenate([base, alpha[:, :, None]], axis=2)
    return base[:, :, 0] if base.shape[2] == 1 else base


def to_pil(a: np.ndarray) -> Image.Image:
    """A decoded array as a PIL image (L, LA, RGB or RGBA)."""
    mode = "L" if a.ndim == 2 else {2: "LA", 3: "RGB", 4: "RGBA"}[a.shape[2]]
    return Image.fromarray(a, mode=mode)


def save(path: Path, a: np.ndarray, force: bool = False) -> None:
    """Save a decoded image; the format follows the suffix (PNG, PPM/PGM, TIFF, BMP, WebP lossless)."""
    path = Path(path)
    fmt = {".png": "PNG", ".ppm": "PPM", ".pgm": "PPM", ".pnm": "PPM", ".tif": "TIFF", ".tiff": "TIFF",
           ".bmp": "BMP", ".webp": "WEBP"}.get(path.suffix.lower())
    if fmt is None:
        raise OutputError(f"{path}: unsupported output format (use .png, .ppm, .pgm, .tif, .bmp or .webp)")
    im = to_pil(a)
    if fmt == "PPM" and im.mode in ("LA", "RGBA"):
        raise OutputError(f"{path}: PPM/PGM cannot hold alpha; use .png")
    buf = io.BytesIO()
    im.save(buf, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    atomic_write(path, buf.getvalue(), force)
