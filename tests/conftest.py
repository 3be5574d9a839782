"""Shared fixtures: the shipped model, a tiny random model, and small test images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from openjai.codec.config import TINY
from openjai.codec.model import Codec
from openjai.codec.weights import export, load_codec_weights

SAMPLE = Path(__file__).resolve().parents[1] / "openjai" / "data" / "sample.png"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shipped():
    """The default shipped model (what users get)."""
    import openjai

    return openjai.load_model()


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """A randomly initialised tiny model exported like a shipped one (fast; exercises every code path)."""
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("tiny") / "tiny.safetensors"
    export(Codec(TINY), path)
    return path


@pytest.fixture(scope="session")
def tiny(tiny_weights):
    return load_codec_weights(tiny_weights)


@pytest.fixture(scope="session")
def sample_rgb() -> np.ndarray:
    from PIL import Image

    with Image.open(SAMPLE) as im:
        return np.asarray(im.convert("RGB")).copy()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))
