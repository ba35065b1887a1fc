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


def subifd_ptiff(size=(1600, 1200), levels=4, compression=1, bigendian=False) -> bytes:
    """A pyramid whose reduced levels are SubIFDs (tag 330) of page 0, as libvips writes with
    ``subifd=true``: one page in the page chain. Written by hand (Pillow does not write SubIFDs):
    RGB, one strip per level, uncompressed (1) or Deflate (8), each level its own SHADES colour."""
    import struct
    import zlib

    e = ">" if bigendian else "<"
    out = bytearray(b"MM\x00*" if bigendian else b"II*\x00") + b"\0\0\0\0"
    strips = []
    for i in range(levels):
        w, h = size[0] >> i, size[1] >> i
        raw = bytes(SHADES[i]) * (w * h)
        strips.append(((w, h), zlib.compress(raw) if compression == 8 else raw))
    # Pixel data first, then the IFDs (sub-levels before page 0, so page 0 can name their offsets).
    data_at = []
    for _, body in strips:
        data_at.append(len(out))
        out += body
    ifd_at = [0] * levels

    def ifd(i: int, extra: list[tuple[int, int, int, list[int]]]) -> None:
        (w, h), body = strips[i]
        tags = [
            (254, 4, 1, [0 if i == 0 else 1]),  # NewSubfileType: 1 = reduced resolution
            (256, 4, 1, [w]),
            (257, 4, 1, [h]),
            (258, 3, 3, None),  # BitsPerSample 8,8,8 (stored at bps_at)
            (259, 3, 1, [compression]),
            (262, 3, 1, [2]),  # RGB
            (273, 4, 1, [data_at[i]]),
            (277, 3, 1, [3]),
            (278, 4, 1, [h]),
            (279, 4, 1, [len(body)]),
            *extra,
        ]
        tags.sort()
        if len(out) % 2:
            out.append(0)
        bps_at = len(out)
        out.extend(struct.pack(e + "3H", 8, 8, 8))
        arrays = {}
        for tag, _typ, count, values in tags:
            if values is not None and count > 1:
                arrays[tag] = len(out)
                out.extend(struct.pack(e + f"{count}I", *values))
        ifd_at[i] = len(out)
        out.extend(struct.pack(e + "H", len(tags)))
        for tag, typ, count, values in tags:
            if tag == 258:
                out.extend(struct.pack(e + "HHII", tag, typ, count, bps_at))
            elif count > 1:
                out.extend(struct.pack(e + "HHII", tag, typ, count, arrays[tag]))
            elif typ == 3:
                out.extend(struct.pack(e + "HHIHH", tag, typ, count, values[0], 0))
            else:
                out.extend(struct.pack(e + "HHII", tag, typ, count, values[0]))
        out.extend(struct.pack(e + "I", 0))  # no next page

    for i in range(1, levels):
        ifd(i, [])
    ifd(0, [(330, 13, levels - 1, ifd_at[1:])] if levels > 1 else [])
    out[4:8] = struct.pack(e + "I", ifd_at[0])
    return bytes(out)


@pytest.mark.parametrize("compression, bigendian", [(1, False), (8, False), (8, True)])
def test_subifd_levels_are_read_like_page_levels(compression, bigendian):
    """Levels stored as SubIFDs of page 0 (libvips ``subifd=true``) are found from their headers and
    chosen exactly as page levels are; the pixel limit applies to the level decoded."""
    data = subifd_ptiff(compression=compression, bigendian=bigendian)
    src = codec.open_source(data, max_pixels=10**8)
    assert src.size == (1600, 1200)
    assert [size for _, size in src.levels] == [(800, 600), (400, 300), (200, 150)]
    for query, shade, size in [("wid=1600", 0, (1600, 1200)), ("wid=300", 1, (300, 225)), ("wid=60", 3, (60, 45))]:
        img = reply(query + "&fmt=png", data, defaults=pipeline.RenderDefaults(max_pix=(0, 0)))
        assert img.size == size
        assert img.convert("RGB").getpixel((size[0] // 2, size[1] // 2)) == SHADES[shade], query
    # a master over the limit is served from a SubIFD level within it, and only from one
    assert reply("wid=60&fmt=png", data, max_source_pixels=200 * 150).size == (60, 45)
    with pytest.raises(ISError) as err:
        reply("wid=1000&fmt=png", data, max_source_pixels=200 * 150)
    assert err.value.kind == "size_limit"
