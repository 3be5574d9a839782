"""Speed and memory of openjai against Pillow JPEG and VVenC / ffmpeg VVC, printed as ratios.

    make bench                                   # = python benchmarks/bench_codec.py
    python benchmarks/bench_codec.py --runs 5 --sizes 768x512 --no-vvc
    python benchmarks/bench_codec.py --sizes "" --speed-photos 6   # the speed table alone

First the speed table: on ``--speed-photos`` val photos at 768×512, the wall and CPU seconds per
megapixel of ``openjai.encode(bpp=0.5)``, ``openjai.encode(quality=50)`` and ``openjai.decode``
for each model (all threads), against VVenC medium (encode, QP ``--vvc-qp``) with ffmpeg's
VVC decoder and libjpeg-turbo (quality 75) on the same photos, with the stage profile of each
openjai operation (openjai/codec/profile.py). CPU seconds are the process's (for VVC, its
child processes'), all threads: on a busy machine the wall ratios drift, the CPU ones much less.

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
from openjai.eval.threads import torch_threads  # noqa: E402

#: Real photos tried in order (the first that exists is used); sample.png ships with openjai.
VAL = ROOT.parent / "shared" / "data" / "val"
PHOTOS = (
    VAL / "urban100_img_086.jpg",  # 1024×768, research use only
    cx.SAMPLE,  # 600×400, CC0
)
#: the speed table's photos, in order (as many as --speed-photos asks for that exist): one per
#: source of the val set, then the rest; research use only, not shipped
SPEED_PHOTOS = ("urban100_img_086.jpg", "dpst_tar55.webp", "imnet_n04347754_submarine.jpg",
                "sun80_abbey_sun_asztnlqhlrvirneh.webp", "urban100_img_042.jpg", "dpst_in41.webp")
SPEED_SIZE = (768, 512)

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


@dataclass
class Timing:
    """Seconds summed over the speed photos."""

    wall: float = 0.0
    cpu: float = 0.0
    bits: float = 0.0  # coded bits (encodes)

    def add(self, wall: float, cpu: float, nbytes: int = 0) -> None:
        self.wall += wall
        self.cpu += cpu
        self.bits += 8 * nbytes


def _timed(fn, own: bool = True) -> tuple[float, float, object]:
    """(wall, CPU seconds, result) of ``fn()``: this process's CPU (all threads), or with
    ``own=False`` that of the child processes it waited for."""
    import resource

    who = resource.RUSAGE_SELF if own else resource.RUSAGE_CHILDREN

    def cpu() -> float:
        u = resource.getrusage(who)
        return u.ru_utime + u.ru_stime

    c, t = cpu(), time.perf_counter()
    out = fn()
    return time.perf_counter() - t, cpu() - c, out


def speed_table(models: list[str], photos: list[Path], bpp: float, quality: float, vvc_qp: int,
                jpeg_quality: int, with_vvc: bool) -> str:
    """The speed table and stage profiles of the module docstring."""
    from openjai.codec import profile

    w, h = SPEED_SIZE
    rgbs = [cx.photo(w, h, p) for p in photos]
    mp = len(rgbs) * w * h / 1e6
    threads = cx.all_threads()
    jpeg, j_enc, j_dec = JPEG("420"), Timing(), Timing()
    for rgb in rgbs:
        jdata = jpeg.encode(rgb, jpeg_quality)
        # single-threaded and milliseconds long: the median of 5 wall times stands for both
        enc_s = cx.timed_median(lambda: jpeg.encode(rgb, jpeg_quality), 5)
        j_enc.add(enc_s, enc_s, len(jdata))
        dec_s = cx.timed_median(lambda: jpeg.decode(jdata), 5)
        j_dec.add(dec_s, dec_s)
    v_enc, v_dec, vvc_note = None, None, "VVC: skipped (--no-vvc)"
    if with_vvc:
        from openjai.eval.anchors.vvc import VVC

        vvc, v_enc, v_dec = VVC(), Timing(), Timing()
        try:
            for rgb in rgbs:
                wall, cpu, vdata = _timed(lambda: vvc.encode(rgb, vvc_qp), own=False)
                v_enc.add(wall, cpu, len(vdata))
                v_dec.add(*_timed(lambda: vvc.decode(vdata), own=False)[:2])
            vvc_note = (f"VVC: VVenC medium, all-intra, QP {vvc_qp} ({v_enc.bits / (mp * 1e6):.3f} bpp), ffmpeg's "
                        "default threading; decode: ffmpeg's native vvc decoder; one ffmpeg process per call")
        except OpenJAIError as e:
            v_enc, v_dec, vvc_note = None, None, f"VVC: not available ({e})"
    rows, profiles = [], []
    for name in models:
        lc = openjai.load_model(name)
        with torch_threads(threads):
            openjai.decode(openjai.encode(rgbs[0][:128, :128], quality=quality, model=lc), model=lc)  # warm-up
            streams: list[bytes] = []
            for label, kwargs, anchor in ((f"encode --bpp {bpp:g}", {"bpp": bpp}, "enc"),
                                          (f"encode --quality {quality:g}", {"quality": quality}, "enc"),
                                          (f"decode (the --bpp {bpp:g} streams)", None, "dec")):
                t = Timing()
                with profile.collect() as prof:
                    for i, rgb in enumerate(rgbs):
                        if kwargs is None:
                            t.add(*_timed(lambda: openjai.decode(streams[i], model=lc))[:2])
                        else:
                            wall, cpu, data = _timed(lambda: openjai.encode(rgb, model=lc, **kwargs))
                            t.add(wall, cpu, len(data))
                            if "bpp" in kwargs:
                                streams.append(data)
                vv = v_enc if anchor == "enc" else v_dec
                jj = j_enc if anchor == "enc" else j_dec
                rows.append((name, label, t, vv, jj))
                profiles.append(f"{name}, {label} ({len(rgbs)} photos, {threads} threads; wall s/MP in the last "
                                f"column)\n\n```\n{prof.table(mp)}\n```")
    head = ("| model | operation | bpp | wall s/MP | CPU s/MP | / VVenC (wall) | / VVenC (CPU) | / JPEG (wall) |\n"
            "|---|---|---:|---:|---:|---:|---:|---:|")
    lines = []
    for name, label, t, vv, jj in rows:
        bpp_text = f"{t.bits / (mp * 1e6):.3f}" if t.bits else ""
        vw = f"{t.wall / vv.wall:.2f}" if vv else "–"
        vc = f"{t.cpu / vv.cpu:.2f}" if vv and vv.cpu > 0 else "–"
        lines.append(f"| {name} | {label} | {bpp_text} | {t.wall / mp:.3f} | {t.cpu / mp:.3f} | {vw} | {vc} | "
                     f"{t.wall / jj.wall:.0f} |")
    anchors = [f"- JPEG (libjpeg-turbo q{jpeg_quality}, 4:2:0): encode {j_enc.wall / mp:.4f} s/MP, "
               f"decode {j_dec.wall / mp:.4f} s/MP, {j_enc.bits / (mp * 1e6):.3f} bpp"]
    if v_enc is not None:
        anchors.append(f"- VVC: encode {v_enc.wall / mp:.3f} s/MP wall ({v_enc.cpu / mp:.3f} CPU), decode "
                       f"{v_dec.wall / mp:.4f} s/MP wall ({v_dec.cpu / mp:.4f} CPU)")
    title = (f"### Speed: {len(rgbs)} photos at {w}x{h} ({', '.join(p.name for p in photos)}), "
             f"{threads} threads, one run each after a warm-up")
    return "\n".join([title, "", head, *lines, "", *anchors, f"- {vvc_note}", "", "#### Stage profiles", "",
                       "\n\n".join(profiles)])


def speed_photos(n: int) -> list[Path]:
    found = [VAL / name for name in SPEED_PHOTOS if (VAL / name).is_file()][:n]
    return found or [cx.SAMPLE]


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
    p.add_argument("--speed-models", default="base,high", help="models of the speed table ('' to skip it)")
    p.add_argument("--speed-photos", type=int, default=2, help="val photos in the speed table")
    p.add_argument("--speed-bpp", type=float, default=0.5)
    p.add_argument("--speed-quality", type=float, default=50.0)
    a = p.parse_args(argv)

    lc = openjai.load_model(a.model)
    src = pick_photo(a.photo)
    threads = sorted({1, cx.all_threads()})
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in a.sizes.split(",") if s]
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
    if a.speed_models:
        print(speed_table(a.speed_models.split(","), speed_photos(a.speed_photos), a.speed_bpp, a.speed_quality,
                          a.vvc_qp, a.jpeg_quality, not a.no_vvc))
        print()
        sys.stdout.flush()
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
    if not a.no_vvc and sizes:
        if dec_768 is None:
            print("VVC: skipped (compared on 768x512 only; add it to --sizes)")
        else:
            print(bench_vvc(cx.photo(768, 512, src), a.vvc_qp, a.runs, dec_768, threads))
        print()
    print(f"load average at end: {os.getloadavg()[0]:.2f} (1 min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
