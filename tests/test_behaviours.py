"""Behaviours that must match the reference exactly (issue 11, "Behaviours that differ from the
reference"): each test names the spec section it holds the server to."""

from __future__ import annotations

import io

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
