"""Classification on latents vs ResNet-50 on the original and on the decoded image.

Data: /work/shared/data/imagenet_labeled (250 labelled ImageNet photos; ``labels.csv``; compared
by class index). Each photo is resized (bilinear) to a short side of 256 and centre-cropped
to 224²: that crop is what ResNet-50 sees as the ORIGINAL, and what is coded with ``base`` at
each target bpp (``openjai.encode(crop, bpp=r)``, cached). For each stream:

    latent   decode_latents ─▶ bridge ─▶ rest of ResNet-50      (classify.py; no g_s)
    decoded  openjai.decode ─▶ ResNet-50                         (decode, then the pixel task)

Outputs under ``out/``: ``classify.csv`` (one row per image × rate × method: predicted
top-1, top-1 and top-5 hits, the stream's bpp), ``classify_top1.png`` (top-1 and top-5 vs
bpp), ``classify_cost.png`` (kMAC/pixel and CPU ms of both paths), and the markdown section.
Cost: MACs counted with torch's FlopCounterMode (MAC = FLOP/2) on a 224² image; the
entropy decoding, h_mean/h_scale and the context model are common to both paths and not
counted. CPU ms: median of 5 runs at one thread, each path from the stream's bytes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .. import api
from ..errors import DataError, RateControlError
from ..files import atomic_write
from . import SHARED_DATA
from .classify import TASK, image_latents, latent_logits, load_bridge
from .evaluate import cached_stream, cpu_ms, figure, macs, save_figure, stream_cache
from .resnet import TAIL_STAGES, load_resnet50, preprocess, resized_crop

DATA = SHARED_DATA / "imagenet_labeled"
SIZE = 224
METHODS = ("latent", "decoded", "original")
BAR_RATES = (0.25, 0.5, 0.75, 1.0)
BAR_POINTS, BAR_MAC_RATIO = 3.0, 0.6


def test_crops(limit: int | None = None, data: Path = DATA) -> list[tuple[str, int, np.ndarray]]:
    """(file name, class index, 224² centre crop of a 256 resize) for the labelled photos."""
    labels = data / "labels.csv"
    if not labels.is_file():
        raise DataError(f"{labels} not found: the classification test set is missing")
    with open(labels, newline="") as f:
        rows = list(csv.DictReader(f))[:limit]
    out = []
    for r in rows:
        with Image.open(data / r["filename"]) as im:
            out.append((r["filename"], int(r["class_index"]), resized_crop(im, 256, SIZE)))
    return out


def _top5(logits: torch.Tensor) -> list[int]:
    return [int(i) for i in logits.reshape(-1).topk(5).indices]


def decoded_top5(stream: bytes) -> list[int]:
    """ResNet-50's top-5 on ``openjai.decode(stream)``, cached next to the streams by the stream's
    sha256 (decoding and ResNet-50 dominate the evaluation's time; the answer never changes)."""
    path = stream_cache() / f"{hashlib.sha256(stream).hexdigest()[:24]}.resnet50.json"
    if path.is_file():
        return json.loads(path.read_text())
    net, _ = load_resnet50()
    with torch.no_grad():
        top5 = _top5(net(preprocess(api.decode(stream))))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(top5).encode(), force=True)
    return top5


def _costs(stream: bytes) -> dict[str, float]:
    """kMAC/pixel and CPU ms of the latent path and of decode + ResNet-50, for one 224² stream."""
    net, _ = load_resnet50()
    lc = api.load_model("base")
    info = api.read_info(stream)
    bridge = load_bridge(info.model_id)
    y = image_latents(api.decode_latents(stream).y_hat, SIZE, SIZE)
    x = preprocess(np.zeros((SIZE, SIZE, 3), np.uint8))
    pixels = SIZE * SIZE
    padded = torch.zeros(1, y.shape[1], -(-SIZE // 64) * 4, -(-SIZE // 64) * 4)
    with torch.no_grad():
        k = {"bridge": macs(lambda: bridge(y)) / pixels / 1e3,
             "tail": macs(lambda: net.tail(bridge(y), bridge.join)) / pixels / 1e3,
             "g_s": macs(lambda: lc.model.g_s(padded)) / pixels / 1e3,
             "resnet": macs(lambda: net(x)) / pixels / 1e3}
    k["tail"] -= k["bridge"]

    def latent() -> None:
        latent_logits(image_latents(api.decode_latents(stream).y_hat, SIZE, SIZE), bridge)

    def decoded() -> None:
        with torch.no_grad():
            net(preprocess(api.decode(stream)))

    return k | {"latent_ms": cpu_ms(latent), "decoded_ms": cpu_ms(decoded),
                "entropy_ms": cpu_ms(lambda: api.decode_latents(stream))}


def _evaluate(crops: list[tuple[str, int, np.ndarray]], rates: list[float]) -> list[dict]:
    net, _ = load_resnet50()
    bridge = load_bridge(api.load_model("base").model_id)
    rows = []
    with torch.no_grad():
        for name, label, crop in crops:
            rows.append({"image": name, "label": label, "method": "original", "target_bpp": "", "bpp": "",
                         "top5": _top5(net(preprocess(crop)))})
            for r in rates:
                try:
                    stream = cached_stream(crop, r)
                except RateControlError:  # e.g. 0.12 bpp is below base's lowest rate for a busy crop
                    continue
                bpp = api.read_info(stream).bpp
                y = image_latents(api.decode_latents(stream).y_hat, SIZE, SIZE)
                rows.append({"image": name, "label": label, "method": "latent", "target_bpp": r, "bpp": bpp,
                             "top5": _top5(latent_logits(y, bridge))})
                rows.append({"image": name, "label": label, "method": "decoded", "target_bpp": r, "bpp": bpp,
                             "top5": decoded_top5(stream)})
    for row in rows:
        row["top1_hit"] = int(row["top5"][0] == row["label"])
        row["top5_hit"] = int(row["label"] in row["top5"])
    return rows


def _write_csv(rows: list[dict], path: Path) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["image", "class_index", "method", "target_bpp", "bpp", "top1_class", "top1_hit", "top5_hit"])
    for r in rows:
        bpp = f"{r['bpp']:.4f}" if r["bpp"] != "" else ""
        w.writerow([r["image"], r["label"], r["method"], r["target_bpp"], bpp, r["top5"][0], r["top1_hit"],
                    r["top5_hit"]])
    atomic_write(path, buf.getvalue().encode(), force=True)


def summary(rows: list[dict], rates: list[float]) -> dict[float, dict[str, float]]:
    """Per target rate reached by some image: mean bpp, image count, top-1/top-5 of each method; the
    original's over the same images (a target unreachable for an image drops that image there)."""
    def mean(sel: list[dict], key: str) -> float:
        return float(np.mean([r[key] for r in sel]))

    orig = [r for r in rows if r["method"] == "original"]
    out = {}
    for rate in rates:
        coded = [r for r in rows if r["method"] == "latent" and r["target_bpp"] == rate]
        if not coded:
            continue
        s = {"bpp": mean(coded, "bpp"), "images": len(coded)}
        for m in METHODS:
            names = {r["image"] for r in coded}
            sel = ([r for r in orig if r["image"] in names] if m == "original"
                   else [r for r in rows if r["method"] == m and r["target_bpp"] == rate])
            s[f"{m}_top1"], s[f"{m}_top5"] = mean(sel, "top1_hit"), mean(sel, "top5_hit")
        out[rate] = s
    return out


def tail_name(join: str) -> str:
    """The ResNet-50 stages that run after a bridge to ``join``."""
    return " + ".join(TAIL_STAGES[join] + ("fc",))


def _plots(table: dict[float, dict[str, float]], cost: dict[str, float], tail: str, out: Path) -> None:
    fig = figure(9.6, 4.2)
    for i, metric in enumerate(("top1", "top5")):
        ax = fig.add_subplot(1, 2, i + 1)
        xs = [s["bpp"] for s in table.values()]
        for m, style in zip(METHODS, ("o-", "s--", ":")):
            ax.plot(xs, [100 * s[f"{m}_{metric}"] for s in table.values()], style, label={
                "latent": f"latents (bridge + ResNet-50 {tail})", "decoded": "ResNet-50 on decoded",
                "original": "ResNet-50 on original"}[m])
        ax.set_xlabel("bits per pixel (mean over images)")
        ax.set_ylabel(f"{'top-1' if metric == 'top1' else 'top-5'} accuracy (%)")
        ax.grid(True, alpha=0.4)
        ax.legend(fontsize=8)
    save_figure(fig, out / "classify_accuracy.png")
    fig = figure(9.6, 3.6)
    ax = fig.add_subplot(1, 2, 1)
    paths = ["latent path", "decode + ResNet-50"]
    ax.bar(paths, [cost["bridge"], cost["g_s"]], color="C0", label="bridge | g_s")
    ax.bar(paths, [cost["tail"], cost["resnet"]], bottom=[cost["bridge"], cost["g_s"]], color="C1",
           label=f"ResNet-50: {tail} | all")
    ax.set_ylabel("kMAC / pixel (224² image)")
    ax.legend(fontsize=8)
    ax = fig.add_subplot(1, 2, 2)
    ax.bar(paths, [cost["latent_ms"], cost["decoded_ms"]], color="C2")
    ax.set_ylabel("CPU ms per image (1 thread, from the stream)")
    save_figure(fig, out / "classify_cost.png")


def _markdown(table: dict[float, dict[str, float]], cost: dict[str, float], tail: str, n: int, rel: str) -> str:
    lat = cost["bridge"] + cost["tail"]
    dec = cost["g_s"] + cost["resnet"]
    lines = [
        "## Classification (ImageNet-1k) on latents", "",
        f"{n} labelled ImageNet photos (/work/shared/data/imagenet_labeled), 224² centre crop of a 256 resize, "
        "coded with `base` at each target (`openjai.encode(crop, bpp=r)`). **latent**: "
        f"`openjai.tasks.classify` (bridge on ŷ → ResNet-50 {tail}; no synthesis). **decoded**: "
        "ResNet-50 (Keras v1 weights, caffe preprocessing) on `openjai.decode` of the same stream. **original**: "
        "ResNet-50 on the uncoded crop. These photos may come from ImageNet's training split: compare the methods "
        "with each other, not with published validation scores. A target below base's lowest rate for a crop "
        "leaves that crop out at that rate (column images).", "",
        "| target bpp | images | mean bpp | top-1 latent | top-1 decoded | top-1 original | top-5 latent "
        "| top-5 decoded | top-5 original | top-1 latent − decoded |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for rate, s in table.items():
        accuracies = " | ".join(f"{100 * s[f'{m}_{k}']:.1f}" for k in ("top1", "top5") for m in METHODS)
        lines.append(f"| {rate:g} | {s['images']} | {s['bpp']:.3f} | {accuracies} | "
                     f"{100 * (s['latent_top1'] - s['decoded_top1']):+.1f} |")
    bar = [r for r in table if r in BAR_RATES]
    worst = min((100 * (table[r]["latent_top1"] - table[r]["decoded_top1"]) for r in bar), default=float("nan"))
    ratio = lat / dec
    reached = worst >= -BAR_POINTS and ratio <= BAR_MAC_RATIO
    lines += [
        "", f"![top-1 and top-5 vs bpp]({rel}/classify_accuracy.png)", "",
        "Cost per 224² image (kMAC/pixel: torch FlopCounterMode, MAC = FLOP/2; entropy decoding, hyper decoder "
        "and context, common to both paths, not counted; CPU: median of 5 runs at 1 thread from the stream's "
        "bytes, entropy decoding included):", "",
        "| path | networks | kMAC/pixel | GMAC/image | CPU ms |", "|---|---|---|---|---|",
        f"| latent | bridge {cost['bridge']:.1f} + ResNet-50 {tail} {cost['tail']:.1f} | {lat:.1f} | "
        f"{lat * SIZE * SIZE / 1e6:.2f} | {cost['latent_ms']:.0f} |",
        f"| decode + pixel | g_s {cost['g_s']:.1f} + ResNet-50 {cost['resnet']:.1f} | {dec:.1f} | "
        f"{dec * SIZE * SIZE / 1e6:.2f} | {cost['decoded_ms']:.0f} |",
        "", f"(entropy decoding alone: {cost['entropy_ms']:.0f} ms; g_s is counted on the coder's 256² padded grid "
        "divided by the 224² image's pixels.)", "",
        f"![cost]({rel}/classify_cost.png)", "",
        f"**Bar** (latent top-1 within {BAR_POINTS:g} points of ResNet-50 on the decoded image at "
        f"{', '.join(f'{r:g}' for r in BAR_RATES)} bpp, at ≤ {BAR_MAC_RATIO}× the MACs of g_s + ResNet-50): "
        f"{'reached' if reached else 'missed'} — worst top-1 distance {worst:+.1f} points over "
        f"{', '.join(f'{r:g}' for r in bar) or 'no'} bpp, MAC ratio {ratio:.2f}.", "",
    ]
    return "\n".join(lines)


def run(out: Path, rates: list[float], limit: int | None = None) -> str:
    """Evaluate, write ``out/classify.csv`` and the plots; return the markdown section."""
    crops = test_crops(limit)
    rows = _evaluate(crops, rates)
    _write_csv(rows, out / f"{TASK}.csv")
    table = summary(rows, rates)
    cost = _costs(cached_stream(crops[0][2], max(rates)))
    tail = tail_name(load_bridge(api.load_model("base").model_id).join)
    _plots(table, cost, tail, out)
    return _markdown(table, cost, tail, len(crops), out.name)
