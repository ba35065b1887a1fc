"""Effect layers, blend modes, masks and the image layer's own geometry (issue 11; rendering.md §4,
§13): each command checked by the reply's size and the colours at known points."""

import io
import struct

import pytest
from PIL import Image

WHITE, RED, BLACK, BLUE = (255, 255, 255), (255, 0, 0), (0, 0, 0), (0, 0, 255)
# A 100x100 white canvas with a 20x10 red layer 1 at x 40-59, y 45-54; a test adds to layer 1.
CANVAS = "/is/image/sample?size=100,100&color=ffffff&layer=1&size=20,10&color=ff0000&scl=1&fmt=png"


def image(r) -> Image.Image:
    assert r.status_code == 200, r.text
    return Image.open(io.BytesIO(r.content))


def near(pixel, colour, tolerance=3) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=False))


SHOWN = None  # at this point: anything but the white canvas (image content)


def check(img: Image.Image, points: dict) -> None:
    for point, colour in points.items():
        got = img.getpixel(point)
        if colour is SHOWN:
            assert not near(got, WHITE, 10), f"{point}: {got}, expected image content"
        else:
            assert near(got, colour), f"{point}: {got}, expected {colour}"


# -------------------------------------------------------------------------------- effects (§13)
@pytest.mark.parametrize(
    "effect, points",
    [
        # Drop shadow: under the parent, shifted by pos=; the parent stays on top.
        ("effect=-1&pos=5,5&color=000000", {(62, 57): BLACK, (50, 50): RED, (42, 57): WHITE, (58, 53): RED}),
        # Inner shadow: over the parent, cast inward from its top-left edges, never outside it.
        ("effect=1&pos=3,3&color=000000", {(41, 46): BLACK, (44, 48): RED, (62, 57): WHITE, (58, 53): RED}),
        # The reference's outline: op_grow=3 outside (effect<0) or on the inside edge (effect>0).
        ("effect=-1&op_grow=3&color=0000ff", {(38, 50): BLUE, (36, 50): WHITE, (50, 50): RED}),
        ("effect=1&op_grow=3&color=0000ff", {(41, 50): BLUE, (44, 50): RED, (38, 50): WHITE}),
        # Large radii are grown on a reduced mask (bounded work): a 20-pixel outline, ±3 pixels.
        ("effect=-1&op_grow=20&color=0000ff", {(23, 50): BLUE, (50, 30): BLUE, (16, 50): WHITE, (50, 50): RED}),
        # opac= of the effect, and the colour's own alpha.
        ("effect=-1&pos=5,5&color=000000&opac=50", {(62, 57): (128, 128, 128)}),
        ("effect=-1&pos=5,5&color=000000ff&opac=50", {(62, 57): (128, 128, 128)}),
        ("effect=-1&pos=5,5&color=0,0,0,64", {(62, 57): (191, 191, 191)}),
        # maskUse=off: the parent's whole rect, whatever its alpha (the same here: an opaque rect).
        ("effect=-1&pos=5,5&color=000000&maskUse=off", {(62, 57): BLACK}),
        # Several effects: outer ones by number, all under the parent.
        (
            "effect=-2&pos=6,6&color=0000ff&effect=-1&pos=3,3&color=000000",
            {(62, 57): BLACK, (64, 59): BLUE, (50, 50): RED},
        ),
    ],
)
def test_effect_layers(client, effect, points):
    img = image(client.get(f"{CANVAS}&{effect}")).convert("RGB")
    assert img.size == (100, 100)
    check(img, points)


def test_shadow_macro_is_a_soft_multiplied_shadow(client):
    img = image(client.get(f"{CANVAS}&effect=-1&$shadow$")).convert("RGB")
    r, g, b = img.getpixel((61, 56))
    assert r == g == b and 150 < r < 220  # grey from multiplying black at 75 %, feathered
    assert img.getpixel((50, 50)) == RED and img.getpixel((80, 80)) == WHITE
    assert img.getpixel((62, 57))[0] > r  # lighter away from the edge: the blur


def test_glow_macro_screens_a_yellow_halo(client):
    black = CANVAS.replace("color=ffffff", "color=000000")
    img = image(client.get(f"{black}&effect=-1&$glow$")).convert("RGB")
    r, g, b = img.getpixel((38, 50))
    assert r > 60 and g > 60 and b < r  # a warm glow just outside the edge
    assert img.getpixel((20, 20)) == BLACK and img.getpixel((50, 50)) == RED


def test_effect_commands_never_reach_the_parent(client):
    # Issue 11: effect=-1&op_blur=5 used to blur the image itself.
    def pixels(query):
        return image(client.get(f"/is/image/sample/rose?wid=200&fmt=png{query}")).convert("RGB")

    # opac=100 changes nothing but takes the compositor's path, as the effect does.
    plain, shadowed, blurred = pixels("&opac=100"), pixels("&effect=-1&op_blur=5&color=000000"), pixels("&op_blur=5")
    assert shadowed.size == plain.size == (200, 150)
    assert shadowed.tobytes() == plain.tobytes()  # the opaque rose hides its shadow entirely
    assert blurred.tobytes() != plain.tobytes()


def test_effect_on_comp_of_a_single_layer_request(client):
    # The composite is the parent: its shadow lands in the margin extend= made for it.
    img = image(
        client.get("/is/image/sample?size=100,100&color=ff0000&extend=0,0,10,10&effect=-1&pos=5,5&color=000000&fmt=png")
    )
    assert img.size == (110, 110)
    check(img.convert("RGB"), {(102, 102): BLACK, (50, 50): RED, (107, 107): WHITE, (2, 105): WHITE, (105, 2): WHITE})


def test_effect_follows_the_parent_outline(client):
    # The tulip (transparent around the flower) casts a shadow of the flower, not of its rect.
    img = image(client.get("/is/image/sample/tulip?wid=400&effect=-1&pos=10,10&color=000000&fmt=png-alpha"))
    assert img.size == (400, 600)
    assert img.getpixel((5, 5))[3] == 0  # no shadow of the transparent corner
    assert img.getpixel((200, 190))[:3] == (220, 30, 90)  # the flower (x 110-290 at y 190) stays on top
    assert img.getpixel((296, 200)) == (0, 0, 0, 255)  # its shadow just right of its edge


@pytest.mark.parametrize(
    "query, points",
    [
        # ApplyEffectMask (default 1): the shadow does not show through a translucent parent.
        ("&opac=50&effect=-1&pos=5,5&color=000000", {(58, 53): (255, 128, 128), (62, 57): (128, 128, 128)}),
        # effectMask=0 lets it: 50 % red over the 50 % shadow (the parent's opac= is shared).
        ("&opac=50&effect=-1&pos=5,5&color=000000&effectMask=0", {(58, 53): (191, 64, 64)}),
    ],
)
def test_effects_and_the_parent_opacity(client, query, points):
    check(image(client.get(CANVAS + query)).convert("RGB"), points)


@pytest.mark.parametrize(
    "query, needle",
    [
        ("&effect=0&color=000000", "effect=0"),
        ("&effect=-1&pos=3,3", "color="),
        ("&effect=-1&color=000000&maskUse=sideways", "maskUse"),
        ("&effect=-1&color=000000&op_grow=101", "op_grow"),
        ("&blendMode=overlay", "overlay"),
        ("&effect=1&color=000000&blendMode=colorburn", "colorburn"),
        ("&effectMask=2", "effectMask"),
    ],
)
def test_effect_and_blend_errors_are_bad_requests(client, query, needle):
    r = client.get(f"{CANVAS}{query}&req=img")
    assert r.status_code == 403 and r.headers["x-is-error"] == "bad_request"


# ---------------------------------------------------------------------------- blendMode (§4.3)
GREY = "/is/image/sample?size=100,100&color=808080&layer=1&size=20,10&scl=1&fmt=png"


@pytest.mark.parametrize(
    "color, mode, expected",
    [
        ("ff0000", "norm", (255, 0, 0)),
        ("ff8000", "mult", (128, 64, 0)),
        ("ff8000", "screen", (255, 192, 128)),
        ("4080c0", "lighten", (128, 128, 192)),
        ("4080c0", "darken", (64, 128, 128)),
        ("4080c0", "MULT", (32, 64, 96)),  # keywords in any case
    ],
)
def test_blend_modes(client, color, mode, expected):
    img = image(client.get(f"{GREY}&color={color}&blendMode={mode}")).convert("RGB")
    check(img, {(50, 50): expected, (20, 20): (128, 128, 128)})


def test_dissolve_keeps_or_drops_whole_pixels_by_alpha(client):
    url = f"{GREY}&color=ff000080&blendMode=dissolve"
    img = image(client.get(url)).convert("RGB")
    layer = [img.getpixel((x, y)) for x in range(40, 60) for y in range(45, 55)]
    assert set(layer) == {(255, 0, 0), (128, 128, 128)}
    assert 60 < layer.count((255, 0, 0)) < 140  # about half of 200
    assert client.get(url).content == client.get(url).content  # seeded: equal requests, equal bytes


def test_blend_mode_is_ignored_on_layer_0(client):
    plain = client.get("/is/image/sample?size=50,50&color=808080&fmt=png").content
    assert client.get("/is/image/sample?size=50,50&color=808080&blendMode=mult&fmt=png").content == plain


# ------------------------------------------------------------------ image layer geometry (§4.3)
@pytest.mark.parametrize(
    "query, size, points",
    [
        # size= constrains the image with its aspect kept, on layer 0 as on any layer: the canvas
        # is the scaled image (4:3 rose → 200x150), never a padded w×h box.
        ("size=800,800", (800, 600), {(2, 2): RED}),
        ("size=0,300", (400, 300), {(397, 297): BLUE}),
        # Crop overhang and extend= margins take the layer's bgColor=.
        ("crop=-100,0,1700,1200&scale=0.5&bgColor=00ff00", (850, 600), {(25, 300): (0, 255, 0), (54, 4): RED}),
        ("scale=0.1&extend=10,0,0,20&bgColor=00ff00", (170, 140), {(5, 5): (0, 255, 0), (80, 130): (0, 255, 0)}),
        # res= divides by the object's Resolution (catalog::Resolution, else the attribute: 72).
        ("res=36", (800, 600), {(2, 2): RED}),
        ("res=7.2", (160, 120), {}),
        ("size=100,0&res=36", (100, 75), {}),  # size= wins over res=
        ("scale=0.5&res=7.2", (800, 600), {}),  # and so does scale=
    ],
)
def test_image_layer_0_geometry(client, query, size, points):
    img = image(client.get(f"/is/image/sample/rose?{query}&scl=1&fmt=png")).convert("RGB")
    assert img.size == size
    check(img, points)


def test_opac_makes_a_single_image_translucent_over_the_background(client):
    img = image(client.get("/is/image/sample/rose?wid=800&opac=50&bgc=0000ff&fmt=jpeg&qlt=100")).convert("RGB")
    assert img.size == (800, 600)
    r, g, b = img.getpixel((2, 2))  # the red corner marker, half over blue
    assert abs(r - 128) < 12 and g < 12 and abs(b - 127) < 12
    alpha = image(client.get("/is/image/sample/rose?wid=160&opac=50&fmt=png-alpha"))
    assert alpha.getpixel((80, 60))[3] == 128


# ------------------------------------------------------------------------------ masks (§4.9)
def _masks(bucket):
    """The sample bucket plus half.png (20x10: left half opaque) and a record with a MaskPath."""
    root, write, make = bucket
    half = Image.new("L", (20, 10), 0)
    half.paste(255, (0, 0, 10, 10))
    gray = io.BytesIO()
    half.save(gray, "PNG")
    rose_mask = Image.new("L", (1600, 1200), 255)
    rose_mask.paste(0, (800, 0, 1600, 1200))
    rm = io.BytesIO()
    rose_mask.save(rm, "PNG")
    table = (root / "catalogs/sample/images.txt").read_text(encoding="latin-1").splitlines()
    table[0] += "\tMaskPath"
    table.append("masked-rose\trose.jpg" + "\t" * (table[0].count("\t") - 1) + "rose-mask.png")
    table.append("rose-half\trose.jpg" + "\t" * (table[0].count("\t") - 1) + "half.png")
    write(
        {
            "images/sample/half.png": gray.getvalue(),
            "images/sample/rose-mask.png": rm.getvalue(),
            "catalogs/sample/images.txt": ("\n".join(table) + "\n").encode("latin-1"),
        }
    )
    return make()


@pytest.mark.parametrize(
    "query, points",
    [
        # A solid colour layer shaped by a mask file: the mask gives its size (20x10, centred).
        ("layer=1&color=ff0000&mask=half.png", {(45, 50): RED, (55, 50): WHITE}),
        ("layer=1&color=ff0000&mask=half.png&maskUse=invert", {(45, 50): WHITE, (55, 50): RED}),
        ("layer=1&color=ff0000&mask=half.png&maskUse=off", {(45, 50): RED, (55, 50): RED}),
        ("layer=1&color=ff0000&mask=half.png&size=40,0", {(32, 50): RED, (48, 50): RED, (52, 50): WHITE}),
        # op_growMask (source pixels, scaled with the layer) / op_growMaskR (layer pixels).
        ("layer=1&color=ff0000&mask=half.png&op_growMaskR=3", {(52, 50): RED, (54, 50): WHITE}),
        ("layer=1&color=ff0000&mask=half.png&op_growMaskR=-3", {(46, 50): RED, (48, 50): WHITE}),
        ("layer=1&color=ff0000&mask=half.png&size=40,0&op_growMask=3", {(54, 50): RED, (58, 50): WHITE}),
        # An image layer through mask= (stretched over the image when its size differs).
        # The rose at 40x30 covers x 30-69, y 35-64.
        ("layer=1&src=rose&size=40,0&mask=half.png", {(35, 50): SHOWN, (65, 50): WHITE, (50, 30): WHITE}),
        # A mask record: its MaskPath (the rose's right half is cut away).
        ("layer=1&src=rose&size=40,0&mask=masked-rose", {(35, 50): SHOWN, (65, 50): WHITE}),
    ],
)
def test_masks(bucket, query, points):
    client = _masks(bucket)
    img = image(client.get(f"/is/image/sample?size=100,100&color=ffffff&{query}&scl=1&fmt=png")).convert("RGB")
    assert img.size == (100, 100)
    check(img, points)


def test_a_records_mask_path_masks_its_image(bucket):
    client = _masks(bucket)
    img = image(client.get("/is/image/sample/masked-rose?wid=800&fmt=png-alpha"))
    assert img.size == (800, 600)
    assert near(img.getpixel((2, 2)), (255, 0, 0, 255)) and img.getpixel((750, 300))[3] == 0
    # maskUse=invert keeps the other half; a mask of the wrong size is a content error.
    inverted = image(client.get("/is/image/sample/masked-rose?wid=800&maskUse=invert&fmt=png-alpha"))
    assert inverted.getpixel((2, 2))[3] == 0 and near(inverted.getpixel((797, 597)), (0, 0, 255, 255))
    r = client.get("/is/image/sample/rose-half?wid=160&fmt=png")
    assert r.status_code == 403 and r.headers["x-is-error"] == "content_error"


@pytest.mark.parametrize(
    "query, corner, centre",
    [
        ("maskUse=off", 255, 255),  # the tulip's transparent corner becomes opaque
        ("maskUse=invert", 255, 0),  # only the background is kept
        ("maskUse=norm", 0, 255),
    ],
)
def test_mask_use_on_the_image_alpha(client, query, corner, centre):
    img = image(client.get(f"/is/image/sample/tulip?wid=400&{query}&fmt=png-alpha"))
    assert img.getpixel((2, 2))[3] == corner and img.getpixel((200, 190))[3] == centre


# ------------------------------------------------------------------ ThumbRes (§7.1, catalogs.md)
@pytest.mark.parametrize(
    "attrs, content",
    [
        ("ThumbType=3\nThumbRes=0.9\n", (20, 15)),  # 1600x1200 x 0.9/72: 20x15, centred, filled
        ("ThumbType=3\nThumbRes=1.8\nResolution=144\n", (20, 15)),  # the ratio is what counts
        ("ThumbType=3\nThumbRes=3.6\n", (80, 60)),
    ],
)
def test_texture_thumbnails_scale_by_thumb_res(bucket, attrs, content):
    root, write, make = bucket
    write({"catalogs/sample.ini": (root / "catalogs/sample.ini").read_text() + attrs})
    img = image(make().get("/is/image/sample/rose?req=tmb&fmt=png")).convert("RGB")
    assert img.size == (100, 100)
    w, h = content
    x0, y0 = (100 - w) // 2, (100 - h) // 2
    check(img, {(x0 - 2, 50): WHITE, (x0 + w + 1, 50): WHITE, (50, y0 - 2): WHITE, (50, 50): SHOWN})


# ------------------------------------------------------------- clipping paths (r-clippath.md)
def _path_resource(*subpaths) -> bytes:
    """A Photoshop path resource: a fill-rule record, then per closed subpath its length record and
    its corner knots (points as fractions x, y of the image)."""
    out = struct.pack(">H24x", 6)

    def fixed(v: float) -> int:
        return round(v * (1 << 24))

    for corners in subpaths:
        out += struct.pack(">HH22x", 0, len(corners))
        for x, y in corners:
            out += struct.pack(">H6i", 2, *(fixed(c) for _ in range(3) for c in (y, x)))
    return out


def _resources(named: dict[str, bytes]) -> bytes:
    block = b""
    for i, (name, payload) in enumerate(named.items()):
        raw = name.encode()
        pascal = bytes([len(raw)]) + raw + (b"\x00" if len(raw) % 2 == 0 else b"")
        block += b"8BIM" + struct.pack(">H", 2000 + i) + pascal + struct.pack(">I", len(payload)) + payload
        block += b"\x00" if len(payload) % 2 else b""
    return block


PATHS = {
    "Outline": _path_resource([(0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75)]),
    "Left": _path_resource([(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)]),
}


def _with_paths(bucket):
    """clip.jpg and clip.tif: 200x160 green, with the embedded paths PATHS."""
    root, write, make = bucket
    img = Image.new("RGB", (200, 160), (0, 160, 0))
    jpeg = io.BytesIO()
    img.save(jpeg, "JPEG", quality=95)
    block = b"Photoshop 3.0\x00" + _resources(PATHS)
    data = jpeg.getvalue()
    tiff = io.BytesIO()
    img.save(tiff, "TIFF", tiffinfo={34377: _resources(PATHS)})
    write(
        {
            "images/sample/clip.jpg": data[:2] + b"\xff\xed" + struct.pack(">H", len(block) + 2) + block + data[2:],
            "images/sample/clip.tif": tiff.getvalue(),
        }
    )
    return make()


OPAQUE, CLEAR = 255, 0


@pytest.mark.parametrize("name", ["clip.jpg", "clip.tif"])
@pytest.mark.parametrize(
    "query, size, alphas",
    [
        ("clipPathE=Outline", (200, 160), {(100, 80): OPAQUE, (20, 20): CLEAR, (180, 140): CLEAR}),
        ("clipPathE=Outline,Left", (200, 160), {(70, 80): OPAQUE, (130, 80): CLEAR, (20, 80): CLEAR}),
        ("clipPathE=Missing", (200, 160), {(20, 20): OPAQUE}),  # names the source lacks are ignored
        ("cropPathE=Outline", (100, 80), {(2, 2): OPAQUE, (97, 77): OPAQUE}),
        ("cropPathE=Outline,Left", (50, 80), {}),  # the boxes one after the other
        ("cropPathE=Outline&clipPathE=Left", (100, 80), {(20, 40): OPAQUE, (80, 40): CLEAR}),
        ("wid=100&clipPathE=Outline", (100, 80), {(50, 40): OPAQUE, (10, 10): CLEAR}),  # follows scaling
    ],
)
def test_embedded_photoshop_paths(bucket, name, query, size, alphas):
    client = _with_paths(bucket)
    img = image(client.get(f"/is/image/sample/{name}?{query}&fmt=png-alpha"))
    assert img.size == size
    for point, alpha in alphas.items():
        assert img.getpixel(point)[3] == alpha, point


@pytest.mark.parametrize(
    "query, points",
    [
        # On a layer: in its rect's pixels (layer 1 is 20x10 at 40,45): the top-left triangle.
        ("&clipPath=M0,0,L20,0,L0,10,Z", {(42, 46): RED, (57, 53): WHITE}),
        ("&clipPath=m0,0,l20,0,l0,10,l-20,0,z", {(50, 50): RED}),  # relative, the whole rect
        ("&clipPath=M10,0,C20,0,20,10,10,10,L10,0", {(55, 50): RED, (45, 50): WHITE}),  # a curve
        # On comp: the composite's pixels.
        ("&layer=comp&clipPath=M0,0,L50,0,L50,100,L0,100", {(45, 50): RED, (55, 50): (255, 255, 255)}),
    ],
)
def test_clip_path_data(client, query, points):
    check(image(client.get(CANVAS + query)).convert("RGB"), points)


def test_clip_path_on_a_single_image_is_in_composite_pixels(client):
    img = image(client.get("/is/image/sample/rose?wid=160&clipPath=M0,0L800,0L800,600L0,600Z&fmt=png-alpha"))
    assert img.size == (160, 120)
    assert img.getpixel((20, 20))[3] == 255 and img.getpixel((120, 100))[3] == 0


@pytest.mark.parametrize("value", ["Q1,2", "M1", "M1,2,L3", "1,2", "M1,2,Lx,3"])
def test_bad_clip_path_data_is_a_bad_request(client, value):
    r = client.get(f"{CANVAS}&clipPath={value}")
    assert r.status_code == 403 and r.headers["x-is-error"] == "bad_request"


# ------------------------------------------------------------------------- the sample template
def test_the_sample_drop_shadow_template(client):
    # catalogs/sample/images.txt "shadowed": the tulip (400x600) at 40,40 on a 480x680 white canvas,
    # $shadow$ moved by 14,18: grey just right of and below the flower (x 150-329 at y 230).
    img = image(client.get("/is/image/sample/tulip?template=shadowed&scl=1&fmt=png")).convert("RGB")
    assert img.size == (480, 680)
    r, g, b = img.getpixel((338, 240))
    assert r == g == b and r < 200
    check(img, {(240, 230): (220, 30, 90), (20, 20): WHITE, (460, 660): WHITE})
    bg = image(client.get("/is/image/sample/rose?template=shadowed&scl=1&$bg=dddddd&fmt=png")).convert("RGB")
    check(bg, {(5, 5): (221, 221, 221)})


def test_req_resolve_writes_effect_segments_after_their_layer(client):
    r = client.get(
        "/is/image/sample/rose?wid=100&effect=-1&color=000000&layer=1&size=10,10&color=ff0000&effect=2&$glow$&req=resolve"
    )
    assert r.status_code == 200
    assert r.text.strip() == (
        "sample/rose?wid=100&effect=-1&color=000000&layer=1&size=10,10&color=ff0000"
        "&effect=2&op_grow=1&op_blur=5&color=255,255,190,191&blendmode=screen"
    )


def test_a_layer_records_modifier_brings_its_effects(bucket):
    # A record whose Modifier is an effect preset: used as src= of a layer, its effect is the
    # layer's; the URL's commands for the same effect win (Modifier < URL).
    root, write, make = bucket
    table = (root / "catalogs/sample/images.txt").read_bytes()
    write({"catalogs/sample/images.txt": table + b"boxed\tshoe.jpg\tsize=20,20&effect=-1&pos=5,5&color=000000\n"})
    client = make()
    # The shoe (square) at 20x20 covers x 40-59, y 40-59.
    base = "/is/image/sample?size=100,100&color=ffffff&layer=1&src=boxed&scl=1&fmt=png"
    check(image(client.get(base)).convert("RGB"), {(63, 62): BLACK, (50, 50): SHOWN, (42, 62): WHITE})
    moved = image(client.get(f"{base}&effect=-1&pos=-5,-5")).convert("RGB")
    check(moved, {(37, 37): BLACK, (63, 62): WHITE})
    assert "effect=-1&pos=-5,-5&color=000000" in client.get(f"{base}&effect=-1&pos=-5,-5&req=resolve").text


def test_apply_effect_mask_from_the_catalog(bucket):
    root, write, make = bucket
    write({"catalogs/sample.ini": (root / "catalogs/sample.ini").read_text() + "ApplyEffectMask=0\n"})
    url = CANVAS + "&opac=50&effect=-1&pos=5,5&color=000000"
    check(image(make().get(url)).convert("RGB"), {(58, 53): (191, 64, 64)})  # shows through, as effectMask=0
    check(image(make().get(url + "&effectMask=1")).convert("RGB"), {(58, 53): (255, 128, 128)})  # the URL wins


def test_hidden_layers_take_their_effects_along(client):
    img = image(client.get(CANVAS + "&hide=1&effect=-1&pos=5,5&color=000000")).convert("RGB")
    check(img, {(50, 50): WHITE, (62, 57): WHITE})


def test_effect_noise_is_seeded_and_inner_glow_stays_inside(client):
    url = CANVAS.replace("color=ffffff", "color=000000") + "&effect=-1&pos=5,5&color=808080&op_noise=40"
    a, b = client.get(url).content, client.get(url).content
    assert a == b
    shadow = [image(client.get(url)).convert("RGB").getpixel((62, y)) for y in range(50, 60)]
    assert len(set(shadow)) > 3  # grain, not a flat grey
    glow = image(client.get(CANVAS + "&size=60,40&effect=1&$glow$")).convert("RGB")  # x 20-79, y 30-69
    check(glow, {(10, 50): WHITE, (50, 50): RED})
    r, g, b = glow.getpixel((20, 50))  # the inside edge: screened towards the glow colour
    assert r == 255 and g > 40


@pytest.mark.parametrize(
    "layer, points",
    [
        # No size=: the path sizes the layer, its (0,0) on layer 0's origin (the canvas centre).
        (
            "color=0000ff&clipPath=M0,0,L30,0,L30,20,L0,20,Z",
            {(55, 55): BLUE, (78, 68): BLUE, (82, 72): WHITE, (48, 48): WHITE},
        ),
        # Path coordinates relative to layer 0's top-left: a triangle in canvas pixels.
        ("color=0000ff&clipPath=M-50,-50,L0,-50,L-50,0,Z", {(5, 5): BLUE, (40, 40): WHITE}),
        ("color=0000ff&clipPath=M0,0,L30,0,L30,20,L0,20,Z&pos=-50,-50", {(5, 5): BLUE, (35, 25): WHITE}),
    ],
)
def test_a_solid_layer_sized_by_its_clip_path(client, layer, points):
    img = image(client.get(f"/is/image/sample?size=100,100&color=ffffff&layer=1&{layer}&scl=1&fmt=png")).convert("RGB")
    assert img.size == (100, 100)
    check(img, points)


@pytest.mark.parametrize(
    "attrs, top",
    [
        ("", WHITE),  # fit (the default): the 4:3 rose in the 200x200 canvas, white bands above and below
        ("ThumbType=1\n", SHOWN),  # crop: the rose covers the canvas
    ],
)
def test_a_thumbnails_layer_0_size_is_its_canvas(bucket, attrs, top):
    # rendering.md §4.5/§7.2: for req=tmb layer 0's size=w,h stays a w×h canvas, the image placed
    # in it by the thumbnail rules (unlike req=img, where it is the scaled image).
    root, write, make = bucket
    write({"catalogs/sample.ini": (root / "catalogs/sample.ini").read_text() + attrs})
    img = image(make().get("/is/image/sample/rose?req=tmb&size=200,200&fmt=png")).convert("RGB")
    assert img.size == (100, 100)
    check(img, {(50, 5): top, (50, 50): SHOWN})
