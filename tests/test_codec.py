"""The Pillow codec layer: fmt=/qlt=/quantize= grammar, source decoding, reply encoding."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image, ImageCms, JpegImagePlugin, PdfParser

from imageserving.errors import ISError
from imageserving.render import codec
from imageserving.render.codec import decode, encode, open_source
from imageserving.render.formats import (
    FORMATS,
    OutputFormat,
    Quantize,
    parse_fmt,
    parse_jpeg_size,
    parse_print_res,
    parse_pscan,
    parse_qlt,
    parse_quantize,
)

RED = (200, 30, 30)
BLUE = (30, 60, 200)
GREEN_BGC = (0, 255, 0)
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def raises(kind: str, fn, *args, **kwargs) -> ISError:
    with pytest.raises(ISError) as info:
        fn(*args, **kwargs)
    assert info.value.kind == kind, info.value.detail
    return info.value


def save(im: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **options)
    return buf.getvalue()


def close(actual, expected, tolerance: int = 12) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected))


# --------------------------------------------------------------------------------------------
# fmt=

ENCODABLE = [name for name, info in FORMATS.items() if info.pillow_format]
NOT_ENCODABLE = ["jpegxr", "jpegxr-alpha", "swf", "swf3", "swf-alpha", "swf3-alpha", "f4m", "m3u8"]

MIME = {  # protocol.md §9
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "pjpeg": "image/jpeg",
    "pjpg": "image/jpeg",
    "png": "image/png",
    "png-alpha": "image/png",
    "png8": "image/png",
    "png8-alpha": "image/png",
    "gif": "image/gif",
    "gif-alpha": "image/gif",
    "tif": "image/tiff",
    "tif-alpha": "image/tiff",
    "webp": "image/webp",
    "webp-alpha": "image/webp",
    "avif": "image/avif",
    "avif-alpha": "image/avif",
    "jpeg2000": "image/jp2",
    "jpeg2000-alpha": "image/jp2",
    "pdf": "application/pdf",
    "eps": "image/eps",
}


def test_every_format_is_either_encodable_or_listed_as_not():
    assert sorted(ENCODABLE + NOT_ENCODABLE) == sorted(FORMATS)


@pytest.mark.parametrize("value, mime", MIME.items())
def test_mime_types(value, mime):
    assert parse_fmt(value).mime == mime


@pytest.mark.parametrize(
    "value, expected",
    [
        ("jpeg", ("jpeg", "rgb", "none", False, "JPEG")),
        ("JPG", ("jpeg", "rgb", "none", False, "JPEG")),
        ("pjpg", ("pjpeg", "rgb", "none", False, "JPEG")),
        ("jpeg,gray", ("jpeg", "gray", "none", False, "JPEG")),
        ("jpeg,cmyk,none", ("jpeg", "cmyk", "none", False, "JPEG")),
        ("png-alpha,gray", ("png-alpha", "gray", "none", True, "PNG")),
        ("tif,,lzw", ("tif", "rgb", "lzw", False, "TIFF")),
        ("tif", ("tif", "rgb", "none", False, "TIFF")),
        ("TIF-Alpha,Gray,ZIP", ("tif-alpha", "gray", "zip", True, "TIFF")),
        ("webp-alpha,,lossless", ("webp-alpha", "rgb", "lossless", True, "WEBP")),
        ("webp", ("webp", "rgb", "lossy", False, "WEBP")),
        ("avif,rgb,lossless", ("avif", "rgb", "lossless", False, "AVIF")),
        ("jpeg2000-alpha", ("jpeg2000-alpha", "rgb", "lossy", True, "JPEG2000")),
        ("pdf,cmyk,jpeg", ("pdf", "cmyk", "jpeg", False, "PDF")),
        ("eps,gray", ("eps", "gray", "none", False, "EPS")),
        ("gif-alpha,gray", ("gif-alpha", "gray", "none", True, "GIF")),
    ],
)
def test_parse_fmt(value, expected):
    out = parse_fmt(value)
    assert (out.name, out.pixel_type, out.compression, out.alpha, out.pillow_format) == expected


@pytest.mark.parametrize(
    "value",
    [
        "png,cmyk",
        "jpeg,,lzw",
        "tif-alpha,,jpeg",
        "webp,gray",
        "webp,,zip",
        "png8,gray",
        "jpeg,lab",
        "tiff",
        "web-alpha",
        "swf-alpha3",
        "",
        ",gray",
        "jpeg,rgb,none,x",
        "gif,,lossy",
    ],
)
def test_parse_fmt_rejects(value):
    raises("bad_request", parse_fmt, value)


@pytest.mark.parametrize("name", NOT_ENCODABLE + ["tif-alpha,cmyk"])
def test_valid_but_unsupported_formats_are_named(name):
    err = raises("bad_request", parse_fmt, name)
    assert err.detail.startswith("format not supported: ")
    assert name.split(",")[0] in err.detail


def test_default_pixel_type_for_masks_falls_back_when_not_allowed():
    assert parse_fmt("png", default_pixel_type="gray").pixel_type == "gray"
    assert parse_fmt("webp", default_pixel_type="gray").pixel_type == "rgb"
    assert parse_fmt("png,rgb", default_pixel_type="gray").pixel_type == "rgb"


def test_icc_pixel_type_override_is_checked():
    assert parse_fmt("jpeg").with_pixel_type("cmyk").pixel_type == "cmyk"
    raises("bad_request", parse_fmt("png").with_pixel_type, "cmyk")


# --------------------------------------------------------------------------------------------
# qlt=, pscan=, jpegSize=, printRes=, quantize=


@pytest.mark.parametrize(
    "value, expected",
    [
        ("80", (80, False)),
        ("1", (1, False)),
        ("100,1", (100, True)),
        ("+90,0", (90, False)),
        ("75,true", (75, True)),
        ("75,Off", (75, False)),
        ("60,", (60, False)),
    ],
)
def test_parse_qlt(value, expected):
    assert parse_qlt(value) == expected


@pytest.mark.parametrize("value", ["0", "101", "80.5", "", ",1", "80,2", "80,1,1", "high"])
def test_parse_qlt_rejects(value):
    raises("bad_request", parse_qlt, value)


def test_parse_pscan():
    assert [parse_pscan(v) for v in ("auto", "AUTO", "3", "5")] == ["auto", "auto", "3", "5"]
    for bad in ("2", "6", "", "x"):
        raises("bad_request", parse_pscan, bad)


def test_parse_jpeg_size_and_print_res():
    assert parse_jpeg_size("0") == 0 and parse_jpeg_size("12.5") == 12.5
    assert parse_print_res("300") == 300.0 and parse_print_res(".5") == 0.5
    for bad in ("-1", "x", "1e3", ""):
        raises("bad_request", parse_jpeg_size, bad)
    for bad in ("0", "-72", "70000", "1e2", "abc"):
        raises("bad_request", parse_print_res, bad)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("adaptive", Quantize()),
        ("WEB,off", Quantize("web", False)),
        ("adaptive,diffuse,16", Quantize("adaptive", True, 16)),
        ("adaptive,off,2,000000,FFFFFF", Quantize("adaptive", False, 2, ((0, 0, 0), (255, 255, 255)))),
        (",,8", Quantize("adaptive", True, 8)),
        ("mac", Quantize("mac")),
    ],
)
def test_parse_quantize(value, expected):
    assert parse_quantize(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "median",
        "adaptive,floyd",
        "adaptive,off,1",
        "adaptive,off,257",
        "adaptive,off,16.5",
        "adaptive,off,2,000000,ffffff,ff0000",
        "adaptive,off,4,0xffffff",
        "adaptive,off,4,fff",
    ],
)
def test_parse_quantize_rejects(value):
    raises("bad_request", parse_quantize, value)


def test_mac_palette_is_refused_with_alpha_formats():
    raises("bad_request", parse_quantize, "mac", fmt=parse_fmt("gif-alpha"))
    assert parse_quantize("mac", fmt=parse_fmt("gif")).kind == "mac"


# --------------------------------------------------------------------------------------------
# Encoding


def rgb_image() -> Image.Image:
    """Left half red, right half blue."""
    im = Image.new("RGB", (64, 48), RED)
    im.paste(BLUE, (32, 0, 64, 48))
    return im


def rgba_image() -> Image.Image:
    """Left half opaque red, right half fully transparent blue."""
    im = rgb_image().convert("RGBA")
    im.paste((*BLUE, 0), (32, 0, 64, 48))
    return im


def reopen(data: bytes, out: OutputFormat) -> Image.Image:
    """Reads any reply back as an RGBA image of its pixels."""
    if out.name == "pdf":
        pdf = PdfParser.PdfParser(buf=data)
        page = pdf.read_indirect(pdf.pages[0])
        stream = pdf.read_indirect(page[b"Resources"][b"XObject"][b"image"])
        d = stream.dictionary
        if d.get(b"Filter") == b"DCTDecode":
            im = Image.open(io.BytesIO(stream.buf))
        else:
            modes = {b"DeviceRGB": "RGB", b"DeviceGray": "L", b"DeviceCMYK": "CMYK"}
            mode = modes[d[b"ColorSpace"]]
            im = Image.frombytes(mode, (d[b"Width"], d[b"Height"]), stream.decode())
        return im.convert("RGBA")
    if out.name == "eps":  # reading EPS needs Ghostscript: parse the hex data between the markers
        text = data.decode("ascii")
        assert text.startswith("%!PS-Adobe-3.0 EPSF-3.0") and "%%BoundingBox: 0 0 64 48" in text
        hex_data = text.split("colorimage\n")[-1].split("%%%%EndBinary")[0]
        return Image.frombytes("RGB", (64, 48), bytes.fromhex(hex_data)).convert("RGBA")
    im = Image.open(io.BytesIO(data))
    assert im.format == out.pillow_format
    return im.convert("RGBA")


@pytest.mark.parametrize("name", ENCODABLE)
def test_every_format_round_trips_rgb(name):
    out = parse_fmt(name)
    back = reopen(encode(rgb_image(), out, quality=90), out)
    assert back.size == (64, 48)
    assert close(back.getpixel((8, 24))[:3], RED), back.getpixel((8, 24))
    assert close(back.getpixel((56, 24))[:3], BLUE), back.getpixel((56, 24))
    assert back.getpixel((56, 24))[3] == 255


@pytest.mark.parametrize("name", ENCODABLE)
def test_every_format_round_trips_rgba(name):
    out = parse_fmt(name)
    back = reopen(encode(rgba_image(), out, quality=90, bgc=GREEN_BGC), out)
    assert back.size == (64, 48)
    assert close(back.getpixel((8, 24)), (*RED, 255)), back.getpixel((8, 24))
    if out.alpha:
        assert back.getpixel((56, 24))[3] == 0, "transparency kept"
    else:
        assert close(back.getpixel((56, 24)), (*GREEN_BGC, 255)), "flattened over bgc"


@pytest.mark.parametrize(
    "value, mode",
    [
        ("jpeg,gray", "L"),
        ("png,gray", "L"),
        ("png-alpha,gray", "LA"),
        ("tif,cmyk", "CMYK"),
        ("jpeg,cmyk", "CMYK"),
        ("tif-alpha,gray,lzw", "LA"),
        ("jpeg2000,gray", "L"),
        ("png-alpha", "RGBA"),
        ("png", "RGB"),
        ("gif", "P"),
        ("png8-alpha", "P"),
    ],
)
def test_pixel_types_decide_the_stored_mode(value, mode):
    back = Image.open(io.BytesIO(encode(rgba_image(), parse_fmt(value))))
    assert back.mode == mode


@pytest.mark.parametrize(
    "compression, tiff_name",
    [
        ("none", "raw"),
        ("lzw", "tiff_lzw"),
        ("zip", "tiff_adobe_deflate"),
        ("jpeg", "jpeg"),
    ],
)
def test_tiff_compression(compression, tiff_name):
    back = Image.open(io.BytesIO(encode(rgb_image(), parse_fmt(f"tif,,{compression}"))))
    assert back.info["compression"] == tiff_name
    assert close(back.convert("RGB").getpixel((8, 8)), RED)


@pytest.mark.parametrize("compression, filter_", [("none", None), ("zip", b"FlateDecode"), ("jpeg", b"DCTDecode")])
def test_pdf_compression_and_page_size(compression, filter_):
    data = encode(rgb_image(), parse_fmt(f"pdf,,{compression}"), print_res=144)
    pdf = PdfParser.PdfParser(buf=data)
    page = pdf.read_indirect(pdf.pages[0])
    assert list(page[b"MediaBox"]) == [0, 0, 32, 24]  # 64x48 pixels at 144 dpi
    image = pdf.read_indirect(page[b"Resources"][b"XObject"][b"image"])
    assert image.dictionary.get(b"Filter") == filter_


def test_pdf_cmyk_jpeg_declares_adobe_inversion():
    data = encode(rgb_image(), parse_fmt("pdf,cmyk,jpeg"))
    pdf = PdfParser.PdfParser(buf=data)
    page = pdf.read_indirect(pdf.pages[0])
    image = pdf.read_indirect(page[b"Resources"][b"XObject"][b"image"])
    assert image.dictionary[b"ColorSpace"] == b"DeviceCMYK"
    assert list(image.dictionary[b"Decode"]) == [1, 0] * 4


def test_qlt_chroma_flag_switches_jpeg_subsampling():
    photo = Image.effect_noise((64, 64), 40).convert("RGB")
    for chroma_off, sampling in ((False, 2), (True, 0)):
        data = encode(photo, parse_fmt("jpeg"), quality=80, chroma_off=chroma_off)
        assert JpegImagePlugin.get_sampling(Image.open(io.BytesIO(data))) == sampling


def test_quality_changes_jpeg_and_webp_size():
    photo = Image.effect_noise((96, 96), 60).convert("RGB")
    for fmt in ("jpeg", "webp", "avif", "jpeg2000"):
        out = parse_fmt(fmt)
        assert len(encode(photo, out, quality=20)) < len(encode(photo, out, quality=95)), fmt


def reply_info(value: str, **options) -> dict:
    return Image.open(io.BytesIO(encode(rgb_image(), parse_fmt(value), **options))).info


def test_pjpeg_is_progressive_and_jpeg_is_not():
    assert reply_info("pjpeg").get("progressive")
    assert not reply_info("jpeg").get("progressive")


def test_lossless_webp_keeps_pixels_exactly():
    noise = Image.effect_noise((32, 32), 80).convert("RGB")
    back = Image.open(io.BytesIO(encode(noise, parse_fmt("webp,,lossless")))).convert("RGB")
    assert back.tobytes() == noise.tobytes()


def test_jpeg_size_limit_lowers_quality_until_it_fits():
    noise = Image.effect_noise((128, 128), 80).convert("RGB")
    full = encode(noise, parse_fmt("jpeg"), quality=95)
    limited = encode(noise, parse_fmt("jpeg"), quality=95, jpeg_size_kb=len(full) / 2048)
    assert len(limited) <= len(full) // 2
    raises("content_error", encode, noise, parse_fmt("jpeg"), jpeg_size_kb=0.1)


def test_print_res_writes_dpi():
    for fmt in ("jpeg", "png", "tif"):
        back = Image.open(io.BytesIO(encode(rgb_image(), parse_fmt(fmt), print_res=300)))
        assert tuple(round(v) for v in back.info["dpi"]) == (300, 300), fmt


def test_icc_embed_only_when_asked_and_when_the_space_fits():
    out = parse_fmt("jpeg")
    assert (
        Image.open(io.BytesIO(encode(rgb_image(), out, icc_profile=SRGB, icc_embed=True))).info["icc_profile"] == SRGB
    )
    assert "icc_profile" not in reply_info("jpeg", icc_profile=SRGB)
    gray = encode(rgb_image(), parse_fmt("jpeg,gray"), icc_profile=SRGB, icc_embed=True)
    assert "icc_profile" not in Image.open(io.BytesIO(gray)).info
    for fmt in ("png", "png8", "tif"):
        data = encode(rgb_image(), parse_fmt(fmt), icc_profile=SRGB, icc_embed=True)
        assert Image.open(io.BytesIO(data)).info["icc_profile"] == SRGB, fmt
    pdf = encode(rgb_image(), parse_fmt("pdf"), icc_profile=SRGB, icc_embed=True)
    assert b"/ICCBased" in pdf and SRGB in pdf


def test_source_metadata_on_the_image_never_leaks_into_the_reply():
    im = rgb_image()
    im.info.update(icc_profile=SRGB, comment=b"secret", transparency=(200, 30, 30))
    for fmt in ("jpeg", "png", "tif"):
        info = Image.open(io.BytesIO(encode(im, parse_fmt(fmt)))).info
        assert not {"icc_profile", "comment", "transparency"} & set(info), fmt
    assert im.info["comment"] == b"secret", "the caller's image is left alone"


def test_xmp_embed_for_jpeg_and_tiff():
    packet = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"/>'
    for fmt in ("jpeg", "tif"):
        back = Image.open(io.BytesIO(encode(rgb_image(), parse_fmt(fmt), xmp=packet)))
        assert back.info["xmp"] == packet, fmt
    assert "xmp" not in reply_info("png", xmp=packet)


# --- palettes


def palette_colours(data: bytes) -> set[tuple[int, ...]]:
    im = Image.open(io.BytesIO(data)).convert("RGBA")
    return {colour for _, colour in im.getcolors(1024)}


def test_quantize_num_colors():
    gradient = Image.linear_gradient("L").resize((64, 64)).convert("RGB")
    for fmt in ("gif", "png8"):
        data = encode(gradient, parse_fmt(fmt), quantize=Quantize("adaptive", False, 8))
        assert len(palette_colours(data)) <= 8, fmt
    # Few colours are kept exactly; a 256-level gray ramp survives whole.
    ramp = Image.frombytes("L", (256, 1), bytes(range(256))).convert("RGB")
    data = encode(ramp, parse_fmt("gif,gray"))
    assert len(palette_colours(data)) == 256


def test_quantize_forced_colours_reference_example():
    out = parse_fmt("gif-alpha")
    q = parse_quantize("adaptive,off,2,000000,ffffff", fmt=out)
    im = Image.linear_gradient("L").resize((32, 32)).convert("RGBA")
    im.paste((0, 0, 0, 0), (0, 0, 8, 8))
    colours = palette_colours(encode(im, out, quantize=q))
    assert {c for c in colours if c[3] == 255} <= {(0, 0, 0, 255), (255, 255, 255, 255)}
    assert any(c[3] == 0 for c in colours)


def test_quantize_web_and_mac_palettes():
    im = Image.effect_noise((32, 32), 90).convert("RGB")
    web = palette_colours(encode(im, parse_fmt("png8"), quantize=Quantize("web", False)))
    assert all(v % 51 == 0 for c in web for v in c[:3])
    mac = codec._mac_palette()
    assert len(mac) == 768 and len({tuple(mac[i : i + 3]) for i in range(0, 768, 3)}) == 256
    mac_colours = {(*mac[i : i + 3], 255) for i in range(0, 768, 3)}
    assert palette_colours(encode(im, parse_fmt("gif"), quantize=Quantize("mac"))) <= mac_colours


def test_dither_changes_the_mapping():
    gradient = Image.linear_gradient("L").resize((64, 64)).convert("RGB")
    out = parse_fmt("png8")
    assert encode(gradient, out, quantize=Quantize("adaptive", True, 4)) != encode(
        gradient, out, quantize=Quantize("adaptive", False, 4)
    )


def test_palette_alpha_threshold_is_128():
    im = Image.new("RGBA", (4, 1), (*RED, 255))
    im.putpixel((1, 0), (*BLUE, 127))
    im.putpixel((2, 0), (*BLUE, 128))
    for fmt in ("png8-alpha", "gif-alpha"):
        back = Image.open(io.BytesIO(encode(im, parse_fmt(fmt)))).convert("RGBA")
        assert [back.getpixel((x, 0))[3] for x in range(4)] == [255, 0, 255, 255], fmt
        assert close(back.getpixel((2, 0)), (*BLUE, 255), 0)


# --- encoder failures


def test_encoder_failures_become_iserrors():
    too_wide = Image.new("RGB", (20000, 1))  # WebP's limit is 16383 pixels
    raises("content_error", encode, too_wide, parse_fmt("webp"))


# --------------------------------------------------------------------------------------------
# Sources


def test_open_source_reads_the_header():
    im = Image.new("RGB", (40, 20), RED)
    data = save(im, "JPEG", dpi=(300, 300), icc_profile=SRGB, xmp=b"<xmp/>")
    src = open_source(data, max_pixels=10_000)
    assert (src.format, src.mode, src.stored_size, src.size) == ("JPEG", "RGB", (40, 20), (40, 20))
    assert (src.orientation, src.has_alpha, src.icc_profile, src.xmp) == (1, False, SRGB, b"<xmp/>")
    assert src.dpi == (300.0, 300.0)


def test_open_source_alpha_flags():
    assert open_source(save(rgba_image(), "PNG"), max_pixels=10**6).has_alpha
    p = rgb_image().convert("P")
    assert open_source(save(p, "PNG", transparency=0), max_pixels=10**6).has_alpha
    assert not open_source(save(p, "PNG"), max_pixels=10**6).has_alpha


def test_header_over_max_pixels_is_refused_without_decoding():
    data = save(Image.new("RGB", (3000, 3000)), "PNG")
    header_only = data[: data.index(b"IDAT") + 8]  # hardly any pixel data
    err = raises("size_limit", open_source, header_only, max_pixels=1_000_000)
    assert "3000x3000" in err.detail


@pytest.mark.parametrize(
    "data", [b"", b"not an image", b"\xff\xd8\xff\xe0garbage", b"P6\n4 4\n255\n" + bytes(48)]
)  # PPM: not a source format
def test_unreadable_sources_are_content_errors(data):
    raises("content_error", open_source, data, max_pixels=10**6)


def test_truncated_source_fails_at_decode():
    noise = Image.effect_noise((256, 256), 50).convert("RGB")
    for fmt in ("JPEG", "PNG"):
        data = save(noise, fmt)
        src = open_source(data[: len(data) // 2], max_pixels=10**6)
        raises("content_error", decode, src, scale_hint=None)


@pytest.fixture(scope="module")
def big_jpeg() -> bytes:
    gradient = Image.linear_gradient("L").resize((4000, 3000), Image.Resampling.NEAREST)
    return save(
        Image.merge("RGB", (gradient, gradient.transpose(Image.Transpose.ROTATE_180), gradient)), "JPEG", quality=75
    )


@pytest.mark.parametrize(
    "scale_hint, reduction",
    [
        (None, 1),
        (1.0, 1),
        (0.6, 1),
        (0.5, 1),
        (0.3, 1),
        (0.25, 2),
        (0.2, 2),
        (0.1, 4),
        (0.05, 8),
        (0.01, 8),
    ],
)
def test_draft_keeps_at_least_twice_the_needed_pixels(big_jpeg, scale_hint, reduction):
    src = open_source(big_jpeg, max_pixels=20_000_000)
    decoded = decode(src, scale_hint=scale_hint)
    assert decoded.reduction == reduction
    assert decoded.image.size == (4000 // reduction, 3000 // reduction)
    assert decoded.image.mode == "RGB"
    if scale_hint:
        assert decoded.image.width >= 2 * 4000 * scale_hint or reduction == 1


def test_draft_reduction_for_sizes_not_divisible():
    data = save(Image.new("RGB", (1001, 333), RED), "JPEG")
    decoded = decode(open_source(data, max_pixels=10**6), scale_hint=0.1)
    assert decoded.reduction == 4 and decoded.image.size == (251, 84)


def exif_jpeg(orientation: int) -> bytes:
    """40x20 stored, red marker in the stored top-left corner."""
    im = Image.new("RGB", (40, 20), BLUE)
    im.paste(RED, (0, 0, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = orientation
    return save(im, "JPEG", exif=exif, quality=95)


@pytest.mark.parametrize(
    "orientation, size, marker",
    [
        (1, (40, 20), (2, 2)),
        (6, (20, 40), (17, 2)),  # displayed rotated 90° clockwise: marker top-right
        (8, (20, 40), (2, 37)),  # displayed rotated 90° counter-clockwise: marker bottom-left
        (3, (40, 20), (37, 17)),
    ],
)
def test_exif_orientation(orientation, size, marker):
    src = open_source(exif_jpeg(orientation), max_pixels=10**6)
    assert src.orientation == orientation and src.stored_size == (40, 20) and src.size == size
    image = decode(src, scale_hint=None).image
    assert image.size == size
    assert close(image.getpixel(marker), RED)
    assert not image.info, "orientation must not be applied twice downstream"


def test_invalid_orientation_is_ignored():
    src = open_source(exif_jpeg(9), max_pixels=10**6)
    assert src.orientation == 1 and decode(src, scale_hint=None).image.size == (40, 20)


def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def cmyk_profile() -> bytes:
    """A minimal ICC v2 CMYK input profile: white paper, any K = black, pure cyan = mid gray
    (nothing like the naive conversion, which makes cyan (0, 255, 255))."""

    def lab(c, m, y, k):
        lightness = 0 if k else 100 - 50 * c - 20 * m - 10 * y
        return bytes((round(lightness * 255 / 100), 128, 128))

    clut = b"".join(lab(c, m, y, k) for c in (0, 1) for m in (0, 1) for y in (0, 1) for k in (0, 1))
    identity = bytes(range(256))
    a2b0 = (
        b"mft1"
        + bytes(4)
        + bytes((4, 3, 2, 0))
        + b"".join(_s15(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1))
        + identity * 4
        + clut
        + identity * 3
    )
    wtpt = b"XYZ " + bytes(4) + _s15(0.9642) + _s15(1.0) + _s15(0.8249)
    text = b"test CMYK\0"
    desc = b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(4 + 4 + 2 + 1 + 67)
    tags = [(b"desc", desc), (b"wtpt", wtpt), (b"A2B0", a2b0)]
    offset = 128 + 4 + 12 * len(tags)
    table, body = struct.pack(">I", len(tags)), b""
    for sig, payload in tags:
        payload += bytes(-len(payload) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(payload))
        body += payload
    size = offset + len(body)
    header = (
        struct.pack(">I", size)
        + bytes(4)
        + struct.pack(">I", 0x02100000)
        + b"scnrCMYKLab "
        + bytes(12)
        + b"acsp"
        + bytes(24)
        + struct.pack(">I", 0)
        + _s15(0.9642)
        + _s15(1.0)
        + _s15(0.8249)
        + bytes(48)
    )
    assert len(header) == 128
    return header + table + body


def cmyk_jpeg(icc: bytes | None) -> bytes:
    im = Image.new("CMYK", (32, 16), (0, 0, 0, 0))
    im.paste((255, 0, 0, 0), (16, 0, 32, 16))
    return save(im, "JPEG", quality=95, **({"icc_profile": icc} if icc else {}))


def test_cmyk_jpeg_without_profile_is_converted_naively():
    src = open_source(cmyk_jpeg(None), max_pixels=10**6)
    decoded = decode(src, scale_hint=0.1)
    assert decoded.image.mode == "RGB" and decoded.reduction == 1, "never drafted"
    assert close(decoded.image.getpixel((4, 8)), (255, 255, 255))
    assert close(decoded.image.getpixel((28, 8)), (0, 255, 255))
    assert decoded.icc_profile is None


def test_cmyk_jpeg_with_profile_goes_through_icc_to_srgb():
    src = open_source(cmyk_jpeg(cmyk_profile()), max_pixels=10**6)
    assert src.mode == "CMYK" and src.icc_profile
    decoded = decode(src, scale_hint=None)
    assert decoded.image.mode == "RGB"
    assert close(decoded.image.getpixel((4, 8)), (255, 255, 255))
    assert close(decoded.image.getpixel((28, 8)), (119, 119, 119))  # L* 50 gray, as profiled
    assert decoded.icc_profile == codec.srgb()


def test_cmyk_with_unusable_profile_falls_back_to_naive():
    src = open_source(cmyk_jpeg(SRGB), max_pixels=10**6)  # an RGB profile on CMYK data
    decoded = decode(src, scale_hint=None)
    assert close(decoded.image.getpixel((28, 8)), (0, 255, 255)) and decoded.icc_profile is None


def gray16_png() -> bytes:
    im = Image.new("I;16", (6, 1))
    im.putdata([0, 257 * 100, 65535, 30000, 33024, 13050])
    return save(im, "PNG")


def palette_png_with_transparency() -> bytes:
    p = rgb_image().convert("P", palette=Image.Palette.ADAPTIVE, colors=2)
    return save(p, "PNG", transparency=p.getpixel((60, 0)))


@pytest.mark.parametrize(
    "make, mode, pixel",
    [
        (lambda: save(Image.new("1", (4, 4), 1), "PNG"), "L", 255),
        (lambda: save(Image.new("L", (4, 4), 77), "PNG"), "L", 77),
        (lambda: save(Image.new("LA", (4, 4), (77, 10)), "PNG"), "LA", (77, 10)),
        (gray16_png, "L", 0),
        (lambda: save(Image.new("F", (4, 4), 300.0), "TIFF"), "L", 255),
        (lambda: save(rgba_image(), "PNG"), "RGBA", (*RED, 255)),
        (lambda: save(rgb_image(), "PNG"), "RGB", RED),
        (palette_png_with_transparency, "RGBA", (*RED, 255)),
        (lambda: save(rgb_image().convert("P", palette=Image.Palette.ADAPTIVE), "GIF"), "RGB", RED),
        (lambda: save(Image.new("LAB", (4, 4), (128, 128, 128)), "TIFF"), "RGB", (119, 119, 119)),
        (lambda: save(Image.new("CMYK", (4, 4), (0, 255, 255, 0)), "TIFF"), "RGB", (255, 0, 0)),
    ],
)
def test_decode_normalises_modes(make, mode, pixel):
    decoded = decode(open_source(make(), max_pixels=10**6), scale_hint=None)
    assert decoded.image.mode == mode
    assert decoded.image.getpixel((0, 0)) == pixel


def test_sixteen_bit_gray_is_scaled_not_clipped():
    image = decode(open_source(gray16_png(), max_pixels=100), scale_hint=None).image
    assert image.mode == "L"
    assert [image.getpixel((x, 0)) for x in range(6)] == [0, 100, 255, 117, 128, 51]


def test_palette_transparency_becomes_alpha():
    image = decode(open_source(palette_png_with_transparency(), max_pixels=10**6), scale_hint=None).image
    assert image.mode == "RGBA" and image.getpixel((60, 0))[3] == 0


def test_decoded_source_encodes_end_to_end(big_jpeg):
    decoded = decode(open_source(big_jpeg, max_pixels=20_000_000), scale_hint=500 / 4000)
    reply = decoded.image.resize((500, 375), Image.Resampling.LANCZOS)
    data = encode(reply, parse_fmt("webp"), quality=80)
    assert Image.open(io.BytesIO(data)).size == (500, 375)
    assert zlib.crc32(data) == zlib.crc32(encode(reply, parse_fmt("webp"), quality=80)), "encoding is deterministic"


# --- AVIF quality mapping (the encoder fix of issue 10; numbers: benchmarks/smart_imaging.py)


def _psnr(a: Image.Image, b: Image.Image) -> float:
    import math

    from PIL import ImageChops

    hist = ImageChops.difference(a.convert("RGB"), b.convert("RGB")).histogram()
    mse = sum(n * (i % 256) ** 2 for i, n in enumerate(hist)) / (a.width * a.height * 3)
    return 10 * math.log10(255**2 / mse) if mse else math.inf


def test_avif_quality_mapping_is_monotonic_and_pinned_at_the_ends():
    from imageserving.render.codec import avif_quality

    values = [avif_quality(q) for q in range(1, 101)]
    assert values == sorted(values)
    assert values[0] == 1 and values[-1] == 100
    assert avif_quality(80) == 77
    assert avif_quality(0) == 1 and avif_quality(500) == 100


def test_avif_at_qlt80_is_smaller_than_the_jpeg_at_no_worse_psnr():
    # Before the fix qlt went straight to libavif: its q80 is a far better picture than libjpeg's
    # q80, and larger. The sample 'photo' at 500 px: AVIF must now beat the JPEG on bytes.
    from pathlib import Path

    src = Image.open(Path(__file__).resolve().parents[1] / "images" / "sample" / "rose.jpg").convert("RGB")
    ref = src.resize((500, 375), Image.Resampling.LANCZOS)
    jpeg = encode(ref, parse_fmt("jpeg"), quality=80)
    avif = encode(ref, parse_fmt("avif"), quality=80)
    assert len(avif) < 0.8 * len(jpeg)
    assert _psnr(ref, Image.open(io.BytesIO(avif))) >= _psnr(ref, Image.open(io.BytesIO(jpeg)))


def test_avif_chroma_flag_selects_444():
    photo = Image.merge("RGB", [Image.effect_noise((64, 64), s) for s in (20, 40, 60)])
    plain = encode(photo, parse_fmt("avif"), quality=80)
    full = encode(photo, parse_fmt("avif"), quality=80, chroma_off=True)
    assert plain != full and len(full) > len(plain)
