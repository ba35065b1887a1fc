"""Replies read the way real Scene7 clients read them.

Each test replays the parsing a public client does on a real Scene7 reply (the code is quoted in
the docstring, paraphrased where long) against our reply to the same request, so a change of
bytes that would break such a client fails here. Sources: Adobe's HTML5 viewer SDK (``s7sdk.IS``
loads every JSONP reply through a ``<script>`` with ``&id=<hash>`` and dispatches on the echoed
id), the older ``sj`` viewer library (``req=map,json&scl=1``), AEM core components' Dynamic Media
image (``req=set,json``), and storefront integrations and scrapers of ``req=set,json``,
``req=exists,json`` and ``req=exists,javascript``.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest


def body(client, url: str) -> str:
    r = client.get(url)
    assert r.status_code == 200, (url, r.status_code, r.text)
    return r.text


# --- the JSONP frame -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/is/image/sample/shoes?req=set,json",
        "/is/image/sample/shoes?req=set,json,UTF-8&labelkey=label",
        "/is/image/sample/rose?req=set,json",
        "/is/image/sample/rose?req=imageprops,json",
        "/is/image/sample/rose-card?req=userdata,json",
    ],
)
def test_frame_without_id(client, url):
    """Four ways storefront code takes the JSON out of ``/*jsonp*/s7jsonResponse({…},"");``:
    ``text.replace('/*jsonp*/s7jsonResponse(', '').replace(',"");', '')``;
    ``re.search(r's7jsonResponse\\((.+),""\\);', text)``; ``text.split('(', 1)[1].strip(');')[:-3]``;
    ``re.findall('s7jsonResponse\\((.*),"', text)[0]``. All need the frame byte for byte: no
    spaces, no trailing newline, the empty id as ``""``."""
    text = body(client, url)
    expected = json.loads(text.replace("/*jsonp*/s7jsonResponse(", "").replace(',"");', ""))
    assert json.loads(re.search(r's7jsonResponse\((.+),""\);', text).group(1)) == expected
    assert json.loads(text.split("(", 1)[1].strip(");")[:-3]) == expected
    assert json.loads(re.findall('s7jsonResponse\\((.*),"', text)[0]) == expected


def test_aem_core_image_payload_regex(client):
    """AEM core components (``CMP.image.dynamicMedia.getAutoSmartCrops``) read ``req=set,json`` with
    ``/^(?:\\/\\*jsonp\\*\\/)?\\s*([^()]+)\\(([\\s\\S]+),\\s*"[0-9]*"\\);?$/gmi`` and then require
    the payload to match ``/^{[\\s\\S]*}$/`` before ``JSON.parse``."""
    pattern = re.compile(r'^(?:/\*jsonp\*/)?\s*([^()]+)\(([\s\S]+),\s*"[0-9]*"\);?$', re.M | re.I)
    for url in ("/is/image/sample/rose?req=set,json", "/is/image/sample/spring?req=set,json&id=1234567"):
        match = pattern.search(body(client, url))
        assert match and match.group(1) == "s7jsonResponse"
        assert re.fullmatch(r"{[\s\S]*}", match.group(2))
        assert "set" in json.loads(match.group(2))


@pytest.mark.parametrize("req", ["set,json", "props,json", "imageprops,json", "exists,json", "map,json&scl=1"])
def test_viewer_sdk_dispatches_on_the_echoed_id(client, req):
    """``s7sdk.IS.getHttpReq`` appends ``&id=<hash code of the URL>`` and keeps its callback in
    ``s7sdk.Callback.pending[id]``; the reply's ``s7jsonResponse(data, id)`` looks it up by the
    second argument, so it must be the id exactly as sent, as a JSON string."""
    text = body(client, f"/is/image/sample/rose-card?req={req}&id=205648391")
    match = re.fullmatch(r'/\*jsonp\*/s7jsonResponse\(([\s\S]+),("[^"]*")\);', text)
    assert match and json.loads(match.group(2)) == "205648391"


def test_responsive_image_library(client):
    """Adobe's ``s7responsiveImage`` sends ``req=props,json&scl=1`` + ``&id=<hash>&handler=s7RIJSONResponse``
    and takes the image's full width as ``parseInt(inArg["image.width"])``; its callbacks match
    ``callback.id == parseInt(inId)``, for errors through ``s7jsonError`` as well."""
    text = body(client, "/is/image/sample/rose?req=props,json&scl=1&id=91827364&handler=s7RIJSONResponse")
    match = re.fullmatch(r'/\*jsonp\*/s7RIJSONResponse\((\{.*\}),"(\d+)"\);', text)
    assert match and int(match.group(2)) == 91827364
    assert int(json.loads(match.group(1))["image.width"]) == 1600
    error = client.get("/is/image/sample/nope?req=props,json&scl=1&id=91827364&handler=s7RIJSONResponse").text
    assert re.fullmatch(r'/\*jsonp\*/s7jsonError\(\{"message":"[^"]+","title":"[^"]+"\},"91827364"\);', error)


def test_viewer_sdk_error_callback(client):
    """``s7jsonError(data, id)`` takes the same id and shows ``data.message``; the callback name
    stays ``s7jsonError`` whatever ``handler=`` asked for (a storefront compares the whole body
    with ``/*jsonp*/s7jsonError({"message":…,"title":…}`` after stripping its own handler)."""
    r = client.get("/is/image/sample/nope?req=set,json&handler=cbImageGallery1685693998540&id=7")
    assert r.content == b'/*jsonp*/s7jsonError({"message":"Image not found","title":"Image not found"},"7");'


# --- req=set,json: the set tree as storefront code walks it ----------------------------------------


def test_media_set_items_name_their_type(client):
    """Storefront code walks a media set's items by their own ``type`` (quoted from two):
    ``[x['set']['item'] for x in data['item'] if x.get('type') == 'img_set']``,
    ``x.get('type') == 'spin'``, ``raw_content['type'] == 'video'`` → ``raw_content['v']['path']``
    (served from ``/is/content/``), and images are the items with no ``type`` at all, read as
    ``item['i']['n']``, ``item['dx']``, ``item['dy']``."""
    text = body(client, "/is/image/sample/spring?req=set,json,UTF-8&labelkey=label")
    data = json.loads(text.replace("/*jsonp*/s7jsonResponse(", "").replace(',"");', ""))["set"]
    assert data["type"] == "media_set"
    items = data["item"]
    images = [(x["i"]["n"], x["dx"], x["dy"]) for x in items if "type" not in x]
    assert images == [("sample/rose", "1600", "1200")]
    swatch_set = [i["i"]["n"] for x in items if x.get("type") == "img_set" for i in x["set"]["item"]]
    assert swatch_set == ["sample/shoe-red", "sample/shoe-blue", "sample/rose"]
    spins = [x for x in items if x.get("type") == "spin"]
    assert [f["i"]["n"] for f in spins[0]["set"]["item"]] == ["sample/tulip", "sample/rose", "sample/shoe"]
    videos = [x["v"]["path"] for x in items if x.get("type") == "video"]
    assert videos == ["videos/spring.mp4"]
    # The same types in XML, where the item element carries them.
    xml = body(client, "/is/image/sample/spring?req=set")
    assert re.findall(r'<item type="([a-z_]+)">', xml) == ["img_set", "spin", "video"]
    assert '<v n="videos/spring.mp4" path="videos/spring.mp4"/>' in xml


def test_set_xml_items_open_with_their_image(client):
    """``for item in ET.fromstring(reply): item[0].get('n')`` — a storefront's ``req=set`` reader:
    the root is ``<set>``, its children are the items and each one's first child names the image."""
    root = ET.fromstring(client.get("/is/image/sample/shoes?req=set").content)
    assert [item[0].get("n") for item in root] == ["sample/shoe-red", "sample/shoe-blue", "sample/rose"]
    # Another reads the swatches of ``req=set,xml,UTF-8`` as ``response.xpath('/set/item/s/@n')``.
    root = ET.fromstring(client.get("/is/image/sample/shoes?req=set,xml,UTF-8").content)
    assert root.tag == "set"
    assert [s.get("n") for s in root.findall("item/s") if s.get("n")] == ["sample/tulip", "sample/rose"]


# --- req=exists ------------------------------------------------------------------------------------


def test_exists_as_storefronts_test_it(client):
    """``'catalogRecord.exists":"1"' in r.text`` (after ``r.status_code > 200`` means missing), and
    ``catalogRecord = {}; $.getScript(url + "?req=exists,javascript")`` then
    ``catalogRecord.exists == 1``."""
    yes = client.get("/is/image/sample/rose?req=exists,json")
    no = client.get("/is/image/sample/nope?req=exists,json")
    assert (yes.status_code, no.status_code) == (200, 200)
    assert 'catalogRecord.exists":"1"' in yes.text and '"catalogRecord.exists":"0"' in no.text
    js = body(client, "/is/image/sample/rose?req=exists,javascript")
    assert js == "catalogRecord.exists='1'\n"


# --- req=map ---------------------------------------------------------------------------------------


def test_sj_viewer_map_request(client):
    """The ``sj`` viewer library asks ``req=map,json&scl=1`` (full resolution: the areas in the
    image's own coordinates, scaled by the viewer itself) and copies ``shape``, ``coords``,
    ``href`` and ``alt`` of each array element onto an ``<area>``."""
    text = body(client, "/is/image/sample/rose-card?req=map,json&scl=1&id=3311")
    areas = json.loads(re.fullmatch(r'/\*jsonp\*/s7jsonResponse\((.*),"3311"\);', text).group(1))
    assert [(a["shape"], ",".join(map(str, a["coords"])), a["href"]) for a in areas] == [
        ("RECT", "10,10,200,150", "/petals"),
        ("POLY", "400,300,500,300,450,400", "/stem"),
    ]
    assert areas[0]["alt"] == "Petals & leaves"
    # Another scale moves the areas (a composite map): scl=2 halves them.
    halved = json.loads(body(client, "/is/image/sample/rose-card?req=map,json&scl=2").split("(", 1)[1][: -len(',"");')])
    assert halved[0]["coords"] == [5, 5, 100, 75]


# --- req=props: the version ids -----------------------------------------------------------------


def test_image_version_ignores_the_reply_form(client):
    """``id=`` is "always ignored by the server" and the version string from ``req=props`` is meant
    to be added to the image request as ``id=`` (Adobe's id= page): it must not depend on the
    ``req=`` format, ``id=``, ``handler=`` or ``cache=`` of the props request, only on the image
    and the commands that make it."""

    def version(query: str) -> str:
        text = body(client, f"/is/image/sample/rose?{query}")
        if text.startswith("<?xml"):
            root = ET.fromstring(text.encode())
            return root.find("prop-group[@name='image']/property[@name='version']").get("value")
        pattern = r"^image\.version='?([A-Za-z0-9_-]{22})'?$|\"image\.version\":\"([A-Za-z0-9_-]{22})\""
        found = re.findall(pattern, text, re.M)
        assert len(found) == 1, text
        return "".join(found[0])

    plain = version("req=props")
    assert plain == version("req=props,json&id=8c0f3a77b1")
    assert plain == version("req=props,xml,UTF-8&handler=cb")
    assert plain == version("req=props,javascript&cache=off")
    assert plain != version("req=props&wid=100")


def test_sj_imageset_and_exists_readers(client):
    """The ``sj`` storefront helpers: ``obj['IMAGE_SET'].split(",")`` then each ``.split(";")``
    into (image, swatch) for ``req=imageset,json``, and ``obj['catalogRecord.exists'] == 1`` for
    ``req=exists,json`` (a JSON string compared loosely with a number)."""
    text = body(client, "/is/image/sample/shoes?req=imageset,json&id=77")
    obj = json.loads(re.fullmatch(r'/\*jsonp\*/s7jsonResponse\((\{.*\}),"77"\);', text).group(1))
    pairs = [entry.split(";") for entry in obj["IMAGE_SET"].split(",")]
    assert pairs[0] == ["sample/shoe-red", "sample/tulip"] and pairs[-1] == ["sample/rose"]
    exists = json.loads(body(client, "/is/image/sample/rose?req=exists,json").split("(", 1)[1][: -len(',"");')])
    assert int(exists["catalogRecord.exists"]) == 1


def test_custom_handler_and_text_id(client):
    """A storefront crawler asks ``req=set,json&handler=s7Res&id=imgSet``, splits the body at
    ``s7Res(`` and cuts at ``,"imgSet");``; a set of several items is read as ``set.item[*].i.n``,
    a single image (no ``item`` array) by ``set.n``."""

    def read(url: str) -> dict:
        content = body(client, url)
        assert "s7Res(" in content
        return json.loads(content.split("s7Res(")[1].split(',"imgSet");')[0])

    several = read("/is/image/sample/shoes?req=set,json&handler=s7Res&id=imgSet")
    assert [item["i"]["n"] for item in several["set"]["item"]] == ["sample/shoe-red", "sample/shoe-blue", "sample/rose"]
    single = read("/is/image/sample/rose?req=set,json&handler=s7Res&id=imgSet")
    assert not isinstance(single["set"]["item"], list) and single["set"]["n"] == "sample/rose"


# --- req=ctx: Scene7's legacy zoom viewers --------------------------------------------------------


def test_legacy_zoom_viewer_context(client):
    """``SjZoom`` (Scene7's DHTML zoom) loads ``req=ctx,json&scl=1`` + ``&id=<hash>`` and reads
    ``image.rect`` split on ``,`` — items 2 and 3 are the server image's width and height — plus
    ``image.version`` and ``metadata.version``; a jQuery viewer does ``window.s7jsonResponse =
    function(d) { d['image.rect'].split(',') … }`` on ``initialSource + '&req=ctx,json'``.
    Not in Adobe's reference; evaluated like req=props, so the size is the reply's."""
    text = body(client, "/is/image/sample/rose?req=ctx,json&scl=1&id=120994849")
    match = re.fullmatch(r'/\*jsonp\*/s7jsonResponse\((\{.*\}),"120994849"\);', text)
    data = json.loads(match.group(1))
    assert data["image.rect"].split(",")[2:4] == ["1600", "1200"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", data["image.version"])
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", data["metadata.version"])
    props = json.loads(body(client, "/is/image/sample/rose?req=props,json&scl=1").split("(", 1)[1][: -len(',"");')])
    assert data["image.version"] == props["image.version"]
    sized = json.loads(body(client, "/is/image/sample/rose?wid=300&req=ctx,json").split("(", 1)[1][: -len(',"");')])
    assert sized["image.rect"] == "0,0,300,225"
    # The javascript form assigns into objects the page made first (image = new Object; …).
    js = body(client, "/is/image/sample/rose?req=ctx,javascript&scl=1")
    assert js.startswith("image.rect='0,0,1600,1200'\nimage.version='")
