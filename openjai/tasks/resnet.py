"""ResNet-50 **v1** (He et al. 2016, Keras ``ResNet50(weights="imagenet")``) in plain torch.

The pixel-domain classification anchor, and the teacher and tail of the latent classifier::

    RGB uint8 ─preprocess (caffe: BGR, ×255, −mean)─▶ stem (7×7/2, maxpool/2)
      ─▶ layer1 (/4) ─▶ layer2 (/8) ─▶ [::2, ::2] ─▶ layer3 (/16, 1024 ch) ─▶ layer4 (/32) ─▶ pool ─▶ fc
                                       ▲                         ▲
                        "layer2" (512 ch, /16)         "layer3" (1024 ch, /16)
                 the latent classifier's bridge joins at one of these (classify.py)

v1, not torchvision's v1.5: the stride 2 of the first block of layer2..4 sits on its first 1×1
conv (and on the shortcut), so layer3 reads only the even rows and columns of layer2's output.
Here that subsampling is explicit and layer3's first block has stride 1 (the same numbers): the
subsampled map is a stride-16 feature map like ŷ's. Parameter names follow torchvision's. The
weights come from the set-up step (convert_resnet.py writes them under ``models_dir()``);
nothing downloads at run time.
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from safetensors import safe_open
from torch import nn

from ..errors import ModelError

if TYPE_CHECKING:
    from PIL import Image

RESNET_FILE = "resnet50_imagenet.safetensors"
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
JOIN_CHANNELS = {"layer2": 512, "layer3": 1024}  # the feature maps at stride 16
#: the stages that run from each join's feature map, before the pooling and fc
TAIL_STAGES = {"layer2": ("layer3", "layer4"), "layer3": ("layer4",)}


def models_dir() -> Path:
    """Where the set-up step keeps converted anchor networks: ``$OPENJAI_MODELS`` or ``<venv>/models``."""
    return Path(os.environ.get("OPENJAI_MODELS") or Path(sys.prefix) / "models")


class Bottleneck(nn.Module):
    """1×1 (stride here, v1) → 3×3 → 1×1 ×4, with a projected shortcut where the shape changes."""

    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        cout = 4 * width
        self.conv1 = nn.Conv2d(cin, width, 1, stride, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


def _stage(cin: int, width: int, blocks: int, stride: int) -> nn.Sequential:
    return nn.Sequential(Bottleneck(cin, width, stride), *[Bottleneck(4 * width, width, 1) for _ in range(blocks - 1)])


class ResNet50(nn.Module):
    """ResNet-50 v1; ``forward`` maps preprocessed images to logits (no softmax)."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)  # Keras pads with zeros after the ReLU: the same maximum
        self.layer1 = _stage(64, 64, 3, 1)
        self.layer2 = _stage(256, 128, 4, 2)
        self.layer3 = _stage(512, 256, 6, 1)  # on layer2's output subsampled by 2 (see the module doc)
        self.layer4 = _stage(1024, 512, 3, 2)
        self.fc = nn.Linear(2048, num_classes)

    def features(self, x: torch.Tensor, join: str = "layer3") -> torch.Tensor:
        """Preprocessed images (N, 3, H, W) → the stride-16 feature map ``join`` (N, C, H/16, W/16)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))[..., ::2, ::2]
        return x if join == "layer2" else self.layer3(x)

    def tail(self, f: torch.Tensor, join: str = "layer3") -> torch.Tensor:
        """The feature map ``join`` → logits: its TAIL_STAGES, global average pool, fc."""
        for name in TAIL_STAGES[join]:
            f = getattr(self, name)(f)
        return self.fc(torch.flatten(f.mean((2, 3)), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.features(x))


def preprocess(rgb: np.ndarray) -> torch.Tensor:
    """uint8 RGB (H, W, 3) or (N, H, W, 3) → float (N, 3, H, W) in Keras' caffe convention."""
    a = torch.from_numpy(np.ascontiguousarray(rgb)).float()
    if a.ndim == 3:
        a = a[None]
    bgr = a.flip(-1) - torch.tensor(CAFFE_MEAN_BGR)
    return bgr.permute(0, 3, 1, 2).contiguous()


@lru_cache(maxsize=2)
def load_resnet50(path: Path | None = None) -> tuple[ResNet50, tuple[str, ...]]:
    """The converted ImageNet ResNet-50 (eval mode) and its 1000 class names."""
    path = Path(path) if path is not None else models_dir() / RESNET_FILE
    if not path.is_file():
        raise ModelError(f"ResNet-50 weights {path} are missing: run `make setup` (or python -m "
                         f"openjai.tasks.convert_resnet) to fetch and convert them")
    try:
        with safe_open(str(path), framework="pt") as f:
            state = {k: f.get_tensor(k) for k in f.keys()}
            names = tuple((f.metadata() or {}).get("classes", "").split("\n"))
    except Exception as e:  # safetensors raises its own types for truncated or foreign files
        raise ModelError(f"{path} is not a readable ResNet-50 weights file ({e}); rerun `make setup`") from None
    net = ResNet50()
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        raise ModelError(f"{path} does not hold ResNet-50 v1 weights: {str(e).splitlines()[0]}") from None
    if len(names) != 1000:
        raise ModelError(f"{path} lacks the 1000 ImageNet class names in its metadata; rerun `make setup`")
    return net.eval(), names


def resized_crop(im: Image.Image, short_side: int, size: int = 224,
                 corner: tuple[float, float] = (0.5, 0.5)) -> np.ndarray:
    """Resize (bilinear) so the short side is ``short_side``, then crop ``size``² at ``corner``
    (fractions of the free room; (0.5, 0.5) is the evaluation's centre crop of a 256 resize)."""
    from PIL import Image

    im = im.convert("RGB")
    f = short_side / min(im.size)
    w, h = max(size, round(im.width * f)), max(size, round(im.height * f))
    im = im.resize((w, h), Image.BILINEAR)
    left, top = round((w - size) * corner[0]), round((h - size) * corner[1])
    return np.asarray(im.crop((left, top, left + size, top + size)), dtype=np.uint8).copy()
