"""Apply the convolutional networks tile by tile, so memory is bounded by the tile size.

Every network of the codec is local: an output pixel depends only on inputs within its
receptive field. Running a network on a tile enlarged by a ``halo`` at least that wide and
cropping the halo off the output gives the same values as running it on the whole image
(up to float summation order; integer-exact networks give identical integers). Tiling
therefore never changes the bitstream format and needs no header field: encoder and
decoder may use different tile sizes.

    input  ┌──────┬──────┐        each tile + halo ─net─▶ output tile (halo cropped)
           │  t0  │  t1  │        output = input size × factor
           └──────┴──────┘
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import torch


@dataclass(frozen=True)
class TilePlan:
    """How to tile one network: output size = input size × factor.

    ``tile`` and ``halo`` are in input pixels and must be multiples of ``align`` (the network's
    total stride when factor < 1), so every tile starts on the output grid.
    """

    factor: Fraction
    tile: int
    halo: int
    align: int = 1


def apply_tiled(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, plan: TilePlan) -> torch.Tensor:
    """fn(x) computed tile by tile (a single call when x fits in one tile)."""
    h, w = x.shape[-2:]
    if h <= plan.tile and w <= plan.tile:
        return fn(x)
    if plan.tile % plan.align or plan.halo % plan.align or h % plan.align or w % plan.align:
        raise ValueError("tile, halo and input size must be multiples of the alignment")
    f = plan.factor
    out = None
    for y0 in range(0, h, plan.tile):
        for x0 in range(0, w, plan.tile):
            y1, x1 = min(y0 + plan.tile, h), min(x0 + plan.tile, w)
            ya, xa = max(0, y0 - plan.halo), max(0, x0 - plan.halo)
            yb, xb = min(h, y1 + plan.halo), min(w, x1 + plan.halo)
            o = fn(x[..., ya:yb, xa:xb])
            if out is None:
                out = o.new_empty((*o.shape[:-2], int(h * f), int(w * f)))
            out[..., int(y0 * f) : int(y1 * f), int(x0 * f) : int(x1 * f)] = o[
                ..., int((y0 - ya) * f) : int((y1 - ya) * f), int((x0 - xa) * f) : int((x1 - xa) * f)
            ]
    return out


# Receptive-field radii (see transforms.py): g_a ±30 px; g_s ±2 latents; h_a ±7 latents;
# h_μ and h_σ ±2 hyper-latents. The two big networks' halos are their radii, rounded up to the
# alignment (measured: tiles give the untiled outputs bit for bit, tests/test_tiling.py; half
# of each, 16 px and 1 latent, moves outputs by ~0.6 and ~5 levels): a halo costs
# ((tile + 2·halo) / tile)² of the work, 1.13× at these sizes instead of 1.27× with 64 and 4.
# The small ones are rounded up generously.
ANALYSIS = TilePlan(Fraction(1, 16), tile=1024, halo=32, align=16)
SYNTHESIS = TilePlan(Fraction(16), tile=64, halo=2)
HYPER_ANALYSIS = TilePlan(Fraction(1, 4), tile=256, halo=16, align=4)
HYPER_SYNTHESIS = TilePlan(Fraction(4), tile=32, halo=3)
# checkerboard context (context.py): ±2 latents; tiles must start at even positions (the
# anchor pattern is relative to the tile), so tile and halo are even
CONTEXT = TilePlan(Fraction(1), tile=64, halo=2)
