"""The server's HTTP API (no browser): blinding, idempotent submits, errors, and a SIGKILL + restart."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request

import numpy as np
from PIL import Image

from openjai.subjective import session as sess


def _call(url: str, body: dict | bytes | None = None) -> tuple[int, dict | bytes]:
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="GET" if body is None else "POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            raw, status, kind = r.read(), r.status, r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        raw, status, kind = e.read(), e.code, e.headers.get("Content-Type", "")
    return status, json.loads(raw) if kind.startswith("application/json") else raw


def test_api_resume_idempotence_and_kill(session_dir, serve_session):
    s = sess.load(session_dir)
    server = serve_session()
    u = server.url
    assert _call(u + "/api/observers", {"observer": "../etc"})[0] == 400
    assert _call(u + "/api/observers", b"not json")[0] == 400
    status, p = _call(u + "/api/observers", {"observer": "carol"})
    assert status == 200 and p["new"] and p["total"] == len(s.training) + len(s.conditions) and p["answered"] == 0

    _, t = _call(u + "/api/observers/carol/next")
    assert t["training"] and t["position"] == 1 and (t["width"], t["height"]) == s.images[0].crop[2:]
    # the image URLs say nothing of the codec or the hidden reference
    assert t["a"] == f"/api/trials/{t['trial_id']}/A" and t["b"] == f"/api/trials/{t['trial_id']}/B"
    _, png_a = _call(u + t["a"])
    _, png_b = _call(u + t["b"])
    shown = {np.asarray(Image.open(io.BytesIO(p)).convert("RGB")).tobytes() for p in (png_a, png_b)}
    files = {np.asarray(Image.open(session_dir / f).convert("RGB")).tobytes() for f in s.files()}
    assert shown <= files

    tid = t["trial_id"]
    assert _call(f"{u}/api/trials/{tid}", {"score_a": 70, "score_b": 30}) == (200, {"status": "recorded"})
    assert _call(f"{u}/api/trials/{tid}", {"score_a": 70, "score_b": 30}) == (200, {"status": "already recorded"})
    assert _call(f"{u}/api/trials/{tid}", {"score_a": 71, "score_b": 30})[0] == 409
    assert _call(f"{u}/api/trials/{tid}", {"score_a": "70", "score_b": 30})[0] == 400
    assert _call(f"{u}/api/trials/nobody-000", {"score_a": 1, "score_b": 1})[0] == 400
    _, t2 = _call(u + "/api/observers/carol/next")
    assert t2["index"] == t["index"] + 1

    server.kill()  # SIGKILL: no shutdown handler runs
    server.start()
    status, p = _call(u + "/api/observers", {"observer": "carol"})
    assert status == 200 and not p["new"] and p["answered"] == 1  # resumed, nothing lost
    _, t3 = _call(u + "/api/observers/carol/next")
    assert t3["trial_id"] == t2["trial_id"]
