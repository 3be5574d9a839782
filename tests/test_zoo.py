"""The registry of operating points (codec/zoo.py): names, aliases, integrity checks."""

from __future__ import annotations

import shutil

import pytest

from openjai.codec import zoo
from openjai.codec.weights import load_codec_weights
from openjai.errors import ModelError


@pytest.fixture
def folder(tmp_path, tiny_weights):
    """A weights folder with one model ('small') and an alias ('quick') of it."""
    shutil.copy(tiny_weights, tmp_path / "small.safetensors")
    lc = load_codec_weights(tmp_path / "small.safetensors")
    zoo.write_entry("small", lc.model_id, tmp_path / "small.safetensors", "a tiny model")
    (tmp_path / "quick.toml").write_text('alias = "small"\ndescription = "the small model, by another name"\n')
    return tmp_path


def test_alias_is_the_same_model_loaded_once(folder):
    known = zoo.entries(folder)
    assert known["quick"].model_id == known["small"].model_id and known["quick"].path == known["small"].path
    assert known["quick"].description.startswith("the small model") and known["quick"].source == "small"
    assert zoo.load("quick", folder) is zoo.load("small", folder)


def test_registry_errors_say_what_is_wrong(folder):
    with pytest.raises(ModelError, match="unknown model 'big'; available: quick, small"):
        zoo.load("big", folder)
    (folder / "odd.toml").write_text('alias = "nothing"\n')
    with pytest.raises(ModelError, match="names 'nothing'"):
        zoo.entries(folder)
    (folder / "odd.toml").write_text('model_id = "x"\n')
    with pytest.raises(ModelError, match="lacks 'file'"):
        zoo.entries(folder)
    (folder / "odd.toml").write_text("model_id = \n")
    with pytest.raises(ModelError, match="not a readable model description"):
        zoo.entries(folder)
    (folder / "odd.toml").unlink()
    data = bytearray((folder / "small.safetensors").read_bytes())
    data[-1] ^= 1
    (folder / "small.safetensors").write_bytes(bytes(data))
    zoo.load.cache_clear()
    with pytest.raises(ModelError, match="does not match its sha256"):
        zoo.load("small", folder)
    (folder / "small.safetensors").unlink()
    with pytest.raises(ModelError, match="missing; reinstall"):
        zoo.load("small", folder)


def test_shipped_points():
    """issue 6's two operating points: `fast` is the base model, `high` a separate one."""
    known = zoo.entries()
    assert known["fast"].model_id == known["base"].model_id and known["fast"].source == "base"
    assert known["high"].model_id.startswith("openjai-high-") and known["high"].path.is_file()
