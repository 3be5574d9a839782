"""ImageNet classification from the entropy-decoded latents, without the synthesis transform.

    .jai ─decode_latents─▶ ŷ (128, H/16, W/16) ─bridge─▶ ≈ a ResNet-50 feature map at stride 16
         ─ReLU─▶ the rest of ResNet-50 ─▶ 1000 logits

The bridge (JPEG AI's approach, see DESIGN.md "Tasks on latents") is a small stride-1
network at the latent resolution; it was trained to reproduce the features ResNet-50 computes
from the ORIGINAL pixels at one of its two stride-16 joins (resnet.JOIN_CHANNELS: layer2's
output as layer3 reads it, or layer3's), by feature distillation without labels
(train_classify.py). The rest of ResNet-50 runs unchanged from there, so its weights come from
the set-up step (resnet.py); the bridge's come from the task registry (weights/classify.*).
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import nn

from .. import api
from .registry import load_task_weights
from .resnet import JOIN_CHANNELS, load_resnet50

TASK = "classify"
TOP = 5


class ResBlock(nn.Module):
    """x + conv3×3(ReLU(conv3×3(ReLU(x))))."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(torch.relu(self.conv1(torch.relu(x))))


class BottleneckBlock(nn.Module):
    """x + conv1×1(ReLU(conv3×3(ReLU(conv1×1(ReLU(x)))))) through ``inner`` < ``width`` channels:
    512 wide through 128 costs a quarter of a 256-wide ResBlock, so more depth for the same
    budget. The last conv starts at zero (each block starts as the identity)."""

    def __init__(self, width: int, inner: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, inner, 1)
        self.conv2 = nn.Conv2d(inner, inner, 3, padding=1)
        self.conv3 = nn.Conv2d(inner, width, 1)
        nn.init.zeros_(self.conv3.weight)
        nn.init.zeros_(self.conv3.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv3(torch.relu(self.conv2(torch.relu(self.conv1(torch.relu(x))))))


class Bridge(nn.Module):
    """ŷ → the ResNet-50 features of ``join`` ("layer2" or "layer3") at the same stride 16.

    Inputs and outputs are normalised per channel with fixed statistics of the distillation
    set (buffers), so the convs work on unit-scale numbers whatever the latents' scale.
    """

    def __init__(self, latent_channels: int = 128, width: int = 256, blocks: int = 2, join: str = "layer3",
                 inner: int = 0) -> None:
        super().__init__()
        self.join, self.inner = join, inner
        channels = JOIN_CHANNELS[join]
        self.register_buffer("in_mean", torch.zeros(latent_channels))
        self.register_buffer("in_std", torch.ones(latent_channels))
        self.register_buffer("out_mean", torch.zeros(channels))
        self.register_buffer("out_std", torch.ones(channels))
        self.stem = nn.Conv2d(latent_channels, width, 3, padding=1)
        self.blocks = nn.Sequential(*[BottleneckBlock(width, inner) if inner else ResBlock(width) for _ in range(blocks)])
        self.head = nn.Conv2d(width, channels, 1)

    def normalised(self, y_hat: torch.Tensor) -> torch.Tensor:
        """The prediction of the normalised features (what training compares)."""
        x = (y_hat - self.in_mean[:, None, None]) / self.in_std[:, None, None]
        return self.head(torch.relu(self.blocks(self.stem(x))))

    def forward(self, y_hat: torch.Tensor) -> torch.Tensor:
        f = self.normalised(y_hat) * self.out_std[:, None, None] + self.out_mean[:, None, None]
        return torch.relu(f)  # both joins are post-ReLU

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor]) -> Bridge:
        """A bridge shaped after its weights (width, blocks, their kind and the join read from the tensors)."""
        width, latent_channels = state["stem.weight"].shape[:2]
        blocks = sum(1 for k in state if k.startswith("blocks.") and k.endswith(".conv1.weight"))
        inner = state["blocks.0.conv1.weight"].shape[0] if "blocks.0.conv3.weight" in state else 0
        join = {c: j for j, c in JOIN_CHANNELS.items()}[state["head.weight"].shape[0]]
        bridge = cls(latent_channels, width, blocks, join, inner)
        bridge.load_state_dict(state)
        return bridge.eval()


@lru_cache(maxsize=2)
def load_bridge(codec_model_id: str) -> Bridge:
    """The registered bridge for latents of ``codec_model_id`` (TaskUnavailableError otherwise)."""
    return Bridge.from_state(load_task_weights(TASK, codec_model_id))


def image_latents(y_hat: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """ŷ restricted to the image (the coder pads to a multiple of 64; the rest covers padding)."""
    return y_hat[..., : -(-height // 16), : -(-width // 16)]


def latent_logits(y_hat: torch.Tensor, bridge: Bridge) -> torch.Tensor:
    """ImageNet logits (N, 1000) from image latents (N, M, h, w): bridge + ResNet-50's tail."""
    net, _ = load_resnet50()
    with torch.no_grad():
        return net.tail(bridge(y_hat), bridge.join)


def stream_logits(data: bytes) -> torch.Tensor:
    """Logits (1, 1000) of a .jai stream; never runs g_s."""
    info = api.read_info(data)
    bridge = load_bridge(info.model_id)  # refuses another model's stream before any decoding
    lat = api.decode_latents(data)
    return latent_logits(image_latents(lat.y_hat, info.height, info.width), bridge)


def classify(data: bytes) -> list[tuple[int, str, float]]:
    """Top-5 ImageNet classes of the image in a .jai stream: (class index, name, probability)."""
    probs = torch.softmax(stream_logits(data)[0], 0)
    _, names = load_resnet50()
    p, idx = probs.topk(TOP)
    return [(int(i), names[int(i)], float(q)) for q, i in zip(p, idx)]
