"""subjective make (design.py), session.json and the per-observer schedule."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from openjai.errors import DataError, OutputError, SessionError
from openjai.eval.anchors import JPEG
from openjai.subjective import session as sess
from openjai.subjective.design import Design, make_session
from openjai.subjective.schedule import check_observer, plan

from .subjective_helpers import CROP


def _png(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def test_session_conditions_and_files(base_session, tiny_eval):
    _, data = tiny_eval
    s = sess.load(base_session)
    assert [im.key for im in s.images] == ["a.png", "b.png"]
    hidden = [c for c in s.conditions if c.hidden_reference]
    coded = [c for c in s.conditions if not c.hidden_reference]
    assert len(hidden) == 2 and len(coded) == 8  # per image: 2 codecs × 2 rates + the hidden reference
    assert {(c.codec, c.target_bpp) for c in coded} == {("jpeg", 0.5), ("jpeg", 1.0), ("openjai", 0.5), ("openjai", 1.0)}
    assert s.seed == 7 and len(s.training) == 2 and s.grey_seconds == 0.2
    for im in s.images:
        x, y, w, h = im.crop
        ref = _png(base_session / im.file)
        assert ref.shape[:2] == (h, w) == (CROP[1], CROP[0])  # native resolution: no resampling
        np.testing.assert_array_equal(ref, _png(data / im.key)[y:y + h, x:x + w])
    for c in coded:
        assert c.metrics["psnr_y"] > 20 and 0.3 < c.bpp < 1.1
        assert _png(base_session / c.file).shape[:2] == (CROP[1], CROP[0])


def test_decoded_crop_is_the_eval_rows_stream(base_session, tiny_eval):
    """A JPEG condition is exactly JPEG at the row's quality, decoded (the stream is reproduced, not guessed)."""
    out, data = tiny_eval
    rows = list(csv.DictReader((out / "results.csv").open()))
    row = next(r for r in rows if r["image"] == "b.png" and r["codec"] == "jpeg" and float(r["target_bpp"]) == 1.0)
    img = _png(data / "b.png")
    stream = JPEG("420").encode(img, int(row["param"]))
    assert len(stream) == int(row["num_bytes"])
    s = sess.load(base_session)
    c = next(c for c in s.conditions if c.image == "b.png" and c.codec == "jpeg" and c.target_bpp == 1.0)
    np.testing.assert_array_equal(_png(base_session / c.file), JPEG("420").decode(stream))


def test_make_refuses_wrong_rows_and_overwrite(tiny_eval, tmp_path, base_session):
    out, data = tiny_eval
    bad = tmp_path / "bad"
    bad.mkdir()
    text = (out / "results.csv").read_text().splitlines()
    header, first = text[0], text[1].split(",")
    first[6] = str(int(first[6]) + 1)  # num_bytes no longer what the codec gives at that parameter
    (bad / "results.csv").write_text(header + "\n" + ",".join(first) + "\n")
    with pytest.raises(SessionError, match="re-encoding gave"):
        make_session(bad, data, tmp_path / "s1", Design(crop=CROP))
    with pytest.raises(DataError, match="codec 'vvc' is not in results.csv"):
        make_session(out, data, tmp_path / "s2", Design(codecs=["vvc"]))
    with pytest.raises(OutputError, match="--force"):
        make_session(out, data, base_session, Design(crop=CROP, codecs=["jpeg"]))


def test_session_json_round_trip_and_checks(base_session):
    s = sess.load(base_session)
    assert sess.from_json(sess.to_json(s)) == s
    d = json.loads((base_session / sess.SESSION_FILE).read_text())
    d["conditions"][1]["file"] = "../../etc/passwd"
    with pytest.raises(SessionError, match="relative"):
        sess.from_json(json.dumps(d).encode())
    d = json.loads((base_session / sess.SESSION_FILE).read_text())
    d["training"] = ["nope"]
    with pytest.raises(SessionError, match="training"):
        sess.from_json(json.dumps(d).encode())


def test_schedule_training_first_randomised_per_observer(base_session):
    s = sess.load(base_session)
    p1, p1b, p2 = plan(s, "obs1"), plan(s, "obs1"), plan(s, "obs2")
    assert p1 == p1b  # reproducible for one observer
    n_train = len(s.training)
    assert all(t.training for t in p1[:n_train]) and not any(t.training for t in p1[n_train:])
    assert sorted(t.condition for t in p1[:n_train]) == sorted(s.training)
    assert sorted(t.condition for t in p1[n_train:]) == sorted(c.id for c in s.conditions)  # each once
    assert [t.condition for t in p1] != [t.condition for t in p2]  # orders differ between observers
    sides = [t.ref_side for t in p1 + p2]
    assert "A" in sides and "B" in sides
    image_of = {c.id: c.image for c in s.conditions}
    test = [image_of[t.condition] for t in p1[n_train:]]
    assert all(a != b for a, b in zip(test, test[1:]))  # never the same image twice in a row
    assert len({t.trial_id for t in p1 + p2}) == len(p1) + len(p2)
    with pytest.raises(SessionError):
        check_observer("../x")
