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

import functools
import math
import struct
from dataclasses import dataclass

import numpy as np

from ..bt709 import BT709_CB_DIV, BT709_CR_DIV, BT709_KB, BT709_KG, BT709_KR
from ..errors import BitstreamError
from .coding import SymbolDecoder, SymbolEncoder, TableSet
from .group_rdo import PASSES, Q_LIMIT, SKIP, GroupQuantizer, Grouping
from .strips import row_strips, run_strips, threaded_strips

BLOCK = 8
BUCKETS = 6
BANDS = 8
STEP_UNIT = 16  # Δ is stored in 1/16 of an 8-bit level
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


def group_index(thresholds: tuple[int, ...], activity: np.ndarray) -> np.ndarray:
    """(blocks down, across, 8, 8) uint8 group of every coefficient of a block grid: activity
    bucket · BANDS + band (the residual and lattice layers' encoders and decoders all group
    through this)."""
    bucket = np.searchsorted(np.array(thresholds), activity, side="right").astype(np.uint8)
    return bucket[:, :, None, None] * np.uint8(BANDS) + BAND.astype(np.uint8)[None, None]


def _compact_dtype(q: np.ndarray) -> type:
    """int16 where it holds the integers ``q`` (a whole image's coefficients are kept), else int32."""
    fits = q.size == 0 or (q.min() >= np.iinfo(np.int16).min and q.max() <= np.iinfo(np.int16).max)
    return np.int16 if fits else np.int32


def residual_steps(lam: float, grey: bool, finer: float = 1.0) -> tuple[int, int, int]:
    """Encoder's Δ per component (in 1/STEP_UNIT) for a model λ, divided by ``finer``; chroma
    left out for grey images."""
    luma = STEP_SCALE / math.sqrt(lam) / finer
    y = min(0xFFFF, max(1, round(luma * STEP_UNIT)))
    c = 0 if grey else min(0xFFFF, max(1, round(CHROMA_STEP * luma * STEP_UNIT)))
    return (y, c, c)


def _coefficients(error: np.ndarray, steps: tuple[int, int, int]) -> list[np.ndarray | None]:
    """DCT coefficients (in steps) of each coded component of the YCbCr ``error`` of a strip of
    whole blocks (the image's last strip is edge-replicated to whole blocks, as the whole image
    would be)."""
    return [None if s == 0 else (DCT @ _blocks(error[c]) @ DCT.T) / (s / STEP_UNIT) for c, s in enumerate(steps)]


def ycbcr_error(original: np.ndarray, decoded: np.ndarray) -> np.ndarray:
    """YCbCr(original) − YCbCr(decoded), float64 (3, h, w), of uint8 RGB pieces of one shape."""
    return to_ycbcr(original) - to_ycbcr(decoded)


def squared_error(original: np.ndarray, decoded: np.ndarray) -> list[float]:
    """Summed squared YCbCr error per component of two uint8 RGB images, strip by strip."""
    h, w = decoded.shape[:2]
    sums = [0.0, 0.0, 0.0]
    for start, stop in row_strips(h, w):
        error = ycbcr_error(original[start:stop], decoded[start:stop]) ** 2
        for c in range(3):
            sums[c] += float(error[c].sum())
    return sums


def encode_residual(
    original: np.ndarray, decoded: np.ndarray, activity: np.ndarray, steps: tuple[int, int, int], tables: TableSet
) -> tuple[bytes, bytes] | None:
    """(RESIDUAL, RESIDUAL_ESCAPES) sections that bring ``decoded`` closer to ``original``
    (uint8 RGB, same shape), or None when the layer costs more than it removes. Works in row
    strips (strips.py): the coefficients of an image of several strips are computed again in
    each pass of the quantizer instead of being kept."""
    h, w = decoded.shape[:2]
    quantiles = np.linspace(0, 1, BUCKETS + 1)[1:-1]
    thresholds = tuple(int(v) for v in np.quantile(activity, quantiles, method="lower"))
    g = group_index(thresholds, activity)
    coded_components = [c for c in range(3) if steps[c]]
    quantizers = {c: GroupQuantizer(BUCKETS * BANDS, tables.bits) for c in coded_components}
    planes: list[np.ndarray | None] = [None if steps[c] == 0 else np.zeros(g.shape, np.int16) for c in range(3)]
    strips = row_strips(h, w, align=BLOCK)
    blocks = [slice(start // BLOCK, -(-stop // BLOCK)) for start, stop in strips]  # each strip's block rows
    groupings = [Grouping(g[b], BUCKETS * BANDS) for b in blocks]

    @functools.lru_cache(maxsize=1)  # an image of one strip computes them once for every pass
    def coefficients(start: int, stop: int) -> list[np.ndarray | None]:
        return _coefficients(ycbcr_error(original[start:stop], decoded[start:stop]), steps)

    for p in range(PASSES):
        for (start, stop), rows, grouping in zip(strips, blocks, groupings):
            x = coefficients(start, stop)
            for c in coded_components:
                q = quantizers[c].add(x[c], grouping)
                if p == PASSES - 1:
                    planes[c][rows] = q  # |q| ≤ 255 · 8 · STEP_UNIT < 2¹⁵: int16 holds it
            del x
        for c in coded_components:
            quantizers[c].next_pass()
    sigma = np.full((3, BUCKETS, BANDS), SKIP, dtype=np.uint8)
    net = -8.0 * (HEAD.size + 2 * 5)  # the head's fixed part and two section-table entries
    for c in coded_components:
        gq = quantizers[c]
        for group in range(BUCKETS * BANDS):
            if gq.table[group] != SKIP and gq.net[group] > 8.0:  # it pays for its σ-index byte
                sigma[c].flat[group] = gq.table[group]
                net += gq.net[group] - 8.0
    if net <= 0:
        return None
    params = ResidualParams(steps, thresholds, sigma)
    enc = SymbolEncoder(tables)
    for c in coded_components:
        k = sigma[c].ravel()[g]
        coded = k != SKIP
        enc.encode(planes[c][coded], k[coded])
    data, escapes = enc.finish()
    return params.pack() + data, escapes


def decode_coefficients(
    section: bytes, escapes: bytes, activity: np.ndarray, tables: TableSet
) -> tuple[ResidualParams, list[np.ndarray | None]]:
    """The head and the quantized coefficients q (int16, or int32 where int16 cannot hold them;
    blocks down × across × 8 × 8, None for a component not coded) of a RESIDUAL section: exact
    integers. BitstreamError when malformed."""
    params = ResidualParams.unpack(section, len(tables))
    dec = SymbolDecoder(section[params.size :], escapes, tables)
    g = group_index(params.thresholds, activity)
    planes: list[np.ndarray | None] = []
    for c in range(3):
        if params.steps[c] == 0:
            planes.append(None)
            continue
        k = params.sigma[c].ravel()[g]
        coded = k != SKIP
        values = dec.decode(k[coded])
        if np.abs(values).max(initial=0) > Q_LIMIT:
            raise BitstreamError("residual coefficient beyond the allowed range")
        q = np.zeros(g.shape, dtype=_compact_dtype(values))
        q[coded] = values
        planes.append(q)
    dec.finish()
    return params, planes


def apply_residual(
    section: bytes, escapes: bytes, decoded: np.ndarray, activity: np.ndarray, tables: TableSet
) -> np.ndarray:
    """``decoded`` (uint8 RGB) with the residual of a RESIDUAL section added, strip by strip on
    torch's threads (strips.py); BitstreamError when the section is malformed."""
    params, planes = decode_coefficients(section, escapes, activity, tables)
    h, w = decoded.shape[:2]
    out = np.empty_like(decoded)

    def strip(start: int, stop: int) -> None:
        blocks = slice(start // BLOCK, -(-stop // BLOCK))
        ycc = to_ycbcr(decoded[start:stop])
        for c, q in enumerate(planes):
            if q is not None:
                ycc[c] += _unblocks(DCT.T @ (q[blocks] * (params.steps[c] / STEP_UNIT)) @ DCT, stop - start, w)
        out[start:stop] = to_rgb(ycc)

    run_strips(strip, threaded_strips(h, w, BLOCK))
    return out
