"""×4 super-resolution from latents vs Lanczos3 and a pixel SR network, on the original and decoded LR.

Data: /work/shared/data/sr_test Set5, Set14, BSD100 (in that order; ``limit`` takes the first N).
HR cropped to a multiple of 4; LR = bicubic ÷4 of the HR (PIL). The LR is coded with ``base`` at
every target bpp (``openjai.encode(lr, bpp=r)``, cached; bpp counts the LR's pixels). Methods:

    latent            decode_latents ─▶ superres network (superres.py; no g_s)
    lanczos_decoded   openjai.decode ─▶ Lanczos3 ×4           (the bar's anchor)
    pixel_decoded     openjai.decode ─▶ pixel SR net ×4       (ResidualHead, trained here on the same data
                                                               and steps: weights/superres_pixel.*)
    lanczos_original  Lanczos3 ×4 of the uncoded LR           (no coding; same at every rate)
    pixel_original    pixel SR net on the uncoded LR

PSNR-Y and SSIM-Y (eval_image.py; BT.709 luma) against the HR with a 4-pixel border shaved,
per image, then averaged. Cost: for a COST_LR LR (→ ×4) coded at 0.5 bpp, kMAC per HR
pixel and CPU ms (COST_THREADS threads, median of 5) of decode_latents + the network vs
openjai.decode + the pixel SR net.
"""

from __future__ import annotations

import csv
import io
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file

from .. import api
from ..errors import DataError, ModelError
from ..files import atomic_write
from . import SHARED_DATA
from .eval_image import path_costs, psnr_y, shave, ssim_y, stream_at
from .evaluate import figure, save_figure
from .image_net import ResidualHead, load_net, to_uint8
from .superres import FACTOR, TASK, superres

DATA = SHARED_DATA / "sr_test"
SETS = ("Set5", "Set14", "BSD100")
PIXEL_WEIGHTS = Path(__file__).resolve().parent / "weights" / "superres_pixel.safetensors"
METHODS = ("latent", "pixel_decoded", "lanczos_decoded", "pixel_original", "lanczos_original")
COST_LR = (160, 90)  # → 640×360 (the machine this ran on was heavily shared)
COST_THREADS = 2
BAR_DB = 0.5


def test_images(limit: int | None = None) -> list[tuple[str, np.ndarray]]:
    """(set/name, HR uint8 RGB cropped to a multiple of 4) of the test sets, the first ``limit``."""
    if not DATA.is_dir():
        raise DataError(f"{DATA} is missing: the SR test sets come from /work/shared/data (see its README)")
    paths = [p for s in SETS for p in sorted((DATA / s).glob("*.png"))]
    out = []
    for p in paths[:limit]:
        with Image.open(p) as im:
            a = np.asarray(im.convert("RGB"))
        out.append((f"{p.parent.name}/{p.stem}", a[: a.shape[0] // FACTOR * FACTOR, : a.shape[1] // FACTOR * FACTOR]))
    return out


def downscale(hr: np.ndarray) -> np.ndarray:
    """The LR image: bicubic ÷4 (PIL)."""
    return np.asarray(Image.fromarray(hr).resize((hr.shape[1] // FACTOR, hr.shape[0] // FACTOR), Image.BICUBIC))


def lanczos(lr: np.ndarray) -> np.ndarray:
    """Lanczos3 ×4 (PIL)."""
    return np.asarray(Image.fromarray(lr).resize((lr.shape[1] * FACTOR, lr.shape[0] * FACTOR), Image.LANCZOS))


@lru_cache(maxsize=1)
def pixel_net() -> ResidualHead:
    """The pixel-domain SR anchor with its trained weights."""
    if not PIXEL_WEIGHTS.is_file():
        raise ModelError(f"{PIXEL_WEIGHTS} is missing: train it with python -m openjai.tasks.train_image")
    state = load_file(PIXEL_WEIGHTS)
    net = ResidualHead.from_state(state)
    net.load_state_dict(state)
    return net.eval()


def pixel_sr(lr: np.ndarray) -> np.ndarray:
    """The pixel SR net's ×4 image of a uint8 RGB LR image."""
    x = torch.tensor(lr).permute(2, 0, 1)[None].float() / 255.0  # a copy: PIL arrays are read-only
    with torch.no_grad():
        return to_uint8(pixel_net()(x), lr.shape[0] * FACTOR, lr.shape[1] * FACTOR)


def _scores(hr: np.ndarray, sr: np.ndarray) -> dict[str, float]:
    hr, sr = shave(hr, FACTOR), shave(sr, FACTOR)
    return {"psnr_y": psnr_y(hr, sr), "ssim_y": ssim_y(hr, sr)}


def _evaluate(images: list[tuple[str, np.ndarray]], rates: list[float]) -> list[dict]:
    rows = []
    for name, hr in images:
        lr = downscale(hr)
        for m, sr in (("lanczos_original", lanczos(lr)), ("pixel_original", pixel_sr(lr))):
            rows.append({"image": name, "rate": 0.0, "bpp": 24.0, "method": m, **_scores(hr, sr)})
        for r in rates:
            data = stream_at(lr, r)
            bpp = len(data) * 8 / (lr.shape[0] * lr.shape[1])
            dec = api.decode(data)
            outputs = {"latent": superres(data), "lanczos_decoded": lanczos(dec), "pixel_decoded": pixel_sr(dec)}
            for m, sr in outputs.items():
                rows.append({"image": name, "rate": r, "bpp": bpp, "method": m, **_scores(hr, sr)})
    return rows


def summary(rows: list[dict], rates: list[float]) -> dict[float, dict[str, float]]:
    """Per rate: mean bpp and mean PSNR-Y / SSIM-Y of each method (the uncoded ones at every rate)."""
    table = {}
    for rate in rates:
        sel = [r for r in rows if r["rate"] == rate]
        t = {"bpp": float(np.mean([r["bpp"] for r in sel if r["method"] == "latent"]))}
        for m in METHODS:
            ms = [r for r in rows if r["method"] == m and (r["rate"] == rate or m.endswith("original"))]
            t[f"{m}_psnr"] = float(np.mean([r["psnr_y"] for r in ms]))
            t[f"{m}_ssim"] = float(np.mean([r["ssim_y"] for r in ms]))
        table[rate] = t
    return table


def _write_csv(rows: list[dict], path: Path) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["image", "method", "rate", "bpp", "psnr_y", "ssim_y"], lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({**r, "bpp": f"{r['bpp']:.4f}", "psnr_y": f"{r['psnr_y']:.3f}", "ssim_y": f"{r['ssim_y']:.4f}"})
    atomic_write(path, buf.getvalue().encode(), force=True)


def costs() -> dict[str, float]:
    """Cost of both paths for a COST_LR LR (the first test image resized to it) coded at 0.5 bpp."""
    _, hr = test_images(1)[0]
    lr = np.asarray(Image.fromarray(hr).resize(COST_LR, Image.BICUBIC))
    data = stream_at(lr, 0.5)
    net = load_net(TASK, api.read_info(data).model_id, FACTOR)
    return path_costs(data, net, pixel_sr, COST_LR[0] * COST_LR[1] * FACTOR**2, COST_THREADS)


def _plots(table: dict[float, dict[str, float]], out: Path) -> None:
    fig = figure(10, 4)
    bpp = [t["bpp"] for t in table.values()]
    labels = {"latent": "latents (no g_s)", "pixel_decoded": "pixel SR net on decoded",
              "lanczos_decoded": "Lanczos3 on decoded"}
    for ax, key, name in zip(fig.subplots(1, 2), ("psnr", "ssim"), ("PSNR-Y (dB)", "SSIM-Y")):
        for m, label in labels.items():
            ax.plot(bpp, [t[f"{m}_{key}"] for t in table.values()], "o-", label=label)
        first = next(iter(table.values()))
        ax.axhline(first[f"pixel_original_{key}"], color="grey", ls="--", label="pixel SR net on original LR")
        ax.axhline(first[f"lanczos_original_{key}"], color="grey", ls=":", label="Lanczos3 on original LR")
        ax.set(xlabel="bpp (of the LR image)", ylabel=name, title=f"×4 super-resolution: {name}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    save_figure(fig, out / "superres_quality.png")


def _markdown(table: dict[float, dict[str, float]], cost: dict[str, float], n: int, rel: str) -> str:
    gains = {r: t["latent_psnr"] - t["lanczos_decoded_psnr"] for r, t in table.items()}
    worst = min(gains.values())
    first = next(iter(table.values()))
    lines = [
        "## ×4 super-resolution (superres)", "",
        f"{n} images of /work/shared/data/sr_test ({', '.join(SETS)} in that order), HR cropped to a multiple "
        "of 4, LR = bicubic ÷4 (PIL); the LR is coded with `base` at every target bpp (bpp of the LR). "
        "Latents: `openjai.tasks.superres` on the entropy-decoded ŷ (a fine-tuned copy of g_s's architecture "
        "+ a ×4 pixel-shuffle head, no codec g_s). Anchors: Lanczos3 and a pixel SR net (the same head, "
        "trained here on the same data and steps) on the decoded LR and on the original LR. "
        f"PSNR-Y / SSIM-Y (BT.709 luma, {FACTOR}-px border shaved), mean over images. Where `base`'s lowest "
        "rate lies above a target, the lowest-rate stream is used (the mean bpp column is what was coded).", "",
        "| target bpp | mean bpp | latents | pixel net on decoded | Lanczos3 on decoded | latents − Lanczos3 dec. |",
        "|---|---|---|---|---|---|",
    ]
    for r, t in table.items():
        lines.append(f"| {r:g} | {t['bpp']:.3f} | {t['latent_psnr']:.2f} / {t['latent_ssim']:.3f} | "
                     f"{t['pixel_decoded_psnr']:.2f} / {t['pixel_decoded_ssim']:.3f} | "
                     f"{t['lanczos_decoded_psnr']:.2f} / {t['lanczos_decoded_ssim']:.3f} | {gains[r]:+.2f} dB |")
    lines += [
        "", f"Uncoded LR: Lanczos3 {first['lanczos_original_psnr']:.2f} dB / {first['lanczos_original_ssim']:.3f}, "
        f"pixel SR net {first['pixel_original_psnr']:.2f} dB / {first['pixel_original_ssim']:.3f} (PSNR-Y / SSIM-Y).",
        "", f"![quality]({rel}/superres_quality.png)", "",
        f"Cost for a {COST_LR[0]}×{COST_LR[1]} LR → {COST_LR[0] * FACTOR}×{COST_LR[1] * FACTOR} ({COST_THREADS} "
        "threads, median of 5; kMAC per HR pixel; entropy decoding and hyper decoders, common to both, "
        "not counted):", "",
        "| path | kMAC/pixel | ms |", "|---|---|---|",
        f"| decode_latents | common | {cost['entropy_ms']:.0f} |",
        f"| **latent path**: + superres network | {cost['net_kmac']:.2f} | {cost['entropy_ms'] + cost['net_ms']:.0f} |",
        f"| openjai.decode (g_s {cost['g_s_kmac']:.2f} kMAC per HR pixel, layers) | {cost['g_s_kmac']:.2f} | "
        f"{cost['decode_ms']:.0f} |",
        f"| **decode + pixel SR net** | {cost['g_s_kmac'] + cost['anchor_kmac']:.2f} | "
        f"{cost['decode_ms'] + cost['anchor_ms']:.0f} |", "",
        f"**Bar.** Latents beat Lanczos3 on the decoded LR by ≥ {BAR_DB:g} dB PSNR-Y at every rate: "
        f"{'reached' if worst >= BAR_DB else 'missed'} (smallest gain {worst:+.2f} dB).", "",
    ]
    return "\n".join(lines)


def run(out: Path, rates: list[float], limit: int | None = None) -> str:
    """Evaluate, write ``out/superres.csv`` and the plot; return the markdown section."""
    images = test_images(limit)
    rows = _evaluate(images, rates)
    _write_csv(rows, out / "superres.csv")
    table = summary(rows, rates)
    cost = costs()
    _plots(table, out)
    return _markdown(table, cost, len(images), out.name)
