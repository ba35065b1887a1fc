"""Behaviours that must match the reference exactly (issue 11, "Behaviours that differ from the
reference"): each test names the spec section it holds the server to."""

from __future__ import annotations

import io
import json
import os
from datetime import datetime, timezone
from email.utils import formatdate

import pytest
from PIL import Image

NOT_CACHEABLE = "no-cache, no-store, must-revalidate"
AVIF_FIRST = "image/avif,image/webp,*/*"


def get(client, url: str, **headers):
    return client.get(url, headers=headers)


# --- jpegSize= (rendering.md §11.6, §17: E_RENDER → content_error, protocol.md §12.1)


def test_jpeg_size_that_no_quality_meets_is_a_content_error(client):
    r = get(client, "/is/image/sample/rose?wid=400&jpegSize=0.1")
    assert (r.status_code, r.headers["x-is-error"], r.headers["cache-control"]) == (403, "content_error", NOT_CACHEABLE)
    assert r.content == b"error.title=Unable to process image\nerror.message=Unable to process image\n"
    # Smart Imaging must not escape the limit by sending another format (negotiate keeps JPEG).
    negotiated = get(client, "/is/image/sample/rose?wid=400&jpegSize=0.1", accept=AVIF_FIRST)
    assert (negotiated.status_code, negotiated.headers["x-is-error"]) == (403, "content_error")


def test_jpeg_size_lowers_the_quality_until_the_reply_fits(client):
    full = get(client, "/is/image/sample/rose?wid=400&qlt=95")
    limit_kb = len(full.content) / 2048
    fitted = get(client, f"/is/image/sample/rose?wid=400&qlt=95&jpegSize={limit_kb}")
    assert fitted.status_code == 200 and fitted.headers["content-type"] == "image/jpeg"
    assert len(fitted.content) <= limit_kb * 1024 < len(full.content)
    assert Image.open(io.BytesIO(fitted.content)).size == (400, 300)
    # A limit the requested quality already meets changes nothing.
    roomy = get(client, f"/is/image/sample/rose?wid=400&qlt=95&jpegSize={len(full.content)}")
    assert roomy.content == full.content


# --- layer names and src= targets (rendering.md §4.1, §17; catalogs.md §6.3, §7.4)


def _error_kind(r) -> tuple[int, str]:
    return r.status_code, r.headers.get("x-is-error", "")


@pytest.mark.parametrize(
    "url",
    [
        # one name bound to two layers
        "/is/image/sample?layer=0&src=rose&size=200,200&layer=1,a&src=tulip&layer=2,a&src=shoe",
        "/is/image/sample?layer=0,a&src=rose&layer=1,A&src=tulip",  # names compare case-insensitively
        # comp is the composite, never a name
        "/is/image/sample?layer=0&size=100,100&layer=1,comp&src=rose",
        # a template record is not a source: its layers would have nowhere to go
        "/is/image/sample?layer=0&src=rose&size=200,200&layer=1&src=frame",
        "/is/image/sample?layer=0&src=rose&size=200,200&layer=1&src=layered",
        "/is/image/sample?src=frame",
    ],
)
def test_bad_layer_names_and_template_sources_are_bad_requests(client, url):
    assert _error_kind(get(client, url)) == (403, "bad_request")


@pytest.mark.parametrize(
    "url",
    [
        "/is/image/sample?layer=0&size=100,100&layer=1,x&layer=1,x&src=rose",  # same name, same layer
        "/is/image/sample?layer=0&size=100,100&layer=1,x&src=rose&layer=1,y&layer=x&opac=50",  # two names
        "/is/image/sample?layer=0&src=rose&size=200,200&layer=1&src=is{sample/rose?template=frame}",  # nested
        "/is/image/sample/rose?template=frame",
    ],
)
def test_legal_names_and_nested_templates_render(client, url):
    r = get(client, url)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg", r.text[:200]


def test_a_template_without_a_source_of_its_own_is_no_src_target(bucket):
    """catalogs.md §6.3/§7.4: a record with an empty Path and its body in the Modifier is a
    template even when the body names no source (a solid badge); ``src=`` of it is refused,
    while the same template as the URL object or through a nested request renders."""
    root, write, make = bucket
    images = (root / "catalogs/sample/images.txt").read_text(encoding="latin-1")
    write({"catalogs/sample/images.txt": images.rstrip("\n") + "\nbadge\t\tsize=40,20&color=ff0000\n"})
    app = make()
    assert _error_kind(get(app, "/is/image/sample?layer=0&src=rose&size=200,200&layer=1&src=badge")) == (
        403,
        "bad_request",
    )
    assert get(app, "/is/image/sample/badge").status_code == 200
    nested = get(app, "/is/image/sample?layer=0&src=rose&size=200,200&layer=1&src=is{sample/badge}")
    assert nested.status_code == 200


# --- Last-Modified (catalogs.md §3.4 date/time, §5.2, §5.3, §6.9, §8.3)

LM_INI = (
    "RootId=lm\nRootPath=sample/\nCatalogFile=lm/images.txt\nStaticContentCatalogFile=lm/static.txt\n"
    "StaticContentRootPath=sample/\nUseLastModified=1\nExpiration=1\nTimeStamp=05/06/2026 07:08:09 GMT+02:00\n"
)
LM_IMAGES = (
    "Id\tPath\tTimeStamp\tModifier\n"
    "old\trose.jpg\t01/02/2026 03:04:05 GMT\t\n"
    "new\ttulip.png\t1772323200000\t\n"  # milliseconds: 03/01/2026 00:00:00 UTC
    "zone\tshoe.jpg\t06/15/2026 10:00:00 PDT\t\n"
    "offset\tshoe.jpg\t06/15/2026 10:00:00 GMT -7\t\n"
    "bad\tshoe.jpg\t13/45/2026 10:00:00 PDT\t\n"
    "plain\tshoe.jpg\t\t\n"
    "tpl\t\t07/01/2026 00:00:00 GMT\tsrc=$object$&wid=100\n"
)
LM_STATIC = "Id\tPath\tTimeStamp\nchart\tsize-chart.json\t02/03/2026 04:05:06 GMT\nnostamp\tsize-chart.json\t\n"
INI_DATE = datetime(2026, 4, 1, 12, 0, tzinfo=timezone.utc)  # the .ini's own modification time


def http(dt: datetime) -> str:
    return formatdate(dt.timestamp(), usegmt=True)


@pytest.fixture
def lm(bucket):
    root, write, make = bucket
    write({"catalogs/lm.ini": LM_INI, "catalogs/lm/images.txt": LM_IMAGES, "catalogs/lm/static.txt": LM_STATIC})
    os.utime(root / "catalogs/lm.ini", (INI_DATE.timestamp(),) * 2)
    return root, make()


def modified(app, url: str) -> str:
    r = get(app, url)
    assert r.status_code == 200, r.text[:200]
    return r.headers.get("last-modified", "")


@pytest.mark.parametrize(
    "obj, expected",
    [
        ("old", datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
        ("new", datetime(2026, 3, 1, tzinfo=timezone.utc)),
        ("zone", datetime(2026, 6, 15, 17, tzinfo=timezone.utc)),  # PDT = GMT-7
        ("offset", datetime(2026, 6, 15, 17, tzinfo=timezone.utc)),
        ("bad", INI_DATE),  # malformed: straight to the .ini's date, not attribute::TimeStamp
        ("plain", datetime(2026, 5, 6, 5, 8, 9, tzinfo=timezone.utc)),  # attribute::TimeStamp
    ],
)
def test_last_modified_follows_every_timestamp_form(lm, obj, expected):
    assert modified(lm[1], f"/is/image/lm/{obj}?wid=50") == http(expected)


def test_a_composites_last_modified_is_the_newest_involved(lm):
    root, app = lm
    newest = http(datetime(2026, 3, 1, tzinfo=timezone.utc))
    assert modified(app, "/is/image/lm?layer=0&src=old&size=200,200&layer=1&src=new") == newest
    assert modified(app, "/is/image/lm?layer=0&src=new&size=200,200&layer=1&src=old") == newest
    assert modified(app, "/is/image/lm?layer=0&src=old&size=200,200&layer=1&src=is{lm/new?wid=50}") == newest
    # a template record is involved too, and so is the URL object it places
    assert modified(app, "/is/image/lm/old?template=tpl") == http(datetime(2026, 7, 1, tzinfo=timezone.utc))
    # a plain file layer brings its storage date
    later = datetime(2027, 1, 1, tzinfo=timezone.utc)
    os.utime(root / "images/sample/rose.jpg", (later.timestamp(),) * 2)
    assert modified(app, "/is/image/lm?layer=0&src=old&size=200,200&layer=1&src=rose.jpg") == http(later)


def test_static_content_last_modified_follows_the_record_then_the_catalog(lm):
    _, app = lm
    assert modified(app, "/is/content/lm/chart") == http(datetime(2026, 2, 3, 4, 5, 6, tzinfo=timezone.utc))
    # no static::TimeStamp: attribute::TimeStamp, not the file's date
    assert modified(app, "/is/content/lm/nostamp") == http(datetime(2026, 5, 6, 5, 8, 9, tzinfo=timezone.utc))


def test_timestamp_attribute_is_never_inherited_from_default_ini(bucket):
    """catalogs.md §5.2: a catalog without TimeStamp uses its own .ini's date, not default.ini's."""
    root, write, make = bucket
    default = (root / "catalogs/default.ini").read_text(encoding="latin-1")
    write({"catalogs/default.ini": default.rstrip("\n") + "\nTimeStamp=01/01/1999 00:00:00 GMT\n"})
    os.utime(root / "catalogs/sample.ini", (INI_DATE.timestamp(),) * 2)
    assert modified(make(), "/is/image/sample/rose?wid=50") == http(INI_DATE)


# --- req=resolve and PostModifier (protocol.md §8.18; catalogs.md §7.1, AMBIG-11)


def resolved(client, url: str) -> str:
    r = get(client, url)
    assert r.status_code == 200 and r.text.endswith("\n"), r.text
    return r.text[:-1]


def test_resolve_merges_a_src_records_modifier_as_rendering_does(client):
    # layer 0 named by src=: the record's Modifier in front, and (no record of the request's
    # own) its PostModifier after the URL — the tulip record: bgc=eeeeee&wid=200 / qlt=95
    assert resolved(client, "/is/image/sample?req=resolve&src=tulip&wid=80") == (
        "sample?bgc=eeeeee&wid=80&qlt=95&src=tulip"
    )
    # the request's own record keeps the PostModifier role; the src= record brings its Modifier
    assert resolved(client, "/is/image/sample/rose?req=resolve&src=tulip") == "sample/rose?bgc=eeeeee&wid=200&src=tulip"
    # a further layer's src= record: its layer commands only, never its PostModifier
    line = resolved(client, "/is/image/sample?req=resolve&layer=0&size=300,300&layer=1,top&src=tulip&layer=top&opac=50")
    assert line == "sample?layer=0&size=300,300&layer=1&src=tulip&opac=50"


def test_resolve_follows_template_and_ignores_the_path_objects_post_modifier(client):
    # template=: the template record is the request's record, the URL object only $object$
    # (layer 0's src= is the tulip record: its Modifier goes first, frame's values override it)
    line = resolved(client, "/is/image/sample/tulip?req=resolve&template=frame")
    assert line == "sample/frame?bgc=dddddd&wid=240&hei=240&src=sample/tulip"
    assert "qlt=95" not in line  # tulip's PostModifier is not applied (AMBIG-11)


def test_post_modifier_of_layer_0s_only_record_applies_when_rendering(client):
    """``/is/image/sample?src=tulip``: tulip is layer 0's only record, so its PostModifier qlt=95
    applies exactly as for ``/is/image/sample/tulip`` (the same reply bytes)."""
    by_src = get(client, "/is/image/sample?src=tulip&wid=80")
    by_path = get(client, "/is/image/sample/tulip?wid=80")
    assert by_src.status_code == by_path.status_code == 200
    assert by_src.content == by_path.content


# --- AllowDirectAccess (catalogs.md §13.5, AMBIG-15; protocol.md §5.5)


def _with_direct_access(bucket, value: str | None):
    root, write, make = bucket
    ini = (root / "catalogs/sample.ini").read_text(encoding="latin-1")
    if value is not None:
        ini = ini.rstrip("\n") + f"\nAllowDirectAccess={value}\n"
    write({"catalogs/sample.ini": ini})
    return make()


@pytest.mark.parametrize(
    "value, image_path, static_path",
    [
        (None, True, True),  # built-in exclude: (AMBIG-15)
        ("exclude:", True, True),
        ("IS,STATIC", True, True),  # no keyword: include
        ("include:", False, False),
        ("", False, False),  # empty = include: with no types
        ("include:STATIC", False, True),
        ("exclude:is", False, True),  # types compare case-insensitively
        ("Include:IS", True, False),
    ],
)
def test_allow_direct_access_opens_and_closes_paths_by_type(bucket, value, image_path, static_path):
    app = _with_direct_access(bucket, value)
    # records are never affected
    assert get(app, "/is/image/sample/rose?wid=40").status_code == 200
    assert get(app, "/is/content/sample/size-chart").status_code == 200
    # a closed path answers like a missing image: not_found, or the default image when one is set
    file_url = "/is/image/sample/rose.jpg?wid=40&defaultImage="
    layer_url = "/is/image/sample?layer=0&size=80,80&layer=1&src=rose.jpg&defaultImage="
    for url in (file_url, layer_url):
        r = get(app, url)
        assert (r.status_code == 200) if image_path else (_error_kind(r) == (403, "not_found")), url
    r = get(app, "/is/content/sample/size-chart.json")
    assert (r.status_code == 200) if static_path else (_error_kind(r) == (403, "not_found"))


def test_a_closed_path_gets_the_default_image_and_reveals_nothing(bucket):
    app = _with_direct_access(bucket, "include:")
    missing = get(app, "/is/image/sample/no-such-file.jpg?wid=40")
    closed = get(app, "/is/image/sample/rose.jpg?wid=40")
    assert closed.status_code == 200 and closed.headers.get("x-is-default-image") == "1"
    assert closed.content == missing.content  # same reply whether the file exists or not


def test_a_closed_path_in_an_image_set_reads_as_a_missing_file(bucket):
    """File paths named in ``imageSet=`` (or a record's ImageSet) obey AllowDirectAccess like a
    request for the path itself: a closed one is an item without ``dx``/``dy``/``iv``, exactly like
    a file that does not exist, so the set tells nothing about which files exist (protocol.md §5.5).
    Records in the set are never affected."""
    url = "/is/image/sample?req=set,json&imageSet={rose,rose.jpg,no-such-file.jpg}"
    opened = _set_items(get(_with_direct_access(bucket, None), url))
    assert [("dx" in i) for i in opened] == [True, True, False]
    closed = _set_items(get(_with_direct_access(bucket, "include:STATIC"), url))
    assert [("dx" in i) for i in closed] == [True, False, False]
    assert closed[1] == {**closed[2], "i": {"n": "rose.jpg"}, "s": {"n": "rose.jpg"}}
    # the path itself as the set's object is missing too
    app = _with_direct_access(bucket, "include:")
    assert _error_kind(get(app, "/is/image/sample/rose.jpg?req=set")) == (403, "not_found")


def _set_items(reply) -> list[dict]:
    """The items of a ``req=set,json`` reply (JSONP around ``{"set":…}``)."""
    text = reply.text.removeprefix("/*jsonp*/s7jsonResponse(").removesuffix(',"");')
    return json.loads(text)["set"]["item"]
