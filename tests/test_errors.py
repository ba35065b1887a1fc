"""The error model (protocol.md §12): kinds × formats × ErrorDetail levels, error and default images.

A catalog full of planted secrets (ids, keys, root paths, exception text) proves that level 0 never
leaks them, in bodies or headers, whatever failed.
"""

from __future__ import annotations

import io
import json
import struct
import zlib

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from imageserving.app import create_app
from imageserving.errors import ISError
from imageserving.settings import Settings
from imageserving.storage import LocalStorage

SECRETS = ("s3cr3t", "secretRecord42", "hidden-root", "missing-file-q9", "corrupt-q9", "kaboom", "bucket-x")
TITLES = {
    "not_found": "Image not found",
    "bad_request": "Invalid request",
    "refused": "Request refused",
    "size_limit": "Image size limit exceeded",
    "content_error": "Unable to process image",
    "server_error": "Internal server error",
    "overload": "Server busy",
}
STATUS = {"server_error": 500, "overload": 503}


def huge_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width × height pixels (never decoded by the server)."""
    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    ihdr = data[12:29]
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


class FaultyStorage(LocalStorage):
    """Local storage whose reads of certain keys fail the way S3 and bugs do."""

    def fetch(self, key):
        if "boom" in key:
            raise RuntimeError("kaboom in bucket-x for s3cr3t key " + key)
        if "slow" in key:
            raise ISError("overload", f"S3 SlowDown on GET {key} in bucket-x")
        return super().fetch(key)


@pytest.fixture
def secret_app(bucket):
    root, write, _ = bucket
    write(
        {
            "catalogs/s3cr3t.ini": "RootId=s3cr3tCat\nRootPath=hidden-root/\nCatalogFile=s3cr3t/images.txt\n"
            "DefaultImage=\nErrorImage=\nErrorDetail=0\n",
            "catalogs/s3cr3t/images.txt": "Id\tPath\nsecretRecord42\tmissing-file-q9.jpg\ncorruptRec\tcorrupt-q9.jpg\n"
            "hugeRec\thuge.png\nboomRec\tboom.jpg\nslowRec\tslow.jpg\ngoodRec\tgood.jpg\n",
            "images/hidden-root/corrupt-q9.jpg": b"\xff\xd8\xff\xe0 s3cr3t garbage, not a JPEG",
            "images/hidden-root/huge.png": huge_png(20000, 20000),
            "images/hidden-root/good.jpg": (root / "images/sample/shoe.jpg").read_bytes(),
        }
    )

    def make(level: int, **overrides) -> TestClient:
        ini = (root / "catalogs/s3cr3t.ini").read_text().replace("ErrorDetail=0", f"ErrorDetail={level}")
        (root / "catalogs/s3cr3t.ini").write_text(ini.split("ErrorDetail=")[0] + f"ErrorDetail={level}\n")
        settings = Settings.from_env({}, storage="local", local_root=str(root), catalog_settle_seconds=0, **overrides)
        return TestClient(create_app(settings, FaultyStorage(root)))

    return make


# kind -> (path, query for an image request, query for a property request or None)
CASES = {
    "not_found": ("s3cr3tCat/secretRecord42", "wid=100", "req=imageprops"),
    "bad_request": ("s3cr3tCat/secretRecord42", "wid=s3cr3t", "req=exists&handler=s3cr3t-handler"),
    "refused": ("s3cr3tCat/secretRecord42", None, "req=saveToFile"),
    "size_limit": ("s3cr3tCat/hugeRec", "wid=100", "req=imageprops"),
    "content_error": ("s3cr3tCat/corruptRec", "wid=100", "req=imageprops"),
    "server_error": ("s3cr3tCat/boomRec", "wid=100", "req=imageprops"),
    "overload": ("s3cr3tCat/slowRec", "wid=100", "req=imageprops"),
}
FORMATS = {
    "text": "text/plain; charset=UTF-8",
    "javascript": "text/javascript; charset=UTF-8",
    "xml": "text/xml; charset=UTF-8",
    "json": "text/javascript; charset=UTF-8",
}


def requests_for(kind: str):
    path, img_query, prop_query = CASES[kind]
    if img_query:
        yield "img", f"/is/image/{path}?{img_query}", "text"
    if prop_query:
        for fmt in FORMATS:
            if kind == "refused" and fmt != "text":
                continue  # saveToFile answers in text only
            q = prop_query.replace("req=imageprops", f"req=imageprops,{fmt}").replace("req=exists", f"req=exists,{fmt}")
            yield fmt, f"/is/image/{path}?{q}&id=r1", fmt


def unescape(text: str) -> str:
    """Undo Java-properties escaping (protocol.md §8.2)."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            out.append({"n": "\n", "t": "\t", "r": "\r", "f": "\f"}.get(text[i + 1], text[i + 1]))
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def parse_error(body: str, fmt: str) -> tuple[str, str]:
    if fmt == "text":
        lines = body.split("\n")
        assert lines[0].startswith("error.title=") and lines[1].startswith("error.message=")
        return unescape(lines[0][12:]), unescape("\n".join(lines[1:]).rstrip("\n")[14:])
    if fmt == "javascript":
        title, message = body.split("\n", 1)
        return title[len("error.title='") : -1], message.rstrip("\n")[len("error.message='") : -1]
    if fmt == "xml":
        import xml.etree.ElementTree as ET

        root = ET.fromstring(body.encode())
        props = {p.get("name"): p.get("value") for p in root.iter("property")}
        return props["title"], props["message"]
    assert body.startswith("/*jsonp*/s7jsonError(") and body.endswith(',"r1");')
    payload = json.loads(body[len("/*jsonp*/s7jsonError(") : -len(',"r1");')])
    assert list(payload) == ["message", "title"]
    return payload["title"], payload["message"]


@pytest.mark.parametrize("level", [0, 2, 3])
@pytest.mark.parametrize("kind", list(CASES))
def test_error_kind_format_level(secret_app, kind, level):
    client = secret_app(level)
    for label, url, fmt in requests_for(kind):
        r = client.get(url)
        assert r.status_code == STATUS.get(kind, 403), (label, url, r.text)
        assert r.headers["content-type"] == FORMATS[fmt], url
        assert r.headers["cache-control"] == "no-cache, no-store, must-revalidate"
        assert "etag" not in r.headers and "last-modified" not in r.headers
        assert r.headers["x-is-error"] == kind
        title, message = parse_error(r.text, fmt)
        assert title == TITLES[kind], (url, r.text)
        if level == 0:
            assert message == title
            everything = r.text + json.dumps(dict(r.headers))
            assert not [s for s in SECRETS if s.lower() in everything.lower()], (url, r.text)
        else:
            assert message.startswith(title + ": "), (url, r.text)
        has_trace = "Traceback" in r.text
        assert has_trace == (level == 3 and kind == "server_error" and fmt == "text"), (url, r.text)


def test_not_found_status_is_configurable(secret_app):
    r = secret_app(0, errors=Settings().errors.__class__(not_found_status=404)).get(
        "/is/image/s3cr3tCat/secretRecord42"
    )
    assert r.status_code == 404


def test_jsonp_error_status_option(secret_app):
    client = secret_app(0, jsonp_error_status=200)
    assert client.get("/is/image/s3cr3tCat/secretRecord42?req=imageprops,json").status_code == 200
    assert client.get("/is/image/s3cr3tCat/secretRecord42?req=imageprops,xml").status_code == 403


# ------------------------------------------------------------------------------- error image
def test_error_image_success_is_200_not_cacheable(client):
    r = client.get("/is/image/Shop/SKU123?wid=abc&fmt=png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.headers["x-is-error"] == "bad_request"
    assert r.headers["cache-control"] == "no-cache, no-store, must-revalidate" and "etag" not in r.headers
    assert Image.open(io.BytesIO(r.content)).size == (300, 300)  # the template's size; bad wid dropped


def test_error_image_keeps_valid_wid_hei_fmt(client):
    r = client.get("/is/image/Shop/SKU123?wid=150&hei=120&fmt=gif&crop=bad")
    assert r.status_code == 200 and r.headers["content-type"] == "image/gif"
    assert Image.open(io.BytesIO(r.content)).size == (150, 120)


def test_error_image_message_follows_error_detail(bucket):
    root, write, make = bucket
    write({"catalogs/default-images.txt": "Id\tPath\tModifier\nonError\t\tsize=120,290&text=$error.message$\n"})

    def inked_rows(level: int) -> int:
        ini = (root / "catalogs/shop.ini").read_text().split("ErrorDetail=")[0] + f"ErrorDetail={level}\n"
        write({"catalogs/shop.ini": ini})
        r = make().get("/is/image/Shop/SKU123?wid=zzz&fmt=png")
        assert r.status_code == 200
        img = Image.open(io.BytesIO(r.content)).convert("L")
        assert img.size == (120, 290)
        return img.point(lambda v: 255 if v < 128 else 0).getbbox()[3]

    # Level 0 prints the title alone; level 3 prints the level-2 detail (wrapped, several lines)
    # and never a traceback, which would fill the whole box.
    short, detailed = inked_rows(0), inked_rows(3)
    assert short < 20 < detailed < 200


def test_error_image_failure_returns_original_error(bucket):
    root, write, make = bucket
    write({"catalogs/shop.ini": "RootId=Shop\nRootPath=sample/\nErrorImage=no-such-error-image.png\n"})
    r = make().get("/is/image/Shop/rose.jpg?wid=abc")
    assert r.status_code == 403 and r.headers["x-is-error"] == "bad_request"
    assert r.text == "error.title=Invalid request\nerror.message=Invalid request\n"


def test_error_image_kinds_can_be_limited(bucket):
    _, _, make = bucket
    client = make(errors=Settings().errors.__class__(error_image_kinds=frozenset({"not_found"})))
    r = client.get("/is/image/Shop/SKU123?wid=abc")
    assert r.status_code == 403  # processing errors keep <img onerror> working


def test_error_image_absent_inherits_empty_disables(bucket):
    root, write, make = bucket
    write(
        {
            "catalogs/default.ini": (root / "catalogs/default.ini")
            .read_text()
            .replace("ErrorImage=", "ErrorImage=onError")
        }
    )
    client = make()
    assert client.get("/is/image/sample/rose?wid=abc").status_code == 200  # sample.ini: absent -> inherits
    write({"catalogs/sample.ini": (root / "catalogs/sample.ini").read_text() + "ErrorImage=\n"})
    assert make().get("/is/image/sample/rose?wid=abc").status_code == 403  # defined-but-empty disables


def test_error_image_not_for_property_requests(client):
    r = client.get("/is/image/Shop/nothing?req=imageprops,json")
    assert r.status_code == 403 and r.text.startswith("/*jsonp*/s7jsonError(")


# ----------------------------------------------------------------------------- default image
def test_default_image_mode0_keeps_only_wid_hei_fmt_qlt(client):
    r = client.get("/is/image/sample/nothing?wid=120&fmt=png&rotate=90&crop=0,0,10,10&bgc=ff0000")
    assert r.status_code == 200 and r.headers["x-is-default-image"] == "1"
    img = Image.open(io.BytesIO(r.content))
    assert img.format == "PNG" and img.size == (120, 120)
    assert "max-age=1800" in r.headers["cache-control"]  # noimage record: Expiration=0.5 h
    assert "etag" in r.headers


def test_default_image_is_byte_stable(client):
    a = client.get("/is/image/sample/nothing?wid=90")
    b = client.get("/is/image/sample/other-missing?wid=90")
    assert a.status_code == b.status_code == 200 and a.content == b.content


def test_default_image_override_and_disable(client):
    r = client.get("/is/image/sample/nothing?wid=100&defaultImage=sample/tulip")
    assert r.status_code == 200 and "max-age=3600" in r.headers["cache-control"]  # DefaultExpiration 1 h
    assert Image.open(io.BytesIO(r.content)).size == (100, 150)
    r = client.get("/is/image/sample/nothing?wid=100&defaultImage=")
    assert r.status_code == 403 and r.headers["x-is-error"] == "not_found"


def test_default_image_only_for_missing_sources(client):
    assert client.get("/is/image/sample/nothing?req=imageprops").status_code == 403
    assert client.get("/is/image/sample/rose?wid=abc").status_code == 403


def test_missing_default_image_gives_original_not_found(client):
    r = client.get("/is/image/sample/nothing?defaultImage=also-missing")
    assert r.status_code == 403 and r.headers["x-is-error"] == "not_found"


def test_default_image_mode1_keeps_layer_commands(bucket):
    root, write, make = bucket
    write(
        {
            "catalogs/default.ini": (root / "catalogs/default.ini")
            .read_text()
            .replace("DefaultImageMode=0", "DefaultImageMode=1")
        }
    )
    r = make().get("/is/image/sample/nothing?wid=100&crop=0,0,300,150&fmt=png")
    assert r.status_code == 200 and r.headers["x-is-default-image"] == "1"
    assert Image.open(io.BytesIO(r.content)).size == (100, 50)  # the crop still applied


def test_default_image_absent_inherits_empty_disables(bucket):
    root, write, make = bucket
    write({"catalogs/sample.ini": (root / "catalogs/sample.ini").read_text() + "DefaultImage=\n"})
    assert make().get("/is/image/sample/nothing").status_code == 403


# ---------------------------------------------------------------------------------- limits
def test_response_size_limit_is_a_clear_error(bucket):
    _, _, make = bucket
    r = make(max_response_bytes=2000).get("/is/image/sample/rose?wid=1000&fmt=png")
    assert r.status_code == 403 and r.headers["x-is-error"] == "size_limit"


def test_source_pixel_cap_refuses_before_decoding(secret_app):
    r = secret_app(2).get("/is/image/s3cr3tCat/hugeRec?wid=10")
    assert r.status_code == 403 and "400000000" in r.text


def test_other_paths_and_methods(client):
    assert client.get("/is/elsewhere").status_code == 404
    r = client.post("/is/image/sample/rose")
    assert r.status_code == 405 and "GET" in r.headers.get("allow", "")


def test_head_has_headers_and_no_body(client):
    get = client.get("/is/image/sample/rose?wid=50")
    head = client.head("/is/image/sample/rose?wid=50")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["etag"] == get.headers["etag"]
    assert head.headers["content-length"] == str(len(get.content))


def test_default_catalog_requests_can_be_refused(bucket):
    _, _, make = bucket
    client = make(allow_default_catalog_requests=False)
    r = client.get("/is/image/sample-free/rose.jpg")
    assert r.status_code == 403 and r.headers["x-is-error"] == "refused"
    assert client.get("/is/image/sample/rose?wid=10").status_code == 200
    assert client.get("/is/image?req=catalogprops").status_code == 200


def test_other_paths_answer_plain_text(client):
    r = client.get("/favicon.ico")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/plain")
    r = client.put("/is/image/sample/rose")
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    "url, kind",
    [
        ("/is/image/sample/rose?src=ir{cat/scene?obj=a}", "bad_request"),  # no Image Rendering here
        ("/is/image/sample/rose?src=fxg{x}", "bad_request"),
        ("/is/image/sample?size=200,200&text={\\rtf1\\fs999999 W}", "bad_request"),
        ("/is/image/sample/" + "a/" * 600 + "rose?defaultImage=", "bad_request"),  # key longer than S3 allows
    ],
)
def test_hostile_requests_get_clean_errors(client, url, kind):
    r = client.get(url)
    assert r.status_code == 403 and r.headers["x-is-error"] == kind, r.text


def test_huge_query_strings_are_refused(client):
    server = client.app.state.server  # the HTTP client itself refuses URLs this long
    reply = server.handle("GET", "sample/rose", "wid=1&" + "x" * 70000, {})
    assert reply.status == 403 and reply.headers["X-IS-Error"] == "bad_request"


def test_long_words_wrap_quickly(client):
    import time

    start = time.perf_counter()
    r = client.get("/is/image/sample?size=20,20&fmt=png&text={\\rtf1 " + "W" * 3000 + "}")
    assert r.status_code == 200 and time.perf_counter() - start < 2


def test_variables_reach_request_attributes(client):
    r = client.get("/is/image/sample/rose?$r=exists,json&req=$r$")
    assert r.text == '/*jsonp*/s7jsonResponse({"catalogRecord.exists":"1"},"");'


def test_unsafe_rule_header_values_are_dropped(client):
    r = client.get("/is/image/sample/rose?wid=20&$Edge-Control=caf%C3%A9")
    assert r.status_code == 200 and "edge-control" not in r.headers


def test_absurd_catalog_expirations_stay_valid_http(bucket):
    root, write, make = bucket
    write(
        {
            "catalogs/sample/images.txt": (root / "catalogs/sample/images.txt").read_text(encoding="latin-1")
            + "forever\trose.jpg\t\t\t1e300\t\t\t\t\t\t\t\n"
        }
    )
    r = make().get("/is/image/sample/forever?wid=20")
    assert r.status_code == 200 and r.headers["cache-control"] == "public, max-age=31536000"


@pytest.mark.parametrize(
    "path",
    [
        "sample?size=30000,30000&color=ff0000&wid=100",  # a 900 MP solid layer
        "sample/rose?crop=-50000,-50000,100000,100000&rotate=3&wid=100",  # overhang beyond any source
        "sample/rose?rotate=1&extend=0,0,50000,50000&wid=100",
    ],
)
def test_huge_composites_are_refused_before_allocation(client, path):
    r = client.get(f"/is/image/{path}")
    assert r.status_code == 403 and r.headers["x-is-error"] == "size_limit", r.text


def test_arbitrary_rotation_is_drawn_at_view_resolution(client):
    import resource
    import time

    start = time.perf_counter()
    r = client.get("/is/image/sample/rose?rotate=33&wid=200&fmt=png")
    assert r.status_code == 200 and time.perf_counter() - start < 1.5
    img = Image.open(io.BytesIO(r.content))
    assert img.width == 200
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < 2_000_000  # KB: nothing exploded


def test_plain_solid_layers_scale_without_full_size_buffers(client):
    r = client.get("/is/image/sample?size=9000,9000&color=00ff00&wid=90&fmt=png")
    assert r.status_code == 200
    img = Image.open(io.BytesIO(r.content)).convert("RGB")
    assert img.size == (90, 90) and img.getpixel((45, 45)) == (0, 255, 0)


@pytest.mark.parametrize(
    "path",
    [
        "sample/rose?wid=100&hei=100&layer=0&crop=0,0,1,99999999&layer=1&src=rose",
        "sample/rose?wid=2000&hei=2000&layer=1&color=ff0000&size=1,99999999",
        "marked/rose?wid=2000&hei=2000&crop=0,0,1,99999999",
    ],
)
def test_thin_giant_layers_stay_cheap(client, path):
    import resource
    import time

    start = time.perf_counter()
    r = client.get(f"/is/image/{path}")
    assert r.status_code in (200, 403) and time.perf_counter() - start < 3, r.text
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < 2_000_000


def test_render_pixel_cap_holds_whatever_maxpix_says(bucket):
    root, write, make = bucket
    write({"catalogs/big.ini": "RootId=big\nRootPath=sample/\nMaxPix=99999,99999\n"})
    r = make().get("/is/image/big/rose.jpg?wid=20000&hei=20000")
    assert r.status_code == 403 and r.headers["x-is-error"] == "size_limit"


def test_nested_fan_out_is_bounded(client):
    layers = "&".join(f"layer={i}&src=is{{sample/rose?wid=50}}" for i in range(1, 40))
    r = client.get(f"/is/image/sample?size=100,100&color=ffffff&{layers}")
    assert r.status_code == 403 and r.headers["x-is-error"] == "bad_request"


def test_content_errors_for_other_types_are_text(client):
    r = client.get("/is/content/sample/size-chart?req=set")
    assert r.status_code == 403 and r.headers["content-type"].startswith("text/plain")
