"""Residual layer: what the model's synthesis does not reach, coded with an 8×8 DCT.

A learned codec stops gaining at high rates when its latent is too narrow for the detail
(the transform ceiling, docs/training.md): on the shipped models, coding more latent bits
above ~1 bpp buys almost nothing, and smooth areas keep an error floor. The residual layer
codes the difference between the image and the model's decoded image x̂ (after the
adaptive filter, adaptive_filter.py, when the stream has one), in BT.709 YCbCr, with an
orthonormal 8×8 DCT and a uniform quantizer of step Δ per component (Δ = 0: the component
is not coded):

    e = YCbCr(x) − YCbCr(x̂)  ─8×8 DCT─▶ c ─▶ q = round(c / Δ)  (encoder: dead zone)
    decoder:  YCbCr(x̂) + IDCT(q · Δ)  ─▶ RGB, rounded

The quantized coefficients are coded with the model's zero-mean Gaussian tables (the same
ones the latents use). Their σ-index is chosen by the encoder per group and stored in the
section: a group is (component, activity bucket, frequency band), where the band of
coefficient (u, v) is min(u + v, 7) and a block's activity is the sum over the latent
channels of the σ-index of the latent position (16×16 px) the block lies in — integer data
every decoder has, so the grouping is exact. The head stores the bucket thresholds
(quantiles of the activity), a bit per group saying whether it is coded (a group left out
is all zero), and the σ-index of each coded group. Which coefficients are coded therefore
depends on integers only, and decoding is exact on every machine; only the inverse DCT and
colour conversion are float.

The encoder chooses Δ from the model's λ at β (Δ ∝ 1/√λ: the step whose rate-distortion
slope matches the latent's), then quantizes each coefficient to whichever of 0, ⌊|c|/Δ⌉ − 1
and ⌊|c|/Δ⌉ (dead zone) costs least in bits plus squared error priced at that slope (RDOQ),
leaves out groups that do not pay, and the whole layer when it does not. Deciding per
coefficient rather than per group keeps the size growing smoothly with β, which rate
control needs. Past the model's top rate point the encoder keeps the latent there and
halves Δ per unit of rate (RESIDUAL_EXTENSION units), up to near-lossless.
Spec: docs/bitstream.md, sections RESIDUAL and RESIDUAL_ESCAPES.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

from ..bt709 import BT709_CB_DIV, BT709_CR_DIV, BT709_KB, BT709_KG, BT709_KR
from ..errors import BitstreamError
from .coding import SymbolDecoder, SymbolEncoder, TableSet

BLOCK = 8
BUCKETS = 6
BANDS = 8
SKIP = 255  # σ-index of a group that is not coded (all its coefficients are zero), in memory only
STEP_UNIT = 16  # Δ is stored in 1/16 of an 8-bit level
Q_LIMIT = 1 << 15  # |q| bound, above any coefficient's 255·8 / (1/16)
#: Δ_Y = STEP_SCALE / √λ(β), chroma Δ = CHROMA_STEP × Δ_Y. The shipped models minimise
#: ½ MSE (Y, Cb, Cr weighted 6:1:1) + ½ MS-SSIM, so a squared luma error costs them half of
#: λ and a chroma one a sixth of that: 2.5 (the best MSE-only scale in a first sweep over
#: Δ = 6 … 35) × √2, and √6 for chroma. Measured against 1.8 and 2.5 (docs/training.md):
#: the smaller steps gain more PSNR and lose more MS-SSIM.
STEP_SCALE = 3.5
CHROMA_STEP = 2.45
#: units of rate the encoder adds above the model's top rate point, each halving the step
#: (``high``: Δ_Y 4.0 → 0.25; on the sample 46 → 67 dB PSNR-Y, 4 → 15 bpp)
RESIDUAL_EXTENSION = 4
#: encoder dead zone: |c|/Δ is rounded down below n + 0.5 + DEAD_ZONE (fewer bits, same decoder)
DEAD_ZONE = 0.2

GROUPS = 3 * BUCKETS * BANDS
#: fixed part of the head: Δ per component, activity thresholds (u16 each), a bit per group
#: (LSB first) that says whether it is coded; one σ-index byte per coded group follows
HEAD = struct.Struct(f"<3H{BUCKETS - 1}H{GROUPS // 8}s")
HEAD_MASK_OFFSET = 2 * (3 + BUCKETS - 1)
ACTIVITY_LIMIT = 0xFFFF  # block activity is clamped to the thresholds' range


@dataclass(frozen=True)
class ResidualParams:
    """The head of a RESIDUAL section."""

    steps: tuple[int, int, int]  # Δ per component (Y, Cb, Cr) in 1/STEP_UNIT; 0 = not coded
    thresholds: tuple[int, ...]  # BUCKETS − 1 non-decreasing activity thresholds
    sigma: np.ndarray  # (3, BUCKETS, BANDS) uint8 σ-index per group, SKIP = not coded

    def pack(self) -> bytes:
        coded = self.sigma.ravel() != SKIP
        mask = np.packbits(coded, bitorder="little").tobytes()
        return HEAD.pack(*self.steps, *self.thresholds, mask) + self.sigma.ravel()[coded].tobytes()

    @property
    def size(self) -> int:
        """Bytes of the packed head."""
        return HEAD.size + int((self.sigma != SKIP).sum())

    @staticmethod
    def unpack(data: bytes, levels: int) -> ResidualParams:
        """Parse and validate the head of a RESIDUAL section."""
        if len(data) < HEAD.size:
            raise BitstreamError(f"residual section too short ({len(data)} bytes, head needs {HEAD.size})")
        values = HEAD.unpack_from(data, 0)
        steps = tuple(values[:3])
        thresholds = tuple(values[3 : 3 + BUCKETS - 1])
        sigma = group_indices(data, HEAD.size, values[-1], levels, "residual").reshape(3, BUCKETS, BANDS)
        if any(b < a for a, b in zip(thresholds, thresholds[1:])):
            raise BitstreamError("residual activity thresholds are not in increasing order")
        for c in range(3):
            if steps[c] == 0 and (sigma[c] != SKIP).any():
                raise BitstreamError("residual codes a component whose step is 0")
        return ResidualParams(steps, thresholds, sigma)  # type: ignore[arg-type]


def group_indices(data: bytes, offset: int, mask: bytes, levels: int, layer: str) -> np.ndarray:
    """σ-index per group (uint8, SKIP where not coded) of a layer's head: ``mask`` has a bit
    per group (least significant first), and the σ-index bytes of the coded groups start at
    ``offset`` of ``data``. BitstreamError when they are missing or beyond ``levels`` tables."""
    coded = np.unpackbits(np.frombuffer(mask, dtype=np.uint8), bitorder="little").astype(bool)
    n = int(coded.sum())
    if len(data) < offset + n:
        raise BitstreamError(f"{layer} section too short for the σ-indices of its {n} coded groups")
    indices = np.frombuffer(data, dtype=np.uint8, count=n, offset=offset)
    if (indices >= levels).any():
        raise BitstreamError(f"{layer} σ-index {int(indices.max())} beyond the model's {levels} tables")
    sigma = np.full(coded.size, SKIP, dtype=np.uint8)
    sigma[coded] = indices
    return sigma


def _dct_matrix() -> np.ndarray:
    n = np.arange(BLOCK)
    m = np.cos(np.pi * (2 * n[None, :] + 1) * n[:, None] / (2 * BLOCK)) * math.sqrt(2.0 / BLOCK)
    m[0] /= math.sqrt(2.0)
    return m


DCT = _dct_matrix()
BAND = np.minimum(np.add.outer(np.arange(BLOCK), np.arange(BLOCK)), BANDS - 1)  # (8, 8)


def to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB (H, W, 3) → float64 (3, H, W) BT.709 Y, Cb, Cr in 8-bit units (chroma centred on 0)."""
    c = rgb.astype(np.float64)
    r, g, b = c[:, :, 0], c[:, :, 1], c[:, :, 2]
    y = BT709_KR * r + BT709_KG * g + BT709_KB * b
    return np.stack([y, (b - y) / BT709_CB_DIV, (r - y) / BT709_CR_DIV])


def to_rgb(ycc: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_ycbcr`, rounded and clipped to uint8 (H, W, 3)."""
    y, cb, cr = ycc
    r = y + BT709_CR_DIV * cr
    b = y + BT709_CB_DIV * cb
    g = (y - BT709_KR * r - BT709_KB * b) / BT709_KG
    return np.clip(np.round(np.stack([r, g, b], axis=-1)), 0, 255).astype(np.uint8)


def _blocks(plane: np.ndarray) -> np.ndarray:
    """(H, W) → (H/8 rounded up, W/8 rounded up, 8, 8), edges replicated."""
    h, w = plane.shape
    p = np.pad(plane, ((0, -h % BLOCK), (0, -w % BLOCK)), mode="edge")
    return p.reshape(p.shape[0] // BLOCK, BLOCK, p.shape[1] // BLOCK, BLOCK).transpose(0, 2, 1, 3)


def _unblocks(blocks: np.ndarray, h: int, w: int) -> np.ndarray:
    nby, nbx = blocks.shape[:2]
    return blocks.transpose(0, 2, 1, 3).reshape(nby * BLOCK, nbx * BLOCK)[:h, :w]


def block_activity(sigma_index: np.ndarray, height: int, width: int) -> np.ndarray:
    """int64 (blocks down, blocks across): Σ over latent channels of the σ-index of the latent
    position each 8×8 block lies in, clamped to ACTIVITY_LIMIT. ``sigma_index``: (1, M, h/16,
    w/16) of the padded image."""
    cells = np.minimum(sigma_index[0].astype(np.int64).sum(0), ACTIVITY_LIMIT)
    nby, nbx = -(-height // BLOCK), -(-width // BLOCK)
    return np.repeat(np.repeat(cells, 2, axis=0), 2, axis=1)[:nby, :nbx]


def _group_index(thresholds: tuple[int, ...], activity: np.ndarray) -> np.ndarray:
    """(blocks down, across, 8, 8) group of every coefficient of a component within it:
    activity bucket · BANDS + band (encoder and decoder both group through this)."""
    bucket = np.searchsorted(np.array(thresholds), activity, side="right")
    return bucket[:, :, None, None] * BANDS + BAND[None, None]


def bits_tables(tables: TableSet) -> np.ndarray:
    """Bits of each value under each σ table (``TableSet.bits``: row k, column v + limit,
    escapes counted at ESCAPE_BITS), for the encoder's cost estimates."""
    return tables.bits


def symbol_bits(q: np.ndarray, row: np.ndarray) -> np.ndarray:
    """Bits of each symbol of ``q`` under one σ table (a row of ``bits_tables``)."""
    limit = (len(row) - 1) // 2
    return row[np.clip(q, -limit, limit) + limit]


def best_table(q: np.ndarray, bits: np.ndarray) -> tuple[int, float]:
    """Cheapest σ-index for the symbols ``q`` and its cost in bits (all tables at once: a
    table's cost sums the same terms in the same order as one table's alone)."""
    values, counts = np.unique(q, return_counts=True)
    limit = (bits.shape[1] - 1) // 2
    costs = (bits[:, np.clip(values, -limit, limit) + limit] * counts).sum(axis=1)
    k = int(np.argmin(costs))
    return k, float(costs[k])


def quantize_group(
    x: np.ndarray, bits: np.ndarray, scale: np.ndarray | float = 1.0,
    zero_error: np.ndarray | None = None,
) -> tuple[np.ndarray, int, float]:
    """Rate-distortion quantization of one group's coefficients ``x`` (in units of their step):
    (q, σ-index, net gain in bits), net = what the group saves over not coding it. The
    squared error is priced at the uniform quantizer's slope, 6 / ln 2 bits per Δ², times
    ``scale`` (per coefficient: (its step / Δ)² where the steps differ). ``zero_error``: the
    squared error (in steps²) a coefficient keeps when its q is 0, where that is not x²."""
    sign = np.where(x < 0, -1, 1)
    mag = np.abs(x)
    zero = mag**2 if zero_error is None else zero_error
    q = np.minimum(np.floor(mag + 0.5 - DEAD_ZONE), Q_LIMIT).astype(np.int64)
    if not q.any():
        return q, SKIP, 0.0
    weight = 6.0 / math.log(2.0) * scale
    candidates = np.stack([np.zeros_like(q), np.maximum(q - 1, 0), q])
    k, _ = best_table(sign * q, bits)
    for _ in range(2):  # choose q for the table, then the table for q
        error = np.where(candidates == 0, zero[None], (mag[None] - candidates) ** 2)
        cost = weight * error + symbol_bits(sign[None] * candidates, bits[k])
        q = np.take_along_axis(candidates, np.argmin(cost, axis=0)[None], 0)[0]
        if not q.any():
            return q, SKIP, 0.0
        k, rate = best_table(sign * q, bits)
    net = float((weight * (zero - np.where(q == 0, zero, (mag - q) ** 2))).sum()) - rate
    return sign * q, k, net


def residual_steps(lam: float, grey: bool, finer: float = 1.0) -> tuple[int, int, int]:
    """Encoder's Δ per component (in 1/STEP_UNIT) for a model λ, divided by ``finer``; chroma
    left out for grey images."""
    luma = STEP_SCALE / math.sqrt(lam) / finer
    y = min(0xFFFF, max(1, round(luma * STEP_UNIT)))
    c = 0 if grey else min(0xFFFF, max(1, round(CHROMA_STEP * luma * STEP_UNIT)))
    return (y, c, c)


def encode_residual(
    original: np.ndarray, decoded: np.ndarray, activity: np.ndarray, steps: tuple[int, int, int], tables: TableSet
) -> tuple[bytes, bytes] | None:
    """(RESIDUAL, RESIDUAL_ESCAPES) sections that bring ``decoded`` closer to ``original``
    (uint8 RGB, same shape), or None when the layer costs more than it removes."""
    error = to_ycbcr(original) - to_ycbcr(decoded)
    quantiles = np.linspace(0, 1, BUCKETS + 1)[1:-1]
    thresholds = tuple(int(v) for v in np.quantile(activity, quantiles, method="lower"))
    g = _group_index(thresholds, activity)
    bits = bits_tables(tables)
    sigma = np.full((3, BUCKETS, BANDS), SKIP, dtype=np.uint8)
    planes: list[np.ndarray | None] = []
    net = -8.0 * (HEAD.size + 2 * 5)  # the head's fixed part and two section-table entries
    for c in range(3):
        if steps[c] == 0:
            planes.append(None)
            continue
        x = (DCT @ _blocks(error[c]) @ DCT.T) / (steps[c] / STEP_UNIT)
        q = np.zeros(x.shape, dtype=np.int64)
        for group in range(BUCKETS * BANDS):
            sel = g == group
            gq, k, gain = quantize_group(x[sel], bits)
            if k != SKIP and gain > 8.0:  # it pays for its σ-index byte
                q[sel] = gq
                sigma[c].flat[group] = k
                net += gain - 8.0
        planes.append(q)
    if net <= 0:
        return None
    params = ResidualParams(steps, thresholds, sigma)
    enc = SymbolEncoder(tables)
    for c, q in enumerate(planes):
        if q is None:
            continue
        k = sigma[c].ravel()[g]
        coded = k != SKIP
        enc.encode(q[coded], k[coded])
    data, escapes = enc.finish()
    return params.pack() + data, escapes


def decode_coefficients(
    section: bytes, escapes: bytes, activity: np.ndarray, tables: TableSet
) -> tuple[ResidualParams, list[np.ndarray | None]]:
    """The head and the quantized coefficients q (int64, blocks down × across × 8 × 8, None for
    a component not coded) of a RESIDUAL section: exact integers. BitstreamError when malformed."""
    params = ResidualParams.unpack(section, len(tables))
    dec = SymbolDecoder(section[params.size :], escapes, tables)
    g = _group_index(params.thresholds, activity)
    planes: list[np.ndarray | None] = []
    for c in range(3):
        if params.steps[c] == 0:
            planes.append(None)
            continue
        k = params.sigma[c].ravel()[g]
        coded = k != SKIP
        q = np.zeros(g.shape, dtype=np.int64)
        q[coded] = dec.decode(k[coded])
        if np.abs(q).max(initial=0) > Q_LIMIT:
            raise BitstreamError("residual coefficient beyond the allowed range")
        planes.append(q)
    dec.finish()
    return params, planes


def apply_residual(
    section: bytes, escapes: bytes, decoded: np.ndarray, activity: np.ndarray, tables: TableSet
) -> np.ndarray:
    """``decoded`` (uint8 RGB) with the residual of a RESIDUAL section added; BitstreamError
    when the section is malformed."""
    params, planes = decode_coefficients(section, escapes, activity, tables)
    h, w = decoded.shape[:2]
    ycc = to_ycbcr(decoded)
    for c, q in enumerate(planes):
        if q is not None:
            ycc[c] += _unblocks(DCT.T @ (q * (params.steps[c] / STEP_UNIT)) @ DCT, h, w)
    return to_rgb(ycc)
