"""Registry of shipped models: operating point name ↔ weights file ↔ model id ↔ sha256.

Each operating point has ``openjai/weights/<point>.toml``::

    model_id = "openjai-base-1a2b3c4d"
    file = "base.safetensors"
    sha256 = "<hex digest of the file>"
    description = "..."

or, for a second name of the same model, ``alias = "<point>"`` (and optionally a description).

``load(point)`` checks the file's sha256 before reading it; streams carry the model id, and
``for_stream`` finds the model that wrote them or names both ids in the error.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import ModelError
from .weights import LoadedCodec, load_codec_weights

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
DEFAULT_POINT = "base"


@dataclass(frozen=True)
class ModelEntry:
    point: str
    model_id: str
    path: Path
    sha256: str
    description: str
    source: str  # the point whose .toml describes the file: ``point`` itself, or the one an alias names


def entries(folder: Path = WEIGHTS_DIR) -> dict[str, ModelEntry]:
    """All operating points described in ``folder`` (aliases resolved)."""
    raw = {}
    for toml in sorted(folder.glob("*.toml")):
        try:
            with open(toml, "rb") as f:
                raw[toml.stem] = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ModelError(f"{toml} is not a readable model description: {e}") from None
    out = {}
    for point, d in raw.items():
        source = d.get("alias", point)
        if source != point:
            target = raw.get(source)
            if target is None or "alias" in target:
                raise ModelError(f"{folder / point}.toml names {d['alias']!r}, which is not a model in {folder}")
            d = target | {"description": d.get("description", target.get("description", ""))}
        try:
            out[point] = ModelEntry(point, d["model_id"], folder / d["file"], d["sha256"], d.get("description", ""),
                                    source)
        except KeyError as e:
            raise ModelError(f"{folder / point}.toml lacks {e}") from None
    return out


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_entry(point: str, model_id: str, weights: Path, description: str) -> Path:
    """Write ``<point>.toml`` next to ``weights`` (after export)."""
    path = weights.with_name(f"{point}.toml")
    path.write_text(
        f'model_id = "{model_id}"\nfile = "{weights.name}"\nsha256 = "{file_sha256(weights)}"\n'
        f'description = "{description}"\n'
    )
    return path


@lru_cache(maxsize=4)
def load(point: str = DEFAULT_POINT, folder: Path = WEIGHTS_DIR) -> LoadedCodec:
    """Load a shipped model by operating point name (sha256 and model id checked)."""
    known = entries(folder)
    if point not in known:
        raise ModelError(f"unknown model {point!r}; available: {', '.join(known) or 'none (weights missing)'}")
    e = known[point]
    if e.source != point:
        return load(e.source, folder)  # one loaded copy per file
    if not e.path.is_file():
        raise ModelError(f"weights file {e.path} for model {point!r} is missing; reinstall openjai")
    if file_sha256(e.path) != e.sha256:
        raise ModelError(f"weights file {e.path} does not match its sha256 in {point}.toml (corrupted?)")
    lc = load_codec_weights(e.path)
    if lc.model_id != e.model_id:
        raise ModelError(f"{e.path} holds model {lc.model_id}, but {point}.toml expects {e.model_id}")
    return lc


def for_stream(model_id: str, loaded: LoadedCodec | None = None) -> LoadedCodec:
    """The model that decodes a stream written by ``model_id``."""
    if loaded is not None:
        if loaded.model_id != model_id:
            raise ModelError(f"stream was coded with model {model_id}, but the given model is {loaded.model_id}")
        return loaded
    for e in entries().values():
        if e.model_id == model_id:
            return load(e.point)
    have = ", ".join(dict.fromkeys(e.model_id for e in entries().values())) or "none"
    raise ModelError(f"stream was coded with model {model_id}, which is not installed (installed: {have})")
