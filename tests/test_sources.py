"""Other source formats (issue 11.2): HEIF/HEIC through pillow-heif, SVG refused by name."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from PIL import Image
from test_render import make_job

from imageserving.errors import ISError
from imageserving.render import codec, pipeline

pillow_heif = pytest.importorskip("pillow_heif")


def heic(img: Image.Image, **options) -> bytes:
    codec._heif_opener()  # the writer comes with the opener
    buf = io.BytesIO()
    img.save(buf, "HEIF", quality=95, **options)
    return buf.getvalue()


def test_heic_source_is_served():
    img = Image.new("RGB", (640, 480), (128, 64, 200))
    img.paste((20, 200, 40), (0, 0, 320, 480))
    src = codec.open_source(heic(img), max_pixels=10**8)
    assert (src.format, src.size) == ("HEIF", (640, 480))
    body = pipeline.render(make_job("wid=320&fmt=png", heic(img))).body
    out = Image.open(io.BytesIO(body))
    assert out.size == (320, 240)
    assert all(abs(a - b) <= 6 for a, b in zip(out.getpixel((80, 120)), (20, 200, 40)))
    assert all(abs(a - b) <= 6 for a, b in zip(out.getpixel((240, 120)), (128, 64, 200)))


def test_heic_orientation_is_applied_once():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    src = codec.open_source(heic(Image.new("RGB", (64, 32)), exif=exif.tobytes()), max_pixels=10**8)
    assert src.size == (32, 64)  # libheif turned it; the EXIF tag no longer asks for it


def test_heic_header_limit_and_broken_files():
    with pytest.raises(ISError) as err:
        codec.open_source(heic(Image.new("RGB", (640, 480))), max_pixels=1000)
    assert err.value.kind == "size_limit"
    data = heic(Image.new("RGB", (64, 64)))
    with pytest.raises(ISError) as err:
        codec.decode(codec.open_source(data[:200] + bytes(len(data) - 200), max_pixels=10**8), scale_hint=None)
    assert err.value.kind == "content_error"


def test_pillow_heif_is_imported_only_for_a_heif_source():
    code = (
        "import io, sys; from PIL import Image; from imageserving.render import codec;"
        "b = io.BytesIO(); Image.new('RGB', (8, 8)).save(b, 'PNG');"
        "codec.decode(codec.open_source(b.getvalue(), max_pixels=100), scale_hint=None);"
        "print('pillow_heif' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    "data",
    [
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
        b'\xef\xbb\xbf<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>',
        b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "x">\n<svg/>',
    ],
)
def test_svg_sources_are_a_content_error_naming_the_format(data):
    with pytest.raises(ISError) as err:
        codec.open_source(data, max_pixels=10**8)
    assert err.value.kind == "content_error" and "SVG" in err.value.detail
