"""The image pipeline end to end (rendering.md §3-§17): reply sizes and pixel colours at known
points for the view commands, layer geometry, EXIF orientation, alpha, every op_*, resMode, the
encoder options and bad values; rect= tiles joining exactly; the fast paths against the plain one.

Sources are small generated images (four coloured quadrants, a uniform colour, a photo-like
picture) so that the colour at a point is predictable; pixels are read from lossless replies.
"""

from __future__ import annotations

import io
import math
import threading

import pytest
from PIL import Image, ImageChops, ImageCms, ImageDraw, ImageStat, JpegImagePlugin

from imageserving.errors import ISError
from imageserving.protocol.commands import REQUEST_COMMANDS
from imageserving.render import codec, pipeline, resample
from imageserving.render.pipeline import RenderDefaults, RenderJob

TL, TR, BL, BR = (200, 40, 40), (40, 200, 40), (40, 40, 200), (128, 128, 128)
WHITE, RED, GREEN = (255, 255, 255), (255, 0, 0), (0, 255, 0)
UNIFORM = (100, 150, 200)
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def quads(w: int = 200, h: int = 100) -> Image.Image:
    img = Image.new("RGB", (w, h))
    for x, y, colour in ((0, 0, TL), (w // 2, 0, TR), (0, h // 2, BL), (w // 2, h // 2, BR)):
        img.paste(colour, (x, y, x + w // 2, y + h // 2))
    return img


def photo(w: int = 400, h: int = 300) -> Image.Image:
    """Gradients, discs and thin lines: detail at every scale, like a photograph."""
    img = Image.merge(
        "RGB",
        (
            Image.linear_gradient("L").resize((w, h)),
            Image.radial_gradient("L").resize((w, h)),
            Image.linear_gradient("L").rotate(90).resize((w, h)),
        ),
    )
    draw = ImageDraw.Draw(img)
    for i in range(12):
        r = 10 + 9 * i
        draw.ellipse(
            (w // 2 - r, h // 2 - r, w // 2 + r, h // 2 + r), outline=(30 * i % 256, 90, 200 - 12 * i), width=3
        )
    for x in range(0, w, 7):
        draw.line((x, 0, x + 40, h), fill=(255 - x % 256, x % 256, 128), width=1)
    return img


def encode(img: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


QUADS = encode(quads())
UNIFORM_PNG = encode(Image.new("RGB", (64, 64), UNIFORM))
PHOTO_JPEG = encode(photo(), "JPEG", quality=90)


def make_job(query: str, source: bytes | None = QUADS, req_type: str = "img", **fields) -> RenderJob:
    """A job as service.py builds it: request attributes apart, the rest is layer 0 / comp."""
    request: dict[str, str] = {}
    layer: dict[str, str] = {}
    for part in filter(None, query.split("&")):
        name, _, value = part.partition("=")
        (request if name.lower() in REQUEST_COMMANDS else layer)[name.lower()] = value
    return RenderJob(req_type, source, layer, request, **fields)


def render_bytes(query: str, source: bytes | None = QUADS, **kw) -> bytes:
    return pipeline.render(make_job(query, source, **kw)).body


def render(query: str, source: bytes | None = QUADS, **kw) -> Image.Image:
    img = Image.open(io.BytesIO(render_bytes(query, source, **kw)))
    img.load()
    return img


def near(actual, expected, tolerance: int = 2) -> bool:
    return len(actual) == len(expected) and all(abs(a - e) <= tolerance for a, e in zip(actual, expected))


def diff_stats(a: Image.Image, b: Image.Image) -> tuple[float, int]:
    """(PSNR in dB, max |Δ|) over all channels."""
    hist = ImageChops.difference(a, b).histogram()
    levels = [i % 256 for i, n in enumerate(hist) if n]
    se = sum(n * (i % 256) ** 2 for i, n in enumerate(hist))
    mse = se / (a.width * a.height * len(a.getbands()))
    return (10 * math.log10(255**2 / mse) if mse else math.inf), max(levels)


# ------------------------------------------------------------------------ view geometry (§5)
GEOMETRY = [
    # query, reply size, {point: colour}
    ("wid=100", (100, 50), {(25, 12): TL, (75, 12): TR, (25, 37): BL, (75, 37): BR}),
    ("hei=50", (100, 50), {(25, 12): TL, (75, 37): BR}),
    ("wid=400", (400, 200), {(100, 50): TL, (300, 150): BR}),  # D1: enlarges
    ("wid=100&hei=100", (100, 100), {(50, 10): WHITE, (25, 37): TL, (75, 62): BR, (50, 90): WHITE}),
    ("wid=100&hei=100&align=0,-1", (100, 100), {(25, 12): TL, (75, 37): BR, (50, 75): WHITE}),
    ("wid=100&hei=100&align=0,1", (100, 100), {(50, 25): WHITE, (25, 62): TL, (75, 87): BR}),
    ("wid=300&hei=100&fit=fit&align=-1,0", (300, 100), {(50, 25): TL, (150, 75): BR, (250, 50): WHITE}),
    ("wid=300&hei=100&fit=fit&align=1,0", (300, 100), {(50, 50): WHITE, (150, 25): TL, (250, 75): BR}),
    ("wid=100&hei=100&fit=crop", (100, 100), {(10, 25): TL, (90, 25): TR, (10, 75): BL, (90, 75): BR}),
    ("wid=100&hei=100&fit=constrain", (100, 50), {(25, 12): TL, (75, 37): BR}),
    ("wid=100&hei=100&fit=wrap", (200, 100), {(50, 25): TL, (150, 75): BR}),
    ("wid=100&hei=100&fit=stretch", (100, 100), {(25, 25): TL, (75, 25): TR, (25, 75): BL, (75, 75): BR}),
    ("wid=100&hei=100&fit=hfit", (100, 100), {(50, 10): WHITE, (25, 37): TL, (75, 62): BR}),
    ("wid=100&hei=100&fit=vfit", (100, 100), {(10, 25): TL, (90, 75): BR}),
    # fit= without upscale keeps 200x100 and pads; with it, 400x200
    ("wid=400&hei=400&fit=fit", (400, 400), {(200, 100): WHITE, (150, 175): TL, (250, 225): BR, (50, 200): WHITE}),
    ("wid=400&hei=400&fit=fit,1", (400, 400), {(200, 50): WHITE, (100, 150): TL, (300, 250): BR}),
    ("wid=400&hei=400&fit=crop,1", (400, 400), {(100, 100): TL, (300, 300): BR}),
    ("wid=400&hei=400&fit=stretch", (400, 400), {(50, 200): WHITE, (150, 175): TL, (250, 225): BR}),
    ("scl=2", (100, 50), {(25, 12): TL, (75, 37): BR}),
    ("scl=0.5", (400, 200), {(100, 50): TL, (300, 150): BR}),
    ("scl=2&wid=150&hei=100", (150, 100), {(10, 10): WHITE, (50, 40): TL, (100, 60): BR, (140, 90): WHITE}),
    ("crop=100,0,100,100&scl=1", (100, 100), {(50, 25): TR, (50, 75): BR}),
    ("crop=0,0,100,50&scl=0.5", (200, 100), {(100, 50): TL}),
    ("crop=150,50,100,100&scl=1", (100, 100), {(25, 25): BR, (75, 75): WHITE}),  # overhang → bgc
    ("cropN=0.5,0.5,0.5,0.5&wid=50", (50, 25), {(25, 12): BR}),
    ("rgn=0,0,100,50&wid=100", (100, 50), {(50, 25): TL}),
    ("rgn=0,0,100,50&wid=50&hei=50", (50, 50), {(25, 5): WHITE, (25, 24): TL, (25, 45): BL}),  # ROI, not a crop
    ("extend=0,0,100,0&scl=1&bgc=ff0000", (300, 100), {(50, 25): TL, (250, 50): RED}),
    ("flip=lr&wid=100", (100, 50), {(25, 12): TR, (75, 37): BL}),
    ("flip=ud&wid=100", (100, 50), {(25, 12): BL, (75, 37): TR}),
    ("rotate=90&wid=50", (50, 100), {(12, 25): BL, (37, 25): TL, (12, 75): BR, (37, 75): TR}),
    ("rotate=180&wid=100", (100, 50), {(25, 12): BR, (75, 37): TL}),
    ("rect=50,0,100,50&wid=200", (100, 50), {(25, 25): TL, (75, 25): TR}),
    ("rect=150,50,100,100&wid=200", (100, 100), {(25, 25): BR, (75, 25): WHITE, (25, 75): WHITE}),
    ("rect=0,0,100,50,0.5&wid=200", (100, 50), {(25, 12): TL, (75, 37): BR}),
    ("wid=100&hei=100&bgc=00ff00", (100, 100), {(50, 10): GREEN, (25, 37): TL}),
]


@pytest.mark.parametrize("query,size,points", GEOMETRY)
def test_view_geometry(query, size, points):
    img = render(query + "&fmt=png")
    assert img.size == size
    for (x, y), colour in points.items():
        assert near(img.getpixel((x, y)), colour), (x, y, img.getpixel((x, y)), colour)


def test_default_pix_and_max_pix():
    assert render("fmt=png", defaults=RenderDefaults(default_pix=(50, 50))).size == (50, 25)
    with pytest.raises(ISError) as err:
        render("wid=300&fmt=png", defaults=RenderDefaults(max_pix=(250, 250)))
    assert err.value.kind == "size_limit"


@pytest.mark.parametrize(
    "query,client_dpr,size",
    [
        ("wid=100&dpr=on,2", None, (200, 100)),
        ("wid=100&dpr=off,2", None, (100, 50)),
        ("wid=100&dpr=on", 3.0, (300, 150)),
        ("wid=100&dpr=on", None, (100, 50)),
        ("wid=200&dpr=on,2", None, (300, 150)),  # 400x200 exceeds MaxPix 300: d shrinks to fit
        ("wid=100&hei=100&dpr=on,4", None, (300, 300)),
    ],
)
def test_dpr_with_max_pix(query, client_dpr, size):
    img = render(query + "&fmt=png", client_dpr=client_dpr, defaults=RenderDefaults(max_pix=(300, 300)))
    assert img.size == size
    assert near(img.getpixel((size[0] // 4, size[1] // 4 if size[0] == 2 * size[1] else size[1] // 2 - 5)), TL)


# Stored pixels that EXIF orientation n turns into the quadrants: the inverse of the display turn.
_STORED = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


@pytest.mark.parametrize("orientation", sorted(_STORED))
@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
@pytest.mark.parametrize(
    "query,size,points",
    [  # in display coordinates of a 400x200 image
        ("wid=100", (100, 50), {(25, 12): TL, (75, 12): TR, (25, 37): BL, (75, 37): BR}),
        ("crop=200,0,200,100&scl=1", (200, 100), {(10, 10): TR, (190, 90): TR}),
        ("crop=0,100,200,100&wid=50", (50, 25), {(25, 12): BL}),
    ],
)
def test_exif_orientation_before_crop_and_scale(orientation, fmt, query, size, points):
    stored = quads(400, 200)
    if _STORED[orientation] is not None:
        stored = stored.transpose(_STORED[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    source = encode(stored, fmt, exif=exif, **({"quality": 95} if fmt == "JPEG" else {}))
    img = render(query + "&fmt=png", source)
    assert img.size == size
    for (x, y), colour in points.items():
        assert near(img.getpixel((x, y)), colour, 2 if fmt == "PNG" else 8), ((x, y), img.getpixel((x, y)))


# ------------------------------------------------------------------------------ alpha (§11)
def _tile() -> bytes:
    """200x100, transparent (with a red colour nobody should see) around an opaque blue square."""
    img = Image.new("RGBA", (200, 100), (255, 0, 0, 0))
    img.paste((0, 0, 255, 255), (50, 25, 150, 75))
    return encode(img)


TILE = _tile()


@pytest.mark.parametrize(
    "query,mode,corner,centre,tolerance",
    [
        ("scl=1&fmt=png-alpha", "RGBA", None, (0, 0, 255, 255), 0),
        ("scl=1&fmt=png", "RGB", WHITE, (0, 0, 255), 0),
        ("scl=1&fmt=png&bgc=00ff00", "RGB", GREEN, (0, 0, 255), 0),
        ("scl=1&fmt=jpeg&bgc=00ff00", "RGB", GREEN, (0, 0, 255), 12),
        ("scl=1&fmt=webp-alpha,,lossless", "RGBA", None, (0, 0, 255, 255), 0),
        ("scl=1&fmt=webp&bgc=00ff00", "RGB", GREEN, (0, 0, 255), 12),
        ("scl=1&fmt=gif-alpha", "RGBA", None, (0, 0, 255, 255), 0),
        ("wid=100&fmt=tif-alpha", "RGBA", None, (0, 0, 255, 255), 0),
    ],
)
def test_alpha_kept_or_flattened(query, mode, corner, centre, tolerance):
    """``corner`` None: a transparent pixel (its hidden colour does not matter)."""
    img = render(query, TILE)
    img = img.convert("RGBA") if img.mode == "P" else img
    assert img.mode == mode
    if corner is None:
        assert img.getpixel((0, 0))[3] == 0
    else:
        assert near(img.getpixel((0, 0)), corner, tolerance)
    assert near(img.getpixel((img.width // 2, img.height // 2)), centre, tolerance)


def test_padding_is_transparent_for_alpha_formats_and_bgc_otherwise():
    alpha = render("wid=100&hei=100&fmt=png-alpha&bgc=ff0000")
    assert alpha.getpixel((50, 10))[3] == 0 and alpha.getpixel((25, 37)) == (*TL, 255)
    assert render("wid=100&hei=100&fmt=png&bgc=ff0000").getpixel((50, 10)) == RED


def test_alpha_is_resampled_premultiplied():
    # The hidden red of transparent pixels must not leak into the edge of the blue square.
    img = render("wid=50&fmt=png-alpha", TILE)
    edge = [img.getpixel((x, 12)) for x in range(8, 16)]
    assert any(0 < a < 255 for *_, a in edge)
    assert all(r <= 1 for r, _, _, a in edge if a)


def test_req_mask_returns_the_alpha():
    img = render("scl=1", TILE, req_type="mask")
    assert img.mode == "L" and img.getpixel((0, 0)) == 0 and img.getpixel((100, 50)) == 255


# ---------------------------------------------------------------------------------- op_* (§8)
POINT_OPS = [
    ("op_brightness=50", lambda c: c == (228, 255, 255)),  # + R(127.5) = 128
    ("op_brightness=-20", lambda c: c == (49, 99, 149)),
    ("op_brightness=0", lambda c: c == UNIFORM),
    ("op_contrast=50", lambda c: c == (72, 172, 255)),  # f = 2 around 128
    ("op_contrast=-50", lambda c: c == (114, 139, 164)),  # f = 0.5
    ("op_contrast=100", lambda c: c == (0, 255, 255)),  # threshold at 128
    ("op_colorbalance=10,0,-10", lambda c: c == (126, 150, 175)),  # R(-25.5) = -25
    ("op_invert=1", lambda c: c == (155, 105, 55)),
    ("op_invert=0", lambda c: c == UNIFORM),
    ("op_saturation=-100", lambda c: c == (141, 141, 141)),  # Pillow's luminance of UNIFORM
    ("op_saturation=60", lambda c: c[2] - c[0] > 150 and c[0] < 100),
    ("op_hue=180", lambda c: c[0] > c[1] > c[2]),  # blue-ish turns orange-ish
    ("op_hue=-120", lambda c: c[1] > c[0] > c[2]),  # ... and yellow-green
    ("op_colorize=ff0000", lambda c: c == RED),  # norm: the median lands on 128
    ("op_colorize=0,0,255,norm,50", lambda c: c == (0, 0, 255)),  # a decimal colour
    ("op_colorize=0,0,255", lambda c: c == (0, 0, 255)),
    ("op_colorize=ff0000,off", lambda c: c[0] == 255 and c[1] == c[2] and 10 < c[1] < 50),  # luminance 141
    ("op_brightness=-15&op_contrast=22&op_colorize=a0b0c0", lambda c: c == (160, 176, 192)),
]


@pytest.mark.parametrize("ops,check", POINT_OPS)
def test_point_operations(ops, check):
    img = render(f"scl=1&fmt=png&{ops}", UNIFORM_PNG)
    assert check(img.getpixel((32, 32))), img.getpixel((32, 32))


@pytest.mark.parametrize(
    "ops",
    [
        "op_brightness=40",
        "op_invert=1",
        "op_hue=90",
        "op_saturation=-50",
        "op_colorize=a0b0c0",
        "op_colorbalance=0,20,0",
        "op_contrast=-30",
    ],
)
def test_point_operations_leave_alpha_alone(ops):
    img = render(f"scl=1&fmt=png-alpha&{ops}", TILE)
    assert img.getpixel((0, 0))[3] == 0 and img.getpixel((100, 50))[3] == 255
    assert img.getpixel((100, 50))[:3] != (0, 0, 255)


def test_operations_commute_with_scaling_on_the_content_only():
    # Point operations run after the downscale, on the content; the padding keeps bgc.
    img = render("wid=100&hei=100&fmt=png&op_invert=1")
    assert img.getpixel((50, 5)) == WHITE
    assert near(img.getpixel((25, 37)), tuple(255 - v for v in TL))


def test_operation_order_is_fixed_not_the_url_order():
    a = render_bytes("wid=100&fmt=png&op_contrast=40&op_brightness=30&op_colorize=a0b0c0,norm,40")
    b = render_bytes("wid=100&fmt=png&op_colorize=a0b0c0,norm,40&op_brightness=30&op_contrast=40")
    assert a == b


@pytest.mark.parametrize("ops", ["op_sharpen=1", "op_usm=2,2", "op_usmR=2,2", "op_usm=2,2,3"])
def test_sharpening_overshoots_at_edges(ops):
    img = render(f"scl=1&fmt=png&{ops}")
    assert img.getpixel((25, 25)) == TL  # flat areas stay
    assert img.getpixel((99, 25))[0] > TL[0] and img.getpixel((100, 25))[0] < TR[0]


def test_usm_threshold_spares_small_steps_and_accepts_reals():
    soft = Image.new("RGB", (64, 64), (100, 100, 100))
    soft.paste((110, 110, 110), (32, 0, 64, 64))
    source = encode(soft)
    assert render("scl=1&fmt=png&op_usm=2,2,20", source).tobytes() == soft.tobytes()
    assert render("scl=1&fmt=png&op_usm=2,2,1", source).tobytes() != soft.tobytes()
    assert render_bytes("scl=1&fmt=png&op_usm=1.75,1.0,6.0") == render_bytes("scl=1&fmt=png&op_usm=1.75,1,6")


def test_usm_monochrome_sharpens_luminance_only():
    left, right = (150, 110, 110), (110, 150, 110)  # mid tones: nothing clips
    pair = Image.new("RGB", (64, 64), left)
    pair.paste(right, (32, 0, 64, 64))
    colour = render("scl=1&fmt=png&op_usm=3,2,0,0", encode(pair))
    mono = render("scl=1&fmt=png&op_usm=3,2,0,1", encode(pair))
    # At the edge mono moves the luminance and keeps the chroma; colour USM changes the chroma.
    y0, *chroma = Image.new("RGB", (1, 1), left).convert("YCbCr").getpixel((0, 0))
    y, *mono_chroma = mono.convert("YCbCr").getpixel((31, 32))
    _, *colour_chroma = colour.convert("YCbCr").getpixel((31, 32))
    assert y < y0 - 4 and near(mono_chroma, chroma, 2) and not near(colour_chroma, chroma, 4)


def test_usm_radius_is_in_full_resolution_pixels_d5():
    source = encode(quads(400, 200))
    # A quarter-size reply: op_usm's radius 4 becomes 1; op_usmR keeps its radius.
    assert render_bytes("wid=100&fmt=png&op_usm=5,4", source) == render_bytes("wid=100&fmt=png&op_usmR=5,1", source)
    assert render_bytes("wid=100&fmt=png&op_usm=5,4", source) != render_bytes("wid=100&fmt=png&op_usmR=5,4", source)
    output = RenderDefaults(usm_radius="output")
    assert render_bytes("wid=100&fmt=png&op_usm=5,4", source, defaults=output) == render_bytes(
        "wid=100&fmt=png&op_usmR=5,4", source
    )
    # Enlarging never scales the radius up.
    assert render_bytes("scl=0.5&fmt=png&op_usm=2,1") == render_bytes("scl=0.5&fmt=png&op_usmR=2,1")


def test_sharpening_with_alpha_is_premultiplied():
    img = render("scl=1&fmt=png-alpha&op_usm=5,3", TILE)
    assert img.getpixel((0, 0))[3] == 0 and img.getpixel((100, 50)) == (0, 0, 255, 255)
    assert all(r <= 1 for r, _, _, a in (img.getpixel((x, 50)) for x in range(44, 56)) if a > 8)


def test_blur_mixes_across_edges_only():
    img = render("scl=1&fmt=png&op_blur=4")
    assert near(img.getpixel((25, 25)), TL)
    r, g, _ = img.getpixel((99, 25))
    assert TR[0] < r < TL[0] and TL[1] < g < TR[1]


def test_blur_radius_follows_the_scale():
    big = encode(quads(400, 200))
    # op_blur=4 on a half-size reply is op_blur=2 on the same pixels at full size, halved.
    blurred = render("wid=200&fmt=png&op_blur=4", big)
    reference = render("scl=1&fmt=png&op_blur=2")
    assert diff_stats(blurred, reference)[1] <= 3


def test_noise_is_deterministic_and_bounded():
    a = render_bytes("scl=1&fmt=png&op_noise=20", UNIFORM_PNG)
    assert a == render_bytes("scl=1&fmt=png&op_noise=20", UNIFORM_PNG)
    img = Image.open(io.BytesIO(a))
    for band, centre in zip(img.split(), UNIFORM):
        lo, hi = band.getextrema()
        assert centre - 51 <= lo and hi <= centre + 51 and hi - lo > 60  # A = R(20 % of 255) = 51
    assert a != render_bytes("scl=1&fmt=png&op_noise=21", UNIFORM_PNG)


def test_noise_monochrome_and_gaussian():
    mono = render("scl=1&fmt=png&op_noise=20,uniform,1", UNIFORM_PNG)
    r, g, b = mono.split()
    assert ImageChops.difference(ImageChops.subtract(g, r), Image.new("L", r.size, 50)).getbbox() is None
    assert r.getextrema()[0] < 90
    gauss = render("scl=1&fmt=png&op_noise=20,gaussian", UNIFORM_PNG)
    assert 15 < ImageStat.Stat(gauss).stddev[0] < 35  # σ = A/2 = 25.5


def test_operations_on_solid_and_rotated_layers():
    solid = render("size=60,40&color=ff0000&fmt=png&op_invert=1", None)
    assert solid.size == (60, 40) and solid.getpixel((30, 20)) == (0, 255, 255)
    rotated = render("rotate=45&fmt=png-alpha&op_brightness=20", UNIFORM_PNG)
    assert rotated.size == (92, 92) and rotated.getpixel((0, 0))[3] == 0
    assert rotated.getpixel((46, 46)) == (151, 201, 251, 255)


# ----------------------------------------------------------------------- rect= tiles (§5, §3)
@pytest.mark.parametrize("source", [PHOTO_JPEG, encode(photo())], ids=["jpeg", "png"])
@pytest.mark.parametrize(
    "ops",
    [
        "",
        "op_sharpen=1",
        "op_usm=3,2",
        "op_blur=2",
        "op_usmR=2,1,0,1",
        "op_colorize=a0b0c0,norm,50",
        "op_noise=10",
        "op_blur=1&op_usm=2,4",
    ],
)
def test_rect_tiles_join_exactly(source, ops):
    view = "wid=200&hei=150&fmt=png&" + ops
    whole = render(view, source)
    joined = Image.new("RGB", (200, 160))
    for x, y in ((0, 0), (100, 0), (0, 80), (100, 80)):
        tile = render(f"{view}&rect={x},{y},100,80", source)
        assert tile.size == (100, 80)
        joined.paste(tile, (x, y))
    assert joined.getpixel((50, 155)) == WHITE  # window below the view
    assert ImageChops.difference(joined.crop((0, 0, 200, 150)), whole).getbbox() is None


def test_rect_scale_factor_tiles():
    whole = render("wid=100&fmt=png&rect=0,0,200,100,2&op_sharpen=1", PHOTO_JPEG)
    strip = render("wid=100&fmt=png&rect=0,50,200,25,2&op_sharpen=1", PHOTO_JPEG)
    assert ImageChops.difference(whole.crop((0, 50, 200, 75)), strip).getbbox() is None


# ------------------------------------------------------------------------------ resMode (§15)
def test_res_modes():
    out = {
        mode: render_bytes(f"wid=133&fmt=png&resMode={mode}", PHOTO_JPEG)
        for mode in ("bilin", "bicub", "sharp2", "sharp", "bisharp", "trilin", "BICUB")
    }
    assert all(Image.open(io.BytesIO(b)).size == (133, 100) for b in out.values())
    assert out["sharp"] == out["sharp2"] and out["BICUB"] == out["bicub"]
    assert len({out[m] for m in ("bilin", "bicub", "sharp2", "bisharp", "trilin")}) == 5
    assert render_bytes("wid=133&fmt=png", PHOTO_JPEG, defaults=RenderDefaults(res_mode="bilin")) == out["bilin"]
    # bisharp only sharpens reductions: enlarging it is plain bicubic.
    assert render_bytes("wid=800&fmt=png&resMode=bisharp") == render_bytes("wid=800&fmt=png&resMode=bicub")


# -------------------------------------------------------------------- fast paths (§16 budget)
@pytest.mark.parametrize(
    "query",
    [
        "wid=100",
        "wid=150&resMode=bilin",
        "wid=120&hei=120&resMode=bicub",
        "wid=100&resMode=trilin",
        "wid=100&resMode=bisharp",
        "crop=50,40,300,200&wid=150",
        "rect=20,10,100,60&wid=200",
        "wid=300&hei=100&fit=crop&op_blur=1",
        "flip=lr&rotate=90&wid=90",
    ],
)
def test_overlapped_decode_equals_plain_decode(query, monkeypatch):
    monkeypatch.setattr(resample, "CORES", 2)
    fast = render_bytes(query + "&fmt=png", PHOTO_JPEG)
    monkeypatch.setattr(resample.JpegStream, "open", classmethod(lambda cls, src, hint: None))
    assert fast == render_bytes(query + "&fmt=png", PHOTO_JPEG)


def test_overlap_waits_for_the_rows_each_band_reads(monkeypatch):
    # A source of many read chunks, so that bands really are resized while decoding goes on.
    monkeypatch.setattr(resample, "CORES", 2)
    source = encode(photo(1600, 1200), "JPEG", quality=95)
    assert len(source) > 8 * 65536
    fast = [render_bytes(f"wid={w}&fmt=png", source) for w in (200, 333)]
    monkeypatch.setattr(resample.JpegStream, "open", classmethod(lambda cls, src, hint: None))
    assert fast == [render_bytes(f"wid={w}&fmt=png", source) for w in (200, 333)]


def test_bands_left_when_the_decode_ends_are_drawn_on_both_threads(monkeypatch):
    # A reply whose resize outlasts the decode: the decoding thread takes bands from the back.
    monkeypatch.setattr(resample, "CORES", 2)
    source = encode(photo(1600, 1200), "JPEG", quality=95)
    threads = set()
    new = Image.Image._new

    def recording(self, core):
        threads.add(threading.get_ident())
        return new(self, core)

    monkeypatch.setattr(Image.Image, "_new", recording)
    fast = render_bytes("wid=1400&fmt=png", source)
    assert len(threads) >= 2
    monkeypatch.setattr(Image.Image, "_new", new)
    monkeypatch.setattr(resample.JpegStream, "open", classmethod(lambda cls, src, hint: None))
    assert fast == render_bytes("wid=1400&fmt=png", source)


@pytest.mark.parametrize("box", [(0, 0, 1200, 900), (10.5, 3.25, 1100.75, 880.5)])
def test_banded_resample_is_one_resize_on_any_number_of_cores(box, monkeypatch):
    img = photo(1200, 900)
    banded = {}
    for cores in (1, 2):
        monkeypatch.setattr(resample, "CORES", cores)
        banded[cores] = resample.resample(img, (301, 229), box, Image.Resampling.LANCZOS, pipeline.REDUCING_GAP)
    assert banded[1].tobytes() == banded[2].tobytes()
    # Band edges are fractional: a last-bit difference of weights may move a pixel by one level.
    assert diff_stats(banded[1], img.resize((301, 229), Image.Resampling.LANCZOS, box=box))[1] <= 1


def test_stream_is_used_only_where_it_equals_codec_decode(monkeypatch):
    monkeypatch.setattr(resample, "CORES", 2)
    src = lambda data: codec.open_source(data, max_pixels=10**8)  # noqa: E731
    assert resample.JpegStream.open(src(PHOTO_JPEG), 0.25) is not None
    assert resample.JpegStream.open(src(encode(photo())), 0.25) is None  # PNG
    exif = Image.Exif()
    exif[0x0112] = 6
    assert resample.JpegStream.open(src(encode(photo(), "JPEG", exif=exif)), 0.25) is None
    assert resample.JpegStream.open(src(encode(photo().convert("CMYK"), "JPEG")), 0.25) is None
    monkeypatch.setattr(resample, "CORES", 1)
    assert resample.JpegStream.open(src(PHOTO_JPEG), 0.25) is None


def test_truncated_jpeg_is_a_content_error(monkeypatch):
    monkeypatch.setattr(resample, "CORES", 2)
    with pytest.raises(ISError) as err:
        render("wid=100&fmt=png", PHOTO_JPEG[: len(PHOTO_JPEG) // 2])
    assert err.value.kind == "content_error"


def percentile_999(a: Image.Image, b: Image.Image) -> int:
    """The 99.9th percentile of |Δ| over all channels (rendering.md §16's second bound)."""
    hist = ImageChops.difference(a, b).histogram()
    per_level = [sum(hist[c * 256 + i] for c in range(len(a.getbands()))) for i in range(256)]
    total, seen = sum(per_level), 0
    for level, n in enumerate(per_level):
        seen += n
        if seen >= 0.999 * total:
            return level
    return 255


def hard_edges(w: int = 1440, h: int = 1080, line_art: bool = False) -> Image.Image:
    """What a lens never makes: product-like flat shapes and a checkerboard on pure white, every
    edge a step from one pixel to the next; ``line_art`` adds one-pixel lines and small text."""
    img = Image.new("RGB", (w, h), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    draw.rounded_rectangle((w // 8, h // 6, w // 2, h * 5 // 6), radius=60, fill=(200, 30, 40))
    draw.ellipse((w // 4, h // 3, w * 3 // 8, h // 2), fill=(20, 20, 20))
    draw.polygon([(w * 0.6, h * 0.8), (w * 0.75, h * 0.2), (w * 0.9, h * 0.8)], fill=(30, 120, 60))
    for y in range(h * 2 // 3, h - 40, 32):
        for x in range(w // 2 + 40, w - 40, 32):
            if (x // 32 + y // 32) % 2:
                draw.rectangle((x, y, x + 31, y + 31), fill=(0, 60, 160))
    if line_art:
        for i in range(0, 200, 8):
            draw.line((w // 2 + 40 + i, 40, w // 2 + 40 + i, h // 2), fill=(0, 0, 0), width=1 + i % 3)
        for row in range(6):
            draw.text((w // 2 + 260, 60 + 40 * row), "Scene7 imageserving 0123456789", fill=(0, 0, 0), font_size=24)
    return img


@pytest.mark.parametrize(
    "res_mode,flt,line_art",
    [
        ("sharp2", Image.Resampling.LANCZOS, False),
        ("bicub", Image.Resampling.BICUBIC, False),
        ("bilin", Image.Resampling.BILINEAR, False),
        # LANCZOS on one-pixel line art needs 4x headroom (see pipeline.DRAFT_HEADROOM): not tested here.
        ("bicub", Image.Resampling.BICUBIC, True),
        ("bilin", Image.Resampling.BILINEAR, True),
    ],
)
@pytest.mark.parametrize("reduction", [2.4, 3, 4, 4.8, 6, 8, 12])
def test_shrink_on_load_stays_inside_the_budget_on_hard_edges(reduction, res_mode, flt, line_art):
    # The real photographs are measured by benchmarks/budget.py; sizes divide exactly here, so
    # that the reply maps onto the whole source and only decoding differs.
    source = encode(hard_edges(line_art=line_art), "JPEG", quality=92)
    ours = render(f"wid={round(1440 / reduction)}&fmt=png&resMode={res_mode}", source)
    full = Image.open(io.BytesIO(source)).convert("RGB")
    reference = full.resize(ours.size, flt)
    value, p999 = diff_stats(ours, reference)[0], percentile_999(ours, reference)
    assert value >= 40 and p999 <= 8, (value, p999)


@pytest.mark.parametrize("res_mode,flt", [("sharp2", Image.Resampling.LANCZOS), ("bilin", Image.Resampling.BILINEAR)])
@pytest.mark.parametrize("line_art", [False, True])
@pytest.mark.parametrize("reduction", [3, 6, 8, 12])
def test_png_sources_are_box_reduced_first_inside_the_budget(reduction, line_art, res_mode, flt):
    # No DCT scaling for PNG: codec.decode reduce()s, keeping 4x the reply (8x: by 2, then 4x).
    img = hard_edges(line_art=line_art)
    source = encode(img)
    src = codec.open_source(source, max_pixels=10**8)
    hint = 1 / reduction * pipeline.DRAFT_HEADROOM / 2
    assert codec.decode(src, scale_hint=hint).reduction == {3: 1, 6: 1, 8: 2, 12: 3}[reduction]
    ours = render(f"wid={round(1440 / reduction)}&fmt=png&resMode={res_mode}", source)
    reference = img.resize(ours.size, flt)
    value, p999 = diff_stats(ours, reference)[0], percentile_999(ours, reference)
    assert value >= 40 and p999 <= 8, (value, p999)


def test_lanczos_keeps_2x_headroom_only_where_it_lands_on_the_quarter_dct_scale():
    jpeg = codec.open_source(PHOTO_JPEG, max_pixels=10**8)
    png = codec.open_source(encode(photo()), max_pixels=10**8)
    hint = pipeline._decode_hint
    assert hint(jpeg, 1 / 8, "sharp2") == 1 / 8  # 2x: decoded at 1/4
    assert hint(jpeg, 1 / 9.6, "sharp2") == 1 / 9.6
    assert hint(jpeg, 1 / 8, "bicub") == hint(jpeg, 1 / 8, "bilin") == 1 / 8 * 2.5 / 2  # 4x: at 1/2
    assert hint(jpeg, 1 / 4, "sharp2") == 1 / 4 * 2.5 / 2  # 2x would land on 1/2: kept at 2.5x
    assert hint(jpeg, 1 / 16, "sharp2") == 1 / 16 * 2.5 / 2  # ... and on 1/8
    assert hint(png, 1 / 8, "sharp2") == 1 / 8 * 2.5 / 2  # reduce() keeps its own margin
    img = Image.open(io.BytesIO(encode(hard_edges(), "JPEG", quality=92)))
    img.draft("RGB", tuple(math.ceil(d * hint(jpeg, 1 / 8, "sharp2") * 2) for d in img.size))
    assert img.size == (1440 // 4, 1080 // 4)


def test_2x_headroom_would_leave_the_budget_on_hard_edges(monkeypatch):
    # Why DRAFT_HEADROOM is not 2 (what libvips keeps): the same shapes, some reduction goes over.
    monkeypatch.setattr(pipeline, "DRAFT_HEADROOM", 2.0)
    source = encode(hard_edges(), "JPEG", quality=92)
    full = Image.open(io.BytesIO(source)).convert("RGB")
    worst = 0
    for reduction in (2.4, 3, 4, 4.8, 6, 8, 12):
        ours = render(f"wid={round(1440 / reduction)}&fmt=png", source)
        worst = max(worst, percentile_999(ours, full.resize(ours.size, Image.Resampling.LANCZOS)))
    assert worst > 8


# ----------------------------------------------------------------------- encoder options (§11)
def test_qlt_quality_and_chroma():
    photo_png = encode(photo())
    sampling = {
        q: JpegImagePlugin.get_sampling(render(f"wid=200&fmt=jpg&qlt={q}", photo_png)) for q in ("90", "90,0", "90,1")
    }
    assert sampling == {"90": 2, "90,0": 2, "90,1": 0}
    sizes = [len(render_bytes(f"wid=200&fmt=jpg&qlt={q}", photo_png)) for q in (30, 95)]
    assert sizes[0] < sizes[1]
    default = RenderDefaults(jpeg_quality=(95, True))
    assert JpegImagePlugin.get_sampling(render("wid=200&fmt=jpg", photo_png, defaults=default)) == 0


@pytest.mark.parametrize(
    "query,check",
    [
        (
            "fmt=gif&quantize=adaptive,off,2,000000,ffffff",
            lambda im: {c for _, c in im.convert("RGB").getcolors()} <= {(0, 0, 0), (255, 255, 255)},
        ),
        ("fmt=png8&quantize=adaptive,diffuse,4", lambda im: im.mode == "P" and len(im.convert("RGB").getcolors()) <= 4),
        ("fmt=png8", lambda im: im.mode == "P"),
        ("fmt=gif&quantize=web", lambda im: im.mode == "P"),
    ],
)
def test_quantize(query, check):
    assert check(render("wid=200&" + query, encode(photo())))


@pytest.mark.parametrize(
    "query,dpi",
    [("fmt=png&printRes=150", 150), ("fmt=jpg&printRes=300", 300), ("fmt=jpg", 72), ("fmt=tif&printRes=96", 96)],
)
def test_print_res(query, dpi):
    img = render("wid=50&" + query)
    assert [round(v) for v in img.info["dpi"]] == [dpi, dpi]


def test_print_res_defaults_to_the_catalog_then_the_source():
    assert round(render("wid=50&fmt=jpg", defaults=RenderDefaults(print_res=200.0)).info["dpi"][0]) == 200
    assert round(render("wid=50&fmt=jpg", encode(quads(), dpi=(180, 180))).info["dpi"][0]) == 180


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_icc_embed(fmt):
    source = encode(quads(), icc_profile=SRGB)
    assert render(f"wid=50&fmt={fmt}&iccEmbed=1", source).info.get("icc_profile") == SRGB
    assert "icc_profile" not in render(f"wid=50&fmt={fmt}&iccEmbed=0", source).info
    assert "icc_profile" not in render(f"wid=50&fmt={fmt}&iccEmbed=1").info  # nothing to embed


def test_deadline_is_an_overload():
    with pytest.raises(ISError) as err:
        render("wid=50&fmt=png", deadline=0.0)
    assert err.value.kind == "overload"


# --------------------------------------------------------------------------------- bad values
BAD = [
    "op_usm=6",
    "op_usm=1,300",
    "op_usm=1,1,256",
    "op_usm=1,1,1,2",
    "op_usm=",
    "op_usm=1,1,1,1,1",
    "op_usmR=x",
    "op_sharpen=2",
    "op_blur=-1",
    "op_blur=101",
    "op_brightness=101",
    "op_brightness=1.5",
    "op_contrast=x",
    "op_saturation=-101",
    "op_hue=181",
    "op_colorbalance=1,2",
    "op_colorbalance=1,2,300",
    "op_colorize=0x80",
    "op_colorize=ff0000,foo",
    "op_colorize=ff0000,norm,101",
    "op_colorize=0,0,0,0k",
    "op_noise=101",
    "op_noise=10,pink",
    "op_noise=10,uniform,2",
    "op_invert=2",
    "resMode=fast",
    "resMode=2",
    "wid=0",
    "hei=-3",
    "fit=bogus&wid=10",
    "qlt=101",
    "fmt=png,cmyk",
    "printRes=0",
    "quantize=bogus",
    "iccEmbed=2",
    "rect=0,0,0,10",
    "crop=0,0,10",
    "rotate=x",
]


@pytest.mark.parametrize("query", BAD)
def test_bad_values_fail_before_the_source_is_read(query):
    job = make_job(query, source=None)  # no source bytes exist: parsing alone must fail
    with pytest.raises(ISError) as err:
        pipeline.parse_options(job)
    assert err.value.kind == "bad_request"


@pytest.mark.parametrize("query", ["op_usm=6", "op_colorize=0x80", "resMode=fast", "op_noise=10,pink", "op_hue=200"])
def test_bad_values_are_403_through_the_app(client, query):
    reply = client.get(f"/is/image/sample/rose?wid=100&{query}")
    assert reply.status_code == 403 and reply.headers["x-is-error"] == "bad_request"


# ----------------------------------------------------------------------------- through the app
@pytest.mark.parametrize(
    "query,size,media",
    [
        ("wid=200&fmt=png", (200, 150), "image/png"),
        ("wid=200&op_usm=1.75,1.0,6.0", (200, 150), "image/jpeg"),  # what storefront URLs send
        ("wid=160&hei=160&fmt=webp&op_sharpen=1&resMode=bisharp", (160, 160), "image/webp"),
        ("wid=100&fmt=avif&op_colorize=a0b0c0,norm,50", (100, 75), "image/avif"),
    ],
)
def test_app_renders_sample_images(client, query, size, media):
    reply = client.get(f"/is/image/sample/rose?{query}")
    assert reply.status_code == 200 and reply.headers["content-type"] == media
    assert Image.open(io.BytesIO(reply.content)).size == size


def test_app_pixels_of_a_bucket_image(bucket):
    _, write, make = bucket
    write({"images/sample/quads.png": QUADS})
    reply = make().get("/is/image/sample/quads.png?wid=100&hei=100&fmt=png&bgc=00ff00&op_invert=1")
    img = Image.open(io.BytesIO(reply.content))
    assert reply.status_code == 200 and img.size == (100, 100)
    assert img.getpixel((50, 5)) == GREEN and near(img.getpixel((25, 37)), tuple(255 - v for v in TL))
