"""Committed streams must decode to the committed latents and images, and the encoder must
still write them byte for byte. A failure means decoding changed: if that was deliberate, run
tests/conformance/regenerate.py and commit the new streams with the change."""

import hashlib
import json
import sys
from pathlib import Path

import pytest

import openjai

HERE = Path(__file__).resolve().parent / "conformance"
sys.path.insert(0, str(HERE))
import regenerate  # noqa: E402

MANIFEST = json.loads((HERE / "MANIFEST.json").read_text())
STREAMS = sorted(MANIFEST["streams"])


@pytest.mark.parametrize("point", sorted(MANIFEST["models"]))
def test_made_with_the_shipped_model(point):
    assert MANIFEST["models"][point] == openjai.load_model(point).model_id, (
        f"the shipped weights of {point!r} changed: regenerate the conformance streams deliberately")


@pytest.mark.parametrize("name", STREAMS)
def test_decode(name):
    data = (HERE / f"{name}.jai").read_bytes()
    expect = MANIFEST["streams"][name]
    assert hashlib.sha256(data).hexdigest() == expect["stream_sha256"]
    assert regenerate.latent_digest(data) == expect["latents_sha256"]
    assert regenerate.image_digest(data) == expect["image_sha256"]


@pytest.mark.parametrize("name", STREAMS)
def test_encoder_reproduces_stream(name):
    img, kwargs = regenerate.inputs()[name]
    assert hashlib.sha256(regenerate.encode(img, kwargs)).hexdigest() == MANIFEST["streams"][name]["stream_sha256"]
