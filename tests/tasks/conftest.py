"""Fixtures of the task tests: small real streams of the bundled sample photo.

Tests that need ResNet-50 (the classification anchor and tail, fetched by the set-up step)
skip when it is missing, except under ``make test`` (OPENJAI_REQUIRE_MODELS=1), where its
absence is a failure.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import openjai
from openjai.tasks.resnet import RESNET_FILE, models_dir, resized_crop

SAMPLE = Path(openjai.__file__).parent / "data" / "sample.png"


@pytest.fixture(scope="session")
def resnet_available() -> None:
    if not (models_dir() / RESNET_FILE).is_file():
        if os.environ.get("OPENJAI_REQUIRE_MODELS"):
            pytest.fail(f"ResNet-50 weights missing under {models_dir()}: `make setup` should have made them")
        pytest.skip(f"ResNet-50 weights missing under {models_dir()} (run `make setup`)")


@pytest.fixture(scope="session")
def sample_crop() -> np.ndarray:
    """The bundled sample photo (an espresso) prepared as the classifier is evaluated: 256 resize, 224² centre."""
    with Image.open(SAMPLE) as im:
        return resized_crop(im, 256, 224)


@pytest.fixture(scope="session")
def base_stream(sample_crop: np.ndarray) -> bytes:
    return openjai.encode(sample_crop, quality=30)


@pytest.fixture(scope="session")
def high_stream(sample_crop: np.ndarray) -> bytes:
    return openjai.encode(sample_crop[:64, :64], quality=10, model="high")


def sigterm_on_second_call(fn: Callable) -> Callable:
    """``fn``, sending this process SIGTERM during its second call: a `kill` arriving mid-step in
    a training loop (train/stop.py must let the step finish and the checkpoint keep it)."""
    calls = []

    def wrapped(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return fn(*args, **kwargs)

    return wrapped
