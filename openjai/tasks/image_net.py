"""The latent → image networks of the image tasks (superres, denoise), without the codec's g_s.

    ŷ (1, M, h, w) ─synthesis (g_s's architecture, own weights)─▶ x (1, 3, 16h, 16w)
                   ─[head: x upsampled ×f + conv stack → pixel shuffle]─▶ (1, 3, 16fh, 16fw)

The synthesis is built by ``codec.transforms.synthesis`` (the architecture) and starts from a
*copy* of ``base``'s g_s weights before fine-tuning (train_image.py), so at run time a task
never calls the codec's own g_s: its weights are the task's, in its safetensors file.
The head (``ResidualHead``: ×4 for superres, ×1 at half resolution for denoise) learns what
the synthesis alone cannot; the superres head on its own is the pixel-domain SR anchor on
decoded pixels.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import openjai

from ..codec.config import CodecConfig
from ..codec.transforms import synthesis
from ..errors import ModelError
from .registry import load_task_weights


class ResidualHead(nn.Module):
    """RGB (B, 3, h, w) → (B, 3, fh, fw): the input upsampled (bicubic ×f, or as it is for f = 1)
    plus a learned residual: a stack of ``depth`` 3×3 convs (ReLU between them) at 1/``unshuffle``
    of the input resolution (pixel unshuffle in, pixel shuffle ×f·unshuffle out, as FFDNet works
    at half resolution). The last conv starts at zero: the plain upsampling at step 0.

    Its shape is read back from a state dict (``from_state``), so weights files carry it."""

    def __init__(self, factor: int = 4, width: int = 32, depth: int = 5, unshuffle: int = 1) -> None:
        super().__init__()
        cin, cout = 3 * unshuffle**2, 3 * (factor * unshuffle) ** 2
        layers: list[nn.Module] = [nn.PixelUnshuffle(unshuffle)] if unshuffle > 1 else []
        layers += [nn.Conv2d(cin, width, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
        for conv in (m for m in layers if isinstance(m, nn.Conv2d)):
            # He init: torch's default shrinks a plain ReLU stack's signal ~6× per layer, so a deep
            # head starts (and stayed, in training) at the plain upsampling
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            nn.init.zeros_(conv.bias)
        last = nn.Conv2d(width, cout, 3, padding=1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.body = nn.Sequential(*layers, last, nn.PixelShuffle(factor * unshuffle))
        self.factor, self.unshuffle = factor, unshuffle

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.unshuffle > 1:  # the input must split into whole cells: pad, then crop back
            h, w = x.shape[-2:]
            pad = (0, -w % self.unshuffle, 0, -h % self.unshuffle)
            return self._forward(F.pad(x, pad, mode="replicate"))[..., : h * self.factor, : w * self.factor]
        return self._forward(x)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        up = x if self.factor == 1 else F.interpolate(x, scale_factor=self.factor, mode="bicubic", align_corners=False)
        return up + self.body(x)

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor], prefix: str = "") -> ResidualHead | None:
        """A head shaped like the one whose weights ``state`` holds under ``prefix`` (None if none)."""
        body = prefix + "body."
        convs = sorted((int(k.removeprefix(body).removesuffix(".weight")), v.shape) for k, v in state.items()
                       if k.startswith(body) and k.endswith(".weight"))
        if not convs:
            return None
        (_, first), (_, last) = convs[0], convs[-1]
        unshuffle = math.isqrt(first[1] // 3)
        return cls(math.isqrt(last[0] // 3) // unshuffle, first[0], len(convs), unshuffle)


class LatentImageNet(nn.Module):
    """ŷ → image: g_s's architecture (own weights), then an optional ResidualHead."""

    def __init__(self, cfg: CodecConfig, head: ResidualHead | None = None) -> None:
        super().__init__()
        self.synthesis = synthesis(cfg)
        self.head = head

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
    def from_codec(cls, head: ResidualHead | None = None) -> LatentImageNet:
        """A new network whose synthesis starts as a copy of ``base``'s g_s (training start)."""
        lc = openjai.load_model("base")
        net = cls(lc.model.cfg, head)
        net.synthesis.load_state_dict(lc.model.g_s.state_dict())
        return net


@lru_cache(maxsize=4)
def load_net(task: str, codec_model_id: str, factor: int) -> LatentImageNet:
    """The registered network of ``task`` for latents of ``codec_model_id`` (TaskUnavailableError otherwise)."""
    state = load_task_weights(task, codec_model_id)
    net = LatentImageNet(openjai.load_model("base").model.cfg, ResidualHead.from_state(state, "head."))
    if net.factor != factor:
        raise ModelError(f"the {task} weights scale by {net.factor}, not {factor}: re-export them")
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
