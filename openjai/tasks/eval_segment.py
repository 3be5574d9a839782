"""Foreground extraction on latents vs a pixel-domain segmenter on the original and decoded image.

Data: TEST_COUNT composites of TEST_SIZE (composite.py, test split: held-out stamps on
/work/shared/data/val backgrounds, seed 0), exact masks. Each is coded with ``base`` at every
target bpp (``openjai.encode(img, bpp=r)``, cached). For each stream:

    latent    decode_latents ─▶ LatentSegmenter                  (segment.py; no g_s)
    decoded   openjai.decode ─▶ PixelSegmenter                    (decode, then the pixel task)
    original  PixelSegmenter on the original composite            (no coding; same at every rate)

Metrics, per image then averaged: IoU = |P∩T| / |P∪T| (1 when both are empty) and the
boundary F-measure (Perazzi et al. 2016, DAVIS): boundary pixels are the mask pixels with a
4-neighbour outside it; precision is the share of predicted boundary pixels within
BOUNDARY_TOLERANCE pixels (Euclidean) of a true one, recall the converse, F = 2PR/(P+R).

Cost at 1280×720 (a test composite coded at 0.5 bpp): kMAC/pixel counted with torch's
FlopCounterMode (MAC = FLOP/2) — the head on ŷ vs g_s + the pixel segmenter (entropy decoding,
h_mean/h_scale and the context model are common to both and not counted). Time of
decode_latents, the head, openjai.decode (entropy decoding, g_s, post-synthesis layers) and the
pixel segmenter, each from the stream's bytes or the decoded image, two ways: process CPU time
at one thread (median of 5; what the work costs, even on a machine shared with other jobs) and
wall time at FPS_THREADS threads (median of 3; inflated by whatever else runs). Frames per
second = 1000 / (decode_latents ms + head ms).
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from scipy import ndimage

from .. import api
from ..errors import ModelError, RateControlError
from ..eval.complexity import kmac_per_pixel
from ..eval.threads import torch_threads
from ..files import atomic_write
from . import composite
from .evaluate import cached_stream, cpu_ms, figure, macs, save_figure
from .segment import PixelSegmenter, latent_head, segment, to_mask

TEST_COUNT = 24
TEST_SIZE = (384, 256)  # width, height
FPS_SIZE = (1280, 720)
FPS_THREADS = 2
BOUNDARY_TOLERANCE = 3.0
PIXEL_WEIGHTS = Path(__file__).resolve().parent / "weights" / "segment_pixel.safetensors"
METHODS = ("latent", "decoded", "original")
BAR_IOU, BAR_FPS = 0.03, 25.0


def iou(pred: np.ndarray, true: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1.0 when both are empty)."""
    union = np.logical_or(pred, true).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, true).sum() / union)


def boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a 4-neighbour outside it (the image border counts as outside)."""
    inner = ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(2, 1), border_value=0)
    return mask & ~inner


def boundary_f(pred: np.ndarray, true: np.ndarray, tolerance: float = BOUNDARY_TOLERANCE) -> float:
    """Boundary F-measure: precision and recall of boundary pixels matched within ``tolerance`` px."""
    bp, bt = boundary(pred.astype(bool)), boundary(true.astype(bool))
    if not bp.any() and not bt.any():
        return 1.0
    if not bp.any() or not bt.any():
        return 0.0
    precision = float((ndimage.distance_transform_edt(~bt)[bp] <= tolerance).mean())
    recall = float((ndimage.distance_transform_edt(~bp)[bt] <= tolerance).mean())
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


@lru_cache(maxsize=1)
def pixel_segmenter() -> PixelSegmenter:
    """The pixel-domain anchor with its trained weights."""
    if not PIXEL_WEIGHTS.is_file():
        raise ModelError(f"{PIXEL_WEIGHTS} is missing: train it with python -m openjai.tasks.train_segment")
    net = PixelSegmenter()
    net.load_state_dict(load_file(PIXEL_WEIGHTS))
    return net.eval()


def pixel_mask(rgb: np.ndarray) -> np.ndarray:
    """The anchor's uint8 mask (0/255) of an RGB uint8 image."""
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255.0
    with torch.no_grad():
        return to_mask(pixel_segmenter()(x, rgb.shape[:2]))


def stream_at(rgb: np.ndarray, bpp: float) -> bytes:
    """The cached stream at ``bpp``; where the model's lowest rate lies above it (+10 %), the
    lowest-rate stream (the rows record the bpp actually coded)."""
    try:
        return cached_stream(rgb, bpp)
    except RateControlError:
        return api.encode(rgb, quality=0)


def _scores(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    p = pred > 127
    return {"iou": iou(p, true), "bf": boundary_f(p, true)}


def _evaluate(samples: list[composite.Sample], rates: list[float]) -> list[dict]:
    rows = []
    for i, s in enumerate(samples):
        rows.append({"image": i, "rate": 0.0, "bpp": 24.0, "method": "original", **_scores(pixel_mask(s.rgb), s.mask)})
        for r in rates:
            data = stream_at(s.rgb, r)
            bpp = len(data) * 8 / s.mask.size
            rows.append({"image": i, "rate": r, "bpp": bpp, "method": "latent", **_scores(segment(data), s.mask)})
            rows.append({"image": i, "rate": r, "bpp": bpp, "method": "decoded",
                         **_scores(pixel_mask(api.decode(data)), s.mask)})
    return rows


def summary(rows: list[dict], rates: list[float]) -> dict[float, dict[str, float]]:
    """Per rate: mean bpp and mean IoU / boundary F of each method (the original's at every rate)."""
    orig = [r for r in rows if r["method"] == "original"]
    table = {}
    for rate in rates:
        sel = [r for r in rows if r["rate"] == rate]
        t = {"bpp": float(np.mean([r["bpp"] for r in sel]))}
        for m in METHODS:
            ms = orig if m == "original" else [r for r in sel if r["method"] == m]
            t[f"{m}_iou"] = float(np.mean([r["iou"] for r in ms]))
            t[f"{m}_bf"] = float(np.mean([r["bf"] for r in ms]))
        table[rate] = t
    return table


def costs(data: bytes) -> dict[str, float]:
    """kMAC/pixel and CPU ms (FPS_THREADS threads) of the latent path and of decode + pixel segmenter."""
    lat = api.decode_latents(data)
    h, w = lat.header.height, lat.header.width
    head, anchor = latent_head(lat.header.model_id), pixel_segmenter()
    decoded = api.decode(data)
    x = torch.from_numpy(decoded).permute(2, 0, 1)[None].float() / 255.0
    with torch.no_grad():
        head_macs = macs(lambda: head(lat.y_hat, (h, w)))
        anchor_macs = macs(lambda: anchor(x, (h, w)))
    g_s = kmac_per_pixel(api.load_model("base").model, w, h).g_s
    paths = {"entropy": lambda: api.decode_latents(data), "head": lambda: head(lat.y_hat, (h, w)),
             "decode": lambda: api.decode(data), "anchor": lambda: anchor(x, (h, w))}
    t: dict[str, float] = {}
    with torch.no_grad():
        for name, fn in paths.items():
            t[f"{name}_ms"] = cpu_ms(fn, runs=3, threads=FPS_THREADS)
            t[f"{name}_cpu_ms"] = process_ms(fn)
    return {"width": w, "height": h, "head_kmac": head_macs / (w * h) / 1000, "g_s_kmac": g_s,
            "anchor_kmac": anchor_macs / (w * h) / 1000, **t,
            "fps": 1000 / (t["entropy_ms"] + t["head_ms"]), "pixel_fps": 1000 / (t["decode_ms"] + t["anchor_ms"]),
            "cpu_fps": 1000 / (t["entropy_cpu_ms"] + t["head_cpu_ms"]),
            "pixel_cpu_fps": 1000 / (t["decode_cpu_ms"] + t["anchor_cpu_ms"])}


def process_ms(fn: Callable[[], object], runs: int = 5) -> float:
    """Median CPU time (ms of this process, one thread, after one warm-up call) of ``fn()``: the
    work itself, unaffected by other processes competing for the cores (wall time is not)."""
    with torch_threads(1):
        fn()
        times = []
        for _ in range(runs):
            t0 = time.process_time()
            fn()
            times.append(time.process_time() - t0)
    return 1000 * float(np.median(times))


def _write_csv(rows: list[dict], path: Path) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["image", "method", "rate", "bpp", "iou", "bf"], lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({**r, "bpp": f"{r['bpp']:.4f}", "iou": f"{r['iou']:.4f}", "bf": f"{r['bf']:.4f}"})
    atomic_write(path, buf.getvalue().encode(), force=True)


def _plots(table: dict[float, dict[str, float]], cost: dict[str, float], out: Path) -> None:
    fig = figure(10, 4)
    bpp = [t["bpp"] for t in table.values()]
    for ax, key, name in zip(fig.subplots(1, 2), ("iou", "bf"), ("IoU", f"boundary F ({BOUNDARY_TOLERANCE:g} px)")):
        ax.plot(bpp, [t[f"latent_{key}"] for t in table.values()], "o-", label="latents (no g_s)")
        ax.plot(bpp, [t[f"decoded_{key}"] for t in table.values()], "s-", label="pixel net on decoded")
        ax.axhline(next(iter(table.values()))[f"original_{key}"], color="grey", ls="--", label="pixel net on original")
        ax.set(xlabel="bpp", ylabel=name, title=f"foreground extraction: {name}", ylim=(0, 1))
        ax.grid(alpha=0.3)
        ax.legend()
    save_figure(fig, out / "segment_quality.png")
    fig = figure(10, 4)
    a, b = fig.subplots(1, 2)
    a.bar(["latent head", "g_s + pixel net"], [cost["head_kmac"], cost["g_s_kmac"]], label="head / g_s")
    a.bar(["latent head", "g_s + pixel net"], [0, cost["anchor_kmac"]], bottom=[cost["head_kmac"], cost["g_s_kmac"]],
          label="pixel net")
    a.set(ylabel="kMAC / pixel", title="MACs (entropy decoding not counted)")
    a.legend()
    b.bar(["latent path", "decode + pixel net"], [cost["entropy_cpu_ms"], cost["decode_cpu_ms"]],
          label="decode_latents / decode")
    b.bar(["latent path", "decode + pixel net"], [cost["head_cpu_ms"], cost["anchor_cpu_ms"]],
          bottom=[cost["entropy_cpu_ms"], cost["decode_cpu_ms"]], label="head / pixel net")
    b.set(ylabel=f"CPU ms at {cost['width']}×{cost['height']}, 1 thread", title="time")
    b.legend()
    save_figure(fig, out / "segment_cost.png")


def _markdown(table: dict[float, dict[str, float]], cost: dict[str, float], n: int, rel: str) -> str:
    gaps = {r: t["decoded_iou"] - t["latent_iou"] for r, t in table.items()}
    worst = max(gaps.values())
    w, h = TEST_SIZE
    lines = [
        "## Foreground extraction (segment)", "",
        f"{n} composites of {w}×{h} (held-out tuxpaint photo stamps on /work/shared/data/val photos, "
        "exact alpha masks; openjai/tasks/composite.py), each coded with `base` at every target bpp. "
        "Latents: `openjai.tasks.segment` on the entropy-decoded ŷ (no g_s). Anchor: a pixel-domain U-Net "
        "trained here on the same composites, on the original and on the decoded image. "
        f"IoU and boundary F-measure (tolerance {BOUNDARY_TOLERANCE:g} px), mean over images. Where `base`'s "
        "lowest rate lies above a target (+10 %), the image's lowest-rate stream is used: the mean bpp "
        "column is what was coded.", "",
        "| target bpp | mean bpp | IoU latents | IoU decoded | IoU original | BF latents | BF decoded | BF original |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r, t in table.items():
        lines.append(f"| {r:g} | {t['bpp']:.3f} | {t['latent_iou']:.3f} | {t['decoded_iou']:.3f} | "
                     f"{t['original_iou']:.3f} | {t['latent_bf']:.3f} | {t['decoded_bf']:.3f} | "
                     f"{t['original_bf']:.3f} |")
    lines += [
        "", f"![quality]({rel}/segment_quality.png)", "",
        f"Cost at {cost['width']}×{cost['height']} (a test composite at 0.5 bpp): kMAC/pixel; CPU ms = "
        "process CPU time at one thread (median of 5), what the work costs whatever else runs on the "
        f"machine; wall ms = wall time at {FPS_THREADS} threads (median of 3), which other processes "
        "on the cores inflate:", "",
        "| path | kMAC/pixel | CPU ms (1 thread) | wall ms (2 threads) | fps (CPU) | fps (wall) |",
        "|---|---|---|---|---|---|",
        f"| decode_latents (entropy decoding, hyper decoders, context) | common | {cost['entropy_cpu_ms']:.0f} | "
        f"{cost['entropy_ms']:.0f} | | |",
        f"| latent head | {cost['head_kmac']:.2f} | {cost['head_cpu_ms']:.0f} | {cost['head_ms']:.0f} | | |",
        f"| **latent path** | {cost['head_kmac']:.2f} | {cost['entropy_cpu_ms'] + cost['head_cpu_ms']:.0f} | "
        f"{cost['entropy_ms'] + cost['head_ms']:.0f} | {cost['cpu_fps']:.2f} | {cost['fps']:.2f} |",
        f"| openjai.decode (entropy decoding, g_s, layers) | {cost['g_s_kmac']:.2f} | {cost['decode_cpu_ms']:.0f} | "
        f"{cost['decode_ms']:.0f} | | |",
        f"| pixel U-Net | {cost['anchor_kmac']:.2f} | {cost['anchor_cpu_ms']:.0f} | {cost['anchor_ms']:.0f} | | |",
        f"| **decode + pixel net** | {cost['g_s_kmac'] + cost['anchor_kmac']:.2f} | "
        f"{cost['decode_cpu_ms'] + cost['anchor_cpu_ms']:.0f} | {cost['decode_ms'] + cost['anchor_ms']:.0f} | "
        f"{cost['pixel_cpu_fps']:.2f} | {cost['pixel_fps']:.2f} |",
        "", f"![cost]({rel}/segment_cost.png)", "",
        f"**Bars.** IoU within {BAR_IOU:g} of the pixel anchor on decoded images: "
        f"{'reached' if worst <= BAR_IOU else 'missed'} (worst gap {worst:+.3f} over "
        f"{', '.join(f'{r:g}' for r in table)} bpp; positive = latents below the anchor). "
        f"≥ {BAR_FPS:g} fps at 720p (entropy decoding + head): "
        f"{'reached' if cost['cpu_fps'] >= BAR_FPS else 'missed'} ({cost['cpu_fps']:.2f} fps by CPU time: "
        f"{cost['entropy_cpu_ms']:.0f} ms entropy decoding + {cost['head_cpu_ms']:.0f} ms head; "
        f"{cost['fps']:.2f} fps by wall time at {FPS_THREADS} threads).", "",
    ]
    return "\n".join(lines)


def held_out_samples(limit: int | None = None) -> list[composite.Sample]:
    """The held-out composites (TEST_COUNT, or the first ``limit``)."""
    n = TEST_COUNT if limit is None else min(limit, TEST_COUNT)
    return [composite.make_sample("test", i, *TEST_SIZE) for i in range(n)]


def run(out: Path, rates: list[float], limit: int | None = None) -> str:
    """Evaluate, write ``out/segment.csv`` and the plots; return the markdown section."""
    samples = held_out_samples(limit)
    rows = _evaluate(samples, rates)
    _write_csv(rows, out / "segment.csv")
    table = summary(rows, rates)
    fps_image = composite.make_sample("test", TEST_COUNT, *FPS_SIZE).rgb
    cost = costs(cached_stream(fps_image, 0.5))
    _plots(table, cost, out)
    return _markdown(table, cost, len(samples), out.name)
