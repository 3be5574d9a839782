"""`make demo`: encode and decode the bundled sample photo, with JPEG at the same rate for context.

Prints bpp, PSNR of Y and of RGB, and MS-SSIM (Y, BT.709; Y as the JPEG AI CTTC) for openjai at three
target rates, and for libjpeg-turbo (Pillow, 4:2:0) rate-matched to the same targets.
The streams and decoded images go to ``demo_out/``.
"""

from __future__ import annotations

import time
from pathlib import Path

import openjai

from . import image
from .files import atomic_write
from .eval.anchors.jpeg import JPEG
from .eval.metrics import METRICS
from .eval.ratematch import match_rate

SAMPLE = Path(__file__).with_name("data") / "sample.png"
TARGETS = (0.25, 0.5, 1.0)


def _quality(ref, dist) -> str:
    return (f"{METRICS['psnr_y'](ref, dist):7.2f} {METRICS['psnr_rgb'](ref, dist):8.2f} "
            f"{METRICS['ms_ssim'](ref, dist):8.4f}")


def main() -> None:
    out_dir = Path("demo_out")
    out_dir.mkdir(exist_ok=True)
    rgb = image.load(SAMPLE).rgb
    h, w = rgb.shape[:2]
    print(f"sample: {SAMPLE.name} {w}x{h} (CC0, see openjai/data/README.md)")
    print(f"{'codec':8} {'target':>6} {'bpp':>7} {'PSNR-Y':>7} {'PSNR-RGB':>8} {'MS-SSIM':>8} {'enc s':>6} {'dec s':>6}")
    jpeg = JPEG("420")
    for target in TARGETS:
        t0 = time.perf_counter()
        data = openjai.encode(rgb, bpp=target)
        t1 = time.perf_counter()
        dec = openjai.decode(data)
        t2 = time.perf_counter()
        stem = f"sample_{target:g}bpp"
        atomic_write(out_dir / f"{stem}.jai", data, force=True)
        image.save(out_dir / f"{stem}.png", dec, force=True)
        bpp = openjai.read_info(data).bpp
        print(f"{'openjai':8} {target:6.2f} {bpp:7.4f} {_quality(rgb, dec)} {t1 - t0:6.2f} {t2 - t1:6.2f}")
        point = match_rate(jpeg, rgb, target)
        jdec = jpeg.decode(point.bytes)
        print(f"{'jpeg':8} {target:6.2f} {point.bpp:7.4f} {_quality(rgb, jdec)}")
    print(f"streams and decoded PNGs in {out_dir}/")


if __name__ == "__main__":
    main()
