"""Turn a trained model into bytes and back (the coding path of DESIGN.md).

    encode: RGB uint8 ─pad /64─▶ g_a ─▶ y (kept: rate control re-codes it at many β)
            y ×gain(β) ─▶ y' ─h_a─▶ z ─round, clamp─▶ ẑ ─┬─ tables.z[channel] ─▶ section Z
                                                       ├─ h_σ exact ─▶ k
                                                       └─ h_μ ─▶ μ ;  r = round(y'-μ) ─ tables.y[k] ─▶ section Y
    decode: section Z ─▶ ẑ ─▶ k (exact), μ ─▶ r from section Y ─▶ ŷ = (r+μ) × inverse_gain(β) ─g_s─▶ crop
            [+ adaptive filter (adaptive_filter.py), residual layer (residual.py): DCT coefficients
               grouped by k, added in YCbCr, lattice layer (lattice.py): luma snapped to a JPEG's lattice]

Everything that decides *which* symbols are decoded (ẑ, k, r) is integer and computed on
the CPU; only μ and g_s are float and may run on any device.

A checkerboard-context model (context.py) codes section Y in two passes: first the anchors
with the hyper decoders' μ and k, then the non-anchors with μ and k that also depend on the
decoded anchors.
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import BitstreamError, OpenJAIError, RateControlError
from . import container
from .adaptive_filter import FilterParams, apply_filter, fit_filter
from .coding import MAX_ESCAPE, SymbolDecoder, SymbolEncoder, decode_symbols, encode_symbols
from .container import ColourMode, Header, Section, Stream
from .context import T_HIGH, T_LOW, anchor_mask
from .distortion import distortion_parts, kind_for_size
from .lattice import apply_lattice, encode_lattice, fit_lattice
from .memory import check_memory
from .profile import stage
from .refine import EFFORT_ITERATIONS, check_effort, lambda_at, refine_latents
from .residual import (
    RESIDUAL_EXTENSION, STEP_UNIT, apply_residual, block_activity, encode_residual, residual_steps, squared_error,
)
from .scale_decoder import ACT_BITS, Z_LIMIT
from .strips import row_strips, with_halo
from .tiling import ANALYSIS, CONTEXT, HYPER_ANALYSIS, HYPER_SYNTHESIS, SYNTHESIS, apply_tiled
from .weights import LoadedCodec

PAD = 64
#: ``Encoder.distortion`` keeps the decoded images of the last KEEP_STREAMS streams ``code`` wrote
#: for images of up to KEEP_PIXELS pixels (the streams rate control may compare)
KEEP_STREAMS = 8
KEEP_PIXELS = 1 << 22
R_LIMIT = MAX_ESCAPE // 2  # residual clamp: far beyond what a trained model produces
SIGMA_CHANNELS = 16  # channels whose σ-index is computed at once
#: side of the centre window ``Encoder.distortion`` measures on a larger image
DISTORTION_SIDE = 2048
#: latent positions per channel in a strip of the context's work (strips.py): 4 MP of image
LATENT_STRIP = 1 << 14
#: lattice layer weights (encode_lattice's error_weight) that a bpp search tries, each in a
#: search of its own; ratecontrol.preferred_stream chooses among the streams. Where the learned
#: codec buys little per bit on an image (a once-JPEG sunset: +3.7 dB PSNR-Y from 0.5 to
#: 1.0 bpp), correcting every coefficient at a lower β buys more: at 0.5 bpp on val dpst_in2,
#: weight 16 gives PSNR-Y 52.3 dB against 47.8 at weight 1 (MS-SSIM 0.9992 / 0.9975); on
#: photos where it does not (palapeli castle, urban100_086), weight 1 keeps the lower
#: distortion (runs/stop17/choose.py)
LATTICE_WEIGHTS = (1.0, 16.0)


def as_float32(x: float) -> float:
    """The value the container stores for a rate parameter (the encoder must use the same)."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def latent_shape(lc: LoadedCodec, width: int, height: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Shapes of ẑ and y for an image of this size (after padding to a multiple of 64)."""
    hp, wp = -(-height // PAD), -(-width // PAD)
    cfg = lc.model.cfg
    return (1, cfg.hyper_channels, hp, wp), (1, cfg.latent_channels, 4 * hp, 4 * wp)


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` in channels-last memory order, the order in which the CPU's convolution kernels run
    the transforms fastest (measured, 2 threads: g_s 1.1× faster for base, 1.5× for high; g_a
    1.1–1.4×). Only the float summation order changes: outputs move by ~1e-5, within the
    conformance tolerance (docs/bitstream.md)."""
    return x.contiguous(memory_format=torch.channels_last)


def _padded_uint8(rgb: np.ndarray) -> torch.Tensor:
    """(1, 3, H', W') uint8, edge-replicated to multiples of 64 (converted to float per tile)."""
    h, w = rgb.shape[:2]
    padded = np.pad(rgb, ((0, -h % PAD), (0, -w % PAD), (0, 0)), mode="edge")
    return torch.from_numpy(np.ascontiguousarray(padded.transpose(2, 0, 1)))[None]


def _hyper_t(lc: LoadedCodec, z_hat: torch.Tensor) -> torch.Tensor:
    """Exact fixed-point t of h_σ (int16, clamped to [T_LOW, T_HIGH]), tiled (identical
    integers for any tiling). The clamp changes no σ-index: the index range lies inside."""
    lo, hi = T_LOW * 2**ACT_BITS, T_HIGH * 2**ACT_BITS
    with stage("hyper σ (integer)"):
        return apply_tiled(
            lambda t: torch.clamp(lc.model.h_scale.fixed_t(t), lo, hi).to(torch.int16), z_hat, HYPER_SYNTHESIS
        )


def _sigma_index(lc: LoadedCodec, t_fixed: torch.Tensor) -> torch.Tensor:
    """σ-index (uint8, to save memory) of a fixed-point t, SIGMA_CHANNELS channels at a time
    (its float64 temporaries would need 8 bytes a latent each; integers: any chunking gives the
    same indices)."""
    with stage("hyper σ (integer)"):
        k = torch.empty(t_fixed.shape, dtype=torch.uint8)
        for c in range(0, t_fixed.shape[1], SIGMA_CHANNELS):
            k[:, c : c + SIGMA_CHANNELS] = lc.model.h_scale.index_from_fixed(
                t_fixed[:, c : c + SIGMA_CHANNELS].double()).to(torch.uint8)
        return k


def _mean(lc: LoadedCodec, z_hat: torch.Tensor) -> torch.Tensor:
    """h_μ on z_hat's device."""
    h_mean = lc.on(z_hat.device).h_mean
    with stage("hyper μ"):
        return apply_tiled(lambda t: h_mean(t.float()), z_hat, HYPER_SYNTHESIS)


def _context_parameters(
    lc: LoadedCodec, r: torch.Tensor, mu: torch.Tensor, t_fixed: torch.Tensor, anchors: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """μ (float, on mu's device) and σ-index (uint8) of every latent of a checkerboard model,
    from the anchors' residuals ``r`` (int32, zero at non-anchors) and the hyper μ and t; in
    strips of latent rows (strips.py) with the context's halo, so its temporaries stay small."""
    h, w = r.shape[-2:]
    mu_out = torch.empty_like(mu)
    k_out = torch.empty(r.shape, dtype=torch.uint8)
    for start, stop in row_strips(h, w, align=2, pixels=LATENT_STRIP):  # even starts keep the anchor pattern
        a, b = with_halo(start, stop, h, CONTEXT.halo)
        rows = (..., slice(a, b), slice(None))
        mu_strip, k_strip = _context_strip(lc, r[rows], mu[rows], t_fixed[rows], anchors[rows])
        mu_out[..., start:stop, :] = mu_strip[..., start - a : stop - a, :]
        k_out[..., start:stop, :] = k_strip[..., start - a : stop - a, :]
    return mu_out, k_out


def _context_strip(
    lc: LoadedCodec, r: torch.Tensor, mu: torch.Tensor, t_fixed: torch.Tensor, anchors: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``_context_parameters`` of one strip of latent rows (starting at an even row)."""
    ctx = lc.model.context
    with stage("context"):
        r_anchors = torch.where(anchors, r, 0)
        anchors_hat = torch.where(anchors.to(mu.device), r_anchors.to(mu.device) + mu, 0.0)
        mu_ctx = apply_tiled(lc.on(mu.device).context.mean_offset, anchors_hat, CONTEXT)
        t_ctx = apply_tiled(lambda t: ctx.fixed_scale_offset(t).to(torch.int32), r_anchors, CONTEXT)
        k = _sigma_index(lc, torch.where(anchors, t_fixed.to(torch.int32), t_fixed.to(torch.int32) + t_ctx))
        return torch.where(anchors.to(mu.device), mu, mu + mu_ctx), k


def _dequantize(lc: LoadedCodec, r: torch.Tensor, mu: torch.Tensor, beta: float) -> torch.Tensor:
    """ŷ = (r + μ) · inverse_gain(β) on μ's device: the input of g_s (encoder and decoder alike)."""
    y_hat = mu + r.to(mu.device)
    y_hat *= lc.on(mu.device).inverse_gain(torch.tensor([beta], device=mu.device))
    return y_hat


def _residual(y: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
    return torch.clamp(torch.round(y - mu), -R_LIMIT, R_LIMIT).to(torch.int32)


def _z_channel(z_hat: torch.Tensor) -> torch.Tensor:
    """The table index of each ẑ: its channel."""
    return torch.arange(z_hat.shape[1]).view(1, -1, 1, 1).expand_as(z_hat)


def latent_sections(
    lc: LoadedCodec, z_hat: torch.Tensor, r: torch.Tensor, k: torch.Tensor, anchors: torch.Tensor | None
) -> dict[Section, bytes]:
    """Sections Z, Z_ESCAPES, Y, Y_ESCAPES for the integers ẑ, r and their σ-indices k; with a
    checkerboard ``anchors`` mask, Y in two passes (anchors first). Integers in, bytes out: the
    same on every machine (tests/conformance/check.py codes decoded streams again with it)."""
    y_coder = SymbolEncoder(lc.y_tables)
    if anchors is None:
        y_coder.encode(r.numpy(), k.numpy())
    else:
        y_coder.encode(r[anchors].numpy(), k[anchors].numpy())
        y_coder.encode(r[~anchors].numpy(), k[~anchors].numpy())
    z_data, z_esc = encode_symbols(z_hat.numpy(), _z_channel(z_hat).numpy(), lc.z_tables)
    y_data, y_esc = y_coder.finish()
    return {Section.Z: z_data, Section.Z_ESCAPES: z_esc, Section.Y: y_data, Section.Y_ESCAPES: y_esc}


@dataclass
class _Latents:
    """What the encoder codes at one β: ẑ, the residuals r, μ and σ-index k of every latent
    (the context's where the model has one), and the anchor mask (None without a context)."""

    beta: float
    refined: bool
    z_hat: torch.Tensor
    r: torch.Tensor
    mu: torch.Tensor
    k: torch.Tensor
    anchors: torch.Tensor | None


@dataclass
class DecodedLatents:
    """Everything the entropy decoder recovers from a stream."""

    header: Header
    z_hat: torch.Tensor  # int32 (1, Z, h/64, w/64)
    sigma_index: torch.Tensor  # uint8 (1, M, h/16, w/16)
    residual: torch.Tensor  # int32 (1, M, h/16, w/16)
    y_hat: torch.Tensor  # float32 (1, M, h/16, w/16), inverse gain applied: the input of g_s


class Encoder:
    """Analyses one image once; ``code(rate)`` produces the stream for any rate.

    ``effort`` > 0 refines the latent for each β (openjai/codec/refine.py): slower encoding,
    fewer bits for the same quality, same decoder. ``residual`` lets the encoder add the
    residual layer (residual.py) where it pays, and extends the rate range past the model's
    top rate point (``top_rate``): there the latent stays at the top point and the residual
    step halves per unit of rate. ``adaptive_filter`` lets it fit and send a filter for the
    synthesis output (adaptive_filter.py) where it pays. ``lattice`` lets it look for the
    DCT lattice of a JPEG the image was decoded from and snap the luma to it (lattice.py)
    where that pays.
    """

    def __init__(
        self, lc: LoadedCodec, rgb: np.ndarray, colour: ColourMode, alpha: np.ndarray | None, effort: int = 0,
        residual: bool = True, adaptive_filter: bool = True, lattice: bool = True,
    ) -> None:
        self.lc = lc
        self.residual = residual
        self.adaptive_filter = adaptive_filter
        with stage("lattice fit"):
            self.lattice = fit_lattice(rgb) if lattice else None
        layers = residual or adaptive_filter or self.lattice is not None
        self.rgb = rgb if layers else None  # the layers compare against the pixels
        self.iterations = EFFORT_ITERATIONS[check_effort(effort)]
        self.height, self.width = rgb.shape[:2]
        container.check_size(self.width, self.height)
        check_memory(self.width, self.height, "encode")
        self.colour = colour
        self.alpha_section = None if alpha is None else zlib.compress(np.ascontiguousarray(alpha).tobytes(), 9)
        g_a = lc.model.g_a  # encoding runs on the CPU
        x = _padded_uint8(rgb)
        self.x = x if self.iterations else None  # refinement compares against the pixels
        self._last: _Latents | None = None
        self._latent_bpp: dict[float, float] = {}  # β → latent_bpp
        #: decoded images of the last streams ``code`` wrote with a lattice layer: what rate
        #: control's choice between lattice weights compares (``distortion``), without decoding
        self._decoded: dict[bytes, np.ndarray] = {}
        with torch.no_grad(), stage("analysis g_a"):
            self.y = apply_tiled(lambda t: g_a(_channels_last(t.float() / 255.0)).contiguous(), x, ANALYSIS)

    @property
    def top_rate(self) -> float:
        """The highest rate ``code`` accepts: the model's top rate point, plus RESIDUAL_EXTENSION
        with the residual layer."""
        return self.lc.model.cfg.levels - 1 + (RESIDUAL_EXTENSION if self.residual else 0)

    @property
    def lattice_weights(self) -> tuple[float, ...]:
        """The lattice weights worth a rate search of their own for this image (the first is
        ``code``'s default): several only where the image has a lattice."""
        return (1.0,) if self.lattice is None else LATTICE_WEIGHTS

    @torch.no_grad()
    def distortion(self, data: bytes) -> tuple[float, ...]:
        """The parts of the model's training distortion (codec/distortion.py's
        ``distortion_parts``: pixel error, and MS-SSIM's where the model has one) of ``data``'s
        decoded image against this encoder's image: what rate control compares streams of one
        size by. Only for an encoder that keeps the pixels (any layer enabled). On an image
        larger than DISTORTION_SIDE² its centre DISTORTION_SIDE × DISTORTION_SIDE: MS-SSIM's dense
        blur matrices grow with the square of a side, and a sample of that size ranks two
        streams of one size as the whole does."""
        if self.rgb is None:
            raise OpenJAIError("this encoder keeps no pixels to measure a distortion against (all layers off)")
        with stage("decodes for distortion", absorb=True):
            decoded = self._decoded.get(data)
            if decoded is None:
                stream = container.parse(data)
                decoded = reconstruct(self.lc, decode_latents(self.lc, stream), stream)
            top, left = max(0, (self.height - DISTORTION_SIDE) // 2), max(0, (self.width - DISTORTION_SIDE) // 2)
            window = (slice(top, top + DISTORTION_SIDE), slice(left, left + DISTORTION_SIDE))
            kind = kind_for_size(self.lc.model.cfg.distortion, *decoded[window].shape[:2])
            as_float = [torch.from_numpy(np.array(a[window], dtype=np.float32)).permute(2, 0, 1)[None] / 255.0
                        for a in (decoded, self.rgb)]
            return tuple(float(p) for p in distortion_parts(*as_float, kind))

    @torch.no_grad()
    def latent_bpp(self, rate: float) -> float:
        """Predicted bpp of the latent sections of ``code(rate)`` (Z and Y, no layers): the ideal
        code length of its symbols under the coder's tables, which the range coder meets to
        ~0.1 %. Runs the hyper networks and the context, not the synthesis or the layers:
        rate control's cheap size prediction. Without the latent refinement of effort > 0."""
        beta = as_float32(min(rate, self.lc.model.cfg.levels - 1))
        if beta not in self._latent_bpp:
            lat = self._latents(rate, refine=False)
            with stage("size estimates"):
                lc = self.lc
                bits = lc.z_tables.ideal_bits(lat.z_hat.numpy(), _z_channel(lat.z_hat).numpy())
                bits += lc.y_tables.ideal_bits(lat.r.numpy(), lat.k.numpy())
            self._latent_bpp[beta] = bits / (self.width * self.height)
        return self._latent_bpp[beta]

    def _latents(self, rate: float, refine: bool) -> _Latents:
        """The latent integers and μ at ``rate`` (the last result is kept: rate control predicts a
        rate's size and then codes that rate)."""
        model = self.lc.model
        beta = as_float32(min(rate, model.cfg.levels - 1))
        refine = refine and self.iterations > 0
        if self._last is not None and (self._last.beta, self._last.refined) == (beta, refine):
            return self._last
        self._last = None  # free it before computing the next
        lc = self.lc
        with stage("hyper analysis h_a"):
            y = self.y * model.gain(torch.tensor([beta]))
            z = apply_tiled(model.h_a, y, HYPER_ANALYSIS)
            z_hat = torch.clamp(torch.round(z), -Z_LIMIT, Z_LIMIT).to(torch.int32)
        t_fixed = _hyper_t(lc, z_hat)
        mu = _mean(lc, z_hat)
        if refine:
            with torch.enable_grad(), stage("latent refinement"):
                y = refine_latents(model, self.x, y, mu, t_fixed.float() / 2**ACT_BITS, beta, self.iterations)
        r = _residual(y, mu)  # final at the anchors, whose μ the context does not change
        anchors = None
        if model.context is None:
            k = _sigma_index(lc, t_fixed)
        else:
            anchors = anchor_mask(*y.shape[-2:]).expand_as(y)
            mu, k = _context_parameters(lc, r, mu, t_fixed, anchors)
            r = torch.where(anchors, r, _residual(y, mu))
        self._last = _Latents(beta, refine, z_hat, r, mu, k, anchors)
        return self._last

    @torch.no_grad()
    def code(self, rate: float, layers: bool = True, lattice_weight: float = 1.0) -> bytes:
        """The stream at ``rate`` ∈ [0, top_rate]: the model's β up to its top point, then finer
        residual steps. ``layers=False`` leaves the filter, residual and lattice layers out of
        this stream: the learned codec alone (rate control's smallest stream).
        ``lattice_weight``: the lattice layer's ``error_weight`` (one of ``lattice_weights``)."""
        lc, model = self.lc, self.lc.model
        if not 0.0 <= rate <= self.top_rate:
            raise RateControlError(f"rate {rate} outside this encoder's range [0, {self.top_rate}]")
        lat = self._latents(rate, refine=True)
        beta, z_hat, r, mu, k = lat.beta, lat.z_hat, lat.r, lat.mu, lat.k
        sections = latent_sections(lc, z_hat, r, k, lat.anchors)
        if self.alpha_section is not None:
            sections[Section.ALPHA] = self.alpha_section
        header = Header(lc.model_id, self.width, self.height, self.colour, beta)
        if self.rgb is not None and layers:
            decoded = _synthesize(lc, _dequantize(lc, r, mu, beta), self.height, self.width)
            activity = block_activity(k.numpy(), self.height, self.width)
            finer = 2.0 ** max(0.0, rate - (model.cfg.levels - 1))
            steps = residual_steps(lambda_at(model, beta), self.colour.is_grey, finer)
            with stage("filter fit"):
                params = fit_filter(self.rgb, decoded, steps) if self.adaptive_filter else None
            if params is not None:
                with stage("filter apply"):
                    decoded = apply_filter(params, decoded)
                sections[Section.FILTER] = params.pack()
            layer_sections, recon = self._residual_and_lattice(decoded, activity, steps, lattice_weight)
            sections.update(layer_sections)
        with stage("container"):
            data = container.write(Stream(header, sections))
        if self.rgb is not None and layers and self.lattice is not None and self.width * self.height <= KEEP_PIXELS:
            self._decoded[data] = recon
            while len(self._decoded) > KEEP_STREAMS:
                del self._decoded[next(iter(self._decoded))]
        return data

    def _residual_and_lattice(
        self, decoded: np.ndarray, activity: np.ndarray, steps: tuple[int, int, int], lattice_weight: float
    ) -> tuple[dict[Section, bytes], np.ndarray]:
        """The residual and lattice layers' sections for ``decoded`` (the filtered synthesis
        output), and with a lattice the image the decoder makes of them (else ``decoded`` as far
        as the layers needed it). Where the lattice snaps the luma, the residual may do better on
        chroma alone: then both are tried, and the one of lower rate-distortion cost (bits plus
        squared error priced at the residual layer's slopes) is kept."""
        with_lattice = self.lattice is not None
        if not self.residual:
            return self._layers(decoded, activity, (0, 0, 0), steps[0], lattice_weight, with_lattice)
        if not with_lattice or not steps[0]:
            return self._layers(decoded, activity, steps, steps[0], lattice_weight, with_lattice)
        best: tuple[float, dict[Section, bytes], np.ndarray] = (math.inf, {}, decoded)
        for variant in (steps, (0, *steps[1:])):
            sections, recon = self._layers(decoded, activity, variant, steps[0], lattice_weight, reconstruct=True)
            error = squared_error(self.rgb, recon)
            cost = 8.0 * sum(map(len, sections.values())) + sum(
                6.0 / math.log(2.0) * e / (s / STEP_UNIT) ** 2 for e, s in zip(error, steps) if s
            )
            if cost < best[0]:
                best = (cost, sections, recon)
        return best[1], best[2]

    def _layers(
        self, decoded: np.ndarray, activity: np.ndarray, steps: tuple[int, int, int], luma_step: int,
        lattice_weight: float, reconstruct: bool = False,
    ) -> tuple[dict[Section, bytes], np.ndarray]:
        """Residual layer with ``steps`` (where it pays; none when all are 0), then the lattice
        layer priced at ``luma_step`` and ``lattice_weight``, on ``decoded``: their sections, and
        with ``reconstruct`` the image the decoder makes of them (else ``decoded`` as far as the
        lattice needed it)."""
        tables = self.lc.y_tables
        sections: dict[Section, bytes] = {}
        recon = decoded
        with stage("residual RDO"):
            layer = encode_residual(self.rgb, decoded, activity, steps, tables) if any(steps) else None
        if layer:
            sections[Section.RESIDUAL], sections[Section.RESIDUAL_ESCAPES] = layer
            if self.lattice is not None or reconstruct:  # the lattice layer starts from what the decoder has
                with stage("residual apply"):
                    recon = apply_residual(*layer, decoded, activity, tables)
        if self.lattice is not None:
            with stage("lattice search"):
                layer = encode_lattice(self.lattice, self.rgb, recon, activity, luma_step / STEP_UNIT, tables,
                                       lattice_weight)
            if layer:
                sections[Section.LATTICE], sections[Section.LATTICE_ESCAPES] = layer
                if reconstruct:
                    with stage("lattice apply"):
                        recon = apply_lattice(*layer, recon, activity, tables)
        return sections, recon


def decode_latents(lc: LoadedCodec, stream: Stream, device: str | torch.device = "cpu") -> DecodedLatents:
    """Entropy-decode a parsed stream (caller checked the model id)."""
    model, h = lc.model, stream.header
    if not 0.0 <= h.rate <= model.cfg.levels - 1:
        raise BitstreamError(f"rate parameter {h.rate} outside this model's range [0, {model.cfg.levels - 1}]")
    z_shape, y_shape = latent_shape(lc, h.width, h.height)
    z_channel = np.broadcast_to(np.arange(z_shape[1]).reshape(1, -1, 1, 1), z_shape)
    z = decode_symbols(stream.sections[Section.Z], stream.sections[Section.Z_ESCAPES], z_channel, lc.z_tables)
    if np.abs(z).max() > Z_LIMIT:
        raise BitstreamError("hyper-latent value beyond the allowed range")
    z_hat = torch.from_numpy(z.reshape(z_shape))
    t_fixed = _hyper_t(lc, z_hat)
    k = _sigma_index(lc, t_fixed)
    y_decoder = SymbolDecoder(stream.sections[Section.Y], stream.sections[Section.Y_ESCAPES], lc.y_tables)
    with torch.no_grad():
        mu = _mean(lc, z_hat.to(device))
        if model.context is None:
            r = _checked_residual(y_decoder.decode(k.numpy())).reshape(y_shape)
        else:
            anchors = anchor_mask(y_shape[-2], y_shape[-1]).expand(y_shape)
            r = torch.zeros(y_shape, dtype=torch.int32)
            r[anchors] = _checked_residual(y_decoder.decode(k[anchors].numpy()))
            mu, k = _context_parameters(lc, r, mu, t_fixed, anchors)
            r[~anchors] = _checked_residual(y_decoder.decode(k[~anchors].numpy()))
        y_decoder.finish()
        y_hat = _dequantize(lc, r, mu, h.rate)
    return DecodedLatents(h, z_hat, k, r, y_hat)


def _checked_residual(r: np.ndarray) -> torch.Tensor:
    if r.size and np.abs(r).max() > R_LIMIT:
        raise BitstreamError("latent residual beyond the allowed range")
    return torch.from_numpy(r)


def _synthesize(lc: LoadedCodec, y_hat: torch.Tensor, height: int, width: int) -> np.ndarray:
    """g_s: ŷ → RGB uint8 (height, width, 3)."""
    g_s = lc.on(y_hat.device).g_s
    with torch.no_grad(), stage("synthesis"):
        x = apply_tiled(lambda t: g_s(_channels_last(t)).clamp_(0, 1).mul_(255).round_().to(torch.uint8), y_hat,
                        SYNTHESIS)
    return np.ascontiguousarray(x[0, :, :height, :width].permute(1, 2, 0).cpu().numpy())


def reconstruct(lc: LoadedCodec, latents: DecodedLatents, stream: Stream | None = None) -> np.ndarray:
    """Synthesis: ŷ → RGB uint8 (H, W, 3), cropped to the stream's image size; with
    ``stream``, its adaptive filter, residual layer and lattice layer (where present) applied."""
    h = latents.header
    rgb = _synthesize(lc, latents.y_hat, h.height, h.width)
    sections = {} if stream is None else stream.sections
    if Section.FILTER in sections:
        with stage("filter apply"):
            rgb = apply_filter(FilterParams.unpack(sections[Section.FILTER]), rgb)
    activity = block_activity(latents.sigma_index.numpy(), h.height, h.width)
    if Section.RESIDUAL in sections:
        with stage("residual apply"):
            rgb = apply_residual(sections[Section.RESIDUAL], sections[Section.RESIDUAL_ESCAPES], rgb, activity,
                                 lc.y_tables)
    if Section.LATTICE in sections:
        with stage("lattice apply"):
            rgb = apply_lattice(sections[Section.LATTICE], sections[Section.LATTICE_ESCAPES], rgb, activity,
                                lc.y_tables)
    return rgb


def decode_alpha(stream: Stream) -> np.ndarray | None:
    """The lossless alpha plane (H, W) uint8, or None; bounded decompression."""
    data = stream.sections.get(Section.ALPHA)
    if data is None:
        return None
    h = stream.header
    size = h.width * h.height
    d = zlib.decompressobj()
    try:
        plane = d.decompress(data, size)
    except zlib.error as e:
        raise BitstreamError(f"alpha section is corrupted: {e}") from None
    if len(plane) != size or d.unconsumed_tail or not d.eof:
        raise BitstreamError("alpha section does not hold exactly one plane of the image size")
    return np.frombuffer(plane, dtype=np.uint8).reshape(h.height, h.width)

