"""The non-image request types through the app: whole bodies in every format a type allows,
caching headers, 304/HEAD, and errors in the requested format (protocol.md §8, §11, §12.3)."""

from __future__ import annotations

import io
import json
import logging
import re
import struct
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageCms

from imageserving.app import create_app
from imageserving.responses.properties import java_date
from imageserving.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
TEXT = "text/plain; charset=UTF-8"
SCRIPT = "text/javascript; charset=UTF-8"
XMLT = "text/xml; charset=UTF-8"
DECL = b'<?xml version="1.0" encoding="UTF-8"?>\n'
HEADER = re.compile(rb"#S7Z OK\n#(Mon|Tue|Wed|Thu|Fri|Sat|Sun) [A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d UTC \d{4}\n")
NON_IMG = "public, max-age=360"  # NonImgExpiration 0.1 h
SAMPLE_TTL = "public, max-age=86400"  # the sample catalog's Expiration=24
NOT_CACHEABLE = "no-cache, no-store, must-revalidate"


def get(client: TestClient, url: str, **headers):
    return client.get(url, headers=headers)


def properties(body: bytes) -> bytes:
    """A text properties body without its ``#S7Z OK`` / date header (which must be there)."""
    match = HEADER.match(body)
    assert match, body[:80]
    return body[match.end() :]


def jsonp_data(text: str):
    """The JSON value of a ``/*jsonp*/s7jsonResponse(value,"");`` body."""
    return json.loads(text.removeprefix("/*jsonp*/s7jsonResponse(").removesuffix(',"");'))


def mtime_date(path: Path) -> str:
    """A file's time as the properties writer prints it, ``:`` escaped (Java properties)."""
    stamp = datetime.fromtimestamp(int(path.stat().st_mtime), timezone.utc)
    return java_date(stamp).replace(":", "\\:")


# --- req=exists (§8.9) --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, media_type, body",
    [
        ("/is/image/sample/rose?req=exists", TEXT, b"catalogRecord.exists=1\n"),
        ("/is/image/sample/rose.jpg?req=exists,javascript", SCRIPT, b"catalogRecord.exists='0'\n"),
        (
            "/is/image/sample/nope?req=exists,xml",
            XMLT,
            DECL + b'<prop-group><prop-group name="catalogRecord"><property name="exists" value="0"/></prop-group>'
            b"</prop-group>",
        ),
        ("/is/image/sample/rose?req=exists,json", SCRIPT, b'/*jsonp*/s7jsonResponse({"catalogRecord.exists":"1"},"");'),
        (
            "/is/image/sample/nope?req=exists,json&id=r1&handler=s7R_1",
            SCRIPT,
            b'/*jsonp*/s7R_1({"catalogRecord.exists":"0"},"r1");',
        ),
        ("/is/image/noimage?req=exists,json", SCRIPT, b'/*jsonp*/s7jsonResponse({"catalogRecord.exists":"1"},"");'),
    ],
)
def test_exists(client, url, media_type, body):
    r = get(client, url)
    assert (r.status_code, r.headers["content-type"]) == (200, media_type)
    assert (properties(r.content) if media_type == TEXT else r.content) == body
    assert r.headers["cache-control"] == NON_IMG


# --- req=userdata, req=targets (§8.10-§8.11) ----------------------------------------------------

ROSE_CARD_USERDATA_JSON = (
    "/*jsonp*/s7jsonResponse({"
    '"title":"Rose \\"Deluxe\\" \\u003cb\\u003e\\u0026\\u003c/b\\u003e",'
    '"price":"12.50 EUR","origin":"Crème:Brûlée","formula":"a=b"},"u1");'
)


@pytest.mark.parametrize(
    "url, media_type, body",
    [
        (
            "/is/image/sample/rose-card?req=userdata",
            TEXT,
            'title=Rose "Deluxe" <b>&</b>\r\nprice=12.50 EUR\r\norigin=Crème:Brûlée\r\nformula=a=b\r\n'.encode(),
        ),
        ("/is/image/sample/rose-card?req=userdata,json&id=u1", SCRIPT, ROSE_CARD_USERDATA_JSON.encode()),
        (
            "/is/image/sample/rose-card?req=userdata,xml",
            XMLT,
            DECL
            + (
                '<prop-group><property name="title" value="Rose &quot;Deluxe&quot; &lt;b&gt;&amp;&lt;/b&gt;"/>'
                '<property name="price" value="12.50 EUR"/><property name="origin" value="Crème:Brûlée"/>'
                '<property name="formula" value="a=b"/></prop-group>'
            ).encode(),
        ),
        (
            "/is/image/sample/rose?req=userdata,xml,ISO-8859-1",
            "text/xml; charset=ISO-8859-1",
            b'<?xml version="1.0" encoding="ISO-8859-1"?>\n<prop-group><property name="name" value="Rose"/>'
            b'<property name="colour" value="red"/></prop-group>',
        ),
        ("/is/image/sample/nope?req=userdata", TEXT, b"\r\n"),
        ("/is/image/sample/nope?req=userdata,json", SCRIPT, b'/*jsonp*/s7jsonResponse({},"");'),
        ("/is/image/sample/nope?req=userdata,xml", XMLT, DECL + b"<prop-group></prop-group>"),
        (
            "/is/image/sample/rose-card?req=targets",
            TEXT,
            b"target.1.rect=10,10,200,150\r\ntarget.1.label=Petals\r\ntarget.2.rect=400,300,100,100\r\n"
            b"target.2.label=Stem\r\n",
        ),
        (
            "/is/image/sample/rose-card?req=targets,json",
            SCRIPT,
            b'/*jsonp*/s7jsonResponse({"target.1.rect":"10,10,200,150","target.1.label":"Petals",'
            b'"target.2.rect":"400,300,100,100","target.2.label":"Stem"},"");',
        ),
        (
            "/is/image/sample/rose-card?req=targets,xml",
            XMLT,
            DECL
            + (
                b'<prop-group><prop-group name="target"><property name="1.rect" value="10,10,200,150"/>'
                b'<property name="1.label" value="Petals"/><property name="2.rect" value="400,300,100,100"/>'
                b'<property name="2.label" value="Stem"/></prop-group></prop-group>'
            ),
        ),
        ("/is/image/sample/rose?req=targets", TEXT, b"\r\n"),
    ],
)
def test_userdata_and_targets(client, url, media_type, body):
    r = get(client, url)
    assert (r.status_code, r.headers["content-type"], r.content) == (200, media_type, body)
    assert r.headers["cache-control"] == SAMPLE_TTL


def test_userdata_utf16_and_record_ttl(client):
    r = get(client, "/is/image/sample/rose?req=userdata,xml,UTF-16")
    assert r.headers["content-type"] == "text/xml; charset=UTF-16"
    assert r.content.startswith(b"\xfe\xff") and r.content.decode("utf-16").endswith(
        '<property name="colour" value="red"/></prop-group>'
    )
    # shoe's own Expiration=2 hours beats the catalog's 24.
    assert get(client, "/is/image/sample/shoe?req=userdata").headers["cache-control"] == "public, max-age=7200"


# --- req=imageset (§8.12) -----------------------------------------------------------------------

SHOES_SET = "sample/shoe-red;sample/tulip,sample/shoe-blue;{0x1e90ff Dodger blue},sample/rose"


@pytest.mark.parametrize(
    "url, media_type, body",
    [
        ("/is/image/sample/shoes?req=imageset", TEXT, (SHOES_SET + "\r\n").encode()),
        (
            "/is/image/sample/shoes?req=imageset,json",
            SCRIPT,
            f'/*jsonp*/s7jsonResponse({{"IMAGE_SET":"{SHOES_SET}"}},"");'.encode(),
        ),
        ("/is/image/sample/shoes?req=imageset,javascript", SCRIPT, f"IMAGE_SET='{SHOES_SET}'\n".encode()),
        ("/is/image/sample/shoes?req=imageset,xml", XMLT, DECL[:-1] + f"<IMAGE_SET>{SHOES_SET}</IMAGE_SET>".encode()),
        ("/is/image/sample/rose?req=imageset", TEXT, b"\r\n"),
        ("/is/image/sample/nope?req=imageset,json", SCRIPT, b'/*jsonp*/s7jsonResponse({"IMAGE_SET":""},"");'),
    ],
)
def test_imageset(client, url, media_type, body):
    r = get(client, url)
    assert (r.status_code, r.headers["content-type"], r.content) == (200, media_type, body)
    assert r.headers["cache-control"] == NON_IMG


# --- req=set (§8.13) ----------------------------------------------------------------------------

IV = re.compile(r'"iv":"([A-Za-z0-9_-]{22})"|<iv>([A-Za-z0-9_-]{22})</iv>')


def without_versions(text: str) -> tuple[str, list[str]]:
    """The body with every ``iv`` replaced by ``IV``, and the versions in order."""
    versions = [a or b for a, b in IV.findall(text)]
    return IV.sub(lambda m: '"iv":"IV"' if m.group(1) else "<iv>IV</iv>", text), versions


def test_set_json_several_items_is_a_list(client):
    r = get(client, "/is/image/sample/shoes?req=set,json&id=s1")
    assert (r.status_code, r.headers["content-type"], r.headers["cache-control"]) == (200, SCRIPT, NON_IMG)
    body, versions = without_versions(r.text)
    assert body == (
        '/*jsonp*/s7jsonResponse({"set":{"pv":"1.0","type":"img_set","n":"sample/shoes","item":['
        '{"i":{"n":"sample/shoe-red"},"s":{"n":"sample/tulip"},"dx":"800","dy":"800","iv":"IV"},'
        '{"i":{"n":"sample/shoe-blue"},"s":{"c":"0x1E90FF","l":"Dodger blue"},"dx":"800","dy":"800","iv":"IV"},'
        '{"i":{"n":"sample/rose"},"s":{"n":"sample/rose"},"dx":"1600","dy":"1200","iv":"IV"}]}},"s1");'
    )
    # One file, one version (shoe-red's Size column spared the read); another file, another one.
    assert versions[0] == versions[1] != versions[2]


def test_set_xml(client):
    r = get(client, "/is/image/sample/shoes?req=set&labelkey=label")
    assert (r.status_code, r.headers["content-type"]) == (200, XMLT)
    body, _ = without_versions(r.text)
    assert body == (
        '<?xml version="1.0" encoding="UTF-8"?>\n<set pv="1.0" type="img_set" n="sample/shoes">'
        '<item><i n="sample/shoe-red" l="Red shoe"/><s n="sample/tulip"/><dx>800</dx><dy>800</dy>'
        "<iv>IV</iv></item>"
        '<item><i n="sample/shoe-blue" l="Blue shoe"/><s c="0x1E90FF" l="Dodger blue"/><dx>800</dx><dy>800</dy>'
        "<iv>IV</iv></item>"
        '<item><i n="sample/rose"/><s n="sample/rose"/><dx>1600</dx><dy>1200</dy><iv>IV</iv></item></set>'
    )


def test_set_single_image_is_an_object(client):
    body, _ = without_versions(get(client, "/is/image/sample/rose?req=set,json").text)
    assert body == (
        '/*jsonp*/s7jsonResponse({"set":{"pv":"1.0","type":"img","n":"sample/rose",'
        '"item":{"i":{"n":"sample/rose"},"dx":"1600","dy":"1200","iv":"IV"}}},"");'
    )


def test_set_media_set_with_labels(client):
    body, _ = without_versions(get(client, "/is/image/sample/spring?req=set,json&labelkey=LABEL").text)
    assert body == (
        '/*jsonp*/s7jsonResponse({"set":{"pv":"1.0","type":"media_set","n":"sample/spring","item":['
        '{"i":{"n":"sample/rose"},"s":{"n":"sample/rose"},"dx":"1600","dy":"1200","iv":"IV"},'
        '{"type":"img_set","set":{"type":"img_set","n":"sample/shoes","item":['
        '{"i":{"n":"sample/shoe-red","l":"Red shoe"},"s":{"n":"sample/tulip"},"dx":"800","dy":"800","iv":"IV"},'
        '{"i":{"n":"sample/shoe-blue","l":"Blue shoe"},"s":{"c":"0x1E90FF","l":"Dodger blue"},"dx":"800",'
        '"dy":"800","iv":"IV"},'
        '{"i":{"n":"sample/rose"},"s":{"n":"sample/rose"},"dx":"1600","dy":"1200","iv":"IV"}]},'
        '"s":{"n":"sample/shoe-red","l":"Red shoe"}},'
        '{"type":"spin","set":{"type":"spin","item":[{"i":{"n":"sample/tulip"},"dx":"400","dy":"600","iv":"IV"},'
        '{"i":{"n":"sample/rose"},"dx":"1600","dy":"1200","iv":"IV"},'
        '{"i":{"n":"sample/shoe"},"dx":"800","dy":"800","iv":"IV"}]},"s":{"n":"sample/tulip"}},'
        '{"type":"video","v":{"n":"videos/spring.mp4","path":"videos/spring.mp4"},"s":{"n":"sample/rose"}}]}},"");'
    )


def test_set_asset_type_overrides_detection(client):
    body, _ = without_versions(get(client, "/is/image/sample/spin?req=set,json").text)
    assert body == (
        '/*jsonp*/s7jsonResponse({"set":{"pv":"1.0","type":"spin","n":"sample/spin","item":['
        '{"i":{"n":"sample/rose"},"dx":"1600","dy":"1200","iv":"IV"},'
        '{"i":{"n":"sample/shoe"},"dx":"800","dy":"800","iv":"IV"},'
        '{"i":{"n":"sample/tulip"},"dx":"400","dy":"600","iv":"IV"}]}},"");'
    )


@pytest.mark.parametrize(
    "url, body",
    [
        # In braces the value stays encoded: %3B is part of an id (a file that does not exist: no size).
        (
            "/is/image/sample?req=set,json&imageSet={rose,sample/a%3Bb}",
            '{"set":{"pv":"1.0","type":"img_set","item":[{"i":{"n":"sample/rose"},"s":{"n":"sample/rose"},'
            '"dx":"1600","dy":"1200","iv":"IV"},{"i":{"n":"sample/a;b"},"s":{"n":"sample/a;b"}}]}}',
        ),
        # Without braces it is decoded once, like any value; the record keeps its name.
        (
            "/is/image/sample/rose?req=set,json&imageSet=sample%2Ftulip",
            '{"set":{"pv":"1.0","type":"img_set","n":"sample/rose","item":{"i":{"n":"sample/tulip"},'
            '"s":{"n":"sample/tulip"},"dx":"400","dy":"600","iv":"IV"}}}',
        ),
        ("/is/image/sample?req=set,json", '{"set":{"pv":"1.0","type":"empty"}}'),
    ],
)
def test_set_image_set_override(client, url, body):
    r = get(client, url)
    assert r.status_code == 200, r.text
    assert without_versions(r.text)[0] == f'/*jsonp*/s7jsonResponse({body},"");'


@pytest.mark.parametrize(
    "url, body",
    [
        # A static content record whose file is no video: static content.
        (
            "/is/image/sample/size-chart?req=set,json",
            '{"set":{"pv":"1.0","type":"static","n":"sample/size-chart",'
            '"item":{"v":{"n":"sample/size-chart","path":"sample/size-chart"}}}}',
        ),
        # No record anywhere, a video extension: a file-based video.
        (
            "/is/image/videos/spring.mp4?req=set,json",
            '{"set":{"pv":"1.0","type":"video","n":"videos/spring.mp4",'
            '"item":{"v":{"n":"videos/spring.mp4","path":"videos/spring.mp4"}}}}',
        ),
        # Media-set entries without a type are detected by the same rules.
        (
            "/is/image/sample?req=set,json&imageSet={sample/size-chart;sample/rose;,videos/a.mp4;;}",
            '{"set":{"pv":"1.0","type":"media_set","item":['
            '{"type":"static","v":{"n":"sample/size-chart","path":"sample/size-chart"},"s":{"n":"sample/rose"}},'
            '{"type":"video","v":{"n":"videos/a.mp4","path":"videos/a.mp4"}}]}}',
        ),
    ],
)
def test_set_outer_type_of_static_and_video_objects(client, url, body):
    """The reference's media-set page: "simple videos" are video records of the static content
    catalog; a static record is a video by its file's extension (mp3, mp4, flv, f4v, swf, xml),
    else static content; an object in neither catalog is a file-based video by the same rule."""
    r = get(client, url)
    assert (r.status_code, r.text) == (200, f'/*jsonp*/s7jsonResponse({body},"");')


@pytest.mark.parametrize(
    "obj, body",
    [
        (
            "clip",
            '<set pv="1.0" type="video" n="lab/clip"><item><v n="lab/clip" path="lab/clip" dx="512" dy="288"/>'
            "</item></set>",
        ),
        (
            "manual",
            '<set pv="1.0" type="static" n="lab/manual"><item><v n="lab/manual" path="lab/manual"/></item></set>',
        ),
        # In both catalogs: a video by the static file's extension (an image otherwise).
        ("meta", '<set pv="1.0" type="video" n="lab/meta"><item><v n="lab/meta" path="lab/meta"/></item></set>'),
    ],
)
def test_set_static_content_records(lab, obj, body):
    r = get(lab, f"/is/image/lab/{obj}?req=set")
    assert (r.status_code, r.text) == (200, '<?xml version="1.0" encoding="UTF-8"?>\n' + body)


def test_video_set_exports_video_size(lab):
    """``static::VideoSize`` is "used by req=set requests to export video size data": as the video's
    ``dx``/``dy``, which storefront code reads to pick the largest rendition of a video set
    (``int(v['v']['dx']) * int(v['v']['dy'])`` over ``set.item``, then ``v.path``)."""
    r = get(lab, "/is/image/lab/trailer?req=set,json")
    assert r.text == (
        '/*jsonp*/s7jsonResponse({"set":{"pv":"1.0","type":"video_set","n":"lab/trailer","item":['
        '{"v":{"n":"lab/clip","path":"lab/clip","dx":"512","dy":"288"}},'
        '{"v":{"n":"lab/clip2","path":"lab/clip2","dx":"1280","dy":"720"}}]}},"");'
    )
    items = jsonp_data(r.text)["set"]["item"]
    sizes = [int(v["v"]["dx"]) * int(v["v"]["dy"]) for v in items]
    assert items[sizes.index(max(sizes))]["v"]["path"] == "lab/clip2"


@pytest.mark.parametrize(
    "url",
    [
        "/is/image/sample/rose?req=set,json&x=a:b",
        "/is/image/sample/rose?req=set,json&x=a%3Ab",
        "/is/image/sample?req=set,json&imageSet={sample/rose:sample/shoe}",
    ],
)
def test_set_refuses_colons(client, url):
    r = get(client, url)
    assert (r.status_code, r.content) == (
        403,
        b'/*jsonp*/s7jsonError({"message":"Invalid request","title":"Invalid request"},"");',
    )


def test_set_formats(client):
    assert get(client, "/is/image/sample/rose?req=set,text").status_code == 403
    r = get(client, "/is/image/sample/nope?req=set")
    assert (r.status_code, r.headers["content-type"]) == (403, XMLT)
    assert b'<property name="title" value="Image not found"/>' in r.content


# --- req=map (§8.14) ----------------------------------------------------------------------------

ROSE_CARD_MAP = (
    '<AREA SHAPE="RECT" COORDS="10,10,200,150" HREF="/petals" ALT="Petals &amp; leaves">'
    '<AREA SHAPE="POLY" COORDS="400,300,500,300,450,400" HREF="/stem">'
)


@pytest.mark.parametrize(
    "url, media_type, body",
    [
        ("/is/image/sample/rose-card?req=map", TEXT, ROSE_CARD_MAP.encode()),
        (
            "/is/image/sample/rose-card?req=map,xml",
            XMLT,
            DECL
            + (
                b'<map><area shape="RECT" coords="10,10,200,150" href="/petals" alt="Petals &amp; leaves"/>'
                b'<area shape="POLY" coords="400,300,500,300,450,400" href="/stem"/></map>'
            ),
        ),
        (
            "/is/image/sample/rose-card?req=map,json&handler=cb",
            SCRIPT,
            b'/*jsonp*/cb([{"shape":"RECT","coords":[10,10,200,150],"href":"/petals","alt":"Petals \\u0026 leaves"},'
            b'{"shape":"POLY","coords":[400,300,500,300,450,400],"href":"/stem"}],"");',
        ),
        ("/is/image/sample/rose?req=map", TEXT, b""),
        ("/is/image/sample/rose?req=map,xml", XMLT, DECL + b"<map/>"),
        ("/is/image/sample/rose?req=map,json", SCRIPT, b'/*jsonp*/s7jsonResponse([],"");'),
    ],
)
def test_map(client, url, media_type, body):
    r = get(client, url)
    assert (r.status_code, r.headers["content-type"], r.content) == (200, media_type, body)
    assert r.headers["cache-control"] == SAMPLE_TTL


def test_map_with_commands_is_a_composite_map(client):
    """With geometry commands the areas move like the image (tests/test_image_maps.py has the
    cases); tulip has no map, so its Modifier's wid= leaves nothing to move."""
    assert get(client, "/is/image/sample/rose-card?req=map&wid=400").content == (
        b'<AREA SHAPE="RECT" COORDS="3,3,50,38" HREF="/petals" ALT="Petals &amp; leaves">'
        b'<AREA SHAPE="POLY" COORDS="100,75,125,75,113,100" HREF="/stem">'
    )
    assert (
        get(client, "/is/image/sample/tulip?req=map").status_code,
        get(client, "/is/image/sample/tulip?req=map").content,
    ) == (200, b"")


# --- req=imageprops, req=catalogprops (§8.7-§8.8) -----------------------------------------------


def test_imageprops_sample(client):
    r = get(client, "/is/image/sample/tulip?req=imageprops")
    assert (r.status_code, r.headers["content-type"], r.headers["cache-control"]) == (200, TEXT, NON_IMG)
    assert (
        properties(r.content)
        == (
            "image.anchor=200,300\nimage.expiration=24.0\nimage.width=400\nimage.height=600\n"
            "image.iccProfile=\nimage.embeddedIccProfile=0\nimage.embeddedPhotoshopPaths=0\n"
            "image.embeddedXmpData=0\nimage.mask=2\nimage.modifier=bgc\\=eeeeee&wid\\=200\n"
            "image.photoshopPathNames=\nimage.pixTyp=RGB\nimage.postModifier=qlt\\=95\nimage.printRes=72\n"
            "image.resolution=72.0\n"
            f"image.timeStamp={mtime_date(ROOT / 'images/sample/tulip.png')}\n"
            "image.thumbRes=72.0\nimage.thumbType=2\nimage.translatedId=sample/tulip\n"
        ).encode()
    )


def test_imageprops_javascript_and_json(client):
    js = get(client, "/is/image/sample/shoe?req=imageprops,javascript").text
    assert "image.width='800'\nimage.height='800'\n" in js and "image.expiration='2.0'\n" in js
    data = jsonp_data(get(client, "/is/image/sample/rose.jpg?req=imageprops,json").text)
    assert (data["image.width"], data["image.height"]) == ("1600", "1200")
    assert data["image.translatedId"] == "sample/rose.jpg"


@pytest.mark.parametrize(
    "fmt, media_type, body",
    [
        ("", TEXT, b"error.title=Image not found\nerror.message=Image not found\n"),
        (",javascript", SCRIPT, b"error.title='Image not found'\nerror.message='Image not found'\n"),
        (
            ",xml",
            XMLT,
            DECL + b'<prop-group><prop-group name="error"><property name="title" value="Image not found"/>'
            b'<property name="message" value="Image not found"/></prop-group></prop-group>',
        ),
        (",json", SCRIPT, b'/*jsonp*/s7jsonError({"message":"Image not found","title":"Image not found"},"e9");'),
    ],
)
def test_errors_come_in_the_requested_format(client, fmt, media_type, body):
    r = get(client, f"/is/image/sample/nope?req=imageprops{fmt}&id=e9&handler=mine")
    assert (r.status_code, r.headers["content-type"], r.content) == (403, media_type, body)
    assert r.headers["cache-control"] == NOT_CACHEABLE and "etag" not in r.headers


def test_catalogprops(client):
    r = get(client, "/is/image/sample/anything?req=catalogprops")
    assert (r.status_code, r.headers["cache-control"]) == (200, NON_IMG)
    assert (
        properties(r.content)
        == (
            "catalog.bkgColor=0xFFFFFF\ncatalog.defaultExt=.jpg\ncatalog.defaultPix=300,300\n"
            "catalog.defaultThumbPix=100,100\ncatalog.expiration=24.0\ncatalog.defaultExpiration=1.0\n"
            "catalog.nonImgExpiration=0.1\n"
            f"catalog.fileTime={mtime_date(ROOT / 'catalogs/sample.ini')}\n"
            "catalog.jpegQuality=80,0\ncatalog.maxPix=2000,2000\ncatalog.printResolution=72\n"
            "catalog.publishInfo=sample catalog v1\ncatalog.resMode=4\ncatalog.resolution=72.0\n"
            "catalog.thumbBkgColor=0xFFFFFF\ncatalog.thumbHorizAlign=2\ncatalog.thumbRes=72.0\ncatalog.thumbType=2\n"
            "catalog.thumbVertAlign=2\ncatalog.watermark=\n"
        ).encode()
    )
    default = get(client, "/is/image?req=catalogprops,json").text
    assert '"catalog.publishInfo":"default catalog"' in default and '"catalog.expiration":"10.0"' in default


# --- req=props: the lead's describe_image, faked (§8.6) -------------------------------------------


def test_props_property_list(client, monkeypatch):
    desc = SimpleNamespace(
        width=100,
        height=75,
        media_type="image/png",
        mask=False,
        quality=85,
        bgc=(255, 0, 16),
        print_res=72.0,
        icc_embed=True,
        version="37JK6NTvpvC42F5gOuLEVY",
        pixel_type="RGB",
        xmp_embed=False,
        icc_profile=ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes(),
    )
    server = client.app.state.server
    monkeypatch.setattr(server, "describe_image", lambda ctx: desc, raising=False)
    r = get(client, "/is/image/sample/rose-card?req=props,json&wid=100&fmt=png")
    body = jsonp_data(r.text)
    assert body == {
        "image.bgc": "0xFF0010",
        "image.height": "75",
        "image.width": "100",
        "image.iccEmbed": "1",
        "image.iccProfile": body["image.iccProfile"],
        "image.length": "0",
        "image.mask": "0",
        "image.pixTyp": "RGB",
        "image.pathEmbed": "0",
        "image.printRes": "72",
        "image.quality": "85",
        "image.type": "image/png",
        "image.xmpEmbed": "0",
        "image.version": "37JK6NTvpvC42F5gOuLEVY",
        "metadata.version": body["metadata.version"],
    }
    assert "sRGB" in body["image.iccProfile"]
    assert list(body)[:5] == ["image.bgc", "image.height", "image.width", "image.iccEmbed", "image.iccProfile"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", body["metadata.version"])
    rose = jsonp_data(get(client, "/is/image/sample/rose?req=props,json").text)
    assert rose["metadata.version"] != body["metadata.version"]  # other UserData, other version
    assert r.headers["cache-control"] == NON_IMG


# --- caching: ETag, 304, HEAD, Last-Modified (§11) --------------------------------------------------


def test_etag_304_and_head(client):
    url = "/is/image/sample/rose-card?req=userdata,json"
    first = get(client, url)
    etag = first.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    again = get(client, url, **{"if-none-match": f"W/{etag}"})
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
    head = client.head(url)
    assert (head.status_code, head.content, head.headers["etag"]) == (200, b"", etag)
    assert head.headers["content-type"] == SCRIPT
    # UseLastModified=1 in the sample catalog: the record has no TimeStamp, the .ini's date stands in.
    modified = first.headers["last-modified"]
    assert get(client, url, **{"if-modified-since": modified}).status_code == 304
    assert get(client, "/is/image/sample/rose?req=exists,json", **{"if-none-match": etag}).status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "/is/image/sample/rose?req=validate",
        "/is/image/sample/rose?req=resolve",
        "/is/image/sample/rose?req=message&message=x",
    ],
)
def test_not_cacheable(client, url):
    r = get(client, url, **{"if-none-match": "*"})
    assert (r.status_code, r.headers["cache-control"], r.headers["pragma"]) == (200, NOT_CACHEABLE, "no-cache")
    assert "etag" not in r.headers and "last-modified" not in r.headers


# --- validate, resolve, message, loadcache, saveToFile, mbrSet (§8.17-§8.24) --------------------


@pytest.mark.parametrize(
    "query, ok",
    [
        ("req=validate&wid=100&fmt=png&qlt=80,1", True),
        ("req=validate&wid=$w$&fit=crop&$w=abc", True),  # values holding a variable are not checked
        ("req=validate&crop=0,0,10,10&layer=1&rotate=90", True),
        ("req=validate&wid=abc", False),
        ("req=validate&fmt=bogus", False),
        ("req=validate&qlt=101", False),
        ("req=validate&fit=crop", False),
        ("req=validate&crop=1,2,3", False),
        ("req=validate&layer=2&rotate=abc", False),
        ("req=validate&resMode=fastest", False),
        ("req=validate&fmt=png&quantize=adaptive,off,300", False),
    ],
)
def test_validate(client, query, ok):
    r = get(client, f"/is/image/sample/no-such-image?{query.replace('validate', 'validate,json', 1)}")
    if ok:
        assert (r.status_code, r.content) == (200, b'/*jsonp*/s7jsonResponse({"request.isValid":"1"},"");')
    else:
        assert (r.status_code, r.content) == (
            403,
            b'/*jsonp*/s7jsonError({"message":"Invalid request","title":"Invalid request"},"");',
        )


def test_validate_text(client):
    assert properties(get(client, "/is/image/sample/rose?req=validate").content) == b"request.isValid=1\n"
    # Macros expand before req= is read (protocol.md §2 steps 8-9): that error can only be text.
    r = get(client, "/is/image/sample/rose?req=validate,json&$nomacro$")
    assert (r.status_code, r.headers["content-type"]) == (403, TEXT)


def test_resolve(client):
    r = get(client, "/is/image/sample/SKU123?req=resolve&wid=200&$t=a%26b&text=$t$&layer=1&src=rose&.c=1")
    assert (r.status_code, r.headers["content-type"]) == (200, TEXT)
    line = r.text
    assert line.startswith("sample/SKU123?") and line.endswith("\n") and line.count("\n") == 1
    for part in ("wid=200", "hei=400", "fit=crop", "fmt=jpeg", "qlt=85", "text=a%26b", "layer=1&src=rose"):
        assert part in line
    assert "req=" not in line and "$t" not in line and ".c" not in line


def test_message_is_logged(client, caplog):
    with caplog.at_level(logging.INFO, logger="imageserving"):
        r = get(client, "/is/image/sample?req=message&message=Hello%20%22world%22&id=m1")
    assert (r.status_code, r.content, r.headers["content-type"]) == (200, b"", TEXT)
    logged = [rec.getMessage() for rec in caplog.records if '"event": "message"' in rec.getMessage()]
    line = json.loads(logged[0])
    assert (line["message"], line["id"], line["catalog"]) == ('Hello "world"', "m1", "sample")


def test_loadcache_reports_the_reply_length(client):
    image = get(client, "/is/image/sample/rose?wid=120")
    r = get(client, "/is/image/sample/rose?req=loadcache&wid=120")
    assert (r.status_code, r.headers["cache-control"]) == (200, NOT_CACHEABLE)
    assert properties(r.content) == f"image.length={len(image.content)}\n".encode()


@pytest.mark.parametrize(
    "req, body",
    [
        ("saveToFile", b"error.title=Request refused\nerror.message=Request refused\n"),
        ("mbrSet", b"error.title=Invalid request\nerror.message=Invalid request\n"),
        ("userdata,javascript", b"error.title=Invalid request\nerror.message=Invalid request\n"),
    ],
)
def test_refused_types(client, req, body):
    r = get(client, f"/is/image/sample/rose?req={req}")
    assert (r.status_code, r.headers["content-type"], r.content) == (403, TEXT, body)


# --- a bucket of special cases: locales, embedded metadata, broken sets ----------------------------


def _jpeg_with_metadata() -> bytes:
    """40×30 JPEG with an sRGB profile, an XMP packet and three Photoshop image resources."""
    buf = io.BytesIO()
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(buf, "JPEG", icc_profile=icc, xmp=XMP_PACKET)
    data = buf.getvalue()

    def resource(res_id: int, name: bytes, payload: bytes) -> bytes:
        pascal = bytes([len(name)]) + name + (b"\x00" if len(name) % 2 == 0 else b"")
        return (
            b"8BIM"
            + struct.pack(">H", res_id)
            + pascal
            + struct.pack(">I", len(payload))
            + payload
            + (b"\x00" if len(payload) % 2 else b"")
        )

    block = (
        b"Photoshop 3.0\x00"
        + resource(2000, b"Outline", b"\x00" * 26)
        + resource(2001, b"Shadow", b"\x01" * 27)
        + resource(2999, b"Outline", b"")
    )
    app13 = b"\xff\xed" + struct.pack(">H", len(block) + 2) + block
    return data[:2] + app13 + data[2:]


XMP_PACKET = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="r">caf\xc3\xa9</rdf:RDF></x:xmpmeta>'


def _png(mode: str, size=(10, 20)) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, "PNG")
    return buf.getvalue()


def _premultiplied_tiff() -> bytes:
    buf = io.BytesIO()
    Image.new("RGBA", (8, 8), (10, 20, 30, 128)).save(buf, "TIFF")
    unassociated = b"\x52\x01\x03\x00\x01\x00\x00\x00\x02\x00"  # ExtraSamples=2 (straight alpha)
    return buf.getvalue().replace(unassociated, unassociated[:-2] + b"\x01\x00")


LAB_RECORDS = "\n".join(
    "\t".join(row)
    for row in [
        (
            "Id",
            "Path",
            "MaskPath",
            "Modifier",
            "PostModifier",
            "Expiration",
            "TimeStamp",
            "Anchor",
            "Resolution",
            "PrintResolution",
            "ThumbRes",
            "ThumbType",
            "Size",
            "UserData",
            "ImageSet",
            "AssetType",
        ),
        (
            "meta",
            "meta.jpg",
            "",
            "op_sharpen=1&text=a:b",
            "qlt=90",
            "-1",
            "01/02/2026 03:04:05 GMT",
            "5,6",
            "300",
            "150",
            "0",
            "1",
            "",
            "",
            "",
            "",
        ),
        ("sized", "meta.jpg", "", "", "", "", "", "", "", "", "", "", "4000,3000", "", "", ""),
        ("alpha", "alpha.png", "", "", "", "", "", "", "", "", "", "", "", "", "", ""),
        ("masked", "alpha.png", "mask.png", "", "", "", "", "", "", "", "", "", "", "", "", ""),
        ("gray", "gray.png", "", "", "", "", "", "", "", "", "", "", "", "", "", ""),
        ("pre", "pre.tif", "", "", "", "", "", "", "", "", "", "", "", "", "", ""),
        ("broken", "broken.jpg", "", "", "", "", "", "", "", "", "", "", "", "", "", ""),
        ("quoted", "meta.jpg", "", "", "", "", "", "", "", "", "", "", "", '"a=1??b=2"', "", ""),
        ("newline", "", "", "", "", "", "", "", "", "", "", "", "", "", '"lab/meta,\nlab/alpha"', ""),
        ("loop", "", "", "", "", "", "", "", "", "", "", "", "", "", "lab/loop,lab/meta", ""),
        ("media", "", "", "", "", "", "", "", "", "", "", "", "", "", "lab/meta;lab/meta;", ""),
        ("outer", "", "", "", "", "", "", "", "", "", "", "", "", "", "lab/meta;lab/meta;,lab/media;lab/meta;", ""),
        ("tagged", "meta.jpg", "", "", "", "", "", "", "", "", "", "", "40,30", 'label=Say "hi" <&> \u00fc', "", ""),
        ("trailer", "", "", "", "", "", "", "", "", "", "", "", "", "", "lab/clip,lab/clip2", "VIDEOSET"),
    ]
)

INTL_RECORDS = (
    "Id\tPath\tUserData\tTargets\n"
    "rose\trose.jpg\tval1=111??str1=Default1^loc=N^Dutch1^loc=D^German1??"
    "val2=value2??str2=^loc=E^English2^loc=N^Dutch2^loc=D^German2\t"
    "target.1.rect=1,2,3,4??target.1.label=Petal^loc=D^Blatt\n"
    "rose_D\trose.jpg\n"
    "rose_F\ttulip.png\n"
    "shoe_E\tshoe.jpg\n"
)


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> TestClient:
    root = tmp_path_factory.mktemp("bucket")
    files: dict[str, bytes] = {
        "catalogs/lab.ini": b"RootId=lab\nRootPath=lab/\nCatalogFile=lab/images.txt\nExpiration=5\n"
        b"StaticContentCatalogFile=lab/static.txt\n",
        # Static content for req=set's outer type rules: a video, a document, and "meta", an
        # image record too, whose static file is a video.
        "catalogs/lab/static.txt": b"Id\tPath\tVideoSize\nclip\tclip.mp4\t512,288\nclip2\tclip2.mp4\t1280,720\n"
        b"manual\tmanual.pdf\t\nmeta\tmeta.mp4\t\n",
        "catalogs/lab/images.txt": LAB_RECORDS.encode("latin-1") + b"\n",
        "catalogs/intl.ini": b"RootId=intl\nRootPath=sample/\nCatalogFile=intl/images.txt\n"
        b"LocaleMap=en,_E,|en_us,_E,|fr,_F,|de,_D,|de_at,_D,|,_E,\n"
        b"LocaleStrMap=en,E|nl,N|de,D|,\n",
        "catalogs/intl/images.txt": INTL_RECORDS.encode("latin-1"),
        "catalogs/strict.ini": b"RootId=strict\nRootPath=sample/\nCatalogFile=intl/images.txt\nLocaleMap=fr,_F\n",
        "images/lab/meta.jpg": _jpeg_with_metadata(),
        "images/lab/alpha.png": _png("RGBA"),
        "images/lab/mask.png": _png("L"),
        "images/lab/gray.png": _png("L"),
        "images/lab/pre.tif": _premultiplied_tiff(),
        "images/lab/broken.jpg": b"\xff\xd8 not really a jpeg",
    }
    for folder in ("catalogs", "images"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file():
                files.setdefault(path.relative_to(ROOT).as_posix(), path.read_bytes())
    for key, data in files.items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(data)
    settings = Settings.from_env({}, storage="local", local_root=str(root), catalog_settle_seconds=0)
    return TestClient(create_app(settings))


def test_imageprops_embedded_metadata(lab):
    r = get(lab, "/is/image/lab/meta?req=imageprops")
    assert properties(r.content) == (
        b"image.anchor=5,6\nimage.expiration=-1.0\nimage.width=40\nimage.height=30\n"
        b"image.iccProfile=sRGB built-in\nimage.embeddedIccProfile=1\nimage.embeddedPhotoshopPaths=1\n"
        b"image.embeddedXmpData=1\nimage.mask=0\nimage.modifier=op_sharpen\\=1&text\\=a\\:b\n"
        b"image.photoshopPathNames=Outline,Shadow\nimage.pixTyp=RGB\nimage.postModifier=qlt\\=90\n"
        b"image.printRes=150\nimage.resolution=300.0\nimage.timeStamp=Fri Jan 02 03\\:04\\:05 UTC 2026\n"
        b"image.thumbRes=72.0\nimage.thumbType=1\nimage.translatedId=lab/meta\n"
    )


@pytest.mark.parametrize(
    "obj, expected",
    [
        # catalog::Size stands for the file's size
        ("sized", {"image.width": "4000", "image.height": "3000", "image.anchor": "2000,1500"}),
        ("alpha", {"image.mask": "2", "image.pixTyp": "RGB"}),
        ("masked", {"image.mask": "3"}),
        ("gray", {"image.mask": "0", "image.pixTyp": "BW"}),
        ("pre", {"image.mask": "1", "image.width": "8"}),
        ("quoted", {"image.expiration": "5.0"}),
    ],
)
def test_imageprops_cases(lab, obj, expected):
    data = jsonp_data(get(lab, f"/is/image/lab/{obj}?req=imageprops,json").text)
    assert {k: data[k] for k in expected} == expected


def test_broken_source_is_a_content_error(lab):
    r = get(lab, "/is/image/lab/broken?req=imageprops,xml")
    assert r.status_code == 403 and b'value="Unable to process image"' in r.content


def test_xmp(lab):
    r = get(lab, "/is/image/lab/meta?req=xmp")
    assert (r.status_code, r.headers["content-type"], r.content) == (200, XMLT, XMP_PACKET)
    assert r.headers["cache-control"] == "public, max-age=31536000"  # Expiration=-1
    assert get(lab, "/is/image/lab/meta?req=xmp", **{"if-modified-since": "x"}).status_code == 304
    none = get(lab, "/is/image/lab/alpha?req=xmp")
    assert (none.content, none.headers["cache-control"]) == (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"/>',
        "public, max-age=18000",
    )
    assert get(lab, "/is/image/lab/nope?req=xmp").status_code == 403
    assert get(lab, "/is/image/lab/meta?req=xmp,json").status_code == 403


def test_quoted_and_multiline_fields(lab):
    assert get(lab, "/is/image/lab/quoted?req=userdata").content == b"a=1??b=2\r\n"
    assert get(lab, "/is/image/lab/quoted?req=userdata,json").content == b'/*jsonp*/s7jsonResponse({"a":"1??b=2"},"");'
    assert (
        get(lab, "/is/image/lab/newline?req=imageset,json").content
        == b'/*jsonp*/s7jsonResponse({"IMAGE_SET":"lab/meta,\\nlab/alpha"},"");'
    )
    assert get(lab, "/is/image/lab/newline?req=imageset,javascript").content == b"IMAGE_SET='lab/meta,\\nlab/alpha'\n"
    assert get(lab, "/is/image/lab/newline?req=imageset").content == b"lab/meta,\nlab/alpha\r\n"


@pytest.mark.parametrize("obj", ["loop", "outer"])
def test_set_limits(lab, obj):
    r = get(lab, f"/is/image/lab/{obj}?req=set,json")
    assert (r.status_code, r.content) == (
        403,
        b'/*jsonp*/s7jsonError({"message":"Invalid request","title":"Invalid request"},"");',
    )


def test_set_skips_the_size_of_unreadable_items(lab):
    body, _ = without_versions(get(lab, "/is/image/lab?req=set,json&imageSet={lab/broken,lab/alpha}").text)
    assert body == (
        '/*jsonp*/s7jsonResponse({"set":{"pv":"1.0","type":"img_set","item":['
        '{"i":{"n":"lab/broken"},"s":{"n":"lab/broken"}},'
        '{"i":{"n":"lab/alpha"},"s":{"n":"lab/alpha"},"dx":"10","dy":"20","iv":"IV"}]}},"");'
    )


@pytest.mark.parametrize(
    "url, exists",
    [
        ("/is/image/intl/rose?req=exists&locale=de_at", "1"),  # rose_D
        ("/is/image/intl/rose?req=exists&locale=ja", "1"),  # default rule: rose_E, then rose
        ("/is/image/intl/shoe?req=exists&locale=en", "1"),  # shoe_E
        ("/is/image/intl/shoe?req=exists&locale=fr", "0"),  # neither shoe_F nor shoe
        ("/is/image/intl/shoe?req=exists", "1"),  # no locale: the default rule applies too
    ],
)
def test_exists_translates_ids(lab, url, exists):
    assert properties(get(lab, url).content) == f"catalogRecord.exists={exists}\n".encode()


def test_translation(lab):
    fr = jsonp_data(get(lab, "/is/image/intl/rose?req=imageprops,json&locale=FR").text)
    assert (fr["image.translatedId"], fr["image.width"]) == ("intl/rose_F", "400")
    assert (
        get(lab, "/is/image/intl/rose?req=xlate,json").content
        == b'/*jsonp*/s7jsonResponse({"xlate.translatedIds":"rose,rose_F,rose_D"},"");'
    )
    assert (
        properties(get(lab, "/is/image/intl/rose?req=xlate&locale=fr").content)
        == b"xlate.translatedIds=rose,rose_F,rose_D\n"
    )
    assert get(lab, "/is/image/intl/nope?req=xlate,javascript").content == b"xlate.translatedIds=''\n"
    assert get(lab, "/is/image/strict/rose?req=exists&locale=de").status_code == 403  # no default rule


@pytest.mark.parametrize(
    "locale, userdata, label",
    [
        ("nl", '{"val1":"111","str1":"Dutch1","val2":"value2","str2":"Dutch2"}', ""),  # no N string: empty
        ("en", '{"val1":"111","str1":"","val2":"value2","str2":"English2"}', ""),
        ("ja", '{"val1":"111","str1":"Default1","val2":"value2","str2":""}', "Petal"),
    ],
)
def test_string_localization(lab, locale, userdata, label):
    r = get(lab, f"/is/image/intl/rose?req=userdata,json&locale={locale}")
    assert r.content == f'/*jsonp*/s7jsonResponse({userdata},"");'.encode()
    targets = get(lab, f"/is/image/intl/rose?req=targets&locale={locale}").content
    assert targets == f"target.1.rect=1,2,3,4\r\ntarget.1.label={label}\r\n".encode()


def test_set_label_is_an_attribute_of_i_and_s(client):
    """The reference's media-set page: the labelkey= value "is returned in the l attribute for
    the s and i". Items without a label keep ``{"i":{"n":"…"}`` closing right after ``n`` (a
    storefront's own code: ``re.findall(r'{"i":{"n":"(.*?)"}', body)`` on
    ``req=set,json,UTF-8&labelkey=label``)."""
    body = get(client, "/is/image/sample/shoes?req=set,json,UTF-8&labelkey=label").text
    items = jsonp_data(body)["set"]["item"]
    assert [item["i"].get("l") for item in items] == ["Red shoe", "Blue shoe", None]
    assert [item["s"].get("l") for item in items] == [None, "Dodger blue", None]  # tulip has no label
    assert [list(item) for item in items][0] == ["i", "s", "dx", "dy", "iv"]
    unlabelled = get(client, "/is/image/sample/shoes?req=set,json,UTF-8").text
    assert re.findall(r'{"i":{"n":"(.*?)"}', unlabelled) == ["sample/shoe-red", "sample/shoe-blue", "sample/rose"]
    # A swatch that is a labelled record carries that record's label.
    media = jsonp_data(get(client, "/is/image/sample/spring?req=set,json&labelkey=label").text)["set"]["item"]
    assert media[1]["s"] == {"n": "sample/shoe-red", "l": "Red shoe"}


def test_set_label_escaping_json_and_xml(lab):
    """The label is escaped like every property value (§8.2): JSON string escapes with the
    script-safe \\u003c/\\u003e/\\u0026, XML entities in the attribute; both in the same place."""
    r = get(lab, "/is/image/lab/tagged?req=set,json&labelkey=label")
    body, _ = without_versions(r.text)
    assert body == (
        '/*jsonp*/s7jsonResponse({"set":{"pv":"1.0","type":"img","n":"lab/tagged","item":{"i":{"n":"lab/tagged",'
        '"l":"Say \\"hi\\" \\u003c\\u0026\\u003e \u00fc"},"dx":"40","dy":"30","iv":"IV"}}},"");'
    )
    xml, _ = without_versions(get(lab, "/is/image/lab/tagged?req=set&labelkey=label").text)
    assert xml == (
        '<?xml version="1.0" encoding="UTF-8"?>\n<set pv="1.0" type="img" n="lab/tagged"><item>'
        '<i n="lab/tagged" l="Say &quot;hi&quot; &lt;&amp;&gt; \u00fc"/><dx>40</dx><dy>30</dy><iv>IV</iv>'
        "</item></set>"
    )


def test_viewer_sdk_set_request_echoes_id(client):
    """Adobe's viewer SDK asks for sets as req=set,json,UTF-8 with a labelkey and its own id."""
    r = client.get("/is/image/sample/shoes?req=set,json,UTF-8&labelkey=label&id=8c0f3a77b1")
    assert r.status_code == 200 and r.headers["content-type"] == "text/javascript; charset=UTF-8"
    assert r.text.startswith('/*jsonp*/s7jsonResponse({"set":{"pv":"1.0","type":"img_set"')
    assert r.text.endswith('},"8c0f3a77b1");')


def test_text_properties_revalidate_despite_the_date_line(client):
    first = client.get("/is/image/sample/rose?req=exists")
    assert first.text.startswith("#S7Z OK\n#")
    again = client.get("/is/image/sample/rose?req=exists", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
