"""Classification on latents: real streams, no synthesis, refusal of other models' streams."""

from __future__ import annotations

import pytest
import torch

import openjai
from openjai.codec import coder
from openjai.errors import TaskUnavailableError
from openjai.eval.complexity import _macs
from openjai.tasks import classify
from openjai.tasks.classify import Bridge, image_latents, load_bridge
from openjai.tasks.resnet import JOIN_CHANNELS, load_resnet50

# the bar: the latent path at <= 0.6x the MACs of g_s + ResNet-50 (~2.9 GMAC per 224² image)
LATENT_PATH_GMAC_LIMIT = 2.9


def test_top5_of_a_real_stream(resnet_available, base_stream):
    top = classify(base_stream)
    assert len(top) == 5
    indices = [i for i, _, _ in top]
    probs = [p for _, _, p in top]
    assert len(set(indices)) == 5 and all(0 <= i < 1000 for i in indices)
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    _, names = load_resnet50()
    assert [n for _, n, _ in top] == [names[i] for i in indices]
    assert classify(base_stream) == top  # deterministic


def test_any_image_size(resnet_available, sample_crop):
    """ŷ is cut to the image's ceil(H/16) × ceil(W/16) latents (the coder pads to 64), any size works."""
    data = openjai.encode(sample_crop[:75, :130], quality=30)
    lat = openjai.decode_latents(data)
    assert lat.y_hat.shape[-2:] == (8, 12)  # 128 × 192 padded
    assert image_latents(lat.y_hat, 75, 130).shape[-2:] == (5, 9)
    assert len(classify(data)) == 5


def test_never_runs_the_synthesis(resnet_available, base_stream, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("the synthesis transform ran")

    monkeypatch.setattr(coder, "_synthesize", forbidden)
    monkeypatch.setattr(openjai.load_model("base").model.g_s, "forward", forbidden)
    with pytest.raises(AssertionError, match="synthesis"):
        openjai.decode(base_stream)  # the patch does bite
    assert len(classify(base_stream)) == 5


def test_stream_of_another_model_refused(high_stream):
    high = openjai.read_info(high_stream).model_id
    with pytest.raises(TaskUnavailableError, match=high):
        classify(high_stream)


def test_bridge_maps_latents_to_its_join_shape(base_stream):
    lat = openjai.decode_latents(base_stream)
    y = image_latents(lat.y_hat, 224, 224)
    assert y.shape == (1, 128, 14, 14)
    bridge = load_bridge(lat.header.model_id)
    with torch.no_grad():
        f = bridge(y)
    assert f.shape == (1, JOIN_CHANNELS[bridge.join], 14, 14) and f.min() >= 0
    rebuilt = Bridge.from_state(bridge.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(y), f, rtol=0, atol=0)


def test_latent_path_within_mac_budget(resnet_available):
    net, _ = load_resnet50()
    bridge = load_bridge(openjai.load_model("base").model_id)
    y = torch.zeros(1, 128, 14, 14)
    with torch.no_grad():
        gmac = _macs(lambda: net.tail(bridge(y), bridge.join)) / 1e9
    assert gmac <= LATENT_PATH_GMAC_LIMIT


@pytest.mark.parametrize("inner", [0, 16])
def test_bridge_shape_and_block_kind_are_read_back_from_its_weights(inner):
    torch.manual_seed(0)
    bridge = Bridge(width=32, blocks=3, join="layer2", inner=inner)
    for p in bridge.parameters():  # a trained bridge: no zero-initialised conv left
        torch.nn.init.normal_(p, std=0.05)
    rebuilt = Bridge.from_state(bridge.state_dict())
    assert (rebuilt.inner, len(rebuilt.blocks), rebuilt.stem.out_channels, rebuilt.join) == (inner, 3, 32, "layer2")
    y = torch.randn(2, 128, 3, 5)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(y), bridge(y), rtol=0, atol=0)


def test_bottleneck_blocks_start_as_the_identity():
    bridge = Bridge(width=32, blocks=2, join="layer2", inner=8)
    x = torch.randn(1, 32, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(bridge.blocks(x), x, rtol=0, atol=0)
