"""Row strips: how the pixel layers (filter, residual, lattice) bound their memory.

The layers work on whole-image uint8 RGB arrays (3 bytes a pixel) and keep their integers
compact, but everything float (YCbCr planes, DCT blocks, features) is made for one strip of
rows at a time, plus the halo of rows a local operation reads. A strip holds about
STRIP_PIXELS pixels, so the float work's memory grows with the width, not the area; an image
of at most STRIP_PIXELS pixels is one strip, computed exactly as the whole image.

    rows ┌────────────┐ strip 0     each strip + halo rows ─op─▶ its own rows of the output
         ├────────────┤ strip 1
         └────────────┘ strip 2
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar
from concurrent.futures import ThreadPoolExecutor

import torch

STRIP_PIXELS = 1 << 20
T = TypeVar("T")
R = TypeVar("R")


def row_strips(height: int, width: int, align: int = 1, pixels: int | None = None) -> list[tuple[int, int]]:
    """[start, stop) row ranges that cover ``height`` rows in order, each about ``pixels``
    (default STRIP_PIXELS, read at each call) / ``width`` rows (at least ``align``), every
    start a multiple of ``align``; one range when the image has at most ``pixels`` pixels."""
    pixels = STRIP_PIXELS if pixels is None else pixels
    if height * width <= pixels:
        return [(0, height)] if height else []
    rows = max(align, pixels // max(width, 1) // align * align)
    return [(start, min(height, start + rows)) for start in range(0, height, rows)]


def with_halo(start: int, stop: int, height: int, halo: int) -> tuple[int, int]:
    """The rows [start − halo, stop + halo) clipped to the image: what an operation reading
    ``halo`` rows up and down needs for the strip [start, stop)."""
    return max(0, start - halo), min(height, stop + halo)


def threaded_strips(height: int, width: int, align: int = 1) -> list[tuple[int, int]]:
    """Strips for work whose result does not depend on where the strips end (the decoder's
    pixel layers): ``row_strips``, split further so that each of torch's threads gets one."""
    ranges = row_strips(height, width, align)
    threads = torch.get_num_threads()
    if 1 < len(ranges) or threads == 1 or height < 2 * align:
        return ranges
    rows = -(-height // threads // align) * align
    return [(start, min(height, start + rows)) for start in range(0, height, rows)]


def run_strips(work: Callable[[int, int], None], ranges: list[tuple[int, int]]) -> None:
    """``work(start, stop)`` for every strip, on as many threads as torch uses; each call
    writes only its own rows."""
    map_threads(lambda r: work(*r), ranges)


def map_threads(work: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``[work(item) for item in items]``, on as many threads as torch uses (numpy releases the
    interpreter lock in its loops); the results in the order of ``items``."""
    items = list(items)
    threads = min(torch.get_num_threads(), len(items))
    if threads <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(work, items))
