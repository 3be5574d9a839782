"""Which task networks exist for which codec model: ``weights/<task>.toml`` → safetensors.

Each task has ``openjai/tasks/weights/<task>.toml``::

    codec_model_id = "openjai-base-3fe428d1"   # the model whose latents the network reads
    file = "<task>.safetensors"                 # in the same folder
    sha256 = "<hex digest of the file>"
    description = "..."

and a model card ``<task>.md``. A task network only understands one model's latent space, so
``load_task_weights`` refuses a stream of any other model with a one-line message naming both.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors

from ..codec.zoo import file_sha256
from ..errors import ModelError, TaskUnavailableError
from ..files import atomic_write

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


@dataclass(frozen=True)
class TaskEntry:
    task: str
    codec_model_id: str
    path: Path
    sha256: str
    description: str


def task_entry(task: str, folder: Path = WEIGHTS_DIR) -> TaskEntry:
    """The description of ``task``'s weights (not yet checked against their file)."""
    toml = folder / f"{task}.toml"
    if not toml.is_file():
        have = ", ".join(available_tasks(folder)) or "none"
        raise TaskUnavailableError(f"no weights for task {task!r} (tasks with weights: {have})")
    try:
        with open(toml, "rb") as f:
            d = tomllib.load(f)
        return TaskEntry(task, d["codec_model_id"], folder / d["file"], d["sha256"], d.get("description", ""))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ModelError(f"{toml} is not a readable task description: {e}") from None
    except KeyError as e:
        raise ModelError(f"{toml} lacks {e}") from None


def available_tasks(folder: Path = WEIGHTS_DIR) -> list[str]:
    """Tasks that have a weights description in ``folder``, sorted."""
    return sorted(p.stem for p in folder.glob("*.toml"))


def write_task_entry(task: str, codec_model_id: str, weights: Path, description: str, force: bool = False) -> Path:
    """Write ``<task>.toml`` next to ``weights`` (after export), with the file's sha256."""
    path = weights.with_name(f"{task}.toml")
    text = (f'codec_model_id = "{codec_model_id}"\nfile = "{weights.name}"\nsha256 = "{file_sha256(weights)}"\n'
            f'description = "{description}"\n')
    atomic_write(path, text.encode(), force=force)
    return path


def load_task_weights(task: str, codec_model_id: str, folder: Path = WEIGHTS_DIR) -> dict[str, torch.Tensor]:
    """The tensors of ``task``'s network for latents of ``codec_model_id`` (sha256 checked)."""
    e = task_entry(task, folder)
    if e.codec_model_id != codec_model_id:
        raise TaskUnavailableError(f"task {task!r} has no weights for streams of model {codec_model_id}; "
                                   f"its weights read model {e.codec_model_id} (encode with --model base)")
    if not e.path.is_file():
        raise ModelError(f"weights file {e.path} of task {task!r} is missing; reinstall openjai")
    if file_sha256(e.path) != e.sha256:
        raise ModelError(f"weights file {e.path} does not match its sha256 in {task}.toml (corrupted?)")
    try:
        return load_safetensors(e.path.read_bytes())
    except Exception as err:  # safetensors has its own error types
        raise ModelError(f"weights file {e.path} of task {task!r} is unreadable: {err}") from None
