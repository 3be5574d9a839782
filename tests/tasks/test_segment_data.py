"""Composites for foreground extraction: exact masks, determinism; the mask metrics."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from openjai.tasks import composite
from openjai.tasks.eval_segment import boundary_f, iou


def _white_disc_stamp(path, size: int = 60) -> None:
    yy, xx = np.mgrid[:size, :size]
    rgba = np.zeros((size, size, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[..., 3] = np.clip((size / 2 - np.hypot(yy - size / 2, xx - size / 2)) * 40, 0, 255).astype(np.uint8)
    Image.fromarray(rgba, "RGBA").save(path)


@pytest.fixture
def files(tmp_path):
    stamp = tmp_path / "disc.png"
    _white_disc_stamp(stamp)
    bg = tmp_path / "bg.png"
    Image.fromarray(np.zeros((120, 160, 3), np.uint8)).save(bg)
    return bg, stamp


def test_blend_is_alpha_compositing():
    canvas = np.full((2, 2, 3), 0.2, np.float32)
    alpha = np.zeros((2, 2), np.float32)
    stamp = np.zeros((1, 1, 4), np.float32)
    stamp[0, 0] = (1.0, 0.5, 0.0, 0.75)
    composite.blend(canvas, alpha, stamp, 1, 0)
    composite.blend(canvas, alpha, stamp, 1, 0)
    # one layer: 0.75·s + 0.25·0.2; two: 0.75·s + 0.25·(first); coverage 1 − 0.25²
    first = 0.75 * np.array([1.0, 0.5, 0.0]) + 0.25 * 0.2
    np.testing.assert_allclose(canvas[0, 1], 0.75 * np.array([1.0, 0.5, 0.0]) + 0.25 * first, atol=1e-6)
    np.testing.assert_allclose(canvas[0, 0], 0.2, atol=1e-7)
    assert alpha[0, 1] == pytest.approx(1 - 0.25**2, abs=1e-6)
    assert alpha[1].tolist() == [0.0, 0.0] and alpha[0, 0] == 0.0


def test_blend_clips_at_the_border():
    canvas = np.zeros((4, 4, 3), np.float32)
    alpha = np.zeros((4, 4), np.float32)
    composite.blend(canvas, alpha, np.ones((3, 3, 4), np.float32), -2, 3)
    assert alpha.sum() == 1.0 and alpha[3, 0] == 1.0
    composite.blend(canvas, alpha, np.ones((3, 3, 4), np.float32), 5, 0)  # wholly outside: nothing
    assert alpha.sum() == 1.0


def test_mask_is_exactly_the_half_coverage_of_the_blend(files):
    # white stamps on black: each channel is rint(255 · coverage), so coverage > 0.5 ⇔ value ≥ 128
    bg, stamp = files
    for i in range(4):
        s = composite.compose(bg, [stamp], 160, 120, np.random.default_rng(i))
        assert s.rgb.shape == (120, 160, 3) and s.mask.shape == (120, 160)
        np.testing.assert_array_equal(s.mask, s.rgb[..., 0] >= 128)
        assert 0 < s.mask.sum() < s.mask.size


def test_compose_is_deterministic_by_seed(files):
    bg, stamp = files
    a = composite.compose(bg, [stamp], 160, 120, np.random.default_rng([0, 1, 5]))
    b = composite.compose(bg, [stamp], 160, 120, np.random.default_rng([0, 1, 5]))
    c = composite.compose(bg, [stamp], 160, 120, np.random.default_rng([0, 1, 6]))
    np.testing.assert_array_equal(a.rgb, b.rgb)
    np.testing.assert_array_equal(a.mask, b.mask)
    assert not np.array_equal(a.mask, c.mask)


def test_photo_stamp_rule(tmp_path):
    rng = np.random.default_rng(0)
    photo = np.zeros((64, 64, 4), np.uint8)
    photo[..., :3] = rng.integers(0, 256, (64, 64, 3))
    photo[8:56, 8:56, 3] = 255
    Image.fromarray(photo, "RGBA").save(tmp_path / "photo.png")
    drawing = photo.copy()
    drawing[..., :3] = (200, 30, 30)
    Image.fromarray(drawing, "RGBA").save(tmp_path / "drawing.png")
    (tmp_path / "cartoon").mkdir()
    Image.fromarray(photo, "RGBA").save(tmp_path / "cartoon" / "photo.png")
    assert composite.is_photo_stamp(tmp_path / "photo.png")
    assert not composite.is_photo_stamp(tmp_path / "drawing.png")
    assert not composite.is_photo_stamp(tmp_path / "cartoon" / "photo.png")


def test_split_is_stable_and_holds_out_about_one_in_five():
    names = [f"animals/x{i}.png" for i in range(1000)]
    held = [n for n in names if composite.is_test_stamp(n)]
    assert 150 < len(held) < 250
    assert held == [n for n in names if composite.is_test_stamp(n)]


def test_iou_hand_cases():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    assert iou(a, b) == 1.0
    a[0, :2] = True  # 2 pixels
    assert iou(a, b) == 0.0
    b[0, 1:4] = True  # 3 pixels, 1 shared, union 4
    assert iou(a, b) == pytest.approx(0.25)


def test_boundary_f_hand_cases():
    a = np.zeros((40, 40), bool)
    a[10:20, 10:20] = True  # boundary: 36 pixels
    b = np.zeros((40, 40), bool)
    b[10:20, 15:25] = True
    assert boundary_f(a, a) == 1.0
    # tolerance 0: shared boundary pixels are rows 10 and 19 at columns 15..19, 10 of 36 each way
    assert boundary_f(a, b, tolerance=0) == pytest.approx(10 / 36)
    # a one-pixel shift is within a tolerance of 1 everywhere
    assert boundary_f(a, np.roll(a, 1, axis=1), tolerance=1) == 1.0
    assert boundary_f(a, np.zeros_like(a)) == 0.0
    assert boundary_f(np.zeros_like(a), np.zeros_like(a)) == 1.0
