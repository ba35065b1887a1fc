"""The SSIM/PSNR of benchmarks/smart_imaging.py, which the quality mapping was chosen by."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageFilter

pytest.importorskip("numpy")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import smart_imaging as si  # noqa: E402


def _picture() -> Image.Image:
    return Image.open(Path(__file__).resolve().parents[1] / "images" / "sample" / "rose.jpg").convert("RGB")


def test_ssim_of_identical_images_is_one_and_drops_with_damage():
    img = _picture().resize((200, 150))
    assert si.ssim(img, img) == pytest.approx(1.0)
    slight = si.ssim(img, img.filter(ImageFilter.GaussianBlur(0.6)))
    heavy = si.ssim(img, img.filter(ImageFilter.GaussianBlur(3)))
    assert 1.0 > slight > heavy > 0


def test_ssim_is_structural_not_just_brightness():
    # A uniform brightness shift keeps structure (high SSIM) but costs a lot of PSNR.
    img = _picture().resize((200, 150)).convert("L")
    shifted = img.point(lambda v: min(255, v + 12))
    noisy = Image.blend(img, Image.effect_noise(img.size, 64), 0.15)
    assert si.ssim(img, shifted) > si.ssim(img, noisy)
    assert si.psnr(img, shifted) < 30


def test_scores_of_alpha_replies_use_both_mattes():
    img = _picture().resize((120, 90)).convert("RGBA")
    img.putalpha(Image.linear_gradient("L").resize(img.size))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    assert si.scores(img, buf.getvalue()) == (pytest.approx(1.0), float("inf"))
