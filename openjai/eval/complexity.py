"""Complexity of a shipped model: parameters, kMAC/pixel, wall time, peak memory.

Every number that users quote is computed by exactly one function here; the benchmark
(``benchmarks/bench_codec.py``), the tests and ``measure_complexity`` call these functions.

    number                     function                   how
    -------------------------  -------------------------  ------------------------------------------
    parameters per network     parameter_counts           numel of each network's parameters
    kMAC / pixel per network   kmac_per_pixel             torch.utils.flop_counter, MAC = FLOP / 2
    seconds (median of runs)   timed_median               time.perf_counter around the full call
    CPU encode/decode seconds  cpu_seconds                openjai.encode / openjai.decode (API path)
    GPU decode seconds         gpu_decode_seconds         openjai.decode(device=cuda), synchronised
    peak RSS (MiB)             peak_rss                   fresh subprocess, VmHWM (see below)
    GPU peak memory (MiB)      gpu_peak_memory_mib        torch.cuda.max_memory_allocated
    seconds per megapixel      seconds_per_megapixel      seconds / (width * height / 1e6)

Which networks count on which side
----------------------------------
The coding path (``openjai.codec.coder``) runs::

    encoder:  g_a ─ gain ─ h_a ─▶ ẑ ─┬─ h_scale (integer-exact σ-index) ─▶ tables ─▶ bytes
                                    └─ h_mean (μ, needed to form the residual r = round(y'-μ))
    decoder:  bytes ─▶ ẑ ─┬─ h_scale ─▶ σ-index ─▶ r
                         └─ h_mean ─▶ μ ;  ŷ = (r + μ) × inverse_gain ─ g_s ─▶ image

(a checkerboard model also runs ``context`` on both sides: μ and σ-index of the second pass),
so ``ENCODER_NETWORKS`` = g_a, gain, h_a, h_mean, h_scale, context and ``DECODER_NETWORKS`` =
h_mean, h_scale, context, inverse_gain, g_s: the hyper decoders and the context count on both
sides, because the encoder runs them too (a model without context counts 0 for it). Not counted on either side: the factorized prior (``model.prior``) and the
Gaussian scale table (``model.scales``), which are never run while coding — both sides use the
integer CDF tables stored in the weights file. ``total_parameters`` counts every parameter of
the Codec module (prior included), for reference.

kMAC / pixel
------------
Counted with ``torch.utils.flop_counter.FlopCounterMode`` on the ``meta`` device (shapes
only, no arithmetic): convolutions, transposed convolutions and matrix products; MAC = FLOP/2.
GDN/IGDN contain a 1×1 convolution (the Σ γ_ij x_j² term), which is counted; their square,
square root and division, ReLU, the gain multiplications, rounding, pixel-shuffle and bias
additions are element-wise and not counted (FlopCounterMode ignores them, as JPEG AI's
kMAC/px figures do). The integer-exact h_scale runs its 3×3 convolutions as unfold + float64
matmul while coding; it is counted through the training-path ``forward`` of the same network
(the same convolutions as float ``conv2d``, identical MAC count; the tests check that both
paths give the same number). The image is padded to a multiple of 64 as the coder does; the
MACs of the padded tensors are divided by the image's own ``width × height``.

Wall time
---------
CPU times are the full public API path, entropy coding included: ``openjai.encode(rgb,
quality=q, model=lc)`` (fixed quality: no rate-control search) and ``openjai.decode(data,
model=lc)``; the thread count is set with ``torch.set_num_threads`` (the entropy coder is
single-threaded). One warm-up call, then the median of ``runs`` calls. The GPU time is the
decode API path with ``device="cuda"`` (entropy decoding and the integer σ path stay on the CPU
by design; h_mean and g_s run on the GPU), with ``torch.cuda.synchronize`` before and after.
There is no GPU encode time: ``openjai.codec.coder.Encoder`` has no device argument, so the
encoder runs on the CPU.

Peak memory
-----------
``peak_rss`` runs the operation in a fresh Python process and reports its resident-set
high-water mark after the operation, and the same mark just before it (imports done, model
loaded, input read), so ``working_mib`` is what the operation itself added. On Linux the mark
is ``VmHWM`` from ``/proc/self/status``, not ``resource.getrusage().ru_maxrss``: Linux carries
the parent's high-water mark into ``ru_maxrss`` across fork/vfork + exec (measured here: a
child of a 430 MiB parent reported 427 MiB for a bare interpreter, VmHWM 13 MiB), so
``ru_maxrss`` of a child spawned from a big process (a test run, a benchmark holding a model)
is wrong. Elsewhere ``ru_maxrss`` is used (bytes on macOS, KiB otherwise).
"""

from __future__ import annotations

import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Generic, Literal, TypeVar

import numpy as np

from .threads import torch_threads
from ..errors import OpenJAIError

if TYPE_CHECKING:
    import torch

    from ..codec.model import Codec
    from ..codec.weights import LoadedCodec

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample.png"
ENCODER_NETWORKS = ("g_a", "gain", "h_a", "h_mean", "h_scale", "context")
DECODER_NETWORKS = ("h_mean", "h_scale", "context", "inverse_gain", "g_s")
PAD = 64  # the coder pads images to a multiple of 64 (openjai.codec.coder.PAD)

T = TypeVar("T", int, float)


@dataclass(frozen=True)
class PerNetwork(Generic[T]):
    """One number per network of the coding path; ``encoder``/``decoder`` sum their side."""

    g_a: T
    gain: T
    h_a: T
    h_mean: T
    h_scale: T
    context: T
    inverse_gain: T
    g_s: T

    @property
    def encoder(self) -> T:
        return sum(getattr(self, n) for n in ENCODER_NETWORKS)  # type: ignore[return-value]

    @property
    def decoder(self) -> T:
        return sum(getattr(self, n) for n in DECODER_NETWORKS)  # type: ignore[return-value]


@dataclass(frozen=True)
class CpuTime:
    """Median wall seconds of the API encode and decode calls at one thread count."""

    threads: int
    encode_s: float
    decode_s: float


@dataclass(frozen=True)
class PeakMemory:
    """Resident-set high-water marks (MiB) of a fresh process before and after one operation."""

    baseline_mib: float
    peak_mib: float

    @property
    def working_mib(self) -> float:
        return max(0.0, self.peak_mib - self.baseline_mib)


@dataclass(frozen=True)
class GpuMeasure:
    device_name: str
    decode_s: float
    peak_allocated_mib: float


@dataclass(frozen=True)
class Complexity:
    """Everything ``measure_complexity`` measured for one model at one image size."""

    model_id: str
    width: int
    height: int
    quality: float
    num_bytes: int
    params: PerNetwork[int]
    params_total: int
    kmac_per_pixel: PerNetwork[float]
    cpu: tuple[CpuTime, ...]
    rss_encode: PeakMemory
    rss_decode: PeakMemory
    gpu: GpuMeasure | None
    cpu_model: str

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6

    def summary(self) -> str:
        """A human-readable multi-line report (the numbers are the fields; this only formats)."""
        def spm(seconds: float) -> float:
            return seconds_per_megapixel(seconds, self.width, self.height)

        lines = [
            f"model {self.model_id}, {self.width}x{self.height}, quality {self.quality:g}, "
            f"{self.num_bytes} bytes, CPU: {self.cpu_model}",
            f"parameters: encoder {self.params.encoder:,} ({'+'.join(ENCODER_NETWORKS)}), "
            f"decoder {self.params.decoder:,} ({'+'.join(DECODER_NETWORKS)}), all {self.params_total:,}",
            f"kMAC/pixel: encoder {self.kmac_per_pixel.encoder:.2f}, decoder {self.kmac_per_pixel.decoder:.2f}",
        ]
        for c in self.cpu:
            lines.append(
                f"CPU {c.threads} thread(s): encode {spm(c.encode_s):.3f} s/MP ({c.encode_s:.3f} s), "
                f"decode {spm(c.decode_s):.3f} s/MP ({c.decode_s:.3f} s)"
            )
        lines.append(
            f"peak RSS: encode {self.rss_encode.peak_mib:.0f} MiB (+{self.rss_encode.working_mib:.0f} over "
            f"baseline), decode {self.rss_decode.peak_mib:.0f} MiB (+{self.rss_decode.working_mib:.0f})"
        )
        if self.gpu is not None:
            lines.append(
                f"GPU {self.gpu.device_name}: decode {spm(self.gpu.decode_s):.4f} s/MP, "
                f"peak allocated {self.gpu.peak_allocated_mib:.0f} MiB"
            )
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# inputs


def photo(width: int, height: int, source: str | os.PathLike | None = None) -> np.ndarray:
    """A real photo of exactly ``width × height`` (RGB uint8): scaled (Lanczos) to cover, centre-cropped.

    Default source: ``openjai/data/sample.png`` (600×400, CC0, ships with the package).
    """
    from PIL import Image

    with Image.open(source or SAMPLE) as im:
        im = im.convert("RGB")
        s = max(width / im.width, height / im.height)
        w, h = max(width, round(im.width * s)), max(height, round(im.height * s))
        im = im.resize((w, h), Image.Resampling.LANCZOS)
        left, top = (w - width) // 2, (h - height) // 2
        return np.asarray(im.crop((left, top, left + width, top + height))).copy()


def all_threads() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def cpu_model_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def weights_file(lc: LoadedCodec, folder: str | os.PathLike) -> Path:
    """A weights file holding ``lc`` (for subprocesses): the shipped file, else exported into ``folder``."""
    from ..codec import zoo
    from ..codec.weights import export, load_codec_weights

    for e in zoo.entries().values():
        if e.model_id == lc.model_id and e.path.is_file():
            return e.path
    path = Path(folder) / "model.safetensors"
    model_id = export(copy.deepcopy(lc.model).cpu(), path)
    # export rebuilds the coding tables from the networks: they must equal the ones lc codes with
    copy_lc = load_codec_weights(path)
    for mine, theirs in ((lc.z_tables, copy_lc.z_tables), (lc.y_tables, copy_lc.y_tables)):
        if len(mine.tables) != len(theirs.tables) or any(
            a.offset != b.offset or not np.array_equal(a.counts, b.counts) for a, b in zip(mine.tables, theirs.tables)
        ):
            raise OpenJAIError(f"re-exported coding tables of {lc.model_id} differ from the loaded ones")
    if model_id != lc.model_id:
        raise OpenJAIError(f"exported model id {model_id} differs from {lc.model_id}")
    return path


def subprocess_env(threads: int) -> dict[str, str]:
    """Environment of a worker process: thread count fixed, this checkout importable."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


# ---------------------------------------------------------------------------------------------
# parameters and MACs


def _count(module: torch.nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def parameter_counts(model: Codec) -> PerNetwork[int]:
    """Parameters of each network of the coding path (see the module docstring for the sides)."""
    return PerNetwork(*(_count(getattr(model, f.name)) for f in fields(PerNetwork)))


def total_parameters(model: Codec) -> int:
    """Every parameter of the Codec module, the factorized prior included."""
    return _count(model)


def _macs(fn: Callable[[], object]) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() // 2


def kmac_per_pixel(model: Codec, width: int, height: int) -> PerNetwork[float]:
    """Thousands of multiply-accumulates per image pixel for each network (see module docstring)."""
    import torch

    if width < 1 or height < 1:
        raise ValueError("width and height must be positive")
    cfg = model.cfg
    m = copy.deepcopy(model).to("meta")
    hp, wp = -(-height // PAD) * PAD, -(-width // PAD) * PAD

    def zeros(c: int, f: int) -> torch.Tensor:
        return torch.zeros(1, c, hp // f, wp // f, device="meta")

    macs = {
        "g_a": _macs(lambda: m.g_a(zeros(3, 1))),
        "gain": 0,  # element-wise
        "h_a": _macs(lambda: m.h_a(zeros(cfg.latent_channels, 16))),
        "h_mean": _macs(lambda: m.h_mean(zeros(cfg.hyper_channels, 64))),
        "h_scale": _macs(lambda: m.h_scale(zeros(cfg.hyper_channels, 64))),  # training path, same convs
        # both branches run over the whole latent grid (their anchor half of the output is unused)
        "context": 0 if m.context is None else _macs(
            lambda: (m.context.mean_offset(zeros(cfg.latent_channels, 16)),
                     m.context.scale_offset(zeros(cfg.latent_channels, 16)))),
        "inverse_gain": 0,
        "g_s": _macs(lambda: m.g_s(zeros(cfg.latent_channels, 16))),
    }
    pixels = width * height
    return PerNetwork(**{k: v / pixels / 1000 for k, v in macs.items()})


# ---------------------------------------------------------------------------------------------
# time


def timed_median(fn: Callable[[], object], runs: int = 3, warmup: int = 1,
                 sync: Callable[[], None] | None = None) -> float:
    """Median wall seconds of ``fn()`` over ``runs`` calls after ``warmup`` untimed calls."""
    if runs < 1:
        raise ValueError("runs must be at least 1")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        if sync:
            sync()
        t = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def seconds_per_megapixel(seconds: float, width: int, height: int) -> float:
    return seconds / (width * height / 1e6)


def cpu_seconds(lc: LoadedCodec, rgb: np.ndarray, threads: int, quality: float, runs: int = 3) -> CpuTime:
    """Median seconds of ``openjai.encode`` and ``openjai.decode`` on the CPU with ``threads`` threads."""
    from .. import api

    data = api.encode(rgb, quality=quality, model=lc)
    with torch_threads(threads):
        enc = timed_median(lambda: api.encode(rgb, quality=quality, model=lc), runs)
        dec = timed_median(lambda: api.decode(data, model=lc, device="cpu"), runs)
    return CpuTime(threads, enc, dec)


def _cuda_sync(device: str) -> Callable[[], None]:
    import torch

    return lambda: torch.cuda.synchronize(device)


def gpu_decode_seconds(lc: LoadedCodec, data: bytes, device: str = "cuda", runs: int = 3) -> float:
    """Median seconds of ``openjai.decode(device=...)`` on a GPU (synchronised before and after)."""
    from .. import api

    return timed_median(lambda: api.decode(data, model=lc, device=device), runs, sync=_cuda_sync(device))


def gpu_peak_memory_mib(lc: LoadedCodec, data: bytes, device: str = "cuda") -> float:
    """``torch.cuda.max_memory_allocated`` (MiB) during one GPU decode (model weights included)."""
    import torch

    from .. import api

    lc.on(device)  # the device copy of the weights exists before the measurement and counts in it
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    api.decode(data, model=lc, device=device)
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) / 2**20


# ---------------------------------------------------------------------------------------------
# peak resident memory in a fresh process

# Runs with ``python -c`` so that a JPEG measurement imports Pillow and numpy only (no torch).
_RSS_WORKER = r"""
import json, sys
spec = json.loads(sys.argv[1])

def high_water_mib():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 2**20 if sys.platform == "darwin" else r / 1024

import io
import numpy as np
codec, op = spec["codec"], spec["op"]
if op == "encode":
    inp = np.load(spec["input"])
else:
    with open(spec["input"], "rb") as f:
        inp = f.read()
if codec == "openjai":
    import torch
    torch.set_num_threads(spec["threads"])
    import openjai
    from openjai.codec.weights import load_codec_weights
    lc = load_codec_weights(spec["weights"])
    before = high_water_mib()
    if op == "encode":
        out = openjai.encode(inp, quality=spec["quality"], model=lc)
    else:
        out = openjai.decode(inp, model=lc)
elif codec == "jpeg":
    from PIL import Image
    before = high_water_mib()
    if op == "encode":
        buf = io.BytesIO()
        Image.fromarray(inp, "RGB").save(buf, format="JPEG", quality=int(spec["quality"]), subsampling=2,
                                         optimize=True)
        out = buf.getvalue()
    else:
        with Image.open(io.BytesIO(inp), formats=["JPEG"]) as im:
            out = np.asarray(im.convert("RGB"))
else:
    raise SystemExit("unknown codec " + codec)
print(json.dumps({"baseline_mib": before, "peak_mib": high_water_mib(), "out_len": len(out)}))
"""


@dataclass(frozen=True)
class RssJob:
    """One operation for ``peak_rss``.

    ``codec``: "openjai" (needs ``weights``) or "jpeg" (Pillow/libjpeg-turbo with the settings of
    ``openjai.eval.anchors.jpeg.JPEG("420")``: subsampling 4:2:0, optimised Huffman tables).
    ``op``: "encode" (``payload`` is an RGB uint8 array) or "decode" (``payload`` is the stream).
    """

    codec: Literal["openjai", "jpeg"]
    op: Literal["encode", "decode"]
    payload: np.ndarray | bytes
    quality: float = 50.0
    threads: int = 1
    weights: Path | None = None


def peak_rss(job: RssJob, timeout: float = 600.0) -> PeakMemory:
    """Resident-set high-water mark (MiB) of ``job`` run in a fresh Python process."""
    if job.codec == "openjai" and job.weights is None:
        raise ValueError("an openjai job needs a weights file")
    with tempfile.TemporaryDirectory(prefix="openjai-rss-") as d:
        if job.op == "encode":
            path = Path(d) / "input.npy"
            np.save(path, np.asarray(job.payload, dtype=np.uint8))
        else:
            path = Path(d) / "input.bin"
            path.write_bytes(bytes(job.payload))  # type: ignore[arg-type]
        spec = {"codec": job.codec, "op": job.op, "input": str(path), "quality": job.quality,
                "threads": job.threads, "weights": str(job.weights) if job.weights else None}
        proc = subprocess.run([sys.executable, "-c", _RSS_WORKER, json.dumps(spec)], capture_output=True,
                              text=True, env=subprocess_env(job.threads), timeout=timeout)
    if proc.returncode != 0:
        raise OpenJAIError(f"peak-memory worker for {job.codec} {job.op} failed: {proc.stderr.strip()[-2000:]}")
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    return PeakMemory(baseline_mib=float(r["baseline_mib"]), peak_mib=float(r["peak_mib"]))


# ---------------------------------------------------------------------------------------------
# everything at once


def resolve_device(device: str) -> str | None:
    """The GPU to time: "auto" → "cuda" when available, "cpu" → none; "cuda[:n]" must be available."""
    import torch

    if device == "cpu":
        return None
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else None
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise OpenJAIError(f"device {device!r} requested but CUDA is not available")
        return device
    raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:n]', not {device!r}")


def measure_complexity(
    lc: LoadedCodec,
    width: int = 768,
    height: int = 512,
    device: str = "auto",
    threads: Sequence[int] | None = None,
    runs: int = 3,
    quality: float | None = None,
    image: np.ndarray | None = None,
) -> Complexity:
    """Measure ``lc`` on a ``width × height`` photo (``photo()`` unless ``image`` is given).

    ``threads``: CPU thread counts to time (default ``(1, all_threads())``). ``device``: "auto"
    (GPU numbers when ``torch.cuda.is_available()``), "cpu" (none) or an explicit "cuda[:n]".
    """
    import torch

    from ..api import DEFAULT_QUALITY, encode

    q = DEFAULT_QUALITY if quality is None else float(quality)
    rgb = photo(width, height) if image is None else np.asarray(image, dtype=np.uint8)
    if rgb.shape[:2] != (height, width):
        raise ValueError(f"image is {rgb.shape[1]}x{rgb.shape[0]}, expected {width}x{height}")
    counts = sorted(set(threads or (1, all_threads())))
    gpu_dev = resolve_device(device)
    data = encode(rgb, quality=q, model=lc)
    cpu = tuple(cpu_seconds(lc, rgb, n, q, runs) for n in counts)
    with tempfile.TemporaryDirectory(prefix="openjai-complexity-") as d:
        wf = weights_file(lc, d)
        n_max = max(counts)
        rss_enc = peak_rss(RssJob("openjai", "encode", rgb, q, n_max, wf))
        rss_dec = peak_rss(RssJob("openjai", "decode", data, q, n_max, wf))
    gpu = None
    if gpu_dev is not None:
        gpu = GpuMeasure(torch.cuda.get_device_name(gpu_dev), gpu_decode_seconds(lc, data, gpu_dev, runs),
                         gpu_peak_memory_mib(lc, data, gpu_dev))
    return Complexity(
        model_id=lc.model_id, width=width, height=height, quality=q, num_bytes=len(data),
        params=parameter_counts(lc.model), params_total=total_parameters(lc.model),
        kmac_per_pixel=kmac_per_pixel(lc.model, width, height), cpu=cpu, rss_encode=rss_enc,
        rss_decode=rss_dec, gpu=gpu, cpu_model=cpu_model_name(),
    )


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    from ..api import load_model

    p = argparse.ArgumentParser(prog="python -m openjai.eval.complexity", description=__doc__.split("\n")[0])
    p.add_argument("--model", default="base")
    p.add_argument("--width", type=int, default=768)
    p.add_argument("--height", type=int, default=512)
    p.add_argument("--device", default="auto")
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args(argv)
    print(measure_complexity(load_model(a.model), a.width, a.height, a.device, runs=a.runs).summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
