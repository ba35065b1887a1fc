"""Nested IS requests in ``src=`` (protocol.md §3.8, §3.4 step 2, §3.6)."""

import io

import pytest
from PIL import Image

BLUE, RED = (0, 0, 255), (255, 0, 0)
# A 300x300 blue canvas whose layer 1 a test supplies; scl=1 keeps composite pixels.
CANVAS = "/is/image/sample?size=300,300&color=0000ff&scl=1&fmt=png&layer=1"


def rgb(r) -> Image.Image:
    assert r.status_code == 200, r.text
    return Image.open(io.BytesIO(r.content)).convert("RGB")


def near(pixel, colour, tolerance=12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=True))


def noimage_gray(pixel) -> bool:
    return len(set(pixel)) == 1 and 195 <= pixel[0] <= 243


@pytest.mark.parametrize(
    "src",
    [
        "is{sample/rose?wid=200}",
        "IS(sample/rose?wid=200)",
        "Is{sample/rose?$w=200&wid=$w$}",
        "is{marked/rose?wid=200}",  # a nested request gets no watermark
    ],
)
def test_nested_request_is_the_layer_source(client, src):
    nested = rgb(client.get(f"/is/image/sample?src={src}&fmt=png"))
    direct = rgb(client.get("/is/image/sample/rose?wid=200&fmt=png"))
    assert nested.size == direct.size == (200, 150)
    assert nested.tobytes() == direct.tobytes()


def test_client_facing_commands_of_the_nested_request_are_ignored(client):
    # bgc, fmt, qlt and req are ignored: the 200x200 view's padding stays transparent over the
    # blue canvas, and the rose inside it is the lossless 200x150 rose, not a qlt=5 JPEG.
    img = rgb(client.get(CANVAS + "&src=is{sample/rose?wid=200&hei=200&bgc=ff0000&fmt=jpeg&qlt=5&req=tmb}"))
    assert img.getpixel((150, 60)) == BLUE and img.getpixel((150, 240)) == BLUE  # padding rows
    direct = rgb(client.get("/is/image/sample/rose?wid=200&fmt=png"))
    assert img.crop((50, 75, 250, 225)).tobytes() == direct.tobytes()


def test_nested_request_ignores_DefaultPix_and_MaxPix(client):
    # The nested rose keeps 1600x1200 (not DefaultPix 300x300); wid=2400 passes MaxPix 2000.
    big = "/is/image/sample?size=3000,3000&color=0000ff&wid=300&fmt=png&layer=1&src=is{sample/rose%s}"
    full, wide = rgb(client.get(big % "")), rgb(client.get(big % "?wid=2400"))
    assert full.getpixel((75, 150)) != BLUE and full.getpixel((65, 150)) == BLUE  # 160x120 at (70, 90)
    assert wide.getpixel((35, 150)) != BLUE and wide.getpixel((25, 150)) == BLUE  # 240x180 at (30, 60)


@pytest.fixture
def templates(bucket):
    _, write, make = bucket
    write(
        {
            "catalogs/t.ini": "RootId=t\nRootPath=sample/\nCatalogFile=t/images.txt\nDefaultImageMode=1\n",
            "catalogs/t/images.txt": "Id\tPath\tModifier\nsq\t\t$s=20&size=$s$,$s$&color=ff0000\n",
        }
    )
    return make()


@pytest.mark.parametrize(
    "outer, nested, side",
    [
        ("", "is{t/sq}", 20),  # the nested record's Modifier and its default
        ("$s=60&", "is{t/sq}", 60),  # outer definitions are forwarded
        ("$s=60&", "is{t/sq?$s=40}", 40),  # the nested request's own definition wins
    ],
)
def test_variables_reach_the_nested_records(templates, outer, nested, side):
    img = rgb(templates.get(f"/is/image/sample?{outer}size=300,300&color=0000ff&scl=1&fmt=png&layer=1&src={nested}"))
    lo, hi = 150 - side // 2, 150 + side // 2 - 1
    assert img.getpixel((lo, 150)) == RED and img.getpixel((hi, 150)) == RED
    assert img.getpixel((lo - 1, 150)) == BLUE and img.getpixel((hi + 1, 150)) == BLUE


def _nest(levels: int) -> str:
    inner = "sample/rose?wid=40"
    for _ in range(levels - 1):
        inner = f"sample?src=is{{{inner}}}"
    return f"/is/image/sample?src=is{{{inner}}}&fmt=png"


def test_nesting_depth_limit(client):
    assert rgb(client.get(_nest(8))).size == (40, 30)
    r = client.get(_nest(9))
    assert r.status_code == 403 and r.headers["X-IS-Error"] == "bad_request"


@pytest.mark.parametrize(
    "src",
    [
        "ir{sample/rose}",
        "fxg{sample/rose}",
        "is{sample/rose?wid=abc}",
        "is{sample/rose}}",
        "{http://example.com/a.jpg}",
    ],
)
def test_unsupported_or_invalid_nested_requests(client, src):
    r = client.get(f"/is/image/sample?src={src}&fmt=png")
    assert r.status_code == 403 and r.headers["X-IS-Error"] == "bad_request"


def test_missing_image_in_a_nested_request_gets_the_default_image(client):
    r = client.get(CANVAS + "&src=is{sample/no-such-image?wid=100}")
    assert r.headers.get("X-IS-Default-Image") == "1"  # mode 0: the default image is the reply
    assert noimage_gray(rgb(r).getpixel((150, 150)))


def test_missing_image_in_a_nested_request_is_replaced_in_mode_1(templates):
    img = rgb(templates.get("/is/image/t/shoe?scl=1&fmt=png&layer=1&src=is{t/no-such-image?wid=100}"))
    assert near(img.getpixel((10, 10)), (250, 250, 245), 3)  # the shoe stays (800x800)
    assert noimage_gray(img.getpixel((352, 400))) and noimage_gray(img.getpixel((400, 352)))
    assert not noimage_gray(img.getpixel((345, 400)))  # noimage at 100x100 in the centre
