"""Model configuration: one frozen dataclass per architecture, named presets per operating point."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

CONTEXTS = ("none", "checkerboard")
#: distortion measures a model can be trained on (codec/distortion.py)
DISTORTIONS = ("mse", "mse+msssim", "ycbcr-mse", "ycbcr-mse+msssim", "ycbcr3-mse", "ycbcr3-mse+msssim")


@dataclass(frozen=True)
class CodecConfig:
    """Sizes and rate ladder of a mean-scale hyperprior codec with gain units.

    ``lambdas`` are the trained rate points (loss = λ·255²·MSE + bpp); the continuous rate
    parameter β ∈ [0, len(lambdas)-1] interpolates between them.
    """

    name: str = "openjai-base"
    channels: int = 64  # N: width of g_a / g_s
    latent_channels: int = 128  # M: channels of y
    hyper_channels: int = 64  # Z: channels of z
    hyper_hidden: int = 64  # width of h_a / h_μ
    scale_hidden: int = 48  # width of the integer-exact h_σ
    scale_levels: int = 64
    scale_min: float = 0.11
    scale_max: float = 64.0
    context: str = "none"  # "none" or "checkerboard" (context.py)
    context_hidden: int = 64  # width of the checkerboard context networks
    distortion: str = "mse"  # what training minimised; encoder refinement minimises the same
    lambdas: tuple[float, ...] = field(
        default_factory=lambda: tuple(round(0.00025 * (0.13 / 0.00025) ** (i / 7), 6) for i in range(8))
    )

    def __post_init__(self) -> None:
        if self.context not in CONTEXTS:
            raise ValueError(f"context must be one of {CONTEXTS}, got {self.context!r}")
        if self.distortion not in DISTORTIONS:
            raise ValueError(f"distortion must be one of {DISTORTIONS}, got {self.distortion!r}")

    @property
    def levels(self) -> int:
        return len(self.lambdas)

    def init_log_gains(self) -> list[float]:
        """Initial log-gains: quantizer step ∝ 1/sqrt(λ) (MSE-optimal at high rate)."""
        mid = math.sqrt(self.lambdas[0] * self.lambdas[-1])
        return [0.5 * math.log(lam / mid) for lam in self.lambdas]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "CodecConfig":
        data = json.loads(text)
        data["lambdas"] = tuple(data["lambdas"])
        return cls(**data)


TINY = CodecConfig(
    name="openjai-tiny-test",
    channels=8,
    latent_channels=16,
    hyper_channels=8,
    hyper_hidden=8,
    scale_hidden=8,
)
