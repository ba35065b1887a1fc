"""The S3 fault matrix (issue 8.2): throttling, 5xx, timeouts and unreachable endpoints on every
kind of object the server reads answer 503, are never remembered as "no such record", and the
next request after the fault clears is served again. A fault on one catalog costs the others
nothing.

The bucket is moto's; the faults are injected below boto3's parsing (a ``before-send`` handler
answers in S3's place, or raises botocore's own timeout/connection errors), so the error codes
go through botocore exactly as a real S3 answer would. botocore's retries are switched off: the
matrix tests what the server does once botocore gives up.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from fastapi.testclient import TestClient

from imageserving.app import create_app
from imageserving.settings import Settings
from imageserving.storage import S3Storage

BUCKET = "imageserving-faults"


class _Body:
    def __init__(self, data: bytes):
        self.data = data

    def stream(self, **_):
        yield self.data


def _s3_error(code: str, status: int) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>injected {code}</Message></Error>'
    ).encode()


# fault name -> what S3 (or the network) does
FAULTS = {
    "SlowDown": ("http", 503, _s3_error("SlowDown", 503)),
    "InternalError": ("http", 500, _s3_error("InternalError", 500)),
    "BadGateway": ("http", 502, b"<html><body>502 Bad Gateway</body></html>"),
    "ReadTimeout": ("raise", "ReadTimeoutError", None),
    "EndpointConnection": ("raise", "EndpointConnectionError", None),
}


class Faults:
    """Faults by key (``LIST:<prefix>`` for a listing); counts the requests that reached S3."""

    def __init__(self, client):
        self.active: dict[str, str] = {}
        self.stalled: dict[str, threading.Event] = {}  # key -> released when set (a stalled S3 call)
        self.sent: list[str] = []
        client.meta.events.register("before-send.s3", self._send)

    def _send(self, request, **_):
        from botocore.awsrequest import AWSResponse
        from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

        url = urlsplit(request.url)
        query = parse_qs(url.query)
        key = unquote(url.path).lstrip("/")
        if key.startswith(BUCKET + "/"):  # path-style addressing
            key = key[len(BUCKET) + 1 :]
        if "list-type" in query:
            key = "LIST:" + query.get("prefix", [""])[0]
        self.sent.append(key)
        gate = self.stalled.get(key)
        if gate is not None:
            gate.wait(30)
        fault = self.active.get(key)
        if fault is None:
            return None
        how, a, b = FAULTS[fault]
        if how == "http":
            return AWSResponse(request.url, a, {}, _Body(b))
        if a == "ReadTimeoutError":
            raise ReadTimeoutError(endpoint_url=request.url, error="Read timed out")
        raise EndpointConnectionError(endpoint_url=request.url)


@pytest.fixture(scope="module")
def moto_bucket():
    import boto3
    from moto import mock_aws
    from test_events import upload_sample_bucket

    with pytest.MonkeyPatch.context() as mp, mock_aws():
        for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
            mp.delenv(name, raising=False)
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        upload_sample_bucket(s3, BUCKET)
        yield s3


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _server(**overrides):
    """A cold server on the moto bucket: (TestClient, Faults, Clock for its catalog store)."""
    import boto3
    from botocore.config import Config

    client = boto3.client("s3", config=Config(retries={"mode": "standard", "total_max_attempts": 1}))
    faults = Faults(client)
    settings = Settings.from_env({}, storage="s3", bucket=BUCKET, catalog_settle_seconds=0, **overrides)
    app = create_app(settings, storage=S3Storage(BUCKET, client=client))
    clock = Clock()
    store = app.state.server.catalogs
    store.clock = store.backoff.clock = clock
    return TestClient(app), faults, clock


@pytest.fixture
def server(moto_bucket):
    """The fault matrix asserts what a refresh does, on the request after the fault clears: a
    generous refresh wait keeps a loaded test machine from turning that into a race."""
    return _server(catalog_refresh_wait_s=10)


@pytest.fixture
def stall_server(moto_bucket):
    """The server as deployed (IS_CATALOG_REFRESH_WAIT_S at its default), for the stall tests."""
    return _server()


def _assert_unavailable(r):
    assert r.status_code == 503, (r.status_code, r.text[:200])
    assert r.headers["x-is-error"] == "overload"
    assert "no-store" in r.headers["cache-control"]
    assert BUCKET not in r.text and "catalogs/" not in r.text  # ErrorDetail 0: the title only


ROSE = "/is/image/sample/rose?wid=40"
SHOE = "/is/image/rose?wid=40"  # the default catalog: images/rose.jpg is no record, a plain file


@pytest.mark.parametrize("fault", FAULTS)
def test_a_catalog_data_file_at_first_use(server, fault):
    client, faults, clock = server
    faults.active["catalogs/sample/images.txt"] = fault
    _assert_unavailable(client.get(ROSE))
    # Not remembered as "no record": a record id, req=exists and the static records all wait for S3.
    _assert_unavailable(client.get("/is/image/sample/rose?req=exists"))
    # Failed twice: within the backoff S3 is not asked again.
    before = len(faults.sent)
    _assert_unavailable(client.get(ROSE))
    assert faults.sent[before:].count("catalogs/sample/images.txt") == 0
    # Other catalogs and the default catalog are served meanwhile.
    assert client.get("/is/image/Shop/rose?wid=40").status_code == 200
    del faults.active["catalogs/sample/images.txt"]
    clock.now += 5  # past the longest backoff
    r = client.get(ROSE)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"


@pytest.mark.parametrize("fault", FAULTS)
def test_recovery_on_the_next_request(server, fault):
    """One failed read: the very next request tries S3 again (no wait before the first retry)."""
    client, faults, _ = server
    faults.active["catalogs/sample/images.txt"] = fault
    _assert_unavailable(client.get(ROSE))
    del faults.active["catalogs/sample/images.txt"]
    assert client.get(ROSE).status_code == 200


@pytest.mark.parametrize("fault", FAULTS)
def test_default_ini_data_file_at_cold_start(server, fault):
    client, faults, clock = server
    faults.active["catalogs/default-images.txt"] = fault
    # A record of another catalog needs nothing of the default catalog's records.
    assert client.get(ROSE).status_code == 200
    # An id the sample catalog lacks falls back to the default catalog (§5.4): unknown until read.
    _assert_unavailable(client.get("/is/image/sample/no-such-id?wid=40"))
    _assert_unavailable(client.get("/is/image/noimage?wid=40"))
    del faults.active["catalogs/default-images.txt"]
    clock.now += 5
    r = client.get("/is/image/noimage?wid=40")
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/")
    # ... and the default image is back for missing images.
    r = client.get("/is/image/sample/no-such-id?wid=40")
    assert r.status_code == 200 and r.headers.get("x-is-default-image") == "1"


@pytest.mark.parametrize("fault", FAULTS)
def test_default_ini_itself_at_cold_start(server, fault):
    client, faults, clock = server
    faults.active["catalogs/default.ini"] = fault
    _assert_unavailable(client.get(ROSE))
    _assert_unavailable(client.get(ROSE + "&req=props"))
    del faults.active["catalogs/default.ini"]
    clock.now += 5
    assert client.get(ROSE).status_code == 200


@pytest.mark.parametrize("fault", FAULTS)
def test_the_catalog_listing_at_cold_start(server, fault):
    client, faults, clock = server
    faults.active["LIST:catalogs/"] = fault
    _assert_unavailable(client.get(ROSE))
    _assert_unavailable(client.get(ROSE))  # failed twice in a row: the backoff answers ...
    before = len(faults.sent)
    for _ in range(3):
        _assert_unavailable(client.get(ROSE))
    assert faults.sent[before:].count("LIST:catalogs/") == 0  # ... without asking S3
    del faults.active["LIST:catalogs/"]
    clock.now += 5
    assert client.get(ROSE).status_code == 200


@pytest.mark.parametrize("fault", FAULTS)
def test_a_new_catalog_ini_at_cold_start(server, fault):
    """Never read yet: its requests answer 503 (not the default catalog's "not found"), others 200."""
    client, faults, clock = server
    faults.active["catalogs/sample.ini"] = fault
    _assert_unavailable(client.get(ROSE))
    assert client.get("/is/image/Shop/rose?wid=40").status_code == 200
    assert client.get(SHOE).status_code == 200
    del faults.active["catalogs/sample.ini"]
    clock.now += 5
    assert client.get(ROSE).status_code == 200


@pytest.mark.parametrize("fault", FAULTS)
def test_a_changed_ini_keeps_its_last_good_version(server, moto_bucket, fault):
    client, faults, clock = server
    assert client.get("/is/image/sample/rose?req=props").status_code == 200
    original = moto_bucket.get_object(Bucket=BUCKET, Key="catalogs/sample.ini")["Body"].read()
    moto_bucket.put_object(Bucket=BUCKET, Key="catalogs/sample.ini", Body=original + b"PublishInfo=v2\n")
    try:
        faults.active["catalogs/sample.ini"] = fault
        clock.now += 11  # past the refresh interval
        for url in (ROSE, "/is/image/Shop/rose?wid=40", SHOE):
            assert client.get(url).status_code == 200, url
        assert "sample catalog v1" in client.get("/is/image/sample?req=catalogprops").text
        del faults.active["catalogs/sample.ini"]
        clock.now += 5
        assert "v2" in client.get("/is/image/sample?req=catalogprops").text
    finally:
        moto_bucket.put_object(Bucket=BUCKET, Key="catalogs/sample.ini", Body=original)


def _point_sample_at_a_new_data_file(moto_bucket) -> bytes:
    """Change sample.ini to read sample/images2.txt (its table plus a ``daisy`` row); returns the
    original .ini for the test to put back."""
    original = moto_bucket.get_object(Bucket=BUCKET, Key="catalogs/sample.ini")["Body"].read()
    moto_bucket.put_object(
        Bucket=BUCKET, Key="catalogs/sample.ini", Body=original.replace(b"sample/images.txt", b"sample/images2.txt")
    )
    table = moto_bucket.get_object(Bucket=BUCKET, Key="catalogs/sample/images.txt")["Body"].read()
    moto_bucket.put_object(Bucket=BUCKET, Key="catalogs/sample/images2.txt", Body=table + b"daisy\trose.jpg\n")
    return original


@pytest.mark.parametrize("fault", FAULTS)
def test_a_changed_catalog_in_use_switches_once_its_data_files_read(server, moto_bucket, fault):
    client, faults, clock = server
    assert client.get(ROSE).status_code == 200
    original = _point_sample_at_a_new_data_file(moto_bucket)
    try:
        faults.active["catalogs/sample/images2.txt"] = fault
        clock.now += 11
        assert client.get(ROSE).status_code == 200  # the last good version
        assert client.get("/is/image/sample/daisy?req=exists").text.strip().endswith("0")
        del faults.active["catalogs/sample/images2.txt"]
        clock.now += 5
        assert client.get("/is/image/sample/daisy?req=exists").text.strip().endswith("1")
    finally:
        moto_bucket.put_object(Bucket=BUCKET, Key="catalogs/sample.ini", Body=original)
        moto_bucket.delete_object(Bucket=BUCKET, Key="catalogs/sample/images2.txt")


@pytest.mark.parametrize("fault", FAULTS)
def test_a_revalidation_listing_fault_keeps_serving(server, fault):
    client, faults, clock = server
    assert client.get(ROSE).status_code == 200
    faults.active["LIST:catalogs/"] = fault
    clock.now += 11
    assert client.get(ROSE).status_code == 200
    assert client.get("/is/image/Shop/rose?wid=40").status_code == 200


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize(
    "url,key",
    [
        (ROSE, "images/sample/rose.jpg"),
        ("/is/content/sample/size-chart.json", "static/sample/size-chart.json"),
    ],
)
def test_source_files(server, fault, url, key):
    """A source image or static file: 503 while faulted (no default image: it is not missing)."""
    client, faults, _ = server
    assert client.get(url).status_code == 200
    faults.active[key] = fault
    r = client.get(url)
    _assert_unavailable(r)
    assert "x-is-default-image" not in r.headers
    del faults.active[key]
    assert client.get(url).status_code == 200


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize(
    "url", ["/is/image/sample/no-such-id?wid=40", "/is/image/sample/no-such-id?wid=40&req=tmb", "/is/image/nothing.jpg"]
)
def test_the_default_image(server, fault, url):
    """A fault on the default image (images/defaults/noimage.png) is not a missing image: 503, not
    the 403 of a missing source, and the next request after the fault gets the default image."""
    client, faults, _ = server
    r = client.get(url)
    assert r.status_code == 200 and r.headers.get("x-is-default-image") == "1"
    faults.active["images/defaults/noimage.png"] = fault
    r = client.get(url)
    _assert_unavailable(r)
    assert "x-is-default-image" not in r.headers
    del faults.active["images/defaults/noimage.png"]
    r = client.get(url)
    assert r.status_code == 200 and r.headers.get("x-is-default-image") == "1"


@pytest.mark.parametrize("fault", ["SlowDown", "ReadTimeout"])
def test_the_default_image_of_mode_1_layers(server, moto_bucket, fault):
    """DefaultImageMode=1 swaps the default image in for a missing layer source: a fault on it
    is the request's 503 as well."""
    client, faults, clock = server
    moto_bucket.put_object(
        Bucket=BUCKET, Key="catalogs/mode1.ini", Body=b"RootId=mode1\nRootPath=sample/\nDefaultImageMode=1\n"
    )
    try:
        clock.now += 11  # pick the new catalog up
        url = "/is/image/mode1/rose.jpg?wid=60&layer=1&src=mode1/missing.jpg&size=20,20"
        r = client.get(url)
        assert r.status_code == 200, r.text[:200]
        faults.active["images/defaults/noimage.png"] = fault
        _assert_unavailable(client.get(url))
        del faults.active["images/defaults/noimage.png"]
        assert client.get(url).status_code == 200
    finally:
        moto_bucket.delete_object(Bucket=BUCKET, Key="catalogs/mode1.ini")


def _timed(client, url):
    start = time.perf_counter()
    r = client.get(url)
    return r, time.perf_counter() - start


def test_a_stalled_revalidation_listing_costs_other_requests_nothing(stall_server, moto_bucket):
    """Issue 8.3: the listing hangs; every catalog is served from the last good set at once, the
    request that found the refresh due waits at most IS_CATALOG_REFRESH_WAIT_S, one listing is in
    flight however many requests come, and the change shows up once the listing returns."""
    client, faults, clock = stall_server
    for url in (ROSE, "/is/image/Shop/rose?wid=40", SHOE):
        assert client.get(url).status_code == 200
    original = moto_bucket.get_object(Bucket=BUCKET, Key="catalogs/sample.ini")["Body"].read()
    moto_bucket.put_object(Bucket=BUCKET, Key="catalogs/sample.ini", Body=original + b"PublishInfo=v2\n")
    gate = faults.stalled["LIST:catalogs/"] = threading.Event()
    try:
        clock.now += 11  # the refresh is due
        r, first = _timed(client, "/is/image/Shop/rose?wid=40")
        assert r.status_code == 200
        assert first < 0.25 + 0.5, first  # the bound (0.25 s) and a margin for a loaded machine
        urls = [ROSE, "/is/image/Shop/rose?wid=40", SHOE, "/is/image/sample?req=catalogprops"] * 10
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda u: _timed(client, u), urls))
        assert all(r.status_code == 200 for r, _ in results)
        slowest = max(t for _, t in results)
        assert slowest < 0.5, slowest  # nobody waits for the stalled listing (it hangs for up to 30 s)
        assert "sample catalog v1" in client.get("/is/image/sample?req=catalogprops").text  # last good set
        assert faults.sent.count("LIST:catalogs/") == 1 + 1  # cold start + the one refresh in flight
    finally:
        gate.set()
    deadline = time.monotonic() + 10
    while "v2" not in client.get("/is/image/sample?req=catalogprops").text:
        assert time.monotonic() < deadline, "the refreshed catalog never showed up"
        time.sleep(0.02)
    moto_bucket.put_object(Bucket=BUCKET, Key="catalogs/sample.ini", Body=original)


def test_a_slow_changed_data_file_does_not_hold_its_catalog_or_others(stall_server, moto_bucket):
    """A catalog in use switches only once its new data files are read; while that read hangs, the
    old version serves its requests, without waiting past the bound."""
    client, faults, clock = stall_server
    assert client.get(ROSE).status_code == 200
    original = _point_sample_at_a_new_data_file(moto_bucket)
    gate = faults.stalled["catalogs/sample/images2.txt"] = threading.Event()
    try:
        clock.now += 11
        for url in (ROSE, "/is/image/sample/daisy?req=exists", "/is/image/Shop/rose?wid=40"):
            r, took = _timed(client, url)
            assert r.status_code == 200 and took < 0.75, (url, took)
        assert client.get("/is/image/sample/daisy?req=exists").text.strip().endswith("0")
        gate.set()
        deadline = time.monotonic() + 10
        while not client.get("/is/image/sample/daisy?req=exists").text.strip().endswith("1"):
            assert time.monotonic() < deadline, "the new data file never showed up"
            time.sleep(0.02)
    finally:
        gate.set()
        moto_bucket.put_object(Bucket=BUCKET, Key="catalogs/sample.ini", Body=original)
        moto_bucket.delete_object(Bucket=BUCKET, Key="catalogs/sample/images2.txt")


def test_a_quick_refresh_shows_up_on_the_request_that_started_it(stall_server, moto_bucket):
    client, _, clock = stall_server
    assert "sample catalog v1" in client.get("/is/image/sample?req=catalogprops").text
    original = moto_bucket.get_object(Bucket=BUCKET, Key="catalogs/sample.ini")["Body"].read()
    moto_bucket.put_object(Bucket=BUCKET, Key="catalogs/sample.ini", Body=original + b"PublishInfo=v3\n")
    try:
        clock.now += 11
        assert "v3" in client.get("/is/image/sample?req=catalogprops").text
    finally:
        moto_bucket.put_object(Bucket=BUCKET, Key="catalogs/sample.ini", Body=original)
