"""No request reads a key outside the configured roots; catalog files are never served (issue 8.1).

Every spelling an attacker tried — doubled slashes, encoded slashes, dot segments, backslashes —
in both contexts, against the sample bucket on a local folder and through S3 (moto).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from imageserving.storage import LocalStorage

ROOT = Path(__file__).resolve().parents[2]
CATALOG_TEXT = (b"RootId", b"CatalogFile", b"<ruleset", b"<ruleSet", b"RequestLock", b"Modifier")
ROSE = (ROOT / "images/sample/rose.jpg").read_bytes()

CONTENT_PATHS = [
    "/is/content//catalogs/default.ini",
    "/is/content/%2Fcatalogs%2Fdefault.ini",
    "/is/content/%2fcatalogs%2fdefault.ini",
    "/is/content/sample//catalogs/sample/rules.xml",
    "/is/content/sample/%2F%2Fcatalogs%2Fsample%2Frules.xml",
    "/is/content///catalogs/sample.ini",
    "/is/content/sample/..%2F..%2Fcatalogs%2Fdefault.ini",
    "/is/content/sample/%2e%2e/%2e%2e/catalogs/default.ini",
    "/is/content/sample/%5C..%5Ccatalogs%5Cdefault.ini",
    "/is/content/sample/..%5C..%5Ccatalogs%5Cdefault.ini",
    "/is/content/%5Ccatalogs%5Cdefault.ini",
    "/is/content//images/sample/rose.jpg",
    "/is/content/%2Fimages%2Fsample%2Frose.jpg",
    "/is/content/sample/%2e%2e/images/sample/rose.jpg",
]
IMAGE_PATHS = [
    "/is/image//catalogs/default.ini",
    "/is/image/%2Fcatalogs%2Fdefault.ini",
    "/is/image/sample/%2F%2Fcatalogs%2Fsample%2Frules.xml",
    "/is/image/sample/%2e%2e/%2e%2e/catalogs/default.ini",
    "/is/image/%5Ccatalogs%5Cdefault.ini",
    "/is/image/sample/..%5C..%5Ccatalogs%5Cdefault.ini",
    "/is/image//static/sample/size-chart.json",
    "/is/image/%2Fstatic%2Fsample%2Fbadge.svg",
]
QUERIES = ["", "?req=props", "?req=userdata", "?req=exists", "?req=imageprops", "?req=props,json"]


def _leaks(body: bytes) -> bool:
    return any(marker in body for marker in CATALOG_TEXT) or ROSE in body


@pytest.mark.parametrize("path", CONTENT_PATHS)
@pytest.mark.parametrize("query", QUERIES[:4])
def test_content_never_leaves_the_static_roots(client, path, query):
    r = client.get(path + query)
    assert not _leaks(r.content), (path, query, r.status_code, r.content[:200])
    if not query:
        assert r.status_code != 200, (path, r.content[:200])


@pytest.mark.parametrize("path", IMAGE_PATHS)
@pytest.mark.parametrize("query", QUERIES)
def test_image_never_leaves_the_image_roots(client, path, query):
    r = client.get(path + query)
    assert not _leaks(r.content), (path, query, r.status_code, r.content[:200])
    # A missing image gets the default image (an image) or an error; never the file as text.
    if r.status_code == 200 and not query:
        assert r.headers["content-type"].startswith("image/"), (path, r.headers)


def test_reads_stay_in_their_roots(bucket, monkeypatch):
    """Below the HTTP layer: every key the server reads for a hostile path is under a root."""
    root, _, make = bucket
    read: list[str] = []
    original = LocalStorage.fetch

    def spy(self, key):
        read.append(key)
        return original(self, key)

    client = make()
    client.get("/is/image/sample/rose")  # catalogs load first; only later reads count
    monkeypatch.setattr(LocalStorage, "fetch", spy)
    for path in CONTENT_PATHS:
        client.get(path)
    content_reads = list(read)
    read.clear()
    for path in IMAGE_PATHS:
        client.get(path)
    assert content_reads and all(k.startswith("static/") for k in content_reads), content_reads
    assert all(k.startswith("images/") for k in read), read


def test_static_records_still_work(client):
    assert client.get("/is/content/sample/size-chart").status_code == 200
    assert client.get("/is/content/sample/badge").headers["content-type"].startswith("image/svg")


def test_s3_content_never_serves_catalogs(s3_client):
    for path in CONTENT_PATHS[:6]:
        r = s3_client.get(path)
        assert r.status_code != 200 and not _leaks(r.content), path
