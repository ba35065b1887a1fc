"""The sample bucket's images are what tests/make_samples.py draws (so they can be regenerated)."""

import io
from pathlib import Path

import make_samples
import pytest
from PIL import Image, ImageChops, ImageStat

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("key", sorted(make_samples.SAMPLES))
def test_committed_sample_matches_generator(key):
    make, fmt = make_samples.SAMPLES[key]
    fresh = Image.open(io.BytesIO(make_samples.encode(make(), fmt)))
    committed = Image.open(ROOT / key)
    assert (committed.format, committed.size, committed.mode) == (fresh.format, fresh.size, fresh.mode)
    diff = ImageChops.difference(committed.convert("RGBA"), fresh.convert("RGBA"))
    assert max(ImageStat.Stat(diff).extrema[i][1] for i in range(4)) <= (3 if fmt == "JPEG" else 0)
