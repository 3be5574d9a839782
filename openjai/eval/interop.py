"""Interoperability: encode under one setting, decode under others, compare.

    image ──encode (CPU, settings[0])──▶ .jai ──┬─ decode, settings[0], same process ─▶ reference
                                                ├─ decode, settings[1], fresh subprocess ─▶ compare
                                                └─ decode, settings[2] (e.g. CUDA), subprocess ─▶ compare

A setting is a device and a CPU thread count (``Setting``). The first setting encodes and
decodes in this process (the "same-device" decode: the reference); every other setting
decodes in a fresh Python process started with that thread count (``OMP_NUM_THREADS`` and
``torch.set_num_threads``) and device, so no state is shared with the encoder. Encoding is on
the CPU only: ``openjai.codec.coder.Encoder`` has no device argument.

What is compared, per image and decode setting:

* **integer latents** ẑ, σ-index and residual r (``openjai.decode_latents``): dtype, shape and
  bytes must be identical. They decide which symbols the entropy decoder reads; any
  difference means the bitstream is not interoperable (DESIGN.md: bit-exact decode on any
  device). ``InteropResult.latents_identical`` is the pass/fail criterion.
* **pixels** (``openjai.decode``): max |difference| of the uint8 images and the PSNR between
  the two decodes (``metrics.psnr.psnr_rgb``, 8-bit RGB; identical images give its 100 dB cap).
  Only μ, the inverse gain and g_s are float, so small differences are possible across devices.
* **ΔPSNR** = PSNR(original, decode under the setting) − PSNR(original, reference decode), with
  ``metrics.psnr.psnr_yuv`` (the CTTC 6:1:1 YCbCr PSNR). Both decodes have the same rate, so
  the BD-rate of cross-device against same-device decoding is approximately the mean ΔPSNR
  divided by the RD slope; ``mean_abs_delta_psnr_db`` is reported as that proxy (JPEG AI asks
  for < 0.5 % BD-rate; at typical slopes of 4–6 dB per doubling of rate that is ≈ 0.03 dB; we
  aim for 0).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import OpenJAIError
from .complexity import all_threads, subprocess_env, weights_file
from .threads import torch_threads

if TYPE_CHECKING:
    from ..api import ImageLike
    from ..codec.weights import LoadedCodec

LATENT_FIELDS = ("z_hat", "sigma_index", "residual")


@dataclass(frozen=True)
class Setting:
    """Where a decode runs: ``device`` ("cpu", "cuda", "cuda:1", …) and CPU ``threads``."""

    device: str = "cpu"
    threads: int = 1

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise ValueError("threads must be at least 1")
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ValueError(f"device must be 'cpu' or 'cuda[:n]', not {self.device!r}")

    @property
    def label(self) -> str:
        return f"{self.device}/{self.threads}t"


def default_settings() -> list[Setting]:
    """CPU 1 thread (encoder and reference), CPU with all threads (at least 2), CUDA when available."""
    import torch

    out = [Setting("cpu", 1), Setting("cpu", max(2, all_threads()))]
    if torch.cuda.is_available():
        out.append(Setting("cuda", max(2, all_threads())))
    return out


@dataclass(frozen=True)
class ImageComparison:
    """One image decoded under one setting, compared with the reference decode."""

    image: int
    setting: Setting
    threads_used: int  # torch.get_num_threads() reported by the decoding process
    latents_identical: bool
    max_abs_pixel_diff: int
    psnr_between_db: float  # decode vs reference decode (100 dB = identical)
    delta_psnr_db: float  # PSNR_yuv(original, decode) - PSNR_yuv(original, reference)


@dataclass(frozen=True)
class InteropResult:
    encode_setting: Setting
    quality: float
    reference_psnr_db: tuple[float, ...]  # PSNR_yuv(original, reference decode) per image
    comparisons: tuple[ImageComparison, ...]

    @property
    def latents_identical(self) -> bool:
        """The pass/fail criterion: every integer latent of every decode equals the reference."""
        return all(c.latents_identical for c in self.comparisons)

    @property
    def max_abs_pixel_diff(self) -> int:
        return max((c.max_abs_pixel_diff for c in self.comparisons), default=0)

    @property
    def min_psnr_between_db(self) -> float:
        return min((c.psnr_between_db for c in self.comparisons), default=math.inf)

    @property
    def mean_abs_delta_psnr_db(self) -> float:
        """Mean |ΔPSNR| over images and decode settings: the BD-rate proxy of the module docstring."""
        if not self.comparisons:
            return 0.0
        return float(np.mean([abs(c.delta_psnr_db) for c in self.comparisons]))

    def summary(self) -> str:
        lines = [f"encoded on {self.encode_setting.label}, quality {self.quality:g}, "
                 f"{len(self.reference_psnr_db)} image(s)"]
        for c in self.comparisons:
            lines.append(
                f"  image {c.image} decoded on {c.setting.label} ({c.threads_used} threads): latents "
                f"{'identical' if c.latents_identical else 'DIFFERENT'}, max |Δpixel| {c.max_abs_pixel_diff}, "
                f"PSNR vs reference {c.psnr_between_db:.2f} dB, ΔPSNR {c.delta_psnr_db:+.4f} dB"
            )
        lines.append(f"latents identical: {self.latents_identical}; max |Δpixel| {self.max_abs_pixel_diff}; "
                     f"mean |ΔPSNR| {self.mean_abs_delta_psnr_db:.4f} dB")
        return "\n".join(lines)


def _decode_all(lc: LoadedCodec, streams: Sequence[bytes], device: str) -> list[dict[str, np.ndarray]]:
    """Integer latents and the decoded image of every stream (in this process)."""
    from .. import api

    out = []
    for data in streams:
        lat = api.decode_latents(data, model=lc, device=device)
        rec = {f: getattr(lat, f).cpu().numpy() for f in LATENT_FIELDS}
        rec["image"] = api.decode(data, model=lc, device=device)
        out.append(rec)
    return out


def _decode_in_subprocess(weights: Path, model_id: str, streams: list[Path], setting: Setting,
                          folder: Path, timeout: float) -> tuple[list[dict[str, np.ndarray]], int]:
    spec = {"weights": str(weights), "model_id": model_id, "streams": [str(s) for s in streams],
            "device": setting.device, "threads": setting.threads,
            "out": str(folder / setting.label.replace("/", "_").replace(":", "_"))}
    proc = subprocess.run([sys.executable, "-m", "openjai.eval.interop", "--worker", json.dumps(spec)],
                          capture_output=True, text=True, env=subprocess_env(setting.threads), timeout=timeout)
    if proc.returncode != 0:
        raise OpenJAIError(f"decode on {setting.label} failed: {proc.stderr.strip()[-2000:]}")
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    recs = []
    for path in report["files"]:
        with np.load(path) as z:
            recs.append({k: z[k] for k in z.files})
    return recs, int(report["threads"])


def _identical(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return all(a[f].dtype == b[f].dtype and a[f].shape == b[f].shape and a[f].tobytes() == b[f].tobytes()
               for f in LATENT_FIELDS)


def check_interop(lc: LoadedCodec, images: Sequence[ImageLike], settings: Sequence[Setting] | None = None,
                  quality: float | None = None, timeout: float = 600.0) -> InteropResult:
    """Encode ``images`` under ``settings[0]`` (a CPU setting), decode under every setting, compare.

    ``lc``: a LoadedCodec; ``images``: anything ``openjai.encode`` takes (arrays, paths, PIL images);
    ``settings``: default :func:`default_settings`.
    """
    from .. import api, image as image_io
    from .metrics.psnr import psnr_rgb, psnr_yuv

    settings = list(settings or default_settings())
    if len(settings) < 2:
        raise ValueError("give at least two settings: the encoder's and one to decode under")
    enc = settings[0]
    if enc.device != "cpu":
        raise ValueError("the encoder runs on the CPU only; settings[0] must be a CPU setting")
    q = api.DEFAULT_QUALITY if quality is None else float(quality)
    originals = [image_io.load(im).rgb for im in images]
    if not originals:
        raise ValueError("give at least one image")
    with torch_threads(enc.threads):
        streams = [api.encode(rgb, quality=q, model=lc) for rgb in originals]
        reference = _decode_all(lc, streams, "cpu")
    ref_psnr = tuple(psnr_yuv(o, r["image"]) for o, r in zip(originals, reference))

    comparisons = []
    with tempfile.TemporaryDirectory(prefix="openjai-interop-") as d:
        folder = Path(d)
        paths = []
        for i, data in enumerate(streams):
            paths.append(folder / f"{i}.jai")
            paths[-1].write_bytes(data)
        weights = weights_file(lc, folder)
        for s in settings[1:]:
            decoded, used = _decode_in_subprocess(weights, lc.model_id, paths, s, folder, timeout)
            for i, (orig, ref, dec) in enumerate(zip(originals, reference, decoded)):
                diff = np.abs(ref["image"].astype(np.int16) - dec["image"].astype(np.int16))
                comparisons.append(ImageComparison(
                    image=i, setting=s, threads_used=used, latents_identical=_identical(ref, dec),
                    max_abs_pixel_diff=int(diff.max()) if diff.size else 0,
                    psnr_between_db=psnr_rgb(ref["image"], dec["image"]),
                    delta_psnr_db=psnr_yuv(orig, dec["image"]) - ref_psnr[i],
                ))
    return InteropResult(enc, q, ref_psnr, tuple(comparisons))


def _worker(spec: dict) -> None:
    """Subprocess side: decode every stream under one setting, save latents + image as .npz."""
    import torch

    torch.set_num_threads(int(spec["threads"]))
    from ..codec.weights import load_codec_weights

    lc = load_codec_weights(Path(spec["weights"]))
    if lc.model_id != spec["model_id"]:
        raise OpenJAIError(f"weights hold {lc.model_id}, expected {spec['model_id']}")
    streams = [Path(p).read_bytes() for p in spec["streams"]]
    out = Path(spec["out"])
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for i, rec in enumerate(_decode_all(lc, streams, spec["device"])):
        path = out / f"{i}.npz"
        np.savez(path, **rec)
        files.append(str(path))
    print(json.dumps({"files": files, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        _worker(json.loads(sys.argv[2]))
    else:
        sys.exit("usage: python -m openjai.eval.interop --worker SPEC_JSON (internal)")
