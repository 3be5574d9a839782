"""The distillation set of the latent classifier: ŷ with ResNet-50's stride-16 features and logits.

    python -m openjai.tasks.distill_set runs/classify/set --crops 2000 [--data /work/shared/data/train]

No labels: each sample is either a random 224² crop of an unlabelled photo (short side resized
to 240…400, random position; photos of ``--data`` and the Debian wallpapers) or, with
probability ``--composites``, a composite of 1–3 tuxpaint photo stamps (animals, food,
objects: ImageNet-like subjects) over such a photo (composite.py, training stamps only);
flipped half the time, coded with ``base`` at two random rates; the teacher, ResNet-50, sees
the ORIGINAL crop. Written in chunks of ``CHUNK`` crops
(``chunk_00000.safetensors`` …), each drawn from its own seed, atomically: rerunning
resumes at the first missing chunk and never changes a written one.

ŷ comes from the public path: the stream is coded (layers off: they do not change ŷ) and
entropy-decoded with ``openjai.decode_latents``; the crop's ŷ is its top-left 14×14 (the
rest covers the coder's padding).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save

from .. import api, image
from ..codec.coder import Encoder
from ..errors import exit_status
from ..files import atomic_write
from ..train.data import list_images
from . import SHARED_DATA
from .composite import compose, stamps, wallpapers
from .resnet import load_resnet50, preprocess, resized_crop

CHUNK = 32
CROP = 224
LOW_RATE, MID_RATE = 2.0, 5.5  # base's rate parameter: ~0.09 bpp and up; the top point (7) is ~0.45-1 bpp


def latent_of(lc: api.LoadedCodec, rgb: np.ndarray, rate: float) -> tuple[torch.Tensor, float]:
    """ŷ (M, h/16, w/16) of ``rgb`` coded at the rate parameter ``rate``, and the stream's bpp."""
    inp = image.load(rgb)
    data = Encoder(lc, inp.rgb, inp.colour, None, 0, False, False, False).code(rate)
    h, w = rgb.shape[:2]
    y = api.decode_latents(data, model=lc).y_hat[0, :, : -(-h // 16), : -(-w // 16)]
    return y, api.read_info(data).bpp


def make_chunk(index: int, photos: Sequence[Path], composites: float) -> dict[str, torch.Tensor]:
    """Chunk ``index``: ``CHUNK`` crops, each with ŷ at two rates, the teacher's features at both
    joins (resnet.JOIN_CHANNELS) and its logits."""
    rng = np.random.default_rng(1000 + index)
    lc = api.load_model("base")
    net, _ = load_resnet50()
    crops, ys, bpps = [], [], []
    for _ in range(CHUNK):
        if rng.random() < composites:
            crop = compose(photos[rng.integers(len(photos))], stamps("train"), CROP, CROP, rng).rgb
        else:
            with Image.open(photos[rng.integers(len(photos))]) as im:
                crop = resized_crop(im, int(rng.integers(240, 401)), CROP, tuple(rng.random(2)))
        if rng.random() < 0.5:
            crop = crop[:, ::-1].copy()
        pair = [latent_of(lc, crop, float(rng.uniform(lo, 7.0))) for lo in (LOW_RATE, MID_RATE)]
        crops.append(crop)
        ys.append(torch.stack([y for y, _ in pair]))
        bpps.append([b for _, b in pair])
    with torch.no_grad():
        layer2 = net.features(preprocess(np.stack(crops)), "layer2")
        layer3 = net.layer3(layer2)
        logits = net.tail(layer3)
    return {"y_hat": torch.stack(ys).half(), "feat_layer2": layer2.half(), "feat_layer3": layer3.half(),
            "logits": logits.half(), "bpp": torch.tensor(bpps, dtype=torch.float32)}


def build(out: Path, crops: int, data: Path, composites: float, start: int = 0) -> None:
    """Write the missing chunks of ``out`` from number ``start`` on, up to ``crops`` crops in all
    (two builders with different ``start`` fill one set side by side)."""
    photos = tuple(list_images(data)) + wallpapers()
    out.mkdir(parents=True, exist_ok=True)
    for index in range(start, -(-crops // CHUNK)):
        path = out / f"chunk_{index:05d}.safetensors"
        if not path.exists():
            atomic_write(path, save(make_chunk(index, photos, composites)))
            print(f"{path}", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--crops", type=int, default=2048)
    p.add_argument("--data", type=Path, default=SHARED_DATA / "train")
    p.add_argument("--composites", type=float, default=0.5,
                   help="fraction of samples that are stamp composites instead of photo crops")
    p.add_argument("--start", type=int, default=0, help="first chunk number to write")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    return exit_status(lambda: build(args.out, args.crops, args.data, args.composites, args.start))


if __name__ == "__main__":
    sys.exit(main())
