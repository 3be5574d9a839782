"""Speed and memory of openjai against Pillow JPEG (and VVC decoding), printed as ratios.

    make bench                                   # = python benchmarks/bench_codec.py
    python benchmarks/bench_codec.py --runs 5 --sizes 768x512 --no-vvc

Every openjai number comes from ``openjai.eval.complexity`` (one function per number, see its
docstring); the JPEG column uses the same timing and peak-memory functions on the CTTC JPEG
anchor (``openjai.eval.anchors.jpeg.JPEG("420")`` at quality 75: libjpeg-turbo, 4:2:0,
optimised Huffman tables). See benchmarks/README.md for what each row means. Nothing here
asserts a time: the numbers depend on the machine and on whatever else runs on it, so the
load average is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without `pip install -e .` too

import openjai  # noqa: E402
from openjai.api import DEFAULT_QUALITY  # noqa: E402
from openjai.bpp import bits_per_pixel  # noqa: E402
from openjai.codec.weights import LoadedCodec  # noqa: E402
from openjai.errors import OpenJAIError  # noqa: E402
from openjai.eval import complexity as cx  # noqa: E402
from openjai.eval.anchors.jpeg import JPEG  # noqa: E402

#: Real photos tried in order (the first that exists is used); sample.png ships with openjai.
PHOTOS = (
    ROOT.parent / "shared" / "data" / "val" / "urban100_img_086.jpg",  # 1024×768, research use only
    cx.SAMPLE,  # 600×400, CC0
)

# JPEG has no network to count; an analytic multiply count for 4:2:0 (1.5 samples per pixel),
# with a plain separable 8-point matrix DCT (8 + 8 MAC per sample). libjpeg-turbo's DCTs need
# fewer multiplies (AAN-style factorisations, SIMD), so these are upper bounds, not measurements.
#   encode: RGB→YCbCr 9/px + DCT 16×1.5 + quantisation 1×1.5                     = 34.5 MAC/px
#   decode: dequantisation 1.5 + IDCT 16×1.5 + chroma upsampling (2-tap, 2 directions,
#           2 planes) 8/px + YCbCr→RGB 4/px                                       = 37.5 MAC/px
JPEG_KMAC_ENCODE = 34.5 / 1000
JPEG_KMAC_DECODE = 37.5 / 1000


@dataclass
class Row:
    name: str
    openjai: float
    jpeg: float
    fmt: str = "{:.4f}"

    def line(self) -> str:
        ratio = self.openjai / self.jpeg if self.jpeg > 0 else float("nan")
        return f"| {self.name:<34} | {self.fmt.format(self.openjai):>12} | {self.fmt.format(self.jpeg):>12} | " \
               f"{ratio:>12.1f} |"


def table(title: str, rows: list[Row]) -> str:
    head = f"| {'':<34} | {'openjai':>12} | {'JPEG q75':>12} | {'openjai/JPEG':>12} |"
    sep = f"|{'-' * 36}|{'-' * 14}|{'-' * 14}|{'-' * 14}|"
    return "\n".join([title, "", head, sep, *(r.line() for r in rows)])


def pick_photo(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    for p in PHOTOS:
        if p.is_file():
            return p
    raise SystemExit("no benchmark photo found")


def bench_size(lc: LoadedCodec, src: Path, width: int, height: int, threads: list[int], runs: int, quality: float,
               jpeg_quality: int, weights: Path) -> tuple[str, dict[str, float]]:
    rgb = cx.photo(width, height, src)

    def spm(seconds: float) -> float:
        return cx.seconds_per_megapixel(seconds, width, height)

    n_max = max(threads)

    data = openjai.encode(rgb, quality=quality, model=lc)
    cpu = {n: cx.cpu_seconds(lc, rgb, n, quality, runs) for n in threads}
    rss_enc = cx.peak_rss(cx.RssJob("openjai", "encode", rgb, quality, n_max, weights))
    rss_dec = cx.peak_rss(cx.RssJob("openjai", "decode", data, quality, n_max, weights))
    kmac = cx.kmac_per_pixel(lc.model, width, height)

    jpeg = JPEG("420")
    jdata = jpeg.encode(rgb, jpeg_quality)
    jruns = max(runs, 5)  # JPEG calls take milliseconds: more runs for a stable median
    j_enc = cx.timed_median(lambda: jpeg.encode(rgb, jpeg_quality), jruns)
    j_dec = cx.timed_median(lambda: jpeg.decode(jdata), jruns)
    j_rss_enc = cx.peak_rss(cx.RssJob("jpeg", "encode", rgb, jpeg_quality))
    j_rss_dec = cx.peak_rss(cx.RssJob("jpeg", "decode", jdata, jpeg_quality))

    rows = [Row("bpp", bits_per_pixel(len(data), width, height), bits_per_pixel(len(jdata), width, height), "{:.3f}")]
    for n in threads:
        rows.append(Row(f"encode s/MP, {n} thread(s)", spm(cpu[n].encode_s), spm(j_enc)))
    for n in threads:
        rows.append(Row(f"decode s/MP, {n} thread(s)", spm(cpu[n].decode_s), spm(j_dec)))
    rows += [
        Row(f"encode peak RSS MiB ({n_max} thr)", rss_enc.peak_mib, j_rss_enc.peak_mib, "{:.0f}"),
        Row("  of which the encode itself", rss_enc.working_mib, j_rss_enc.working_mib, "{:.1f}"),
        Row(f"decode peak RSS MiB ({n_max} thr)", rss_dec.peak_mib, j_rss_dec.peak_mib, "{:.0f}"),
        Row("  of which the decode itself", rss_dec.working_mib, j_rss_dec.working_mib, "{:.1f}"),
        Row("encode kMAC/pixel (JPEG: analytic)", kmac.encoder, JPEG_KMAC_ENCODE, "{:.3f}"),
        Row("decode kMAC/pixel (JPEG: analytic)", kmac.decoder, JPEG_KMAC_DECODE, "{:.3f}"),
    ]
    title = f"### {width}x{height} ({width * height / 1e6:.2f} MP), openjai quality {quality:g}"
    return table(title, rows), {"decode_s": cpu[n_max].decode_s, "decode_s_1": cpu[min(threads)].decode_s}


def bench_vvc(rgb: np.ndarray, qp: int, runs: int, openjai_decode: dict[str, float], threads: list[int]) -> str:
    from openjai.eval.anchors.vvc import VVC

    vvc = VVC()
    t = time.perf_counter()
    try:
        data = vvc.encode(rgb, qp)
    except OpenJAIError as e:
        return f"VVC: not available ({e})"
    enc_s = time.perf_counter() - t
    dec_s = cx.timed_median(lambda: vvc.decode(data), runs)
    h, w = rgb.shape[:2]
    return "\n".join([
        f"### VVC decoding, {w}x{h} (VVenC medium, QP {qp}, {bits_per_pixel(len(data), w, h):.3f} bpp; "
        f"encoded once in {enc_s:.1f} s)",
        "",
        "ffmpeg's native vvc decoder, default threading, one ffmpeg process per decode (process start, "
        "YUV4MPEG output and the numpy colour conversion included)",
        f"- VVC decode: {dec_s:.4f} s ({cx.seconds_per_megapixel(dec_s, w, h):.4f} s/MP)",
        f"- openjai decode / VVC decode: {openjai_decode['decode_s'] / dec_s:.1f}x ({max(threads)} threads), "
        f"{openjai_decode['decode_s_1'] / dec_s:.1f}x (1 thread)",
    ])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="base")
    p.add_argument("--sizes", default="768x512,2048x1536")
    p.add_argument("--runs", type=int, default=3, help="timed runs per number (median), after one warm-up")
    p.add_argument("--quality", type=float, default=DEFAULT_QUALITY, help="openjai quality")
    p.add_argument("--jpeg-quality", type=int, default=75)
    p.add_argument("--photo", help="source photo (default: first of %s that exists)" % ", ".join(map(str, PHOTOS)))
    p.add_argument("--no-vvc", action="store_true")
    p.add_argument("--vvc-qp", type=int, default=32)
    a = p.parse_args(argv)

    lc = openjai.load_model(a.model)
    src = pick_photo(a.photo)
    threads = sorted({1, cx.all_threads()})
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in a.sizes.split(",")]
    load0 = os.getloadavg()
    print("# openjai benchmark")
    print()
    print(f"- CPU: {cx.cpu_model_name()} ({platform.machine()}), {cx.all_threads()} usable cores; "
          f"thread counts timed: {threads}")
    print(f"- torch {torch.__version__}, Python {platform.python_version()}, model {lc.model_id}")
    fallback = "" if src != cx.SAMPLE or a.photo else " (fallback: no validation photo found)"
    print(f"- photo: {src}{fallback}, Lanczos-scaled to cover each size and centre-cropped")
    print(f"- load average at start: {load0[0]:.2f} (1 min); other work running during the benchmark "
          "disturbs the timings (the load average includes this benchmark's own threads once it runs)")
    print(f"- median of {a.runs} runs after 1 warm-up (JPEG: {max(a.runs, 5)}); JPEG (libjpeg-turbo) is "
          "single-threaded, measured once and shown on every thread row")
    print()
    dec_768 = None
    with tempfile.TemporaryDirectory() as d:
        weights = cx.weights_file(lc, d)
        for w, h in sizes:
            text, dec = bench_size(lc, src, w, h, threads, a.runs, a.quality, a.jpeg_quality, weights)
            print(text)
            print()
            sys.stdout.flush()
            if (w, h) == (768, 512):
                dec_768 = dec
    if not a.no_vvc:
        if dec_768 is None:
            print("VVC: skipped (compared on 768x512 only; add it to --sizes)")
        else:
            print(bench_vvc(cx.photo(768, 512, src), a.vvc_qp, a.runs, dec_768, threads))
        print()
    print(f"load average at end: {os.getloadavg()[0]:.2f} (1 min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
