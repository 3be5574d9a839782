"""×4 super-resolution on latents: output size and type, no codec synthesis, the CLI, the head."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import openjai
from openjai.cli import main
from openjai.errors import TaskUnavailableError
from openjai.tasks.image_net import ResidualHead


@pytest.fixture(scope="module")
def lr_stream(sample_crop: np.ndarray) -> bytes:
    return openjai.encode(sample_crop[:40, :72], quality=40)  # sizes not multiples of 16


@pytest.fixture
def no_synthesis(monkeypatch):
    """The codec's synthesis (g_s and the decoder's synthesis step) raises if called."""

    def fail(*args, **kwargs):
        raise AssertionError("the codec's synthesis was called")

    monkeypatch.setattr(openjai.load_model("base").model.g_s, "forward", fail)
    monkeypatch.setattr("openjai.codec.coder._synthesize", fail)


def test_superres_is_four_times_the_stream_size_without_synthesis(lr_stream, no_synthesis):
    out = openjai.tasks.superres(lr_stream)
    assert out.dtype == np.uint8 and out.shape == (160, 288, 3)


def test_superres_is_close_to_the_decoded_image_upscaled(lr_stream):
    """The network reproduces the picture (not noise): its ÷4 average is near the decoded LR."""
    sr = openjai.tasks.superres(lr_stream).astype(np.float64)
    small = sr.reshape(40, 4, 72, 4, 3).mean(axis=(1, 3))
    mse = np.mean((small - openjai.decode(lr_stream).astype(np.float64)) ** 2)
    assert 10 * np.log10(255**2 / mse) > 25.0


def test_refuses_a_stream_of_another_model(high_stream):
    with pytest.raises(TaskUnavailableError, match="openjai-base"):
        openjai.tasks.superres(high_stream)


def test_head_starts_as_bicubic():
    x = torch.rand(1, 3, 8, 10)
    ref = torch.nn.functional.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
    assert torch.allclose(ResidualHead(4)(x), ref, atol=1e-6)


def test_half_resolution_head_starts_as_identity_on_odd_sizes():
    x = torch.rand(1, 3, 9, 11)
    assert torch.equal(ResidualHead(1, 8, 3, unshuffle=2)(x), x)


@pytest.mark.parametrize("shape", [(4, 32, 5, 1), (4, 16, 3, 2), (1, 8, 4, 2)])
def test_head_shape_is_read_back_from_its_weights(shape):
    """Weights files carry the head's shape: a head rebuilt from them computes the same."""
    head = ResidualHead(*shape)
    torch.nn.init.normal_(head.body[-2].weight)  # the last conv starts at zero: make it count
    state = {f"head.{k}": v for k, v in head.state_dict().items()}
    rebuilt = ResidualHead.from_state(state, "head.")
    assert (rebuilt.factor, rebuilt.body[-2].in_channels, rebuilt.unshuffle) == (shape[0], shape[1], shape[3])
    rebuilt.load_state_dict(head.state_dict())
    x = torch.rand(1, 3, 6, 10)
    assert torch.equal(rebuilt(x), head(x))


def test_cli_writes_the_png_and_refuses_to_overwrite(lr_stream, tmp_path, capsys):
    src, dst = tmp_path / "in.jai", tmp_path / "out.png"
    src.write_bytes(lr_stream)
    assert main(["task", "superres", str(src), "-o", str(dst)]) == 0
    assert openjai.image.load(dst).rgb.shape == (160, 288, 3)
    before = dst.read_bytes()
    capsys.readouterr()
    assert main(["task", "superres", str(src), "-o", str(dst)]) == 1
    assert "--force" in capsys.readouterr().err and dst.read_bytes() == before


@pytest.mark.parametrize("content", [b"", b"JAI? no", None])
def test_cli_bad_input_is_one_line_and_writes_nothing(content, tmp_path, capsys):
    src, dst = tmp_path / "in.jai", tmp_path / "out.png"
    if content is not None:
        src.write_bytes(content)
    rc = main(["task", "superres", str(src), "-o", str(dst)])
    err = capsys.readouterr().err
    assert rc == 1 and err.startswith("openjai: error: ") and err.count("\n") == 1
    assert not dst.exists()


@pytest.mark.parametrize("unshuffle", [1, 2])
def test_deep_head_passes_its_signal_to_the_last_conv(unshuffle):
    """He-initialised: the input of the (zero-initialised) last conv is neither vanishing nor
    exploding at depth 8, so the head can learn from step 0 (torch's default init shrinks it ~6×
    per layer)."""
    torch.manual_seed(0)
    head = ResidualHead(4, 64, 8, unshuffle)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        hidden = head.body[:-2](x)
    assert 0.2 < float(hidden.std() / x.std()) < 5.0
