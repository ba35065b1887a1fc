"""Signed URLs (issue 8.7): HMAC-SHA256 over the path and the raw query, rotation, expiry,
per-catalog enforcement, keys from the environment or SSM (once per container), never leaked."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import local_client

from imageserving.settings import Settings
from imageserving.signing import Signer, sign, split

ROOT = Path(__file__).resolve().parents[2]
OLD, NEW = "old-key-5b1d", "new-key-93fa"


@pytest.fixture(scope="module")
def signed():
    """Requests to catalog ``sample`` must be signed; keys NEW (signs) and OLD (still verifies)."""
    return local_client(ROOT, signing_keys=(NEW, OLD), signature_required=("sample",))


def _signed(url: str, key: str = NEW, expires_at: int | None = None) -> str:
    path, _, query = url.partition("?")
    return sign(path, query, key.encode(), expires_at)


def _refused(reply) -> bool:
    return reply.status_code == 403 and reply.headers.get("x-is-error") == "refused"


def test_a_signed_url_renders_like_the_unsigned_one(signed, client):
    url = "/is/image/sample/rose?wid=120&fmt=png"
    reply = signed.get(_signed(url))
    assert reply.status_code == 200, reply.text
    assert reply.content == client.get(url).content


@pytest.mark.parametrize(
    "url",
    [
        "/is/image/sample/rose?wid=120",
        "/is/image/sample/rose",
        "/is/image/sample/rose?wid=120&isSig=",
        "/is/image/sample/rose?wid=120&isSig=AAAA",
        "/is/image/sample/rose?req=props,json",
        "/is/content/sample/size-chart",
    ],
)
def test_a_required_catalog_refuses_unsigned_and_badly_signed_urls(signed, url):
    assert _refused(signed.get(url))


@pytest.mark.parametrize(
    "tamper",
    [
        lambda u: u.replace("wid=120", "wid=1200"),  # the query
        lambda u: u.replace("/rose?", "/tulip?"),  # the path
        lambda u: u.replace("wid=120", "wid=120&fmt=png"),  # a command added
        lambda u: u.replace("?wid=120&fmt=jpg", "?fmt=jpg&wid=120"),  # order matters in Scene7
        lambda u: u.replace("/is/image/", "/is/image//"),
        lambda u: u[:-1] + ("A" if u[-1] != "A" else "B"),  # the signature
    ],
)
def test_any_change_to_a_signed_url_is_refused(signed, tamper):
    url = _signed("/is/image/sample/rose?wid=120&fmt=jpg")
    assert signed.get(url).status_code == 200
    assert _refused(signed.get(tamper(url)))


def test_rotation_every_configured_key_verifies_and_others_do_not(signed):
    url = "/is/image/sample/rose?wid=80"
    assert signed.get(_signed(url, OLD)).status_code == 200
    assert signed.get(_signed(url, NEW)).status_code == 200
    assert _refused(signed.get(_signed(url, "retired-key")))


def test_expiry_is_covered_by_the_signature(signed):
    url = "/is/image/sample/rose?wid=80"
    assert signed.get(_signed(url, expires_at=int(time.time()) + 60)).status_code == 200
    assert _refused(signed.get(_signed(url, expires_at=int(time.time()) - 1)))
    late = _signed(url, expires_at=int(time.time()) - 1).replace("isExp=", "isExp=9")  # pushed into the future
    assert _refused(signed.get(late))


def test_catalogs_that_do_not_require_it_serve_unsigned_urls_but_check_a_signature_that_is_there(signed):
    assert signed.get("/is/image/shop/SKU123?wid=50").status_code == 200
    assert signed.get(_signed("/is/image/shop/SKU123?wid=50")).status_code == 200
    assert _refused(signed.get("/is/image/shop/SKU123?wid=50&isSig=bogus"))


def test_a_request_lock_is_signed_with_the_query_and_still_checked(bucket):
    _, _, make = bucket
    app = make(signing_keys=(NEW,), signature_required=("*",))
    assert app.get(_signed("/is/image/locked/rose?wid=200&4a1f")).status_code == 200
    assert _refused(app.get(_signed("/is/image/locked/rose?wid=200&0000")))  # signed, but the lock is wrong


def test_signing_off_leaves_isSig_an_ignored_command(client):
    assert client.get("/is/image/sample/rose?wid=80&isSig=anything").status_code == 200


def test_keys_never_appear_in_replies_or_the_settings_repr(signed, bucket):
    for url in ("/is/image/sample/rose?wid=80&isSig=x", "/is/image/sample/rose?req=props,json&isSig=x"):
        reply = signed.get(url)
        assert NEW not in reply.text and OLD not in reply.text
    _, write, make = bucket
    write({"catalogs/default.ini": (ROOT / "catalogs/default.ini").read_text() + "\nErrorDetail=3\n"})
    reply = make(signing_keys=(NEW,), signature_required=("*",)).get("/is/image/sample/rose?isSig=x")
    assert _refused(reply) and NEW not in reply.text
    assert NEW not in repr(Settings.from_env({"IS_SIGNING_KEYS": NEW}))


def test_split_keeps_everything_before_the_signature_parameters():
    assert split("wid=1&isExp=5&isSig=abc") == ("wid=1", "wid=1&isExp=5", "5", "abc")
    assert split("isSig=abc") == ("", "", None, "abc")
    assert split("wid=1&isSig=abc&hei=2") == ("wid=1&isSig=abc&hei=2",) * 2 + (None, None)  # not last: no signature


def test_keys_come_from_ssm_once_per_container(monkeypatch):
    import boto3
    from moto import mock_aws

    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        ssm = boto3.client("ssm")
        ssm.put_parameter(Name="/imageserving/keys", Value=f"{NEW},{OLD}", Type="SecureString")
        signer = Signer(ssm_parameter="/imageserving/keys", required=("*",))
        path, _, query = _signed("/is/image/sample/rose?wid=1", OLD).partition("?")
        assert signer.verify(path, query, "sample") == "wid=1"
        ssm.delete_parameter(Name="/imageserving/keys")  # fetched once: later requests do not ask again
        assert signer.verify(path, query, "sample") == "wid=1"


def test_an_unreadable_ssm_parameter_is_a_retryable_503_not_a_leak(monkeypatch):
    import boto3
    from moto import mock_aws

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        signer = Signer(ssm_parameter="/imageserving/missing", required=("*",))
        with pytest.raises(Exception) as raised:
            signer.verify("/is/image/a", "isSig=x", "a")
        assert raised.value.status == 503 and "/imageserving/missing" not in raised.value.message(1)
        boto3.client("ssm").put_parameter(Name="/imageserving/missing", Value=NEW, Type="SecureString")
        path, _, query = _signed("/is/image/a?wid=1").partition("?")
        assert signer.verify(path, query, "a") == "wid=1"  # retried on the next request


def test_the_sign_command_prints_a_url_the_server_accepts(signed):
    out = subprocess.run(
        [sys.executable, "-m", "imageserving", "sign", "https://shop.example/is/image/sample/rose?wid=90"]
        + ["--key", OLD],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out.startswith("https://shop.example/is/image/sample/rose?wid=90&isSig=")
    assert signed.get(out.removeprefix("https://shop.example")).status_code == 200
