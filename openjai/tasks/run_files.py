"""The files of a task network's training run: its data shards and its resumable state.

    data/shard0000.npz …      arrays of samples, written whole (a killed ``prepare`` resumes
                              at the first missing shard, and a trainer may read them meanwhile)
    run/state.pt              model and optimizer state, step, CPU seconds (loaded weights-only)
    run/meta.json             the same step and CPU-hours, readable without torch

Every file is written with ``files.atomic_write``: a kill leaves the old file or the new one.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import torch

import openjai

from ..errors import DataError
from ..files import atomic_write
from .registry import write_task_entry

STATE = "state.pt"


def save_shard(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write one shard of equally long arrays."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write(path, buf.getvalue(), force=True)


def shard_path(folder: Path, index: int) -> Path:
    """Where shard ``index`` of ``folder`` lives."""
    return folder / f"shard{index:04d}.npz"


def shard_paths(folder: Path) -> list[Path]:
    """The finished shards of ``folder``, in order (a shard being written has another name)."""
    return sorted(folder.glob("shard*[0-9].npz"))


def load_shards(folder: Path, prepare: str) -> dict[str, np.ndarray]:
    """All shards of ``folder``, concatenated; ``prepare`` is the command that makes them."""
    paths = shard_paths(folder)
    if not paths:
        raise DataError(f"no shards in {folder}: run `{prepare}` first")
    parts = [dict(np.load(p)) for p in paths]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def load_state(run: Path, model: torch.nn.Module, opt: torch.optim.Optimizer) -> tuple[int, float]:
    """Resume ``model`` and ``opt`` from ``run``'s state: (step, CPU seconds so far); (0, 0) for a new run."""
    path = run / STATE
    if not path.exists():
        return 0, 0.0
    state = torch.load(path, weights_only=True)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    return int(state["step"]), float(state["cpu_seconds"])


def save_state(run: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, step: int, cpu_seconds: float,
               meta: dict) -> None:
    """Write ``run``'s state and ``meta.json`` (``meta`` plus step and CPU-hours)."""
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "cpu_seconds": cpu_seconds}, buf)
    atomic_write(run / STATE, buf.getvalue(), force=True)
    text = json.dumps({**meta, "step": step, "cpu_hours": cpu_seconds / 3600})
    atomic_write(run / "meta.json", text.encode(), force=True)


def export_weights(run: Path, path: Path) -> None:
    """The model of ``run``'s state as shipped weights: fp32 safetensors at ``path`` (no optimizer state)."""
    from safetensors.torch import save

    state = torch.load(run / STATE, weights_only=True)
    atomic_write(path, save({k: v.float().contiguous() for k, v in state["model"].items()}), force=True)


def export_task(task: str, run: Path, net: str, description: str) -> Path:
    """Write ``run``'s weights (fp32 safetensors) to openjai/tasks/weights/ as ``<task>`` (the
    latent network, also entered in the registry's ``<task>.toml`` for base's model id) or
    ``<task>_pixel`` (the pixel anchor); returns the weights' path."""
    name = task if net == "latent" else f"{task}_pixel"
    path = Path(__file__).resolve().parent / "weights" / f"{name}.safetensors"
    export_weights(run, path)
    if net == "latent":
        write_task_entry(task, openjai.load_model("base").model_id, path, description, force=True)
    return path
