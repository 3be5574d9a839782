"""Per-observer trial order: training trials first, then every condition once, shuffled.

The order and each trial's A/B sides come from a generator seeded with the session seed and the
observer id, so they differ between observers and are reproducible (the plan is also stored in
SQLite when the observer starts, so a resumed session never depends on recomputing it). The
shuffle avoids showing one image twice in a row where the design allows it (BT.500 advises
against consecutive presentations of the same content).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from ..errors import SessionError
from .session import Session

_OBSERVER = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


@dataclass(frozen=True)
class Trial:
    """One presentation: ``ref_side`` is where the reference is shown ("A" left or "B" right)."""

    trial_id: str
    index: int
    condition: str
    ref_side: str
    training: bool


def check_observer(observer: str) -> str:
    """The id if it is 1-40 letters, digits, '_' or '-' (it names the trials); SessionError otherwise."""
    if not isinstance(observer, str) or not _OBSERVER.match(observer):
        raise SessionError("observer id: use 1-40 letters, digits, '_' or '-'")
    return observer


def _spread(ids: list[str], image_of: dict[str, str], rng: random.Random) -> list[str]:
    """A random order of ``ids`` with no two consecutive conditions of one image where possible.

    Built item by item: a random remaining item of another image than the last one, except when
    one image holds more than half of what remains, which must then come next (else it could not
    be spread any more)."""
    left = ids[:]
    rng.shuffle(left)
    out: list[str] = []
    while left:
        last = image_of[out[-1]] if out else None
        counts: dict[str, int] = {}
        for c in left:
            counts[image_of[c]] = counts.get(image_of[c], 0) + 1
        major = [m for m, n in counts.items() if n > len(left) - n and m != last]
        pool = [c for c in left if image_of[c] in major] or [c for c in left if image_of[c] != last] or left
        pick = rng.choice(pool)
        left.remove(pick)
        out.append(pick)
    return out


def plan(s: Session, observer: str) -> list[Trial]:
    """The trials of ``observer`` in presentation order."""
    check_observer(observer)
    rng = random.Random(f"{s.seed}/{observer}")
    image_of = {c.id: c.image for c in s.conditions}
    order = [(cid, True) for cid in _spread(list(s.training), image_of, rng)]
    order += [(cid, False) for cid in _spread([c.id for c in s.conditions], image_of, rng)]
    return [Trial(f"{observer}-{i:03d}", i, cid, rng.choice("AB"), training) for i, (cid, training) in enumerate(order)]
