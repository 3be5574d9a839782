"""``openjai subjective make``: a self-contained DSCQS session from ``openjai eval`` results.

```
results.csv rows (image, codec, target_bpp, param, bpp, reached, num_bytes, metrics...)
   └─ chosen: --images × --codecs × --rates, reached rows only
image file ──image.load──▶ RGB ──codec(param).encode──▶ bytes   (len must equal num_bytes:
                                    └─decode──▶ RGB          the row is reproduced, not guessed)
   crop (x, y, w, h), the same window in reference and decoded image, saved as PNG
   + one hidden-reference condition per image (reference against itself)
──▶ SESSION_DIR/session.json (conditions, seed, training ids, crop windows) + images/*.png
```

results.csv stores no streams or decoded images, only each row's codec and parameter, so the
decoded image is made again with the same codec at the same parameter. Codecs are deterministic
(the eval's rate match relies on it), and the byte count of the row is checked: a mismatch means
other codec settings than the eval's (``--model``, ``--effort``) and is refused. openjai rows of a
once-JPEG image may come from a lattice-weight alternative (openjai_codec.py); those are tried
in turn until one gives the row's byte count.

Crops: the JPEG AI subjective tests show crops at native resolution, since a whole image rarely
fits a screen twice side by side. The window is centred unless ``crop_at`` gives its corner;
it is clipped to the image.
"""

from __future__ import annotations

import csv
import io
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import DataError, OutputError, SessionError
from ..files import atomic_write
from . import session as sess
from .session import HIDDEN_REFERENCE, Condition, Session, SourceImage


@dataclass(frozen=True)
class Row:
    """What ``make`` needs of one results.csv row."""

    image: str
    codec: str
    target_bpp: float
    param: float
    bpp: float
    num_bytes: int
    metrics: dict[str, float]


@dataclass(frozen=True)
class Design:
    """The choices of ``make``; ``None`` means every one found in results.csv."""

    images: Sequence[str] | None = None
    codecs: Sequence[str] | None = None
    rates: Sequence[float] | None = None
    crop: tuple[int, int] = (512, 512)
    crop_at: tuple[int, int] | None = None
    seed: int = 1
    training: int = 3
    grey_seconds: float = 3.0
    model: str = "base"
    effort: int = 0


def read_rows(csv_path: Path) -> list[Row]:
    """Reached rows of an eval results.csv (DataError for a missing file or column)."""
    from ..eval.metrics import METRICS

    need = ("image", "codec", "target_bpp", "param", "bpp", "reached", "num_bytes")
    try:
        with Path(csv_path).open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in need if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"{csv_path}: missing column(s) {', '.join(missing)}: give an openjai eval results.csv")
            metric_cols = [m for m in METRICS if m in (reader.fieldnames or [])]
            rows = []
            for rec in reader:
                if rec["reached"].strip().lower() != "true":
                    continue
                rows.append(Row(rec["image"], rec["codec"], float(rec["target_bpp"]), float(rec["param"]),
                                float(rec["bpp"]), int(rec["num_bytes"]),
                                {m: float(rec[m]) if rec[m].strip() else math.nan for m in metric_cols}))
    except FileNotFoundError:
        raise DataError(f"{csv_path} not found: run openjai eval first (it writes OUT/results.csv)") from None
    except (ValueError, KeyError) as e:
        raise DataError(f"{csv_path}: unreadable row ({e})") from None
    return rows


def choose(rows: Sequence[Row], d: Design) -> list[Row]:
    """The rows of the design, in a stable order (image, codec, target)."""
    def pick(values: list, wanted: Sequence | None, what: str) -> list:
        if wanted is None:
            return values
        unknown = [w for w in wanted if w not in values]
        if unknown:
            raise DataError(f"{what} {unknown[0]!r} is not in results.csv (it has: {', '.join(map(str, values))})")
        return list(wanted)

    images = pick(sorted({r.image for r in rows}), d.images, "image")
    codecs = pick(sorted({r.codec for r in rows}), d.codecs, "codec")
    rates = pick(sorted({r.target_bpp for r in rows}), d.rates, "target rate")
    out = [r for r in rows if r.image in images and r.codec in codecs and r.target_bpp in rates]
    out.sort(key=lambda r: (images.index(r.image), codecs.index(r.codec), r.target_bpp))
    if not out:
        raise DataError("no reached row matches the chosen images, codecs and rates")
    return out


def _codec_factory(name: str, d: Design) -> Callable[[], object]:
    from ..eval.cttc import CODECS
    from ..eval.openjai_codec import OpenJAICodec

    if name.startswith("openjai"):  # eval's --label may rename openjai's rows (openjai-high, ...)
        return lambda: OpenJAICodec(d.model, effort=d.effort)
    if name not in CODECS:
        raise DataError(f"codec {name!r} of results.csv is unknown: known are {', '.join(sorted(CODECS))}")
    return CODECS[name]


def reproduce(codec: object, img: np.ndarray, row: Row) -> np.ndarray:
    """Decoded image of ``row``: the codec (or one of its alternatives) at the row's parameter,
    giving exactly the row's byte count."""
    param = int(row.param) if codec.param_range.integer else row.param  # type: ignore[attr-defined]
    data = codec.encode(img, param)  # type: ignore[attr-defined]
    sizes = [len(data)]
    if len(data) == row.num_bytes:
        return codec.decode(data)  # type: ignore[attr-defined]
    alternatives = getattr(codec, "alternatives", None)
    for alt in alternatives(img) if callable(alternatives) else []:
        data = alt.encode(img, param)
        sizes.append(len(data))
        if len(data) == row.num_bytes:
            return alt.decode(data)
    raise SessionError(f"{row.image} {row.codec} @ {row.target_bpp} bpp: re-encoding gave {sizes} bytes, "
                       f"results.csv says {row.num_bytes}: use the eval's codec settings (--model, --effort)")


def crop_window(shape: tuple[int, ...], crop: tuple[int, int], at: tuple[int, int] | None) -> tuple[int, int, int, int]:
    """(x, y, w, h) of a crop of size ``crop`` (w, h) clipped to the image, centred unless ``at`` is given."""
    h, w = shape[:2]
    cw, ch = min(crop[0], w), min(crop[1], h)
    if cw < 1 or ch < 1:
        raise DataError(f"crop size {crop} must be positive")
    x, y = ((w - cw) // 2, (h - ch) // 2) if at is None else at
    if not (0 <= x <= w - cw and 0 <= y <= h - ch):
        raise DataError(f"crop at {at} of {cw}x{ch} does not fit in the {w}x{h} image")
    return x, y, cw, ch


def _png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def _training(conds: Sequence[Condition], n: int, rng: random.Random) -> tuple[str, ...]:
    """``n`` coded conditions spanning the rates: the lowest and highest bpp first (BT.500: show
    the range of impairments before the test), then random others."""
    coded = sorted((c for c in conds if not c.hidden_reference), key=lambda c: c.bpp)
    if n <= 0 or not coded:
        return ()
    picked = [coded[0], coded[-1]][:n]
    rest = [c for c in coded if c not in picked]
    picked += rng.sample(rest, min(n - len(picked), len(rest)))
    return tuple(dict.fromkeys(c.id for c in picked))


def make_session(eval_dir: Path, data_dir: Path, out_dir: Path, d: Design, force: bool = False,
                 progress: Callable[[str], None] | None = None) -> Session:
    """Build SESSION_DIR from an eval folder (results.csv) and the folder of its test images."""
    from .. import image

    out_dir = Path(out_dir)
    if (out_dir / sess.SESSION_FILE).exists() and not force:
        raise OutputError(f"{out_dir} already holds a session: use --force to rebuild it")
    if (out_dir / sess.RESULTS_DB).exists():  # scores of the old design: never mixed with a new one
        raise OutputError(f"{out_dir / sess.RESULTS_DB} holds scores: move it away before rebuilding the session")
    rows = choose(read_rows(Path(eval_dir) / "results.csv"), d)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    images: list[SourceImage] = []
    conds: list[Condition] = []
    factories = {name: _codec_factory(name, d) for name in sorted({r.codec for r in rows})}
    for n_img, key in enumerate(dict.fromkeys(r.image for r in rows)):
        path = Path(data_dir) / key
        if not path.is_file():
            raise DataError(f"{path} not found: give the folder the eval ran on with --data")
        rgb = image.load(path).rgb
        x, y, w, h = crop_window(rgb.shape, d.crop, d.crop_at)
        ref_file = f"images/i{n_img:02d}_ref.png"
        atomic_write(out_dir / ref_file, _png(rgb[y:y + h, x:x + w]), force)
        images.append(SourceImage(key, ref_file, (x, y, w, h)))
        conds.append(Condition(f"i{n_img:02d}_ref", key, HIDDEN_REFERENCE, math.nan, math.nan, math.nan, ref_file))
        codecs = {name: f() for name, f in factories.items()}
        for row in (r for r in rows if r.image == key):
            if progress:
                progress(f"{key} {row.codec} {row.target_bpp} bpp")
            dec = reproduce(codecs[row.codec], rgb, row)
            cid = f"i{n_img:02d}_{row.codec}_{row.target_bpp:g}".replace("/", "_")
            file = f"images/{cid}.png"
            atomic_write(out_dir / file, _png(np.ascontiguousarray(dec[y:y + h, x:x + w])), force)
            conds.append(Condition(cid, key, row.codec, row.target_bpp, row.bpp, row.param, file, row.metrics))
    training = _training(conds, d.training, random.Random(d.seed))
    s = Session(d.seed, tuple(images), tuple(conds), training, d.grey_seconds)
    sess.save(out_dir, s, force)
    return s
