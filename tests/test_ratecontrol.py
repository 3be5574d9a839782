"""Rate control (openjai/codec/ratecontrol.py): its guarantee, its size prediction, its cost."""

import numpy as np
import pytest

from openjai.bpp import bits_per_pixel
from openjai.codec.coder import Encoder
from openjai.codec.container import ColourMode
from openjai.codec.ratecontrol import OVERSHOOT, UNDERSHOOT, match_bpp


@pytest.fixture(scope="module")
def crop(sample_rgb):
    return np.ascontiguousarray(sample_rgb[:256, :320])


@pytest.fixture(scope="module")
def enc(shipped, crop):
    return Encoder(shipped, crop, ColourMode.RGB, None)


def test_latent_prediction_is_the_coded_latent_size(enc):
    for rate in (0.5, 3.0, 6.0):
        coded = len(enc.code(rate, layers=False))
        predicted = enc.latent_bpp(rate) * enc.width * enc.height / 8
        # the container's header and section table (~40 bytes) are not predicted
        assert 0 <= coded - predicted <= 64 + 0.01 * coded


@pytest.mark.parametrize("target", [0.15, 0.6, 3.0])
def test_search_meets_the_target_with_few_streams(enc, target):
    result = match_bpp(enc, target)
    assert result.bpp == bits_per_pixel(len(result.data), enc.width, enc.height)
    assert target * (1 - 2 * UNDERSHOOT) <= result.bpp <= target
    assert result.iterations <= 5  # the size prediction brackets the rate (a plain search codes ≥ 3–7)


def test_below_the_lowest_rate_only_the_allowance(enc):
    lowest = bits_per_pixel(len(enc.code(0.0)), enc.width, enc.height)
    target = lowest / (1 + OVERSHOOT / 2)
    result = match_bpp(enc, target)
    assert result.rate == 0.0 and result.bpp == lowest and target < result.bpp <= target * (1 + OVERSHOOT)


def test_kept_decoded_images_are_the_decoders(shipped, sample_rgb):
    """Rate control compares lattice weights on the images the encoder kept; they must be what
    the decoder makes of the streams."""
    import io

    from PIL import Image

    import openjai

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(sample_rgb[:192, :256])).save(buf, "JPEG", quality=75)
    once_jpeg = np.asarray(Image.open(buf).convert("RGB")).copy()
    enc = Encoder(shipped, once_jpeg, ColourMode.RGB, None)
    assert enc.lattice is not None
    for weight in enc.lattice_weights:
        data = enc.code(5.0, lattice_weight=weight)
        np.testing.assert_array_equal(enc._decoded[data], openjai.decode(data, model=shipped))
