"""Watermarks (catalogs.md §7.8, rendering.md §12).

The sample watermark (images/defaults/watermark.png) is 200x100: a transparent 10-px border around
opaque white with a black bar at rows 45-54. A solid blue layer 0 makes its colours exact.
"""

import io

import pytest
from conftest import ROOT
from PIL import Image

BLUE, WHITE, RED = (0, 0, 255), (255, 255, 255), (255, 0, 0)
# The "marked" catalog's record: sizeN=0.5,0.5&opac=40&align=1,1 → 40 % white over blue.
WHITE_40, BLACK_40 = (102, 102, 255), (0, 0, 153)


def rgb(r) -> Image.Image:
    assert r.status_code == 200, r.text
    return Image.open(io.BytesIO(r.content)).convert("RGB")


def near(pixel, colour, tolerance=2) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=True))


def blue_canvas(catalog: str, w: int, h: int, extra: str = "") -> str:
    return f"/is/image/{catalog}?size={w},{h}&color=0000ff&scl=1&fmt=png{extra}"


def mark_at(img: Image.Image, left: int, top: int, scale: int, white, black) -> None:
    """The watermark's 10-px border transparent, its white and its bar where ``left, top`` put them."""

    def at(x, y):
        return img.getpixel((left + x * scale, top + y * scale))

    assert near(at(15, 15), white) and near(at(184, 84), white)
    assert near(at(100, 50), black)
    assert at(3, 3) == BLUE and at(196, 96) == BLUE
    if left >= scale:
        assert img.getpixel((left - 1, top + 50 * scale)) == BLUE


def test_sample_watermark_bottom_right_at_40_percent(client):
    # sizeN=0.5,0.5 of a 400x200 composite is a 200x100 box: the mark keeps its size, bottom-right.
    img = rgb(client.get(blue_canvas("marked", 400, 200)))
    mark_at(img, 200, 100, 1, WHITE_40, BLACK_40)
    assert img.getpixel((150, 50)) == BLUE


def test_sizeN_scales_the_mark_to_fit_the_composite(client):
    # 800x400 composite: the box is 400x200, so the 200x100 mark doubles, keeping its aspect.
    img = rgb(client.get(blue_canvas("marked", 800, 400)))
    mark_at(img, 400, 200, 2, WHITE_40, BLACK_40)


@pytest.mark.parametrize(
    "modifier, left, top, scale",
    [
        ("align=-1,-1", 0, 0, 1),  # no sizeN: its own pixel size
        ("", 300, 150, 1),  # align defaults to the centre
        ("sizeN=0.5,1&align=1,-1", 400, 0, 2),  # box 400x400, the width decides
        ("sizeN=0.1,0.1&wid=50&scl=3&align=-1,1", 0, 360, 0.4),  # view commands other than align ignored
    ],
)
def test_modifier_decides_size_and_place(bucket, modifier, left, top, scale):
    _, write, make = bucket
    write(
        {
            "catalogs/wm.ini": "RootId=wm\nCatalogFile=wm/images.txt\nWatermark=mark\n",
            "catalogs/wm/images.txt": f"Id\tPath\tModifier\nmark\tdefaults/watermark.png\t{modifier}\n",
        }
    )
    img = rgb(make().get(blue_canvas("wm", 800, 400)))
    if scale >= 1:
        mark_at(img, left, top, scale, WHITE, (0, 0, 0))
    else:  # 80x40: only the middle is sure to be pure colour
        assert near(img.getpixel((left + 40, top + 8)), WHITE, 8)
        assert near(img.getpixel((left + 40, top + 20)), (0, 0, 0), 8)
        assert img.getpixel((left + 100, top + 20)) == BLUE


def test_not_on_thumbnails(client):
    assert (
        client.get("/is/image/marked/rose?req=tmb&fmt=png").content
        == client.get("/is/image/sample/rose?req=tmb&fmt=png").content
    )


def test_merged_before_the_view_so_padding_stays_clear(client):
    # 400x200 composite padded to 400x400 (100 px above and below): the mark is at the
    # composite's bottom-right, not the view's, and the padding keeps bgc.
    img = rgb(client.get(blue_canvas("marked", 400, 200, "&wid=400&hei=400&bgc=ff0000")))
    mark_at(img, 200, 200, 1, WHITE_40, BLACK_40)
    for y in (5, 305, 395):
        assert img.getpixel((300, y)) == RED


def test_marked_photo_differs_only_where_the_mark_is(client):
    marked = rgb(client.get("/is/image/marked/rose?wid=400&fmt=png"))
    plain = rgb(client.get("/is/image/sample/rose?wid=400&fmt=png"))
    assert marked.size == plain.size == (400, 300)
    assert near(marked.getpixel((100, 100)), plain.getpixel((100, 100)), 3)
    expected = tuple(round(p * 0.6 + 255 * 0.4) for p in plain.getpixel((300, 230)))
    assert near(marked.getpixel((300, 230)), expected, 4)


def _catalogs(write, default_watermark: str, own: str | None) -> None:
    default = (ROOT / "catalogs" / "default.ini").read_text(encoding="utf-8") + f"\nWatermark={default_watermark}\n"
    own_line = "" if own is None else f"Watermark={own}\n"
    write({"catalogs/default.ini": default, "catalogs/wm.ini": f"RootId=wm\nRootPath=sample/\n{own_line}"})


@pytest.mark.parametrize(
    "default_watermark, own, marked",
    [
        ("watermark", None, True),  # inherited from default.ini
        ("watermark", "", False),  # defined but empty disables
        ("", "watermark", True),
        ("", None, False),
    ],
)
def test_inheritance_and_empty_value(bucket, default_watermark, own, marked):
    _, write, make = bucket
    _catalogs(write, default_watermark, own)
    img = rgb(make().get(blue_canvas("wm", 400, 200)))
    assert (img.getpixel((300, 150)) != BLUE) is marked


@pytest.mark.parametrize(
    "record",
    [
        "",  # no such record (nor file)
        "mark\tdefaults/no-such-mark.png\tsizeN=0.5,0.5\n",  # the record's image is missing
    ],
)
def test_missing_watermark_serves_the_image_without_it(bucket, caplog, record):
    _, write, make = bucket
    write(
        {
            "catalogs/wm.ini": "RootId=wm\nRootPath=sample/\nCatalogFile=wm/images.txt\nWatermark=mark\n",
            "catalogs/wm/images.txt": f"Id\tPath\tModifier\n{record}",
        }
    )
    client = make()
    r = client.get("/is/image/wm/rose?wid=400&fmt=png")
    assert r.status_code == 200 and "X-IS-Default-Image" not in r.headers
    assert r.content == client.get("/is/image/sample/rose?wid=400&fmt=png").content
    assert "watermark 'mark' left out" in caplog.text


def test_error_images_carry_no_watermark(bucket):
    _, write, make = bucket
    write({"catalogs/wm.ini": "RootId=wm\nRootPath=sample/\nWatermark=watermark\nErrorImage=onError\n"})
    img = rgb(make().get("/is/image/wm/rose?wid=abc&fmt=png"))
    assert img.size == (300, 300)
    assert near(img.getpixel((280, 250)), (244, 244, 244), 1)  # the watermark's corner would be here
