"""Storage: S3 through boto3 (moto, and injected faults) and the local folder, same key layout."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ReadTimeoutError
from botocore.stub import Stubber
from fastapi.testclient import TestClient
from moto import mock_aws

from imageserving.app import create_app
from imageserving.errors import ISError
from imageserving.settings import Settings
from imageserving.storage import LocalStorage, S3Storage, check_key

ROOT = Path(__file__).resolve().parents[1]

BUCKET = "is-test-bucket"


@pytest.fixture
def s3(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        for folder in ("catalogs", "images"):
            for path in sorted((ROOT / folder).rglob("*")):
                if path.is_file():
                    client.put_object(Bucket=BUCKET, Key=path.relative_to(ROOT).as_posix(), Body=path.read_bytes())
        yield client


def test_app_serves_from_s3(s3):
    app = create_app(Settings.from_env({}, bucket=BUCKET, catalog_settle_seconds=0))
    client = TestClient(app)
    r = client.get("/is/image/sample/rose?wid=300&fmt=png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert client.get("/is/image/sample/nothing?defaultImage=").status_code == 403
    r2 = client.get("/is/image/sample/rose?wid=300&fmt=png", headers={"If-None-Match": r.headers["etag"]})
    assert r2.status_code == 304 and r2.content == b""


def test_s3_and_local_agree(s3):
    remote, local = S3Storage(BUCKET, client=s3), LocalStorage(ROOT)
    key = "images/sample/rose.jpg"
    assert remote.fetch(key).data == local.fetch(key).data
    assert remote.fetch("images/sample/none.jpg") is None and local.fetch("images/sample/none.jpg") is None
    assert {o.key for o in remote.list("catalogs/")} == {o.key for o in local.list("catalogs/")}


@pytest.mark.parametrize(
    "code, status, expected",
    [
        ("NoSuchKey", 404, None),
        ("AccessDenied", 403, None),  # a missing key without s3:ListBucket
        ("SlowDown", 503, "overload"),
        ("ServiceUnavailable", 503, "overload"),
        ("InternalError", 500, "overload"),  # S3 asks to retry: 503 for the client too
        ("NoSuchBucket", 404, None),
        ("InvalidObjectState", 403, None),
        ("PermanentRedirect", 301, "server_error"),
        ("KMS.DisabledException", 400, "server_error"),
    ],
)
def test_s3_faults_map_to_error_kinds(code, status, expected):
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    storage = S3Storage("bucket-x", client=client)
    with Stubber(client) as stub:
        stub.add_client_error("get_object", service_error_code=code, http_status_code=status)
        if expected is None:
            assert storage.fetch("images/a.jpg") is None
            return
        with pytest.raises(ISError) as e:
            storage.fetch("images/a.jpg")
    assert e.value.kind == expected
    assert "bucket-x" not in e.value.title


def test_s3_timeouts_are_overload():
    class Slow:
        def get_object(self, **kw):
            raise ReadTimeoutError(endpoint_url="https://s3")

    with pytest.raises(ISError) as e:
        S3Storage("b", client=Slow()).fetch("images/a.jpg")
    assert e.value.kind == "overload"


@pytest.mark.parametrize("key", ["../etc/passwd", "images/../../x", "/abs", "a\x00b", "a\\..\\b", "images/./x", ""])
def test_keys_cannot_escape(key, tmp_path):
    with pytest.raises(ISError) as e:
        check_key(key)
    assert e.value.kind == "bad_request"
    with pytest.raises(ISError):
        LocalStorage(tmp_path).fetch(key)


def test_url_paths_cannot_escape_the_image_root(client):
    for path in ("/is/image/sample/..%2F..%2Fcatalogs%2Fdefault.ini", "/is/image/sample/%2e%2e/x"):
        r = client.get(path + "?defaultImage=")
        assert r.status_code == 403 and r.headers["x-is-error"] == "bad_request", path
