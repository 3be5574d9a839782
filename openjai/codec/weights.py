"""Shipped model files: safetensors holding the networks and the integer coding tables.

Layout of a weights file:
* ``model.*``            network parameters (fp32) — Codec.state_dict(), except that the
                         checkerboard context's first-layer kernels are stored as their 12
                         live taps (``*.anchor_taps``, (out, in, 12); context.pack_taps).
                         Files written before that hold the whole 5×5 kernels; both load.
* ``tables.z.offsets``   int64 (Z,)   first value of each ẑ channel's table
* ``tables.z.lengths``   int64 (Z,)
* ``tables.z.counts``    int64 (sum of lengths,)   concatenated counts (sum 2**16 each)
* ``tables.y.*``         the same for the σ-index Gaussian tables
* metadata: ``format`` = "openjai-weights-1", ``config`` (CodecConfig JSON), ``model_id``.

The tables are built once from the trained model (``export``) so that decoding needs only
stored integers. Nothing is unpickled: safetensors cannot carry code.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from ..errors import ModelError
from ..files import atomic_write
from .coding import TableSet
from .config import CodecConfig
from .context import pack_taps, unpack_taps
from .entropy import PMF_PRECISION, IntegerTable
from .model import Codec

FORMAT = "openjai-weights-1"


@dataclass
class LoadedCodec:
    """A model ready to code: networks in eval mode (on the CPU) plus its coding tables."""

    model: Codec
    model_id: str
    z_tables: TableSet
    y_tables: TableSet
    _copies: dict[str, Codec] = field(default_factory=dict, repr=False, compare=False)

    def on(self, device: str | torch.device) -> Codec:
        """The networks on ``device``: the CPU model itself, else a copy made once per device,
        so that decoding on a GPU never moves the model other callers share."""
        device = torch.device(device)
        if device.type == "cpu":
            return self.model
        if str(device) not in self._copies:
            self._copies[str(device)] = copy.deepcopy(self.model).to(device)
        return self._copies[str(device)]


def _pack(tables: list[IntegerTable], prefix: str) -> dict[str, torch.Tensor]:
    return {
        f"{prefix}.offsets": torch.tensor([t.offset for t in tables], dtype=torch.int64),
        f"{prefix}.lengths": torch.tensor([len(t.counts) for t in tables], dtype=torch.int64),
        f"{prefix}.counts": torch.from_numpy(np.concatenate([t.counts for t in tables]).astype(np.int64)),
    }


def _unpack(tensors: dict[str, torch.Tensor], prefix: str, expected: int) -> list[IntegerTable]:
    try:
        offsets, lengths, counts = (tensors[f"{prefix}.{k}"].numpy() for k in ("offsets", "lengths", "counts"))
    except KeyError as e:
        raise ModelError(f"weights file lacks coding table {e}") from None
    if len(offsets) != expected or len(lengths) != expected or lengths.min() < 1 or lengths.sum() != len(counts):
        raise ModelError(f"coding tables '{prefix}' are inconsistent with the model configuration")
    tables, start = [], 0
    for off, n in zip(offsets.tolist(), lengths.tolist()):
        c = counts[start : start + n].astype(np.int64)
        if c.min() < 1 or int(c.sum()) != 1 << PMF_PRECISION:
            raise ModelError(f"coding table in '{prefix}' is not a valid integer PMF")
        tables.append(IntegerTable(offset=int(off), counts=c))
        start += n
    return tables


def save_safetensors(tensors: dict[str, torch.Tensor], metadata: dict[str, str], path: Path) -> None:
    """Write a safetensors file atomically (replacing the previous one): weights and checkpoints."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata=metadata)
    atomic_write(path, data, force=True)


def _state_id(name: str, state: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for k, v in sorted(state.items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return f"{name}-{h.hexdigest()[:8]}"


def content_id(model: Codec) -> str:
    """Model id: config name + first 8 hex digits of a hash of all parameters."""
    return _state_id(model.cfg.name, model.state_dict())


def export(model: Codec, path: Path) -> str:
    """Build the coding tables from ``model`` and write a weights file; returns the model id.

    The context's first-layer kernels are stored as their live taps only (context.pack_taps);
    the id is that of the parameters a loader rebuilds from them (zeros at the dead taps)."""
    model = model.cpu().eval()
    z_tables = model.prior.build_tables()
    y_tables = model.scales.build_tables()
    packed = pack_taps(model.state_dict(), "context.")
    model_id = _state_id(model.cfg.name, unpack_taps(packed))
    tensors = {f"model.{k}": v for k, v in packed.items()}
    tensors |= _pack(z_tables, "tables.z") | _pack(y_tables, "tables.y")
    save_safetensors(tensors, {"format": FORMAT, "config": model.cfg.to_json(), "model_id": model_id}, path)
    return model_id


def load_codec_weights(path: Path) -> LoadedCodec:
    """Load a weights file written by ``export``; ModelError when it is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"weights file {path} not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelError(f"{path} is not a valid safetensors weights file: {e}") from None
    if meta.get("format") != FORMAT:
        raise ModelError(f"{path} is not an openjai weights file (format {meta.get('format')!r})")
    try:
        cfg = CodecConfig.from_json(meta["config"])
        model = Codec(cfg)
        model.load_state_dict(unpack_taps({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}))
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise ModelError(f"{path}: model parameters do not match its configuration: {e}") from None
    model.eval()
    model_id = meta.get("model_id", "")
    if model_id != content_id(model):
        raise ModelError(f"{path}: stored model id {model_id!r} does not match its parameters")
    z_tables = _unpack(tensors, "tables.z", cfg.hyper_channels)
    y_tables = _unpack(tensors, "tables.y", cfg.scale_levels)
    return LoadedCodec(model, model_id, TableSet(z_tables), TableSet(y_tables))
