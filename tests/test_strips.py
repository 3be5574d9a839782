"""Row strips (openjai/codec/strips.py): the layers give the same stream and the same pixels
whether an image is one strip or many, and memory needs are checked before allocation."""

import io

import numpy as np
import pytest
from PIL import Image

import openjai
from openjai.codec import memory, strips
from openjai.codec.container import Section, parse
from openjai.errors import LimitError
from openjai.eval.complexity import photo


def test_row_strips_cover_the_rows_aligned():
    assert strips.row_strips(100, 50) == [(0, 100)]  # 5 000 px: one strip
    ranges = strips.row_strips(1000, 3000, align=8, pixels=100_000)
    assert ranges[0] == (0, 32) and ranges[-1][1] == 1000
    assert all(a % 8 == 0 and b > a for a, b in ranges)
    assert all(b == c for (_, b), (c, _) in zip(ranges, ranges[1:]))
    assert strips.row_strips(10, 10**6, align=8, pixels=1000) == [(0, 8), (8, 10)]  # at least one aligned row
    assert strips.with_halo(0, 8, 20, 3) == (0, 11) and strips.with_halo(16, 20, 20, 3) == (13, 20)


def _once_jpeg(width: int, height: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(photo(width, height)).save(buf, "JPEG", quality=80)
    return np.asarray(Image.open(buf).convert("RGB")).copy()


@pytest.mark.parametrize("width,height", [(96, 1104), (1104, 96)])
def test_many_strips_code_and_decode_like_one(monkeypatch, width, height, shipped):
    """Tall-thin and wide-thin once-JPEG images, every layer on, larger than one synthesis
    tile: coded and decoded in strips of 8 rows (or a few) they give the same stream and the
    same pixels as in one strip."""
    img = _once_jpeg(width, height)
    whole = openjai.encode(img, bpp=2.5, model=shipped)
    sections = parse(whole).sections
    assert {Section.FILTER, Section.RESIDUAL, Section.LATTICE} <= set(sections)  # every layer is exercised
    decoded_whole = openjai.decode(whole, model=shipped)
    monkeypatch.setattr(strips, "STRIP_PIXELS", 8 * width + 1)  # 9 … 16 rows a strip
    assert len(strips.row_strips(height, width, align=8)) > 8
    assert openjai.encode(img, bpp=2.5, model=shipped) == whole
    assert np.array_equal(openjai.decode(whole, model=shipped), decoded_whole)


def test_a_size_the_machine_cannot_hold_is_refused_first(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 2 << 30)
    memory.check_memory(7680, 4320, "decode")  # 8K fits in 2 GiB beside this process
    with pytest.raises(LimitError, match="needs about .* GiB of memory"):
        memory.check_memory(20000, 20000, "decode")
    # before any allocation of the image's size: the header alone decides
    from openjai.codec.container import REQUIRED_SECTIONS, ColourMode, Header, Stream, write

    header = Header("openjai-base-3fe428d1", 16000, 16000, ColourMode.RGB, 1.0)  # within Limits
    huge = write(Stream(header, {s: b"" for s in REQUIRED_SECTIONS}))
    with pytest.raises(LimitError, match="16000x16000 image needs"):
        openjai.decode(huge)


def test_the_layers_decode_alike_on_any_number_of_threads(monkeypatch, shipped):
    """The decoder's pixel layers split the rows among torch's threads (strips.threaded_strips):
    the same pixels as one thread, from the same synthesis output."""
    import torch

    from openjai.codec import coder

    data = openjai.encode(_once_jpeg(200, 296), bpp=2.5, model=shipped)
    stream = parse(data)
    assert {Section.FILTER, Section.RESIDUAL, Section.LATTICE} <= set(stream.sections)
    latents = coder.decode_latents(shipped, stream)
    h = stream.header
    synthesized = coder._synthesize(shipped, latents.y_hat, h.height, h.width)
    monkeypatch.setattr(coder, "_synthesize", lambda *args: synthesized.copy())
    threads = torch.get_num_threads()
    try:
        images = []
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            assert len(strips.threaded_strips(h.height, h.width, 8)) == n
            images.append(coder.reconstruct(shipped, latents, stream))
    finally:
        torch.set_num_threads(threads)
    assert np.array_equal(images[0], images[1]) and np.array_equal(images[0], images[2])


def test_rate_controls_distortion_reads_a_centre_window_of_a_large_image(shipped):
    """Encoder.distortion (rate control's choice between lattice weights) measures at most a
    DISTORTION_SIDE² centre window, whose MS-SSIM blur matrices stay small."""
    import torch

    from openjai.codec import coder
    from openjai.codec.container import ColourMode
    from openjai.codec.distortion import distortion_parts, kind_for_size

    width = coder.DISTORTION_SIDE + 200
    img = photo(width, 176)
    enc = coder.Encoder(shipped, img, ColourMode.RGB, None)
    data = enc.code(3.0)
    decoded = openjai.decode(data, model=shipped)
    window = (slice(0, 176), slice(100, 100 + coder.DISTORTION_SIDE))
    as_float = [torch.from_numpy(a[window].astype(np.float32)).permute(2, 0, 1)[None] / 255.0 for a in (decoded, img)]
    expected = distortion_parts(*as_float, kind_for_size(shipped.model.cfg.distortion, 176, coder.DISTORTION_SIDE))
    assert enc.distortion(data) == pytest.approx(tuple(float(p) for p in expected), rel=1e-6)
