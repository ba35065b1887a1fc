"""No request crashes the server: fuzzed query strings, paths and corrupt sources always get a clean
answer, and none shows internals at ErrorDetail 0 (tests/leaks.py: no traceback, storage key, serving
folder or bucket name; an error says its title only) — issue 8.8.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from leaks import assert_no_leak

ROOT = Path(__file__).resolve().parents[1]

COMMANDS = [
    "wid",
    "hei",
    "scl",
    "fit",
    "align",
    "bgc",
    "rgn",
    "rect",
    "dpr",
    "crop",
    "cropN",
    "extend",
    "rotate",
    "flip",
    "fmt",
    "qlt",
    "quantize",
    "resMode",
    "op_usm",
    "op_sharpen",
    "op_blur",
    "req",
    "id",
    "handler",
    "defaultImage",
    "cache",
    "template",
    "src",
    "layer",
    "size",
    "text",
    "color",
    "printRes",
    "iccEmbed",
    "jpegSize",
    "locale",
    "imageSet",
    "labelkey",
    "op_brightness",
    "op_hue",
    "unknownCmd",
    "$v",
    "$thumb$",
]
VALUES = st.one_of(
    st.sampled_from(
        [
            "",
            "0",
            "1",
            "-1",
            "100",
            "200,100",
            "0.5",
            "1e9",
            "abc",
            "fit,1",
            "crop",
            "png",
            "webp-alpha",
            "gif,,lzw",
            "ffffff",
            "0x80g",
            "-1,1",
            "0,0,50,50",
            "on,2",
            "lr",
            "90",
            "$v$",
            "is{sample/rose}",
            "is{a&b",
            "{\\rtf1 x}",
            "props,json",
            "imageset,xml,UTF-16",
            "exists",
            "set,json",
            "img",
            "99999999999999999999999",
            "%",
            "%zz",
            "%C3%A9",
            "a,b,c,d,e,f",
            "sample/rose",
            "/x",
            "../x",
        ]
    ),
    st.text(alphabet="abcxyz0189,.-+%$&={}()[]:;/ ", max_size=24),
)
TOKEN = st.one_of(
    st.tuples(st.sampled_from(COMMANDS), VALUES).map(lambda t: t[0] if t[0].endswith("$") else f"{t[0]}={t[1]}"),
    st.text(alphabet="&=$.%{}()ab", max_size=6),
)
PATHS = st.sampled_from(
    [
        "sample/rose",
        "sample/tulip",
        "sample/nothing",
        "Shop/SKU123",
        "sample",
        "",
        "x/y/z",
        "sample/%E9",
        "sample/a,b",
        "/sample/rose",
        "sample/rose/",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=PATHS, tokens=st.lists(TOKEN, max_size=6))
def test_fuzzed_queries_never_crash(client, path, tokens):
    url = f"/is/image/{path}?" + "&".join(tokens)
    _check(client.get(url), url, secrets=(str(ROOT),))


def _check(r, url: str, *, secrets: tuple[str, ...], statuses=(200, 304, 403)) -> None:
    path = r.request.url.path
    if (
        r.status_code == 404
        and path not in ("/is/image", "/is/content")
        and not path.startswith(("/is/image/", "/is/content/"))
    ):
        return  # the client resolved dot segments out of /is/... (RFC 3986): the router's plain 404
    assert r.status_code in statuses, (url, r.status_code, r.text[:300])
    if r.status_code >= 400:
        assert r.headers["cache-control"] == "no-cache, no-store, must-revalidate", url
    assert_no_leak(r, secrets=secrets, where=url)


# --- the grammar, structurally: what the flat token lists above rarely reach --------------------
# Path elements as attackers and CMSs spell them: encoded separators, dot segments, backslashes,
# NUL, invalid UTF-8, Latin-1, doubled slashes, very long and empty elements, catalog file names.
ELEMENTS = st.one_of(
    st.sampled_from(
        [
            "sample",
            "Shop",
            "rose",
            "rose.jpg",
            "SKU123",
            "size-chart",
            "size-chart.json",
            "",
            ".",
            "..",
            "%2e%2e",
            "%2E.",
            "%2F",
            "%2fcatalogs%2fdefault.ini",
            "%5C",
            "..%5C..%5Ccatalogs%5Cdefault.ini",
            "\\catalogs",
            "default.ini",
            "sample.ini",
            "rules.xml",
            "catalogs",
            "images",
            "static",
            "%00",
            "%ff%fe",
            "%C3%A9",
            "%E9",
            "a,b",
            "a;b",
            "%3F",
            "%23",
            "%25",
            "x" * 300,
        ]
    ),
    st.text(alphabet="abc.%2F5e\\/-_,;:~", max_size=12),
)
RAW_PATHS = st.lists(ELEMENTS, max_size=5).map("/".join)


def _query(depth: int):
    """A query string with the grammar's structure: commands (any case), macros, variable
    definitions and uses, comments, layers, encoded separators and nested requests (recursion)."""
    flat = st.one_of(
        st.tuples(st.sampled_from(COMMANDS), VALUES).map(lambda t: f"{t[0]}={t[1]}"),
        st.tuples(st.sampled_from(COMMANDS), VALUES).map(lambda t: f"{t[0].upper()}={t[1]}"),
        st.sampled_from(["$thumb$", "$card$", "$THUMB$", "$nosuch$", "$$", "$", "$a b$", ".comment=x", ".", "&&"]),
        st.tuples(st.sampled_from(["$v", "$object", "$size", "$text", "$a.b-c"]), VALUES).map("=".join),
        st.sampled_from(["wid=$v$", "text=$text$", "size=$size$", "src=$object$", "layer=$v$"]),
        st.tuples(st.integers(-1, 120), st.sampled_from(["", ",name", ",comp", ",x,y"])).map(
            lambda t: f"layer={t[0]}{t[1]}"
        ),
        st.sampled_from(["%26", "wid%3D100", "wid=100%26hei=50", "text=a+b", "fmt=png%00", "qlt=%2B80"]),
    )
    if depth <= 0:
        return st.lists(flat, max_size=6).map("&".join)
    nested = st.tuples(
        st.sampled_from(["src=is{", "src=IS{", "mask=is{", "src=is(", "src=ir{", "src=fxg{", "src={"]),
        st.sampled_from(["sample/rose", "sample/tulip", "Shop/SKU123", "", "sample/nothing", "/rose"]),
        _query(depth - 1),
        st.sampled_from(["}", ")", "", "}}", "}x"]),
    ).map(lambda t: f"{t[0]}{t[1]}?{t[2]}{t[3]}")
    return st.lists(st.one_of(flat, nested), max_size=6).map("&".join)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(context=st.sampled_from(["image", "content"]), path=RAW_PATHS, query=_query(2))
def test_fuzzed_paths_and_nested_queries_never_crash_or_leak(client, context, path, query):
    url = f"/is/{context}/{path}" + (f"?{query}" if query else "")
    _check(client.get(url), url, secrets=(str(ROOT),))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(context=st.sampled_from(["image", "content"]), path=RAW_PATHS, query=_query(1))
def test_fuzzed_requests_through_s3_never_name_the_bucket(s3_client, context, path, query):
    """The same grammar through S3Storage (moto): no reply names the bucket, an S3 key or a boto error."""
    url = f"/is/{context}/{path}" + (f"?{query}" if query else "")
    _check(s3_client.get(url), url, secrets=("imageserving-tests", str(ROOT)))


def test_corrupt_and_truncated_sources(bucket):
    root, write, make = bucket
    good = (root / "images/sample/rose.jpg").read_bytes()
    png = (root / "images/sample/tulip.png").read_bytes()
    rng = random.Random(7)
    variants = {
        "empty.jpg": b"",
        "text.jpg": b"hello, not an image",
        "half.jpg": good[: len(good) // 2],
        "header.jpg": good[:200],
        "halfpng.png": png[: len(png) // 2],
    }
    for i in range(6):
        data = bytearray(good)
        for _ in range(40):
            data[rng.randrange(200, len(data))] = rng.randrange(256)
        variants[f"flip{i}.jpg"] = bytes(data)
    write({f"images/sample/{name}": data for name, data in variants.items()})
    client = make()
    for name in variants:
        for query in ("wid=200", "wid=200&fmt=png&rotate=33", "req=imageprops,json", "fmt=webp&op_usm=1,1,5"):
            r = client.get(f"/is/image/sample/{name}?{query}&defaultImage=")
            assert r.status_code in (200, 403), (name, query, r.status_code, r.text[:300])
            if r.status_code == 403:
                assert r.headers["x-is-error"] in ("content_error", "size_limit", "bad_request", "not_found"), (
                    name,
                    query,
                    r.text,
                )


def test_the_leak_check_sees_a_detailed_error(bucket):
    """tests/leaks.py is not vacuous: at ErrorDetail 2 the same error names its key and fails it."""
    root, write, make = bucket
    write({"catalogs/loud.ini": "RootId=loud\nRootPath=sample/\nErrorDetail=2\nDefaultImage=\n"})
    client = make()
    quiet, loud = (client.get(f"/is/image/{cat}/none.png?defaultImage=") for cat in ("sample", "loud"))
    assert quiet.status_code == loud.status_code == 403
    assert_no_leak(quiet, secrets=(str(root),))
    with pytest.raises(AssertionError):
        assert_no_leak(loud, secrets=(str(root),))
