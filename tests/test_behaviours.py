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
