"""The session a lab runs: conditions, images and seed, stored as SESSION_DIR/session.json.

A *condition* is one stimulus pair: the reference crop of an image and a test crop (a codec at
a target rate, or the reference itself: the hidden reference, whose DMOS should be ~0 and shows
whether observers can tell). Everything the server and the analysis need is in the folder, so a
session can be copied to the lab's machine and run without the eval outputs.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import SessionError
from ..files import atomic_write

SESSION_FILE = "session.json"
RESULTS_DB = "results.sqlite"
FORMAT_VERSION = 1
#: codec name of the hidden-reference conditions
HIDDEN_REFERENCE = "reference"
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")


@dataclass(frozen=True)
class SourceImage:
    """A test image: its key in results.csv, the reference crop file and the crop window (x, y, w, h)."""

    key: str
    file: str
    crop: tuple[int, int, int, int]


@dataclass(frozen=True)
class Condition:
    """One stimulus: the reference crop of ``image`` against ``file``. ``bpp``/``param`` are NaN
    for the hidden reference; ``bpp`` and ``metrics`` are those of the whole coded image (results.csv)."""

    id: str
    image: str
    codec: str
    target_bpp: float
    bpp: float
    param: float
    file: str
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def hidden_reference(self) -> bool:
        return self.codec == HIDDEN_REFERENCE


@dataclass(frozen=True)
class Session:
    """A DSCQS session: images, conditions, training condition ids, seed and timing."""

    seed: int
    images: tuple[SourceImage, ...]
    conditions: tuple[Condition, ...]
    training: tuple[str, ...]
    grey_seconds: float = 3.0
    title: str = "openjai DSCQS"

    def condition(self, cid: str) -> Condition:
        for c in self.conditions:
            if c.id == cid:
                return c
        raise SessionError(f"condition {cid!r} is not in this session")

    def image(self, key: str) -> SourceImage:
        for im in self.images:
            if im.key == key:
                return im
        raise SessionError(f"image {key!r} is not in this session")

    def files(self) -> set[str]:
        """Every image file the session shows (relative paths under the session folder)."""
        return {im.file for im in self.images} | {c.file for c in self.conditions}


def _num(v: float) -> float | None:
    return None if math.isnan(v) else v


def to_json(s: Session) -> bytes:
    d = asdict(s)
    for c in d["conditions"]:
        c["target_bpp"], c["bpp"], c["param"] = _num(c["target_bpp"]), _num(c["bpp"]), _num(c["param"])
        c["metrics"] = {k: _num(v) for k, v in c["metrics"].items()}
    return (json.dumps({"format": FORMAT_VERSION, **d}, indent=1) + "\n").encode()


def _f(v: object) -> float:
    return math.nan if v is None else float(v)  # type: ignore[arg-type]


def from_json(data: bytes, where: str = SESSION_FILE) -> Session:
    """Parse and check a session.json (SessionError naming the problem)."""
    try:
        d = json.loads(data)
        if d.get("format") != FORMAT_VERSION:
            raise SessionError(f"{where}: format {d.get('format')!r} is not {FORMAT_VERSION}: rebuild it with "
                               "openjai subjective make")
        images = tuple(SourceImage(i["key"], i["file"], tuple(int(v) for v in i["crop"])) for i in d["images"])
        conds = tuple(Condition(c["id"], c["image"], c["codec"], _f(c["target_bpp"]), _f(c["bpp"]), _f(c["param"]),
                                c["file"], {k: _f(v) for k, v in c.get("metrics", {}).items()})
                      for c in d["conditions"])
        s = Session(int(d["seed"]), images, conds, tuple(d["training"]), float(d.get("grey_seconds", 3.0)),
                    str(d.get("title", "openjai DSCQS")))
    except SessionError:
        raise
    except (ValueError, KeyError, TypeError) as e:
        raise SessionError(f"{where}: malformed session file ({type(e).__name__}: {e})") from None
    check(s, where)
    return s


def check(s: Session, where: str = SESSION_FILE) -> None:
    """Ids unique and safe, every condition's image known, training ids known, files relative."""
    ids = [c.id for c in s.conditions]
    if not ids:
        raise SessionError(f"{where}: no condition")
    if len(set(ids)) != len(ids):
        raise SessionError(f"{where}: duplicate condition ids")
    keys = {im.key for im in s.images}
    for c in s.conditions:
        if not _NAME.match(c.id) or c.image not in keys:
            raise SessionError(f"{where}: condition {c.id!r} has a bad id or an unknown image {c.image!r}")
    if any(t not in ids for t in s.training):
        raise SessionError(f"{where}: a training id is not a condition id")
    for f in s.files():
        p = Path(f)
        if p.is_absolute() or ".." in p.parts:
            raise SessionError(f"{where}: image path {f!r} must be relative to the session folder")
    if not (0 <= s.grey_seconds <= 60):
        raise SessionError(f"{where}: grey_seconds must be within 0..60")


def load(session_dir: Path) -> Session:
    """Read SESSION_DIR/session.json and check that its image files exist."""
    path = Path(session_dir) / SESSION_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SessionError(f"{path} not found: build a session with openjai subjective make") from None
    except OSError as e:
        raise SessionError(f"cannot read {path}: {e.strerror}") from None
    s = from_json(data, str(path))
    missing = sorted(f for f in s.files() if not (Path(session_dir) / f).is_file())
    if missing:
        raise SessionError(f"{path}: {len(missing)} image file(s) missing, e.g. {missing[0]}: rebuild the session")
    return s


def save(session_dir: Path, s: Session, force: bool = False) -> None:
    check(s)
    atomic_write(Path(session_dir) / SESSION_FILE, to_json(s), force)
