"""A tiny evaluation (2 images × jpeg, openjai × 2 rates) and the DSCQS session built from it."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from openjai.eval.cttc import BASE_COLUMNS, run_cttc
from openjai.eval.metrics import psnr_y
from openjai.eval.openjai_codec import OpenJAICodec
from openjai.subjective.design import Design, make_session

from .subjective_helpers import CROP, SAMPLE, Server

#: openjai rows are made at fixed qualities (a real rate search would take ~10 s): quality → target bpp
OPENJAI_POINTS = {22.0: 0.5, 42.0: 1.0}


@pytest.fixture(scope="session")
def tiny_eval(tmp_path_factory) -> tuple[Path, Path]:
    """(eval folder with results.csv, image folder): JPEG rows from a real ``run_cttc``, openjai rows
    made with the eval's own openjai adapter at fixed qualities, in the same CSV layout."""
    root = tmp_path_factory.mktemp("tiny_eval")
    data, out = root / "data", root / "eval"
    data.mkdir()
    out.mkdir()
    with Image.open(SAMPLE) as im:
        rgb = im.convert("RGB")
        rgb.crop((40, 60, 40 + CROP[0], 60 + CROP[1])).save(data / "a.png")
        rgb.crop((380, 200, 380 + CROP[0], 200 + CROP[1])).save(data / "b.png")
    csv_path = run_cttc(data, ["jpeg"], (0.5, 1.0), out / "results.csv", metrics=["psnr_y"], executor="serial",
                        progress=False)
    codec = OpenJAICodec("base")
    with csv_path.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[*BASE_COLUMNS, "psnr_y"])
        for name in ("a.png", "b.png"):
            img = np.asarray(Image.open(data / name).convert("RGB"))
            for q, target in OPENJAI_POINTS.items():
                stream = codec.encode(img, q)
                w.writerow({"image": name, "codec": "openjai", "target_bpp": repr(target), "param": repr(q),
                            "bpp": repr(len(stream) * 8 / (CROP[0] * CROP[1])), "reached": "True",
                            "num_bytes": str(len(stream)), "encode_s": "0", "decode_s": "0",
                            "psnr_y": repr(psnr_y(img, codec.decode(stream)))})
    return out, data


@pytest.fixture(scope="session")
def base_session(tiny_eval, tmp_path_factory) -> Path:
    out, data = tiny_eval
    session = tmp_path_factory.mktemp("base_session") / "session"
    make_session(out, data, session, Design(crop=CROP, training=2, grey_seconds=0.2, seed=7))
    return session


@pytest.fixture
def session_dir(base_session, tmp_path) -> Path:
    """A fresh copy of the session (its own empty results.sqlite)."""
    dst = tmp_path / "session"
    shutil.copytree(base_session, dst)
    return dst


@pytest.fixture
def serve_session(session_dir, tmp_path):
    """Start (and at the end kill) the DSCQS server of ``session_dir``."""
    servers: list[Server] = []

    def start() -> Server:
        s = Server(["serve", str(session_dir)], tmp_path / "server.log")
        servers.append(s)
        return s.start()

    yield start
    for s in servers:
        s.kill()
