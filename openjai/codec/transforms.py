"""Analysis/synthesis transforms (Ballé et al. 2018; Minnen et al. 2018 mean branch).

    x ─g_a─▶ y (M, /16)        g_a: 4 × [conv5×5 stride 2], GDN between
    ŷ ─g_s─▶ x̂                 g_s: 4 × [transposed conv5×5 stride 2], IGDN between
    y' ─h_a─▶ z (Z, /64)       h_a: conv3×3, ReLU, conv5×5 s2, ReLU, conv5×5 s2
    ẑ ─h_μ─▶ μ (M, /16)        h_μ: tconv5×5 s2, ReLU, tconv5×5 s2, ReLU, conv3×3
(h_σ, the integer-exact scale decoder, is in scale_decoder.py.)
"""

from __future__ import annotations

from torch import nn

from .config import CodecConfig
from .layers import GDN


def _conv(cin: int, cout: int, k: int = 5, stride: int = 2) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2)


def _tconv(cin: int, cout: int, k: int = 5) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, k, stride=2, padding=k // 2, output_padding=1)


def analysis(cfg: CodecConfig) -> nn.Sequential:
    n, m = cfg.channels, cfg.latent_channels
    return nn.Sequential(_conv(3, n), GDN(n), _conv(n, n), GDN(n), _conv(n, n), GDN(n), _conv(n, m))


def synthesis(cfg: CodecConfig) -> nn.Sequential:
    n, m = cfg.channels, cfg.latent_channels
    return nn.Sequential(
        _tconv(m, n), GDN(n, inverse=True), _tconv(n, n), GDN(n, inverse=True),
        _tconv(n, n), GDN(n, inverse=True), _tconv(n, 3),
    )


def hyper_analysis(cfg: CodecConfig) -> nn.Sequential:
    m, h, z = cfg.latent_channels, cfg.hyper_hidden, cfg.hyper_channels
    return nn.Sequential(_conv(m, h, 3, 1), nn.ReLU(), _conv(h, h), nn.ReLU(), _conv(h, z))


def hyper_mean(cfg: CodecConfig) -> nn.Sequential:
    m, h, z = cfg.latent_channels, cfg.hyper_hidden, cfg.hyper_channels
    return nn.Sequential(_tconv(z, h), nn.ReLU(), _tconv(h, h), nn.ReLU(), _conv(h, m, 3, 1))
