"""Atomic, pickle-free training checkpoints (safetensors + JSON metadata).

A checkpoint holds the model, the moving average of its weights (``ema.*``, train/ema.py),
Adam's moments, the torch RNG state and the step count.
It is written to a temporary file, fsynced and renamed over the previous one, so a kill
at any moment leaves either the old or the new checkpoint, never a partial one.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open

from ..codec.config import CodecConfig
from ..codec.model import Codec
from ..codec.weights import save_safetensors
from .ema import WeightAverage


def save_checkpoint(path: Path, model: Codec, opt: torch.optim.Optimizer, step: int, extra: dict,
                    ema: WeightAverage | None = None) -> None:
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    if ema is not None:
        tensors |= {f"ema.{k}": v for k, v in ema.state.items()}
        extra = extra | {"ema_updates": ema.updates}
    params = [p for group in opt.param_groups for p in group["params"]]
    for i, p in enumerate(params):
        state = opt.state.get(p)
        if state:
            tensors[f"adam.{i}.exp_avg"] = state["exp_avg"]
            tensors[f"adam.{i}.exp_avg_sq"] = state["exp_avg_sq"]
            tensors[f"adam.{i}.step"] = torch.as_tensor(state["step"]).reshape(1).float()
    tensors["rng.torch"] = torch.get_rng_state()
    meta = {"step": str(step), "config": model.cfg.to_json(), "extra": json.dumps(extra)}
    save_safetensors(tensors, meta, path)


def read_metadata(path: Path) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})


def load_model_from_checkpoint(path: Path, average: bool = True) -> tuple[Codec, int]:
    """Only the model and its step count (for export and evaluation); with ``average`` the
    moving average of the weights when the checkpoint has one."""
    from ..errors import ModelError

    if not Path(path).is_file():
        raise ModelError(f"checkpoint {path} not found")
    meta = read_metadata(path)
    model = Codec(CodecConfig.from_json(meta["config"]))
    with safe_open(str(path), framework="pt") as f:
        state = {k[6:]: f.get_tensor(k) for k in f.keys() if k.startswith("model.")}
        if average:
            state |= {k[4:]: f.get_tensor(k) for k in f.keys() if k.startswith("ema.")}
    model.load_state_dict(state)
    return model.eval(), int(meta["step"])


def load_checkpoint(path: Path, opt_factory,
                    device: str = "cpu") -> tuple[Codec, torch.optim.Optimizer, int, dict, dict]:
    """Rebuild model and optimizer (on ``device``) from a checkpoint; ``opt_factory(model)``
    makes the optimizer. The last item is the stored weight average (empty when there is none)."""
    meta = read_metadata(path)
    model = Codec(CodecConfig.from_json(meta["config"]))
    with safe_open(str(path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    model.to(device)
    opt = opt_factory(model)
    params = [p for group in opt.param_groups for p in group["params"]]
    for i, p in enumerate(params):
        if f"adam.{i}.exp_avg" in tensors:
            opt.state[p] = {
                "exp_avg": tensors[f"adam.{i}.exp_avg"].to(device),
                "exp_avg_sq": tensors[f"adam.{i}.exp_avg_sq"].to(device),
                "step": tensors[f"adam.{i}.step"].reshape(()),
            }
    torch.set_rng_state(tensors["rng.torch"])
    ema = {k[4:]: v for k, v in tensors.items() if k.startswith("ema.")}
    return model, opt, int(meta["step"]), json.loads(meta.get("extra", "{}")), ema


def load_any_model(path: Path) -> tuple[Codec, str]:
    """The model of a weights file or of a training checkpoint, and a label for reports
    (file name, or ``run@step`` for a checkpoint)."""
    from ..codec.weights import FORMAT, load_codec_weights
    from ..errors import ModelError

    if not Path(path).is_file():
        raise ModelError(f"{path} not found")
    if read_metadata(path).get("format") == FORMAT:
        return load_codec_weights(path).model, Path(path).name
    model, step = load_model_from_checkpoint(path)
    return model, f"{Path(path).parent.name}@{step}"
