"""Multi-layer composites (rendering.md §4, protocol.md §3.7 and §7)."""

import hashlib
import io

import pytest
from PIL import Image

from imageserving.render import compose

BLUE, RED, WHITE = (0, 0, 255), (255, 0, 0), (255, 255, 255)
# A 100x100 blue canvas (solid layer 0) with a 20x10 red layer 1 whose placement a test adds.
CANVAS = "/is/image/sample?size=100,100&color=0000ff&layer=1&size=20,10&color=ff0000&scl=1&fmt=png"


def image(r) -> Image.Image:
    assert r.status_code == 200, r.text
    return Image.open(io.BytesIO(r.content))


def rgb(r) -> Image.Image:
    return image(r).convert("RGB")


def near(pixel, colour, tolerance=12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=False))


def noimage_gray(pixel) -> bool:
    """A pixel of the default image (images/defaults/noimage.png: greys 200 and 238)."""
    return len(set(pixel)) == 1 and 195 <= pixel[0] <= 243


def test_example_a_places_layer_1_left_centre_on_a_1000_canvas(client):
    # rendering.md §4.8: rose (1600x1200) fitted to 800x800 is 800x600; its left-centre lands on
    # the canvas's left-centre, so it covers x 0-800, y 200-800 of the 1000x1000 shoe canvas.
    r = client.get(
        "/is/image/sample?src=shoe&size=1000,1000&originN=0,0"
        "&layer=1&src=rose&size=800,800&originN=-0.5,0&posN=-0.5,0&scl=1&fmt=png"
    )
    img = rgb(r)
    assert img.size == (1000, 1000)
    assert near(img.getpixel((3, 203)), RED)  # rose's top-left corner
    assert near(img.getpixel((796, 796)), BLUE)  # rose's bottom-right corner
    assert near(img.getpixel((3, 196)), (249, 250, 244))  # shoe background above the rose
    assert near(img.getpixel((803, 500)), (249, 250, 244))  # and to its right


@pytest.mark.parametrize(
    "placement, top_left",
    [
        ("", (40, 45)),  # origins coincide: centred
        ("&pos=10,-5", (50, 40)),
        ("&posN=0.3,0.3", (70, 75)),
        ("&originN=-0.5,-0.5", (50, 50)),  # the layer's top-left on layer 0's centre
        ("&origin=20,10&pos=-30,-20", (0, 20)),  # bottom-right corner as origin
        ("&anchorN=0.5,0.5&posN=0.5,0.5", (80, 90)),  # anchor = bottom-right becomes the origin
        ("&anchorN=0.5,0.5&originN=0,0", (40, 45)),  # origin overrides the anchor
    ],
)
def test_pos_origin_and_anchor_place_the_layer(client, placement, top_left):
    img = rgb(client.get(CANVAS + placement))
    x, y = top_left
    assert img.getpixel((x, y)) == RED and img.getpixel((x + 19, y + 9)) == RED
    for outside in ((x - 1, y), (x, y - 1), (x + 20, y + 9), (x + 19, y + 10)):
        if 0 <= outside[0] < 100 and 0 <= outside[1] < 100:
            assert img.getpixel(outside) == BLUE, outside


def test_layer_0_origin_is_the_reference_for_pos(client):
    img = rgb(client.get(CANVAS.replace("color=0000ff", "color=0000ff&originN=-0.5,-0.5") + "&originN=-0.5,-0.5"))
    assert img.getpixel((0, 0)) == RED and img.getpixel((19, 9)) == RED and img.getpixel((20, 0)) == BLUE


def test_anchor_is_carried_through_flip(client):
    # anchor=0,0 is the rose's top-left, placed on the canvas centre: the 160x120 rose covers
    # x 200-360; after flip=lr the anchor is the layer's top-right, so the rose covers x 40-200.
    base = "/is/image/sample?size=400,400&color=0000ff&layer=1&src=rose&size=160,120&anchor=0,0&scl=1&fmt=png"
    plain, flipped = rgb(client.get(base)), rgb(client.get(base + "&flip=lr"))
    for img, inside, outside in ((plain, (202, 202), (197, 202)), (flipped, (197, 202), (202, 202))):
        assert img.getpixel(outside) == BLUE and img.getpixel(inside) != BLUE
    assert plain.getpixel((358, 318)) != BLUE and plain.getpixel((362, 318)) == BLUE
    assert flipped.getpixel((42, 318)) != BLUE and flipped.getpixel((38, 318)) == BLUE
    assert near(plain.getpixel((203, 260)), flipped.getpixel((196, 260)), 40)  # mirrored content


def test_opac_blends_the_layer(client):
    img = rgb(client.get(CANVAS + "&opac=50"))
    assert near(img.getpixel((50, 50)), (128, 0, 127), 2)
    img = rgb(client.get(CANVAS + "&opac=50,50"))
    assert near(img.getpixel((50, 50)), (64, 0, 191), 2)


def test_hide_skips_a_layer_but_layer_0_still_sizes_the_canvas(client):
    assert rgb(client.get(CANVAS + "&hide=1")).getpixel((50, 50)) == BLUE
    img = image(client.get(CANVAS.replace("color=0000ff", "color=0000ff&hide=1") + "&fmt=png-alpha"))
    assert img.size == (100, 100)
    assert img.getpixel((0, 0))[3] == 0 and img.getpixel((50, 50)) == (*RED, 255)


def test_comp_commands_act_on_the_composite(client):
    # flip=lr addressed to comp mirrors the whole composite: the layer moves from left to right.
    img = rgb(client.get(CANVAS.replace("&layer=1", "&layer=comp&flip=lr&layer=1") + "&posN=-0.4,0"))
    assert img.getpixel((85, 50)) == RED and img.getpixel((15, 50)) == BLUE


def test_rotate_extend_and_bgcolor_of_a_layer(client):
    # A quarter turn makes the 20x10 layer 10x20; a 5-pixel green bgColor margin grows it to 20x30.
    img = rgb(client.get(CANVAS + "&rotate=90&extend=5,5,5,5&bgColor=00ff00"))
    assert img.getpixel((50, 50)) == RED
    assert img.getpixel((41, 36)) == (0, 255, 0) and img.getpixel((58, 63)) == (0, 255, 0)
    assert img.getpixel((39, 50)) == BLUE and img.getpixel((50, 34)) == BLUE


def test_text_layer_draws_text_in_its_box(client):
    img = rgb(
        client.get(
            "/is/image/sample?size=200,100&color=0000ff&layer=1&text=Hello&size=120,40&color=ffffff&scl=1&fmt=png"
        )
    )
    box = img.crop((40, 30, 160, 70))
    colours = box.getcolors(10000)
    assert any(c == WHITE for _, c in colours) and any(sum(c) < 200 for _, c in colours)
    assert img.getpixel((39, 50)) == BLUE and img.getpixel((40, 50)) != BLUE


@pytest.mark.parametrize("layer", ["&layer=1&color=ff0000", "&layer=1&size=20,0&color=ff0000", "&layer=1&size=20,10"])
def test_solid_colour_layer_needs_size_and_color(client, layer):
    r = client.get("/is/image/sample?size=100,100&color=0000ff" + layer)
    assert r.status_code == 403 and r.headers["x-is-error"] == "bad_request"


def test_missing_layer_source_gives_the_default_image(client):
    r = client.get("/is/image/sample/rose?layer=1&src=nothing&fmt=png")
    assert r.status_code == 200 and r.headers["x-is-default-image"] == "1"
    img = rgb(r)
    assert img.size == (300, 300) and noimage_gray(img.getpixel((5, 5)))  # mode 0: the whole reply


def test_default_image_mode_1_replaces_only_the_missing_layer_source(bucket):
    root, write, make = bucket
    write(
        {
            "catalogs/default.ini": (root / "catalogs/default.ini")
            .read_text()
            .replace("DefaultImageMode=0", "DefaultImageMode=1")
        }
    )
    r = make().get("/is/image/sample/rose?layer=1&src=nothing&size=100,100&wid=400&fmt=png")
    assert r.status_code == 200 and r.headers["x-is-default-image"] == "1"
    img = rgb(r)
    assert img.size == (400, 300)
    assert near(img.getpixel((2, 2)), RED)
    assert noimage_gray(img.getpixel((190, 140))) and noimage_gray(img.getpixel((207, 157)))
    assert not noimage_gray(img.getpixel((180, 150)))  # the rose around the 25x25 layer


def test_template_with_layers(client):
    # sample/layered: shoe 400x400 canvas, the URL image fitted to 200x200 at the left centre,
    # a white 400x40 caption band centred 45 % below the middle (y 360-400).
    img = rgb(client.get("/is/image/sample/tulip?template=layered&$text=Tulip&scl=1&fmt=png"))
    assert img.size == (400, 400)
    assert near(img.getpixel((5, 5)), (249, 250, 244))
    assert img.getpixel((5, 365)) == WHITE and img.getpixel((5, 355)) != WHITE
    tulip = rgb(client.get("/is/image/sample/tulip?wid=133&hei=200&scl=1&fmt=png&bgc=f9faf4"))
    assert near(img.getpixel((66, 140)), tulip.getpixel((66, 40)), 30)


def test_a_layer_record_brings_its_expiration(client):
    # shoe's record expires after 2 hours; rose alone keeps the catalog's day.
    assert client.get("/is/image/sample/rose?fmt=png").headers["cache-control"] == "public, max-age=86400"
    r = client.get("/is/image/sample/rose?layer=1&src=shoe&size=50,50&fmt=png")
    assert r.headers["cache-control"] == "public, max-age=7200"


def test_layer_count_is_limited(client):
    layers = "".join(f"&layer={n}&size=1,1&color=ff0000" for n in range(1, compose.MAX_LAYERS + 1))
    r = client.get("/is/image/sample?size=10,10&color=0000ff" + layers)
    assert r.status_code == 403 and r.headers["x-is-error"] == "bad_request"
    within = "".join(f"&layer={n}&size=1,1&color=ff0000" for n in range(1, 5))
    assert client.get("/is/image/sample?size=10,10&color=0000ff&fmt=png" + within).status_code == 200


def test_named_layers_join_their_numbered_layer(client):
    url = CANVAS.replace("layer=1&", "layer=1,badge&") + "&layer=badge&pos=30,0"
    assert rgb(client.get(url)).getpixel((71, 50)) == RED
    r = client.get(CANVAS + "&layer=nobody&pos=30,0")
    assert r.status_code == 403 and r.headers["x-is-error"] == "bad_request"


# Replies recorded before composites existed: single-layer requests must not change by a byte.
# (wid=200 re-recorded when LANCZOS began decoding an 8x reduction at the 1/4 DCT scale.)
SINGLE_LAYER = {
    "/is/image/sample/rose?wid=200&fmt=png": "ff154d0a2689435060d60ab3ab01cdacf839607c896accb6f644e155241fe3a5",
    "/is/image/sample/rose?wid=300&hei=120&fit=crop&fmt=jpeg&qlt=90": "c07ae46384a151355728d76bf8e55ad5b7f200a3e89fee9d82dfe5d350cc67c0",  # noqa: E501
    "/is/image/sample/tulip?rotate=30&extend=10,0,0,5&bgc=ff0000&fmt=png": "c032b30a442e6d888290b6d9db1502c92186f1315a3d299700f816ba5dfb624b",  # noqa: E501
    "/is/image/sample/rose?req=tmb&fmt=png": "18ecc38c3dfd1d45d06dd6ba0c731a6a6f49050a9109f800ecafdff022451fea",
    "/is/image/sample/rose?template=frame&fmt=png": "c4f2f928a968b9084e396a9a2c111bbba37d927da1c3a219c822eae9a29b80db",
}


@pytest.mark.parametrize("url", SINGLE_LAYER)
def test_single_layer_requests_keep_the_fast_path(client, monkeypatch, url):
    def no_composite(*args, **kwargs):
        raise AssertionError("a single-layer request reached compose")

    monkeypatch.setattr(compose, "build", no_composite)
    monkeypatch.setattr(compose, "canvas_size", no_composite)
    r = client.get(url)
    assert r.status_code == 200
    assert hashlib.sha256(r.content).hexdigest() == SINGLE_LAYER[url]


def test_mode1_without_url_object_swaps_only_the_missing_layer(bucket):
    root, write, make = bucket
    write(
        {
            "catalogs/default.ini": (root / "catalogs/default.ini")
            .read_text()
            .replace("DefaultImageMode=0", "DefaultImageMode=1")
        }
    )
    r = make().get("/is/image/sample?size=200,100&color=ff0000&layer=1&src=sample/missing&size=50,50&fmt=png")
    assert r.status_code == 200 and r.headers["x-is-default-image"] == "1"
    img = Image.open(io.BytesIO(r.content)).convert("RGB")
    assert img.size == (200, 100) and img.getpixel((2, 2)) == (255, 0, 0)  # layer 0 kept its red fill


@pytest.mark.parametrize(
    "query, size",
    [
        # Layer 0's size= constrains the image, aspect kept: the 4:3 rose in 300x300 is 300x225, no
        # padded box (§4.3, §4.5 corrected; until issue 11 this test held a 300x300 canvas).
        ("size=300,300&fmt=png", (300, 225)),
        ("size=400,0&wid=400", (400, 300)),  # one side given: the image scaled, aspect kept
        ("scale=0.1&scl=1", (160, 120)),  # scale= of the full-resolution source
    ],
)
def test_single_layer_scaling_commands(client, query, size):
    r = client.get(f"/is/image/sample/rose?{query}")
    assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).size == size


def test_size_on_an_image_layer_0_is_the_scaled_image_not_a_box(client):
    # Until issue 11 this was a 300x200 canvas with red bands beside the fitted rose; the layer rect
    # of an image is the scaled image (§4.5 corrected), so color= has no transparent area to fill.
    r = client.get("/is/image/sample/rose?layer=comp&size=300,200&color=ff0000&fmt=png")
    img = Image.open(io.BytesIO(r.content)).convert("RGB")
    assert img.size == (267, 200)
    assert not near(img.getpixel((2, 100)), RED, 30)


def test_size_n_is_refused_on_layer_0(client):
    r = client.get("/is/image/sample/rose?sizeN=0.5,0.5")
    assert r.status_code == 403 and r.headers["x-is-error"] == "bad_request"
