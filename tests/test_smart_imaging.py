"""Smart Imaging through the whole request (issue 10): the same unchanged URL gets AVIF, WebP or
JPEG by the browser's Accept, with Vary, the saving header and distinct ETags; bfc= / Bfc /
IS_BFC switch it; an explicit fmt= is kept; dpr=on and network=on follow client hints; the
error model's images negotiate too."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from conftest import local_client
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CHROME = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
SAFARI_15 = "image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5"
CURL = "*/*"
URL = "/is/image/sample/rose?wid=400"  # no fmt=: the catalog's JPEG


def _get(client, url, accept=CURL, **headers):
    return client.get(url, headers={"Accept": accept, **headers})


def _image(reply) -> Image.Image:
    img = Image.open(io.BytesIO(reply.content))
    img.load()
    return img


@pytest.mark.parametrize(
    "accept, media, pil",
    [(CHROME, "image/avif", "AVIF"), (SAFARI_15, "image/webp", "WEBP"), (CURL, "image/jpeg", "JPEG")],
)
def test_one_unchanged_url_answers_each_browser_in_its_best_format(client, accept, media, pil):
    reply = _get(client, URL, accept)
    assert reply.status_code == 200 and reply.headers["content-type"] == media
    assert _image(reply).format == pil and _image(reply).size == (400, 300)
    assert reply.headers["vary"] == "Accept"  # curl's JPEG depended on Accept as well


def test_negotiated_replies_say_what_they_saved_and_have_their_own_etags(client):
    replies = {a: _get(client, URL, a) for a in (CHROME, SAFARI_15, CURL)}
    jpeg = len(replies[CURL].content)
    for accept in (CHROME, SAFARI_15):
        kind, saved = replies[accept].headers["x-is-smart-imaging"].split("; saved=")
        assert kind in ("avif", "webp") and int(saved) == jpeg - len(replies[accept].content) > 0
    assert "x-is-smart-imaging" not in replies[CURL].headers
    assert len({r.headers["etag"] for r in replies.values()}) == 3
    # A browser revalidating its copy gets 304 for its own format only.
    etag = replies[CHROME].headers["etag"]
    assert _get(client, URL, CHROME, **{"If-None-Match": etag}).status_code == 304
    assert _get(client, URL, CURL, **{"If-None-Match": etag}).status_code == 200


def test_the_cdn_normalised_accept_is_read_first(client):
    reply = _get(client, URL, CURL, **{"X-IS-Accept": "webp", "X-IS-DPR": "1", "X-IS-Net": "fast"})
    assert reply.headers["content-type"] == "image/webp"


@pytest.mark.parametrize(
    "url, media",
    [
        ("/is/image/sample/rose?wid=400&fmt=jpg", "image/jpeg"),  # typed into the URL: kept
        ("/is/image/sample/rose?wid=400&fmt=png", "image/png"),
        ("/is/image/sample/rose?wid=400&fmt=webp", "image/webp"),
        ("/is/image/sample/rose?wid=400&fmt=jpg&bfc=on", "image/avif"),  # unless the URL asks
        ("/is/image/sample/rose?wid=400&bfc=off", "image/jpeg"),
        ("/is/image/sample/rose?wid=400&jpegSize=30", "image/jpeg"),  # only JPEG has a size target
        ("/is/image/sample/rose?$thumb$", "image/webp"),  # the preset's PNG: lossless WebP
        ("/is/image/sample/rose?wid=400&fmt=gif", "image/gif"),
    ],
)
def test_what_converts_and_what_is_kept(client, url, media):
    assert _get(client, url, CHROME).headers["content-type"] == media


def test_an_explicit_format_does_not_vary(client):
    assert "vary" not in _get(client, "/is/image/sample/rose?wid=400&fmt=jpg", CHROME).headers


def test_catalog_bfc_and_the_operator_switch(bucket):
    root, write, make = bucket
    assert _get(make(bfc=False), URL, CHROME).headers["content-type"] == "image/jpeg"
    assert _get(make(bfc=False), URL + "&bfc=on", CHROME).headers["content-type"] == "image/avif"
    ini = (root / "catalogs/sample.ini").read_text()
    write({"catalogs/sample.ini": ini + "\nBfc=0\n"})
    assert _get(make(), URL, CHROME).headers["content-type"] == "image/jpeg"


def test_fallback_images_negotiate_and_stay_short_lived(client):
    reply = _get(client, "/is/image/sample/nothing?wid=200", CHROME)
    assert reply.status_code == 200 and reply.headers.get("x-is-default-image") == "1"
    assert reply.headers["content-type"] == "image/avif" and "Accept" in reply.headers["vary"]
    age = int(reply.headers["cache-control"].split("max-age=")[1].split(",")[0])
    assert age <= 3600  # DefaultExpiration, never the record's long TTL
    error = _get(client, "/is/image/Shop/SKU123?wid=abc", CHROME)
    assert error.headers["x-is-error"] == "bad_request" and "no-store" in error.headers["cache-control"]


@pytest.mark.parametrize(
    "hint, size",
    [
        ({}, (400, 300)),
        ({"Sec-CH-DPR": "2"}, (800, 600)),
        ({"DPR": "1.5"}, (600, 450)),
        ({"X-IS-DPR": "3", "X-IS-Accept": "none", "X-IS-Net": "fast"}, (1200, 900)),
    ],
)
def test_dpr_on_takes_the_clients_pixel_ratio(client, hint, size):
    reply = _get(client, "/is/image/sample/rose?wid=400&dpr=on&fmt=png", CURL, **hint)
    assert _image(reply).size == size
    assert "Sec-CH-DPR" in reply.headers["vary"] and "DPR" in reply.headers["vary"]


@pytest.mark.parametrize("query, vary", [("dpr=1&network=true", True), ("dpr=on,2&network=0", False)])
def test_vary_names_the_hints_a_flag_in_any_spelling_reads(client, query, vary):
    reply = _get(client, f"/is/image/sample/rose?wid=400&fmt=png&{query}", CURL, **{"Sec-CH-DPR": "2"})
    assert _image(reply).size == (800, 600)
    names = reply.headers.get("vary", "")
    assert ("Sec-CH-DPR" in names and "ECT" in names) == vary


def test_dpr_from_hints_is_clamped_by_maxpix(client):
    # MaxPix 2000,2000 (default.ini): 1600 px at DPR 3 would be 4800.
    reply = _get(client, "/is/image/sample/rose?wid=1600&dpr=on&fmt=png", CURL, **{"Sec-CH-DPR": "3"})
    assert _image(reply).size[0] == 2000


@pytest.mark.parametrize(
    "hint",
    [
        {"ECT": "2g"},
        {"Save-Data": "on"},
        {"Downlink": "0.4"},
        {"X-IS-Net": "slow", "X-IS-Accept": "none", "X-IS-DPR": "1"},
    ],
)
def test_network_on_lowers_quality_and_turns_dpr_off_on_slow_connections(client, hint):
    url = "/is/image/sample/rose?wid=400&fmt=jpg&network=on&dpr=on,2"
    fast, slow = _get(client, url, CURL), _get(client, url, CURL, **hint)
    assert _image(fast).size == (800, 600) and _image(slow).size == (400, 300)
    assert "ECT" in slow.headers["vary"] and "Save-Data" in slow.headers["vary"]
    same_size = _get(client, "/is/image/sample/rose?wid=400&fmt=jpg&network=on", CURL)
    slow_same = _get(client, "/is/image/sample/rose?wid=400&fmt=jpg&network=on", CURL, **hint)
    assert len(slow_same.content) < len(same_size.content)


def test_without_network_on_hints_change_nothing(client):
    url = "/is/image/sample/rose?wid=400&fmt=jpg"
    assert _get(client, url, CURL, ECT="2g").content == _get(client, url, CURL).content


def test_local_client_default_is_on():
    assert _get(local_client(ROOT), URL, CHROME).headers["content-type"] == "image/avif"
