"""Pyramid and multi-page TIFF sources (rendering.md §9, §16.8; issue 11.2): the smallest level that
keeps the needed resolution is decoded, chosen from page headers, and the pixel limit applies to it."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from test_render import diff_stats, make_job, photo

from imageserving.errors import ISError
from imageserving.render import codec, pipeline

# Each level painted its own colour, so a reply tells which level was decoded.
SHADES = [(200, 40, 40), (40, 200, 40), (40, 40, 200), (200, 200, 40)]


def ptiff(size=(1600, 1200), pages=4, shades=True, **options) -> bytes:
    levels = [Image.new("RGB", (size[0] >> i, size[1] >> i), SHADES[i] if shades else 0) for i in range(pages)]
    buf = io.BytesIO()
    levels[0].save(buf, "TIFF", save_all=True, append_images=levels[1:], **options)
    return buf.getvalue()


def photo_ptiff(img: Image.Image, **options) -> bytes:
    levels = [img]
    while min(levels[-1].size) > 64:
        levels.append(levels[-1].reduce(2))
    buf = io.BytesIO()
    img.save(buf, "TIFF", save_all=True, append_images=levels[1:], **options)
    return buf.getvalue()


def reply(query: str, source: bytes, **fields) -> Image.Image:
    img = Image.open(io.BytesIO(pipeline.render(make_job(query, source, **fields)).body))
    img.load()
    return img


def test_levels_come_from_page_headers():
    src = codec.open_source(ptiff(), max_pixels=10**8)
    assert src.size == (1600, 1200)
    assert src.levels == ((1, (800, 600)), (2, (400, 300)), (3, (200, 150)))


def test_pages_that_are_other_pictures_are_not_levels():
    pages = [Image.new("RGB", (1600, 1200)), Image.new("RGB", (300, 300)), Image.new("L", (800, 600))]
    buf = io.BytesIO()
    pages[0].save(buf, "TIFF", save_all=True, append_images=pages[1:])
    assert codec.open_source(buf.getvalue(), max_pixels=10**8).levels == ()


@pytest.mark.parametrize(
    "query, shade, size",
    [
        ("wid=1600", 0, (1600, 1200)),  # full size: page 0
        ("wid=700", 0, (700, 525)),  # 800 would keep less than 2.5x
        ("wid=300", 1, (300, 225)),  # 800 keeps 2.67x; 400 would keep 1.33x
        ("wid=150", 2, (150, 113)),
        ("wid=40", 3, (40, 30)),
    ],
)
def test_the_smallest_level_keeping_the_headroom_is_decoded(query, shade, size):
    img = reply(query + "&fmt=png", ptiff(), defaults=pipeline.RenderDefaults(max_pix=(0, 0)))
    assert img.size == size
    assert img.getpixel((size[0] // 2, size[1] // 2)) == SHADES[shade]


@pytest.mark.parametrize("options", [{}, {"compression": "tiff_adobe_deflate"}, {"compression": "jpeg"}])
def test_a_pyramid_renders_like_its_full_resolution_page(options):
    img = photo().resize((1600, 1200))
    source = photo_ptiff(img, **options)
    flat = io.BytesIO()
    img.save(flat, "TIFF", **options)
    for wid in (100, 300, 600):
        got = reply(f"wid={wid}&fmt=png", source)
        want = reply(f"wid={wid}&fmt=png", flat.getvalue())
        psnr, worst = diff_stats(got.convert("RGB"), want.convert("RGB"))
        assert psnr >= 40 and worst <= 12, (wid, psnr, worst)


def test_the_pixel_limit_applies_to_the_level_decoded():
    source = ptiff()  # page 0 is 1.92 MP, page 1 0.48 MP
    limit = 500_000
    assert reply("wid=200&fmt=png", source, max_source_pixels=limit).size == (200, 150)
    with pytest.raises(ISError) as err:
        reply("wid=1000&fmt=png", source, max_source_pixels=limit)  # needs page 0
    assert err.value.kind == "size_limit"
    with pytest.raises(ISError) as err:
        codec.open_source(ptiff(), max_pixels=20_000)  # not even the smallest level fits
    assert err.value.kind == "size_limit"


def test_a_flat_tiff_over_the_limit_is_refused_from_its_header():
    buf = io.BytesIO()
    Image.new("RGB", (1600, 1200)).save(buf, "TIFF")
    with pytest.raises(ISError) as err:
        codec.open_source(buf.getvalue(), max_pixels=500_000)
    assert err.value.kind == "size_limit"


def test_a_pyramid_layer_of_a_composite_uses_its_levels():
    from imageserving.render import compose

    layers = [compose.Layer({"size": "200,150", "color": "ffffff"}), compose.Layer({"size": "100,75"}, ptiff())]
    img = reply("wid=200&fmt=png", None, layers=layers)
    assert img.getpixel((100, 75)) == SHADES[3]  # 100x75 from the 200x150 level


def test_a_tiled_pyramid_with_reduced_image_pages_as_libvips_writes_it():
    numpy = pytest.importorskip("numpy")
    tifffile = pytest.importorskip("tifffile")
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as writer:
        for i in range(4):
            level = numpy.full(((1200 >> i), (1600 >> i), 3), SHADES[i], dtype=numpy.uint8)
            writer.write(level, tile=(128, 128), compression="zlib", subfiletype=1 if i else 0, photometric="rgb")
    src = codec.open_source(buf.getvalue(), max_pixels=10**8)
    assert [size for _, size in src.levels] == [(800, 600), (400, 300), (200, 150)]
    assert reply("wid=150&fmt=png", buf.getvalue()).getpixel((75, 56)) == SHADES[2]
