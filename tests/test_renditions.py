"""Large replies (issue 13.4): over the inline limit, an opt-in rendition prefix stores the reply
and answers 302 to a presigned URL, tested against a real moto server (the URL is fetched over
HTTP like a browser would); by default such a reply stays the documented size_limit error."""

from __future__ import annotations

import io
import socket
import urllib.request
from pathlib import Path

import boto3
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from test_events import upload_sample_bucket

from imageserving.app import create_app
from imageserving.settings import Settings
from imageserving.storage import S3Storage

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "renditions-test"
ZOOM = "/is/image/sample/rose?wid=4000&fmt=png"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3():
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=BUCKET)
    upload_sample_bucket(client, BUCKET)
    # A zoom catalog: MaxPix high enough for a 4000 px reply.
    ini = (ROOT / "catalogs/default.ini").read_text().replace("MaxPix=2000,2000", "MaxPix=4000,4000")
    client.put_object(Bucket=BUCKET, Key="catalogs/default.ini", Body=ini.encode())
    yield client
    server.stop()


def _app(s3, **overrides) -> TestClient:
    # The sample rose is smooth: its 4000 px PNG is 1.8 MB, where a real photograph's is over the
    # 4.4 MB default. A 1 MB inline limit puts it over the line as a photograph would be.
    overrides.setdefault("max_response_bytes", 1_000_000)
    settings = Settings.from_env({}, storage="s3", bucket=BUCKET, catalog_settle_seconds=0, **overrides)
    return TestClient(create_app(settings, S3Storage(BUCKET, client=s3)), follow_redirects=False)


def test_by_default_a_reply_over_the_inline_limit_is_a_size_limit_error(s3):
    reply = _app(s3).get(ZOOM)
    assert reply.status_code == 403 and reply.headers["x-is-error"] == "size_limit"


def test_a_4000px_png_redirects_to_a_stored_rendition_that_opens_as_the_right_image(s3):
    app = _app(s3, rendition_prefix="renditions/")
    reply = app.get(ZOOM)
    assert reply.status_code == 302, reply.text
    location = reply.headers["location"]
    assert "/renditions/" in location and "Signature=" in location
    assert "etag" not in reply.headers and reply.content == b""
    age = int(reply.headers["cache-control"].split("max-age=")[1])
    assert 0 < age <= 1800  # never longer than the presigned URL stays valid
    with urllib.request.urlopen(location) as body:  # what the browser does with the redirect
        assert body.headers["Content-Type"] == "image/png"
        img = Image.open(io.BytesIO(body.read()))
    assert img.size == (4000, 3000) and img.format == "PNG"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="renditions/")["Contents"]]
    assert len(keys) == 1 and keys[0].endswith(".png")
    # The same request again: the same key, nothing stored twice.
    assert app.get(ZOOM).headers["location"].split("?")[0] == location.split("?")[0]
    assert len(s3.list_objects_v2(Bucket=BUCKET, Prefix="renditions/")["Contents"]) == 1


def test_small_replies_stay_inline_and_a_base_url_replaces_the_presigned_one(s3):
    app = _app(s3, rendition_prefix="renditions/", rendition_base_url="https://cdn.example/")
    assert app.get("/is/image/sample/rose?wid=200").status_code == 200
    reply = app.get(ZOOM)
    assert reply.status_code == 302 and reply.headers["location"].startswith("https://cdn.example/renditions/")


def test_fallback_images_never_become_renditions(s3):
    # Error and default images must fit inline: only the request's own image is stored.
    app = _app(s3, rendition_prefix="renditions/", max_response_bytes=1000)
    reply = app.get("/is/image/sample/nothing?wid=2000&fmt=png")
    assert reply.status_code in (200, 403) and reply.status_code != 302
    assert len(reply.content) <= 1000 or reply.headers.get("x-is-error")


def test_a_rendition_prefix_inside_the_readable_roots_is_refused():
    with pytest.raises(ValueError, match="overlaps"):
        Settings.from_env({"IS_RENDITION_PREFIX": "images/renditions"})
    with pytest.raises(ValueError, match="overlaps"):
        Settings.from_env({"IS_RENDITION_PREFIX": "catalogs/"})
