"""Check this machine's decoder (and encoder) against the conformance streams.

    python tests/conformance/check.py            # one line per stream; exit status 1 on a failure
    python tests/conformance/check.py --encode   # also re-encode each input and compare

What MANIFEST.json guarantees, and so what is checked (docs/bitstream.md, "Conformance"):

* exact on every machine: the stream bytes, and the entropy-decoded integers (ẑ, σ-index, r,
  the layers' symbols), digested by ``regenerate.latent_digest``; also the latent sections
  that the entropy coder writes for those integers;
* within ``tolerance.decode``: the decoded image against the committed reference
  ``<name>.png``. Synthesis is float: another CPU (AVX2 or AVX-512 kernels, oneDNN or not)
  or another thread count sums in another order and moves a few pixels by one level;
* within ``tolerance.encode``: a stream encoded on this machine from the same input. The
  encoder's analysis is float, so a latent lying on a rounding boundary may round the other
  way; its integers, size and decoded image stay within the tolerance, and the stream is
  byte-identical only where the float path matches the one that wrote it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import openjai  # noqa: E402
import regenerate  # noqa: E402
from openjai.codec import coder, container, zoo  # noqa: E402
from openjai.codec.container import Section  # noqa: E402
from openjai.codec.context import anchor_mask  # noqa: E402

MANIFEST = json.loads((HERE / "MANIFEST.json").read_text())


@dataclass(frozen=True)
class Comparison:
    """How a decoded image differs from its reference."""

    max_abs: int
    identical: float  # share of equal samples
    psnr: float  # dB, inf when identical

    def problems(self, tolerance: dict) -> list[str]:
        """What breaks ``tolerance`` (keys max_abs, min_identical, min_psnr)."""
        out = []
        if self.max_abs > tolerance["max_abs"]:
            out.append(f"a sample differs by {self.max_abs} levels (allowed {tolerance['max_abs']})")
        if self.identical < tolerance["min_identical"]:
            out.append(f"{self.identical:.5%} of samples identical (needed {tolerance['min_identical']:.3%})")
        if self.psnr < tolerance["min_psnr"]:
            out.append(f"PSNR {self.psnr:.2f} dB against the reference (needed {tolerance['min_psnr']} dB)")
        return out


def compare(image: np.ndarray, reference: np.ndarray) -> Comparison:
    """Compare two uint8 images of one shape sample by sample."""
    if image.shape != reference.shape:
        raise ValueError(f"decoded shape {image.shape} is not the reference's {reference.shape}")
    diff = np.abs(image.astype(np.int16) - reference.astype(np.int16))
    mse = float(np.mean(diff.astype(np.float64) ** 2))
    return Comparison(int(diff.max(initial=0)), float(np.mean(diff == 0)),
                      math.inf if mse == 0 else 10 * math.log10(255**2 / mse))


def stream(name: str) -> bytes:
    return (HERE / f"{name}.jai").read_bytes()


def reference(name: str) -> np.ndarray:
    """The committed decoded image of stream ``name`` (uint8, as ``openjai.decode`` returns it)."""
    return np.asarray(Image.open(HERE / f"{name}.png"))


def latent_sections(data: bytes) -> dict[Section, bytes]:
    """The Z / Y sections the encoder's entropy coder (``coder.latent_sections``) writes for
    ``data``'s decoded integers: integers in, bytes out, so the same on every machine."""
    lc = zoo.for_stream(container.parse(data).header.model_id, None)
    lat = openjai.decode_latents(data)
    r = lat.residual
    anchors = None if lc.model.context is None else anchor_mask(*r.shape[-2:]).expand_as(r)
    return coder.latent_sections(lc, lat.z_hat, r, lat.sigma_index, anchors)


def check_decode(name: str) -> list[str]:
    """Problems of this machine's decode of stream ``name`` (empty: conformant)."""
    data, expect = stream(name), MANIFEST["streams"][name]
    if hashlib.sha256(data).hexdigest() != expect["stream_sha256"]:
        return [f"{name}.jai is not the committed stream"]
    problems = []
    if regenerate.latent_digest(data) != expect["latents_sha256"]:
        problems.append("entropy-decoded integers differ (must be exact)")
    sections = container.parse(data).sections
    if any(sections[tag] != coded for tag, coded in latent_sections(data).items()):
        problems.append("the entropy coder writes other latent sections for the decoded integers (must be exact)")
    problems += compare(openjai.decode(data), reference(name)).problems(MANIFEST["tolerance"]["decode"])
    return problems


def check_encode(name: str) -> list[str]:
    """Problems of this machine's encode of stream ``name``'s input (empty: within tolerance)."""
    img, kwargs = regenerate.inputs()[name]
    return encode_problems(regenerate.encode(img, kwargs), stream(name), reference(name))


def encode_problems(new: bytes, old: bytes, reference_image: np.ndarray) -> list[str]:
    """What makes stream ``new`` differ from ``old``, written by another machine (or thread
    count) from the same input, by more than ``tolerance.encode``; ``reference_image`` is
    ``old``'s decoded image."""
    if new == old:
        return []
    tol = MANIFEST["tolerance"]["encode"]
    problems = []
    if container.parse(new).header != container.parse(old).header:
        problems.append("header differs")
    if abs(len(new) / len(old) - 1) > tol["max_size_change"]:
        problems.append(f"{len(new)} bytes against {len(old)} (allowed ±{tol['max_size_change']:.1%})")
    a, b = openjai.decode_latents(new), openjai.decode_latents(old)
    for what, x, y in (("ẑ", a.z_hat, b.z_hat), ("r", a.residual, b.residual)):
        changed, allowed = int((x != y).sum()), max(2, math.floor(tol["max_changed_symbols"] * x.numel()))
        if changed > allowed:
            problems.append(f"{changed} of {x.numel()} {what} symbols changed (allowed {allowed})")
    psnr = compare(openjai.decode(new), reference_image).psnr
    if psnr < tol["min_psnr"]:
        problems.append(f"decoded PSNR {psnr:.2f} dB against the reference (needed {tol['min_psnr']} dB)")
    return problems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--encode", action="store_true", help="also re-encode each input and compare")
    args = p.parse_args(argv)
    failed = 0
    for name in sorted(MANIFEST["streams"]):
        problems = check_decode(name) + (check_encode(name) if args.encode else [])
        failed += bool(problems)
        print(f"{name}: {'; '.join(problems) if problems else 'ok'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
