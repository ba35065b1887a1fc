"""Other source formats (issue 11.2): HEIF/HEIC through pillow-heif, SVG refused by name; fmt=heic replies."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from PIL import Image, ImageChops
from test_render import make_job

from imageserving.errors import ISError
from imageserving.render import codec, formats, heif, pipeline

pillow_heif = pytest.importorskip("pillow_heif")


def heic(img: Image.Image, **options) -> bytes:
    heif.register()  # the writer comes with the opener
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


# ------------------------------------------------------------------ animated GIF and WebP
COLOURS = [(220, 30, 30), (30, 200, 30), (30, 30, 220)]


def animation(fmt: str, size=(120, 80), durations=(50, 100, 150), loop: int | None = 0, alpha=False) -> bytes:
    frames = []
    for i, colour in enumerate(COLOURS):
        img = Image.new("RGBA" if alpha else "RGB", size, (*colour, 255) if alpha else colour)
        img.paste((255, 255, 255, 255) if alpha else (255, 255, 255), (i * 20, 0, i * 20 + 20, 20))
        if alpha:
            img.paste((0, 0, 0, 0), (0, size[1] - 10, size[0], size[1]))
        frames.append(img)
    buf = io.BytesIO()
    extra = {"loop": loop} if loop is not None else {}
    if fmt == "WEBP":
        extra["lossless"] = True
    frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], duration=list(durations), **extra)
    return buf.getvalue()


def frames_of(body: bytes) -> list[tuple[tuple, int]]:
    im = Image.open(io.BytesIO(body))
    out = []
    for i in range(getattr(im, "n_frames", 1)):
        im.seek(i)
        out.append((im.convert("RGB").getpixel((im.width // 2, im.height // 2)), im.info.get("duration")))
    return out


def close(a, b, tolerance=8) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b))


@pytest.mark.parametrize("source_fmt", ["GIF", "WEBP"])
@pytest.mark.parametrize("fmt", ["gif", "webp", "webp,,lossless"])
def test_an_animation_stays_animated_for_gif_and_webp(source_fmt, fmt):
    body = pipeline.render(make_job(f"wid=60&fmt={fmt}", animation(source_fmt))).body
    got = frames_of(body)
    assert len(got) == 3
    assert all(close(c, want) for (c, _), want in zip(got, COLOURS)), got
    assert [d for _, d in got] == [50, 100, 150]
    assert Image.open(io.BytesIO(body)).size == (60, 40)
    assert Image.open(io.BytesIO(body)).info.get("loop") == 0


def test_a_gif_that_plays_once_still_plays_once():
    body = pipeline.render(make_job("wid=60&fmt=gif", animation("GIF", loop=None))).body
    assert len(frames_of(body)) == 3 and "loop" not in Image.open(io.BytesIO(body)).info


def test_alpha_animations_keep_their_transparency():
    body = pipeline.render(make_job("wid=120&fmt=webp-alpha", animation("GIF", alpha=True))).body
    im = Image.open(io.BytesIO(body))
    for i in range(3):
        im.seek(i)
        frame = im.convert("RGBA")
        assert frame.getpixel((60, 75))[3] == 0 and frame.getpixel((60, 30))[3] == 255
    gif = Image.open(io.BytesIO(pipeline.render(make_job("wid=120&fmt=gif-alpha", animation("GIF", alpha=True))).body))
    assert gif.n_frames == 3
    gif.seek(2)
    assert gif.convert("RGBA").getpixel((60, 75))[3] == 0 and close(gif.convert("RGB").getpixel((60, 40)), COLOURS[2])


@pytest.mark.parametrize(
    "query",
    ["wid=60&fmt=png", "wid=60&fmt=jpeg", "wid=60&fmt=gif&op_blur=2", "wid=60&fmt=gif&quantize=adaptive,off,16"],
)
def test_still_formats_and_changed_animations_take_the_first_frame(query):
    body = pipeline.render(make_job(query, animation("GIF"))).body
    got = frames_of(body)
    assert len(got) == 1 and close(got[0][0], COLOURS[0], 24)


def test_animations_over_the_bounds_are_served_as_their_first_frame(monkeypatch):
    monkeypatch.setattr(pipeline, "MAX_FRAMES", 2)
    assert len(frames_of(pipeline.render(make_job("wid=60&fmt=gif", animation("GIF"))).body)) == 1
    monkeypatch.setattr(pipeline, "MAX_FRAMES", 300)
    job = make_job("wid=60&fmt=gif", animation("GIF"), max_source_pixels=2 * 120 * 80)  # 3 frames do not fit
    assert len(frames_of(pipeline.render(job).body)) == 1


# ------------------------------------------------------------------------------- fmt=heic replies
def test_fmt_heic_is_lossless_heic():
    img = Image.new("RGB", (640, 480), (128, 64, 200))
    img.paste((20, 200, 40), (0, 0, 320, 480))
    reply = pipeline.render(make_job("wid=320&fmt=heic", heic(img)))
    assert reply.media_type == "image/heic"
    assert reply.body[4:8] == b"ftyp"
    out = Image.open(io.BytesIO(reply.body))
    assert (out.format, out.size) == ("HEIF", (320, 240))
    png = Image.open(io.BytesIO(pipeline.render(make_job("wid=320&fmt=png", heic(img))).body)).convert("RGB")
    # Lossless coding of YCbCr 4:4:4: only the colour transform's rounding is left.
    assert max(high for _, high in ImageChops.difference(out.convert("RGB"), png).getextrema()) <= 1


@pytest.mark.parametrize("fmt", ["heic,,lossy", "heic,gray", "heic,cmyk", "heic-alpha"])
def test_fmt_heic_takes_only_what_the_reference_lists(fmt):
    with pytest.raises(ISError) as err:
        formats.parse_fmt(fmt)
    assert err.value.kind == "bad_request"


def test_fmt_heic_without_pillow_heif_is_a_bad_request(monkeypatch):
    monkeypatch.setattr(heif, "register", lambda: False)
    with pytest.raises(ISError) as err:
        formats.parse_fmt("heic")
    assert (err.value.kind, err.value.detail) == ("bad_request", "format not supported: heic")
