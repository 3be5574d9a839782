"""The task registry: base is frozen (its model id pinned), task weights are checked and refused clearly."""

from __future__ import annotations

import shutil

import pytest

import openjai
from openjai.errors import ModelError, TaskUnavailableError
from openjai.tasks.registry import WEIGHTS_DIR, available_tasks, load_task_weights, task_entry

# The task networks read base's latent space: changing base invalidates every one of them.
BASE_MODEL_ID = "openjai-base-3fe428d1"


def test_base_model_is_frozen():
    assert openjai.load_model("base").model_id == BASE_MODEL_ID


def test_classify_weights_read_base_latents():
    assert "classify" in available_tasks()
    assert task_entry("classify").codec_model_id == BASE_MODEL_ID
    state = load_task_weights("classify", BASE_MODEL_ID)
    assert state["stem.weight"].shape[1] == 128  # base's latent channels
    assert all(t.dtype.is_floating_point for t in state.values())


def test_weights_within_size_limit():
    for task in available_tasks():
        assert task_entry(task).path.stat().st_size <= 16 * 2**20
        assert (WEIGHTS_DIR / f"{task}.md").is_file(), f"{task} has no model card"


def test_other_model_refused_with_both_ids():
    high = openjai.load_model("high").model_id
    with pytest.raises(TaskUnavailableError) as e:
        load_task_weights("classify", high)
    msg = str(e.value)
    assert high in msg and BASE_MODEL_ID in msg and "\n" not in msg


def test_unknown_task_refused():
    with pytest.raises(TaskUnavailableError, match="no weights for task 'nosuchtask'"):
        load_task_weights("nosuchtask", BASE_MODEL_ID)


def test_tampered_weights_refused(tmp_path):
    for suffix in (".toml", ".safetensors"):
        shutil.copy(WEIGHTS_DIR / f"classify{suffix}", tmp_path)
    path = tmp_path / "classify.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match its sha256"):
        load_task_weights("classify", BASE_MODEL_ID, folder=tmp_path)
