"""The latent → image networks of the image tasks (superres, denoise), without the codec's g_s.

    ŷ (1, M, h, w) ─synthesis (g_s's architecture, own weights)─▶ x (1, 3, 16h, 16w)
                   ─[×f head: bicubic ×f + conv stack → pixel shuffle ×f]─▶ (1, 3, 16fh, 16fw)

The synthesis is built by ``codec.transforms.synthesis`` (the architecture) and starts from a
*copy* of ``base``'s g_s weights before fine-tuning (train_image.py), so at run time a task
never calls the codec's own g_s: its weights are the task's, in its safetensors file.
The upsampling head (``UpHead``) is also the pixel-domain SR anchor on decoded pixels.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import openjai

from ..codec.config import CodecConfig
from ..codec.transforms import synthesis
from .registry import load_task_weights


class UpHead(nn.Module):
    """RGB (B, 3, h, w) → (B, 3, fh, fw): bicubic ×f plus a learned residual (3×3 convs at the
    input resolution, then pixel shuffle). The last conv starts at zero: bicubic at step 0."""

    def __init__(self, factor: int = 4, width: int = 32, depth: int = 5) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
        last = nn.Conv2d(width, 3 * factor * factor, 3, padding=1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.body = nn.Sequential(*layers, last, nn.PixelShuffle(factor))
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(x, scale_factor=self.factor, mode="bicubic", align_corners=False)
        return up + self.body(x)


class LatentImageNet(nn.Module):
    """ŷ → image: g_s's architecture (own weights), then an optional ×``factor`` UpHead."""

    def __init__(self, cfg: CodecConfig, factor: int = 1) -> None:
        super().__init__()
        self.synthesis = synthesis(cfg)
        self.head = UpHead(factor) if factor > 1 else None

    @property
    def factor(self) -> int:
        return 1 if self.head is None else self.head.factor

    def forward(self, y_hat: torch.Tensor) -> torch.Tensor:
        x = self.synthesis(y_hat)
        return x if self.head is None else self.head(x)

    def infer(self, y_hat: torch.Tensor) -> torch.Tensor:
        """``forward`` without gradients."""
        with torch.no_grad():
            return self(y_hat)

    @classmethod
    def from_codec(cls, factor: int = 1) -> LatentImageNet:
        """A new network whose synthesis starts as a copy of ``base``'s g_s (training start)."""
        lc = openjai.load_model("base")
        net = cls(lc.model.cfg, factor)
        net.synthesis.load_state_dict(lc.model.g_s.state_dict())
        return net


@lru_cache(maxsize=4)
def load_net(task: str, codec_model_id: str, factor: int) -> LatentImageNet:
    """The registered network of ``task`` for latents of ``codec_model_id`` (TaskUnavailableError otherwise)."""
    state = load_task_weights(task, codec_model_id)
    net = LatentImageNet(openjai.load_model("base").model.cfg, factor)
    net.load_state_dict(state)
    return net.eval()


def to_uint8(x: torch.Tensor, height: int, width: int) -> np.ndarray:
    """(1, 3, H', W') in [0, 1] → uint8 (height, width, 3), cropped (the coder pads to 64)."""
    x = x[0, :, :height, :width].clamp(0, 1).mul(255).round().to(torch.uint8)
    return np.ascontiguousarray(x.permute(1, 2, 0).numpy())


def run_task(task: str, data: bytes, factor: int) -> np.ndarray:
    """uint8 RGB (factor·H, factor·W, 3) of ``task``'s network on a stream's latents (never g_s)."""
    info = openjai.read_info(data)
    net = load_net(task, info.model_id, factor)  # refuses another model's stream before decoding
    lat = openjai.decode_latents(data)
    return to_uint8(net.infer(lat.y_hat), factor * info.height, factor * info.width)
