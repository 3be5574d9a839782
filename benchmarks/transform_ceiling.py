"""The quality a model cannot pass, however many bits it spends: its transform ceiling.

    python benchmarks/transform_ceiling.py ../shared/data/val [MODEL ...] [--threads 2]

MODEL: a shipped point (``base``, ``high``), a weights file or a training checkpoint
(default: every shipped point, aliases left out). For each photo (cropped to a multiple of 16 px) it prints the
RGB PSNR of g_s(g_a(x)) with the latents *not* quantized, at the model's top rate point,
beside a linear yardstick with the same number of latent values: a PCA of 16×16×3 pixel
blocks keeping M components per block (one latent position of a model covers 16×16 pixels
and holds M values), fitted on the *other* photos (leave one out), and the same PCA with
1.5·M and 2·M components.

Why: a model coded at a high rate approaches its ceiling (measured on ``high``, stop 13: a
toy-poodle photo gains 0.06 dB from β 9 to 11 while its rate goes 1.48 → 2.13 bpp), so the
ceiling, not training, decides the top of the RD curve. If a model's ceiling sits near the
PCA with M components and far below 2·M, the latent width M is what limits it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from openjai import image
from openjai.codec import zoo
from openjai.codec.model import Codec
from openjai.eval.cttc import find_images
from openjai.eval.metrics.psnr import psnr_from_mse, psnr_rgb
from openjai.train.checkpoint import load_any_model

BLOCK = 16  # pixels per latent position, each side
PCA_FACTORS = (1.0, 1.5, 2.0)


def load_model(spec: str) -> tuple[Codec, str]:
    """A shipped point name, a weights file or a checkpoint, as an eval-mode model and a label."""
    if spec in zoo.entries():
        lc = zoo.load(spec)
        return lc.on("cpu").eval(), f"{spec} ({lc.model_id})"
    model, label = load_any_model(Path(spec))
    return model.eval(), label


@torch.no_grad()
def ceiling(model: Codec, rgb: np.ndarray) -> float:
    """RGB PSNR of g_s(g_a(x)) at the top rate point, latents unquantized, output rounded to 8 bits."""
    x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255
    beta = torch.tensor([float(model.cfg.levels - 1)])
    y = model.g_a(x).float() * model.gain(beta)
    x_hat = model.g_s(y * model.inverse_gain(beta)).float().clamp(0, 1)
    out = torch.round(x_hat[0] * 255).permute(1, 2, 0).numpy().astype(np.uint8)
    return psnr_rgb(rgb, out)


def blocks(rgb: np.ndarray) -> np.ndarray:
    """(blocks, 16·16·3) float64 rows of a photo whose sides are multiples of 16."""
    h, w, _ = rgb.shape
    b = rgb.reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK, 3).transpose(0, 2, 1, 3, 4)
    return b.reshape(-1, BLOCK * BLOCK * 3).astype(np.float64)


def pca_psnrs(all_blocks: list[np.ndarray], keep: list[int]) -> list[list[float]]:
    """For each photo, PSNR of its blocks projected on the top-k principal directions of the
    other photos' blocks, for each k in ``keep``."""
    sums = [b.sum(0) for b in all_blocks]
    grams = [b.T @ b for b in all_blocks]
    total_n = sum(len(b) for b in all_blocks)
    total_sum, total_gram = sum(sums), sum(grams)
    out = []
    for b, s, g in zip(all_blocks, sums, grams):
        n = total_n - len(b)
        mean = (total_sum - s) / n
        cov = (total_gram - g) / n - np.outer(mean, mean)
        _, vecs = np.linalg.eigh(cov)  # ascending eigenvalues
        centred = b - mean
        row = []
        for k in keep:
            basis = vecs[:, -k:]
            rec = centred @ basis @ basis.T + mean
            row.append(psnr_from_mse(float(np.mean((np.clip(np.round(rec), 0, 255) - b) ** 2)), 255.0))
        out.append(row)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path, help="folder of photos, e.g. ../shared/data/val")
    ap.add_argument("models", nargs="*", help="shipped points, weights files or checkpoints (default: all shipped)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    shipped = sorted(point for point, e in zoo.entries().items() if e.source == point)  # aliases left out
    models = [load_model(m) for m in (args.models or shipped)]
    widths = {m.cfg.latent_channels for m, _ in models}
    keep = sorted({int(round(f * w)) for w in widths for f in PCA_FACTORS})

    paths = [p for _, p in find_images(args.folder)]
    photos = []
    for p in paths:
        rgb = image.load(p).rgb
        h, w = rgb.shape[0] // BLOCK * BLOCK, rgb.shape[1] // BLOCK * BLOCK
        photos.append(np.ascontiguousarray(rgb[:h, :w]))
    pca = pca_psnrs([blocks(r) for r in photos], keep)
    rows = [[ceiling(m, r) for m, _ in models] for r in photos]

    for i, (m, label) in enumerate(models):
        print(f"model {i + 1}: {label}, M = {m.cfg.latent_channels}, N = {m.cfg.channels}, "
              f"top rate point β = {m.cfg.levels - 1}")
    head = [f"model {i + 1}" for i in range(len(models))] + [f"PCA {k}" for k in keep]
    print(f"\n{'photo':42s}" + "".join(f"{h:>10s}" for h in head) + "   (RGB PSNR, dB)")
    for p, row, prow in zip(paths, rows, pca):
        print(f"{p.name[:42]:42s}" + "".join(f"{v:10.2f}" for v in row + prow))
    means = np.mean(np.array([r + q for r, q in zip(rows, pca)]), 0)
    print(f"{'mean':42s}" + "".join(f"{v:10.2f}" for v in means))


if __name__ == "__main__":
    main()
