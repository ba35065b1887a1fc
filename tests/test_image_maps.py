"""Composite image maps: ``req=map`` with geometry commands moves ``catalog::Map`` the way
``req=img`` moves the image (the reference's "Image maps" page; requests/imagemap.py).

The source is the sample rose, 1600×1200; expected coordinates are worked out by hand from the
commands, not read back from the server.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from imageserving.app import create_app
from imageserving.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
TEXT = "text/plain; charset=UTF-8"

MAP = (
    '<AREA SHAPE="RECT" COORDS="10,10,200,150" HREF="/petals" ALT="Petals &amp; leaves"> '
    "<area shape=poly coords='400,300,500,300,450,400' href=/stem> "
    '<AREA SHAPE="CIRCLE" COORDS="800,600,100" HREF="/heart" TITLE="Heart"> '
    '<AREA SHAPE="DEFAULT" HREF="/rose">'
)
RECORDS = f"Id\tPath\tModifier\tMap\ncard\trose.jpg\t\t{MAP}\nturned\trose.jpg\trotate=90\t{MAP}\nplain\trose.jpg\t\t\n"


@pytest.fixture(scope="module")
def maps(tmp_path_factory) -> TestClient:
    root = tmp_path_factory.mktemp("bucket")
    for folder in ("catalogs", "images"):
        shutil.copytree(ROOT / folder, root / folder)
    (root / "catalogs/maps.ini").write_text("RootId=maps\nRootPath=sample/\nCatalogFile=maps/images.txt\n")
    (root / "catalogs/maps").mkdir()
    (root / "catalogs/maps/images.txt").write_text(RECORDS)
    settings = Settings.from_env({}, storage="local", local_root=str(root), catalog_settle_seconds=0)
    return TestClient(create_app(settings))


def text(client: TestClient, url: str) -> str:
    r = client.get(url)
    assert (r.status_code, r.headers["content-type"]) == (200, TEXT), r.text
    return r.text


def test_no_commands_is_the_map_unchanged(maps):
    assert text(maps, "/is/image/maps/card?req=map") == MAP


def test_wid_scales_every_shape_and_keeps_the_rest_of_each_tag(maps):
    """wid=800: scale 1/2. Only SHAPE and COORDS change; DEFAULT becomes a RECT over the image."""
    assert text(maps, "/is/image/maps/card?req=map&wid=800") == (
        '<AREA SHAPE="RECT" COORDS="5,5,100,75" HREF="/petals" ALT="Petals &amp; leaves"> '
        '<area shape=poly coords="200,150,250,150,225,200" href=/stem> '
        '<AREA SHAPE="CIRCLE" COORDS="400,300,50" HREF="/heart" TITLE="Heart"> '
        '<AREA SHAPE="RECT" COORDS="0,0,800,600" HREF="/rose">'
    )


def test_letterbox_offset(maps):
    """wid=800&hei=800: the 800×600 image sits centred in the 800×800 reply, 100 px down."""
    body = text(maps, "/is/image/maps/card?req=map&wid=800&hei=800")
    assert 'COORDS="5,105,100,175"' in body and 'COORDS="0,100,800,700"' in body


def test_crop_clips_and_drops(maps):
    """crop=100,100,400,300 keeps source x 100..500, y 100..400, shown at DefaultPix (300×300):
    scale 3/4. The petals are clipped to the crop, the stem's triangle touches its right edge,
    the heart (centre 800,600) lies outside and is dropped (the text around it stays); rounding
    is half up (37.5 → 38)."""
    body = text(maps, "/is/image/maps/card?req=map&crop=100,100,400,300")
    assert body == (
        '<AREA SHAPE="RECT" COORDS="0,0,75,38" HREF="/petals" ALT="Petals &amp; leaves"> '
        '<area shape=poly coords="225,150,300,150,263,225" href=/stem> '
        " "
        '<AREA SHAPE="RECT" COORDS="0,0,300,225" HREF="/rose">'
    )


def test_polygon_is_clipped_to_the_reply(maps):
    """crop=0,0,450,1200: the stem triangle (400,300)-(500,300)-(450,400) is cut at x=450; at
    DefaultPix the 450×1200 crop is scaled by 1/4 (height 1200 → 300)."""
    body = text(maps, "/is/image/maps/card?req=map&crop=0,0,450,1200")
    assert 'coords="100,75,113,75,113,100"' in body  # (400,300) (450,300) (450,400) / 4, half up
    assert 'COORDS="0,0,113,300"' in body  # DEFAULT: the whole reply


def test_flip_and_quarter_turns(maps):
    flipped = text(maps, "/is/image/maps/card?req=map&flip=lr&scl=1")
    assert 'COORDS="1400,10,1590,150"' in flipped  # x' = 1600 - x
    # rotate=90 (clockwise) from the record's Modifier: x' = 1200 - y, y' = x; reply 1200×1600.
    turned = text(maps, "/is/image/maps/turned?req=map&scl=1")
    assert 'COORDS="1050,10,1190,200"' in turned and 'COORDS="600,800,100"' in turned
    assert 'COORDS="0,0,1200,1600"' in turned


def test_json_and_xml_carry_the_moved_areas(maps):
    r = maps.get("/is/image/maps/card?req=map,json&wid=800&id=7")
    assert r.text.startswith('/*jsonp*/s7jsonResponse([{"shape":"RECT","coords":[5,5,100,75],"href":"/petals"')
    assert r.text.endswith('{"shape":"RECT","coords":[0,0,800,600],"href":"/rose"}],"7");')
    xml = maps.get("/is/image/maps/card?req=map,xml&wid=800").text
    assert '<area shape="CIRCLE" coords="400,300,50" href="/heart" title="Heart"/>' in xml


@pytest.mark.parametrize(
    "url",
    [
        "/is/image/maps/card?req=map&rotate=45",  # a free rotation: not a 90° turn
        "/is/image/maps/card?req=map&layer=1&src=maps/plain",  # another layer
        "/is/image/maps/card?req=map&mapA=<AREA SHAPE=DEFAULT HREF=/x>",  # a source-pixel map of its own
    ],
)
def test_what_is_not_supported_says_so(maps, url):
    r = maps.get(url)
    assert (r.status_code, r.text) == (403, "error.title=Invalid request\nerror.message=Invalid request\n")


def test_map_command_is_in_layer_pixels(maps):
    """map= gives the layer's map "relative to the top-left corner of the layer (after rotate= and
    extend=)": the turn does not move it, only the view does; DEFAULT covers the extended layer.
    It stands for the record's map (PROPOSED), so the card's own areas are gone."""
    own = "map=%3CAREA%20SHAPE%3DRECT%20COORDS%3D0%2C0%2C100%2C100%20HREF%3D%2Fx%3E"
    assert text(maps, f"/is/image/maps/card?req=map&{own}&wid=800") == '<AREA SHAPE=RECT COORDS="0,0,50,50" HREF=/x>'
    assert text(maps, f"/is/image/maps/turned?req=map&{own}&scl=1") == '<AREA SHAPE=RECT COORDS="0,0,100,100" HREF=/x>'
    default = "map=%3CAREA%20SHAPE%3DDEFAULT%20HREF%3D%2Fx%3E"
    assert text(maps, f"/is/image/maps/plain?req=map&{default}&extend=10,10,10,10&scl=1") == (
        '<AREA SHAPE="RECT" COORDS="0,0,1620,1220" HREF=/x>'
    )


def test_no_map_stays_empty_whatever_the_commands(maps):
    assert text(maps, "/is/image/maps/plain?req=map&wid=100&rotate=45") == ""
