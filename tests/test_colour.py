"""Colour management (rendering.md §10, issue 11.1): tagged sources in sRGB, ``icc=``, ``iccEmbed=``."""

from __future__ import annotations

import io
import math

import make_samples
import pytest
from PIL import Image, ImageCms
from test_render import make_job

from imageserving.errors import ISError
from imageserving.render import icc, pipeline

ADOBE = make_samples.adobe_rgb()
SRGB = icc.srgb()
# Adobe RGB values and the sRGB they stand for (relative colorimetric; the example first).
POINTS = [((128, 64, 200), (146, 62, 205)), ((200, 180, 40), None), ((30, 120, 90), None), ((250, 250, 250), None)]
FORMATS = ["jpeg", "png", "webp", "avif"]


def srgb_of(adobe: tuple[int, int, int]) -> tuple[int, int, int]:
    t = ImageCms.buildTransform(
        ImageCms.ImageCmsProfile(io.BytesIO(ADOBE)), ImageCms.createProfile("sRGB"), "RGB", "RGB", renderingIntent=1
    )
    return ImageCms.applyTransform(Image.new("RGB", (1, 1), adobe), t).getpixel((0, 0))


def lab(rgb) -> tuple[float, float, float]:
    """CIE L*a*b* (D65) of an sRGB colour."""
    lin = [(c / 255 / 12.92) if c <= 10 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb]
    x = (0.4124 * lin[0] + 0.3576 * lin[1] + 0.1805 * lin[2]) / 0.95047
    y = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    z = (0.0193 * lin[0] + 0.1192 * lin[1] + 0.9505 * lin[2]) / 1.08883
    f = [v ** (1 / 3) if v > 0.008856 else 7.787 * v + 16 / 116 for v in (x, y, z)]
    return 116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])


def delta_e(a, b) -> float:
    return math.dist(lab(a), lab(b))


def patches(colours, size=64, profile: bytes | None = ADOBE, fmt="PNG") -> bytes:
    """A strip of flat ``size``-pixel squares, one per colour, tagged with ``profile``."""
    img = Image.new("RGB", (size * len(colours), size))
    for i, colour in enumerate(colours):
        img.paste(colour, (i * size, 0, (i + 1) * size, size))
    buf = io.BytesIO()
    img.save(buf, fmt, **({"icc_profile": profile} if profile else {}), **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


def render(query: str, source: bytes | None, **fields) -> Image.Image:
    img = Image.open(io.BytesIO(pipeline.render(make_job(query, source, **fields)).body))
    img.load()
    return img


def centres(img: Image.Image, n: int) -> list[tuple[int, int, int]]:
    w = img.width / n
    return [img.convert("RGB").getpixel((int(w * i + w / 2), img.height // 2)) for i in range(n)]


# ------------------------------------------------------------------ tagged sources into sRGB
def test_the_generated_profile_is_adobe_rgb():
    assert srgb_of((128, 64, 200)) == (146, 62, 205)
    assert icc.pixel_type(ADOBE) == "rgb" and not icc.is_srgb(ADOBE)
    assert icc.is_srgb(SRGB)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("source_fmt", ["PNG", "JPEG"])
def test_an_adobe_rgb_source_reads_as_srgb(fmt, source_fmt):
    colours = [adobe for adobe, _ in POINTS]
    img = render(f"wid=128&fmt={fmt}&qlt=95", patches(colours, fmt=source_fmt))
    for got, (adobe, expected) in zip(centres(img, len(colours)), POINTS):
        want = expected or srgb_of(adobe)
        assert delta_e(got, want) < 2, (fmt, adobe, got, want)
        assert delta_e(got, adobe) > 2 or adobe == (250, 250, 250)  # the unconverted value is visibly off


@pytest.mark.parametrize("fmt", FORMATS)
def test_icc_embed_embeds_what_the_pixels_are_in(fmt):
    source = patches([(128, 64, 200)])
    assert render(f"wid=32&fmt={fmt}&iccEmbed=1", source).info.get("icc_profile") == SRGB
    assert "icc_profile" not in render(f"wid=32&fmt={fmt}", source).info
    adobe = render(f"wid=32&fmt={fmt}&iccEmbed=1", source, colour=icc.ColourPlan(output=ADOBE))
    assert adobe.info.get("icc_profile") == ADOBE
    if fmt == "png":  # lossless: the Adobe RGB reply holds the source's values again
        assert centres(adobe, 1) == [(128, 64, 200)]


def test_icc_output_converts_srgb_pixels():
    img = render("wid=32&fmt=png", patches([(146, 62, 205)], profile=None), colour=icc.ColourPlan(output=ADOBE))
    assert delta_e(srgb_of(centres(img, 1)[0]), (146, 62, 205)) < 1


def test_background_keeps_its_output_space_colour_through_a_conversion():
    # extend= adds a margin above the strip: it is bgc, asked in the (sRGB) output space.
    img = render("extend=0,64,0,0&bgc=3060c0&fmt=png&wid=128", patches([(128, 64, 200)] * 2))
    assert max(abs(a - b) for a, b in zip(img.getpixel((50, 2)), (0x30, 0x60, 0xC0))) <= 1
    assert delta_e(img.getpixel((50, 100)), (146, 62, 205)) < 2


def test_layers_are_converted_before_they_merge():
    from imageserving.render import compose

    layers = [
        compose.Layer({"size": "128,64", "color": "ffffff"}),
        compose.Layer({"pos": "0,0"}, patches([(128, 64, 200)])),
    ]
    img = render("wid=128&fmt=png", None, layers=layers)
    assert delta_e(img.getpixel((64, 32)), (146, 62, 205)) < 2


# ------------------------------------------------------------------ no work for sRGB and untagged
@pytest.mark.parametrize("profile", [SRGB, None], ids=["srgb", "untagged"])
def test_srgb_and_untagged_sources_take_no_transform(profile, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("no colour conversion expected")

    monkeypatch.setattr(icc, "convert", refuse)
    source = patches([(128, 64, 200)], profile=profile)
    for fmt in FORMATS:
        assert centres(render(f"wid=32&fmt={fmt}&qlt=100", source), 1)[0] == pytest.approx((128, 64, 200), abs=3)


def test_transforms_are_built_once_per_profile_pair():
    source = patches([(128, 64, 200)])
    render("wid=32&fmt=png", source)
    before = icc._transform.cache_info()
    for _ in range(3):
        render("wid=32&fmt=png", source)
    after = icc._transform.cache_info()
    assert after.misses == before.misses and after.hits > before.hits


# ------------------------------------------------------------------ icc= values
@pytest.mark.parametrize(
    "value, expected",
    [
        ("AdobeRGB", icc.IccCommand("AdobeRGB")),
        ("AdobeRGB,relative,0", icc.IccCommand("AdobeRGB", 1, False)),
        ("x,absolute,,1", icc.IccCommand("x", 3, None)),
        ("x,Perceptual,1", icc.IccCommand("x", 0, True)),
    ],
)
def test_parse_icc(value, expected):
    assert icc.parse_icc(value) == expected


@pytest.mark.parametrize("value", ["", ",relative", "x,vivid", "x,relative,2", "x,relative,1,maybe", "a,b,c,d,e"])
def test_parse_icc_refuses(value):
    with pytest.raises(ISError) as err:
        icc.parse_icc(value)
    assert err.value.kind == "bad_request"


def test_an_output_profile_of_another_pixel_type_must_fit_the_format():
    gray = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()  # neither RGB, gray nor CMYK
    assert icc.pixel_type(gray) is None
    with pytest.raises(ISError) as err:
        icc.check_profile(b"not a profile" * 20, "bogus")
    assert err.value.kind == "content_error"


# ------------------------------------------------------------------ through the app (sample catalog)
def test_sample_adobe_rgb_rose_looks_like_the_srgb_rose(client):
    rose = Image.open(io.BytesIO(client.get("/is/image/sample/rose?wid=400&fmt=png").content)).convert("RGB")
    adobe_reply = client.get("/is/image/sample/rose-adobe?wid=400&fmt=png")
    adobe = Image.open(io.BytesIO(adobe_reply.content)).convert("RGB")
    for point in [(200, 150), (50, 40), (330, 260), (120, 200)]:
        assert delta_e(rose.getpixel(point), adobe.getpixel(point)) < 2, point


def test_icc_names_a_profile_of_the_catalog_map(client):
    reply = client.get("/is/image/sample/rose?wid=200&fmt=png&icc=AdobeRGB&iccEmbed=1")
    assert reply.status_code == 200
    img = Image.open(io.BytesIO(reply.content))
    assert img.info["icc_profile"] == ADOBE
    srgb_reply = Image.open(io.BytesIO(client.get("/is/image/sample/rose?wid=200&fmt=png").content))
    assert delta_e(srgb_of(img.getpixel((100, 75))), srgb_reply.getpixel((100, 75))) < 2
    props = client.get("/is/image/sample/rose?req=props&icc=AdobeRGB&iccEmbed=1").text
    assert "image.iccProfile=Adobe RGB (1998) compatible" in props and "image.iccEmbed=1" in props


@pytest.mark.parametrize("value", ["bogus", "AdobeRGB,vivid", "profiles/missing.icc"])
def test_unknown_profiles_are_bad_requests(client, value):
    assert client.get(f"/is/image/sample/rose?wid=50&icc={value}").status_code == 403  # bad_request (protocol.md §12)


def test_built_in_srgb_and_profile_paths(client):
    assert client.get("/is/image/sample/rose?wid=50&icc=sRGB").status_code == 200
    by_path = client.get("/is/image/sample/rose?wid=50&fmt=png&icc=profiles/AdobeRGB1998.icc&iccEmbed=1")
    assert Image.open(io.BytesIO(by_path.content)).info["icc_profile"] == ADOBE


def test_icc_and_icc_embed_round_trip_through_imageprops(bucket):
    root, write, make = bucket
    client = make()
    for fmt, ext in [("jpeg", "jpg"), ("png", "png"), ("webp", "webp"), ("avif", "avif")]:
        reply = client.get(f"/is/image/sample/rose?wid=200&fmt={fmt}&icc=AdobeRGB&iccEmbed=1")
        assert reply.status_code == 200, fmt
        write({f"images/sample/out.{ext}": reply.content})
        props = make().get(f"/is/image/sample/out.{ext}?req=imageprops").text
        assert "image.iccProfile=Adobe RGB (1998) compatible" in props, fmt
        assert "image.embeddedIccProfile=1" in props, fmt
        # Served again, the reply is converted back to sRGB like any Adobe RGB master.
        again = Image.open(io.BytesIO(make().get(f"/is/image/sample/out.{ext}?wid=200&fmt=png").content))
        plain = Image.open(io.BytesIO(client.get("/is/image/sample/rose?wid=200&fmt=png").content))
        assert delta_e(again.getpixel((100, 75)), plain.getpixel((100, 75))) < 3, fmt


def test_catalog_output_profile_applies_without_icc(bucket):
    root, write, make = bucket
    ini = (root / "catalogs/sample.ini").read_text()
    write(
        {
            "catalogs/sample.ini": ini + "IccProfileRgb=AdobeRGB\n",
            "images/sample/srgb.png": patches([(146, 62, 205)], profile=SRGB),
            "images/sample/plain.png": patches([(128, 64, 200)], profile=None),
        }
    )
    client = make()
    img = Image.open(io.BytesIO(client.get("/is/image/sample/rose?wid=200&fmt=png&iccEmbed=1").content))
    assert img.info["icc_profile"] == ADOBE
    # An sRGB source is converted into the catalog's RGB space; an untagged one is taken to be in it.
    tagged = Image.open(io.BytesIO(client.get("/is/image/sample/srgb.png?wid=64&fmt=png").content))
    assert delta_e(srgb_of(tagged.convert("RGB").getpixel((32, 32))), (146, 62, 205)) < 1
    plain = Image.open(io.BytesIO(client.get("/is/image/sample/plain.png?wid=64&fmt=png").content))
    assert plain.convert("RGB").getpixel((32, 32)) == (128, 64, 200)


def test_untagged_sources_take_the_catalog_source_profile(bucket):
    root, write, make = bucket
    ini = (root / "catalogs/sample.ini").read_text()
    write(
        {
            "catalogs/sample.ini": ini + "IccProfileSrcRgb=AdobeRGB\n",
            "images/sample/flat.png": patches([(128, 64, 200)], profile=None),
        }
    )
    img = Image.open(io.BytesIO(make().get("/is/image/sample/flat.png?wid=64&fmt=png").content))
    assert delta_e(img.convert("RGB").getpixel((32, 32)), (146, 62, 205)) < 2


def gray_profile(gamma: float = 2.2) -> bytes:
    """A minimal ICC v2 gray display profile (desc, wtpt, kTRC), as make_samples writes RGB ones."""
    tags = [
        (b"desc", make_samples.icc_desc("Gray gamma 2.2 (test)")),
        (b"wtpt", make_samples.icc_xyz((0.9642, 1.0, 0.8249))),
        (b"kTRC", make_samples.icc_gamma(gamma)),
    ]
    return make_samples.icc_profile(b"mntr", b"GRAY", b"XYZ ", tags)


def test_a_gray_output_profile_makes_a_gray_reply():
    gray = gray_profile()
    assert icc.pixel_type(gray) == "gray"
    img = render(
        "wid=32&fmt=png&iccEmbed=1", patches([(146, 62, 205)], profile=None), colour=icc.ColourPlan(output=gray)
    )
    assert img.mode == "L" and img.info["icc_profile"] == gray
    # sRGB (146,62,205) has a luminance Y of about 0.139: 0.139 ** (1 / 2.2) * 255 = 104 in gamma 2.2.
    assert abs(img.getpixel((16, 16)) - 104) <= 6, img.getpixel((16, 16))


def test_an_output_profile_that_the_format_cannot_carry_is_a_bad_request():
    with pytest.raises(ISError) as err:
        render("wid=32&fmt=webp", patches([(1, 2, 3)]), colour=icc.ColourPlan(output=gray_profile()))
    assert err.value.kind == "bad_request"


def cmyk_output_profile() -> bytes:
    """A minimal ICC v2 CMYK output (printer) profile that prints every colour with black ink
    only: A2B0 gives L* = 100 (1 - k), B2A0 k = 1 - L*/100 (8-bit mft1 tables, 2-point grids)."""
    s15 = make_samples.s15

    def mft1(inputs: int, outputs: int, clut: bytes) -> bytes:
        identity = bytes(range(256))
        matrix = b"".join(s15(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1))
        return (
            b"mft1" + bytes(4) + bytes((inputs, outputs, 2, 0)) + matrix + identity * inputs + clut + identity * outputs
        )

    to_lab = b"".join(bytes((255 * (1 - k), 128, 128)) for c in (0, 1) for m in (0, 1) for y in (0, 1) for k in (0, 1))
    to_cmyk = b"".join(bytes((0, 0, 0, 255 * (1 - lightness))) for lightness in (0, 1) for a in (0, 1) for b in (0, 1))
    wtpt = make_samples.icc_xyz((0.9642, 1.0, 0.8249))
    tags = [
        (b"desc", make_samples.icc_desc("test CMYK output")),
        (b"wtpt", wtpt),
        (b"A2B0", mft1(4, 3, to_lab)),
        (b"B2A0", mft1(3, 4, to_cmyk)),
    ]
    return make_samples.icc_profile(b"prtr", b"CMYK", b"Lab ", tags)


def test_a_cmyk_output_profile_makes_a_cmyk_reply():
    cmyk = cmyk_output_profile()
    assert icc.pixel_type(cmyk) == "cmyk"
    source = patches([(255, 255, 255), (119, 119, 119)], profile=None)
    for fmt in ("jpeg", "tif"):
        img = render(f"wid=64&fmt={fmt}&qlt=100&iccEmbed=1", source, colour=icc.ColourPlan(output=cmyk))
        assert img.mode == "CMYK" and img.info["icc_profile"] == cmyk, fmt
        back = icc.convert(img, cmyk, SRGB)
        assert delta_e(back.getpixel((16, 16)), (255, 255, 255)) < 3, fmt
        assert delta_e(back.getpixel((48, 16)), (119, 119, 119)) < 3, fmt
    with pytest.raises(ISError) as err:
        render("wid=32&fmt=png", source, colour=icc.ColourPlan(output=cmyk))
    assert err.value.kind == "bad_request"


def test_an_input_only_profile_cannot_be_the_output(bucket):
    from test_codec import cmyk_profile  # A2B0 only: device to PCS

    root, write, make = bucket
    write({"images/sample/profiles/scanner.icc": cmyk_profile()})
    client = make()
    assert client.get("/is/image/sample/rose?wid=50&fmt=jpeg&icc=profiles/scanner.icc").status_code == 403
    write({"images/sample/profiles/press.icc": cmyk_output_profile()})
    reply = make().get("/is/image/sample/rose?wid=50&fmt=jpeg&icc=profiles/press.icc&iccEmbed=1")
    assert reply.status_code == 200 and Image.open(io.BytesIO(reply.content)).mode == "CMYK"


def test_a_catalog_profile_that_cannot_be_found_is_left_out_and_logged_once(bucket, caplog):
    root, write, make = bucket
    ini = (root / "catalogs/sample.ini").read_text()
    write({"catalogs/sample.ini": ini + "IccProfileRgb=NoSuchProfile\n"})
    client = make()
    with caplog.at_level("WARNING", logger="imageserving"):
        for _ in range(3):
            assert client.get("/is/image/sample/rose?wid=50").status_code == 200
    assert sum("IccProfileRgb=NoSuchProfile" in r.getMessage() for r in caplog.records) == 1


def test_the_embedded_srgb_profile_is_the_same_in_every_process():
    """little CMS stamps a built profile with the current time (ICC header bytes 24-35); embedded
    as is, the same reply had another body and ETag in every process (every Lambda instance)."""
    import subprocess
    import sys

    code = "from imageserving.render import icc; import sys; sys.stdout.buffer.write(icc.srgb())"
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout for _ in range(2)]
    assert runs[0] == runs[1] == icc.srgb()
    assert icc.srgb()[24:36] == bytes.fromhex("07d0 0001 0001 0000 0000 0000")  # 2000-01-01 00:00:00
    assert ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc.srgb()))).strip() == "sRGB built-in"


@pytest.mark.parametrize(
    "url",
    [
        # an untagged layer over a tagged layer 0: each in its own space
        "/is/image/sample/srgb.png?wid=64&fmt=png&layer=1&src=flat.png&size=32,32",
        # the same, layer 1 a nested request, then layer 0 a nested request of the tagged image
        "/is/image/sample/srgb.png?wid=64&fmt=png&layer=1&src=is{sample/flat.png}&size=32,32",
        "/is/image/sample?src=is{sample/srgb.png}&wid=64&fmt=png&layer=1&src=flat.png&size=32,32",
        "/is/image/sample?src=is{sample/srgb.png?layer=1%26src=flat.png%26size=32,32}&wid=64&fmt=png",
    ],
)
def test_the_source_profile_applies_to_untagged_layers_only(bucket, url):
    """IccProfileSrcRgb is the space of every untagged RGB layer, in composites and nested requests
    as in a single image; a tagged layer (sRGB here) keeps its own, and a nested request's image,
    already sRGB, is not taken to be in it a second time."""
    root, write, make = bucket
    ini = (root / "catalogs/sample.ini").read_text()
    write(
        {
            "catalogs/sample.ini": ini + "IccProfileSrcRgb=AdobeRGB\n",
            "images/sample/flat.png": patches([(128, 64, 200)], profile=None),
            "images/sample/srgb.png": patches([(146, 62, 205)], profile=SRGB),
        }
    )
    r = make().get(url)
    assert r.status_code == 200, r.text
    img = Image.open(io.BytesIO(r.content)).convert("RGB")
    assert delta_e(img.getpixel((4, 4)), (146, 62, 205)) < 2  # layer 0: tagged sRGB, as it is
    assert delta_e(img.getpixel((32, 32)), (146, 62, 205)) < 2  # layer 1: AdobeRGB (128,64,200)
