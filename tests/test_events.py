"""Replay the API Gateway HTTP API events of events/ through the Lambda handler, in process, on moto S3.

The same expectations are checked against the *built* function in test_built_handler.py.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
HANDLER = ROOT / "functions" / "imageserving" / "handler.py"
BUCKET = "imageserving-events"
# The sample bucket is the repository's top-level folders of the same names (catalogs.md §16.1).
SAMPLE_PREFIXES = ("catalogs", "images", "static")


def upload_sample_bucket(s3, bucket: str) -> int:
    """Copy the repository's sample bucket into ``bucket``; returns the number of objects."""
    count = 0
    for prefix in SAMPLE_PREFIXES:
        folder = ROOT / prefix
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            s3.put_object(Bucket=bucket, Key=path.relative_to(ROOT).as_posix(), Body=path.read_bytes())
            count += 1
    return count


def load_event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def _header(response: dict, name: str) -> str:
    return next((v for k, v in response.get("headers", {}).items() if k.lower() == name), "")


def _image(response: dict) -> Image.Image:
    assert response["isBase64Encoded"] is True, "image bodies must go out base64-encoded"
    img = Image.open(io.BytesIO(base64.b64decode(response["body"])))
    img.load()
    return img


def _text(response: dict) -> str:
    body = response.get("body") or ""
    return base64.b64decode(body).decode("utf-8", "replace") if response.get("isBase64Encoded") else body


def check_image(response: dict) -> None:
    """GET /is/image/sample/rose?wid=300&fmt=png: the 1600×1200 rose scaled to 300 px wide."""
    assert response["statusCode"] == 200, _text(response)
    assert _header(response, "content-type") == "image/png"
    img = _image(response)
    assert (img.format, img.size) == ("PNG", (300, 225))
    # The sample catalog's Expiration=24 hours reaches the CDN.
    assert "max-age=86400" in _header(response, "cache-control")
    assert _header(response, "etag")


def check_missing(response: dict) -> None:
    """GET /is/image/sample/no-such-image: the catalog's default image (200) or a not-found error (403)."""
    status = response["statusCode"]
    assert status in (200, 403), _text(response)
    if status == 403:
        assert _header(response, "content-type").startswith("text/plain")
        body = _text(response)
        assert "Traceback" not in body and "no-such-image" not in body  # ErrorDetail=0 names nothing
        assert "no-store" in _header(response, "cache-control")
    else:
        assert _header(response, "content-type").startswith("image/")
        _image(response)


def check_preset(response: dict) -> None:
    """GET /is/image/sample/rose?$thumb$: the sample catalog's own thumb macro (160×160 PNG) wins
    over the default catalog's (100×100 JPEG). The preset's fmt=png is not the URL's own, and the
    browser's Accept takes WebP: Smart Imaging answers lossless WebP, saying so in Vary."""
    assert response["statusCode"] == 200, _text(response)
    assert _header(response, "content-type") == "image/webp"
    assert _header(response, "vary") == "Accept" and _header(response, "x-is-smart-imaging").startswith("webp")
    img = _image(response)
    assert (img.format, img.size) == ("WEBP", (160, 160))


def check_not_modified(response: dict) -> None:
    """The image request again with ``If-None-Match: *``: the client's copy is current."""
    assert response["statusCode"] == 304, _text(response)
    assert not response.get("body")
    assert _header(response, "etag")


def _check_jsonp(response: dict, body: str) -> None:
    assert response["statusCode"] == 200, _text(response)
    assert _header(response, "content-type").startswith("text/javascript")
    assert response["isBase64Encoded"] is False, "text bodies must go out as text"
    assert response["body"] == body
    # attribute::NonImgExpiration, 0.1 hours by default.
    assert "max-age=360" in _header(response, "cache-control")


def check_exists_json(response: dict) -> None:
    """GET /is/image/sample/rose?req=exists,json&handler=s7R_1: JSONP with the caller's callback."""
    _check_jsonp(response, '/*jsonp*/s7R_1({"catalogRecord.exists":"1"},"");')


def check_imageset_json(response: dict) -> None:
    """GET /is/image/sample/shoes?req=imageset,json&id=shoes1: the record's ImageSet field, verbatim."""
    _check_jsonp(
        response,
        '/*jsonp*/s7jsonResponse({"IMAGE_SET":"sample/shoe-red;sample/tulip,'
        'sample/shoe-blue;{0x1e90ff Dodger blue},sample/rose"},"shoes1");',
    )


def check_error_image(response: dict) -> None:
    """GET /is/image/Shop/SKU123?wid=abc&fmt=png: the Shop catalog's error template, 200 but never cached."""
    assert response["statusCode"] == 200, _text(response)
    assert _header(response, "x-is-error") == "bad_request"
    assert "no-store" in _header(response, "cache-control") and not _header(response, "etag")
    img = _image(response)
    assert (img.format, img.size) == ("PNG", (300, 300))  # the template's size: the bad wid is dropped


CASES: dict[str, Callable[[dict], None]] = {
    "error-image.json": check_error_image,
    "exists-json.json": check_exists_json,
    "imageset-json.json": check_imageset_json,
    "image.json": check_image,
    "missing.json": check_missing,
    "preset.json": check_preset,
    "not-modified.json": check_not_modified,
}


def test_every_event_file_has_a_case():
    assert sorted(p.name for p in EVENTS.glob("*.json")) == sorted(CASES)


@pytest.fixture(scope="module")
def handler():
    with pytest.MonkeyPatch.context() as mp, mock_aws():
        for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
            mp.delenv(name, raising=False)
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.setenv("IS_BUCKET", BUCKET)
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        assert upload_sample_bucket(s3, BUCKET) > 0
        # Imported only now, so the app's S3 client is created inside the mock.
        spec = importlib.util.spec_from_file_location("lambda_handler_under_test", HANDLER)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module.handler


@pytest.mark.parametrize("name", sorted(CASES))
def test_event(handler, name):
    CASES[name](handler(load_event(name), None))
