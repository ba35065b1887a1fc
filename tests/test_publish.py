"""`python -m imageserving publish` against a real moto server (HTTP on 127.0.0.1, a free port).

Every S3 call goes over the wire through plain boto3; what was written is counted with botocore's
event hooks on the client publish uses, so order and "nothing uploaded" are what happened, not what
publish says happened.
"""

from __future__ import annotations

import base64
import hashlib
import io
import shutil
import sys
from pathlib import Path

import boto3
import pytest
from serving import free_port

from imageserving.cli import main
from imageserving.publish import PublishError, publish
from imageserving.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "publish-tests"


@pytest.fixture(scope="module")
def moto_endpoint():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(moto_endpoint, monkeypatch):
    """A fresh bucket on the moto server; the environment points boto3 (and the CLI) at it."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    yield client
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for obj in page.get("Contents", ()):
            client.delete_object(Bucket=BUCKET, Key=obj["Key"])
    client.delete_bucket(Bucket=BUCKET)


class Calls:
    """The PutObject/DeleteObject calls a client really sent, in order."""

    def __init__(self, client):
        self.puts: list[str] = []
        self.deletes: list[str] = []
        client.meta.events.register(
            "before-parameter-build.s3.PutObject", lambda params, **_: self.puts.append(params["Key"])
        )
        client.meta.events.register(
            "before-parameter-build.s3.DeleteObject", lambda params, **_: self.deletes.append(params["Key"])
        )


def sample_copy(tmp_path: Path) -> Path:
    for folder in ("catalogs", "images", "static"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    return tmp_path


def local_keys(root: Path) -> dict[str, bytes]:
    out = {}
    for folder in ("catalogs", "images", "static"):
        for path in (root / folder).rglob("*"):
            if path.is_file():
                out[path.relative_to(root).as_posix()] = path.read_bytes()
    return out


def remote_keys(client, prefix: str = "") -> dict[str, bytes]:
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for obj in page.get("Contents", ()):
            out[obj["Key"]] = client.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read()
    return out


def run(root, client, **kw):
    kw.setdefault("out", io.StringIO())
    kw.setdefault("stream", io.StringIO())
    return publish(root, BUCKET, client=client, **kw)


def test_publishes_the_sample_bucket_with_a_bar_then_a_second_run_uploads_nothing(s3):
    calls = Calls(s3)
    stream = io.StringIO()
    result = run(ROOT, s3, progress="bar", stream=stream)
    expected = local_keys(ROOT)
    assert remote_keys(s3) == expected
    assert sorted(calls.puts) == sorted(expected)
    bar = stream.getvalue()
    assert "publish: 100%" in bar and "B/s" in bar, bar
    assert result.uploaded_bytes == sum(len(b) for b in expected.values())

    # Data files and images first, every catalog .ini after all of them.
    inis = [i for i, k in enumerate(calls.puts) if k.startswith("catalogs/") and k.endswith(".ini")]
    others = [i for i, k in enumerate(calls.puts) if i not in inis]
    assert len(inis) == 5 and max(others) < min(inis)

    again = Calls(s3)
    second = run(ROOT, s3)
    assert again.puts == [] and second.plan.uploads == []
    assert len(second.plan.unchanged) == len(expected)


def test_uploads_carry_content_type_md5_etag_and_sha256_metadata(s3):
    run(ROOT, s3)
    body = (ROOT / "images/sample/rose.jpg").read_bytes()
    head = s3.head_object(Bucket=BUCKET, Key="images/sample/rose.jpg")
    assert head["ContentType"] == "image/jpeg"
    assert head["ETag"].strip('"') == hashlib.md5(body).hexdigest()
    assert head["Metadata"]["sha256"] == hashlib.sha256(body).hexdigest()
    assert s3.head_object(Bucket=BUCKET, Key="catalogs/sample.ini")["ContentType"].startswith("text/plain")


def test_only_changed_files_are_uploaded_and_the_catalog_after_its_data(s3, tmp_path):
    root = sample_copy(tmp_path)
    run(root, s3)
    calls = Calls(s3)
    with (root / "catalogs/sample/images.txt").open("ab") as f:
        f.write(b"newsku\tsample/rose.jpg\n")
    (root / "catalogs/sample.ini").write_text((root / "catalogs/sample.ini").read_text() + "\n# touched\n")
    (root / "images/sample/new.png").write_bytes((ROOT / "images/sample/tulip.png").read_bytes())
    run(root, s3)
    assert calls.puts[-1] == "catalogs/sample.ini"
    assert sorted(calls.puts[:-1]) == ["catalogs/sample/images.txt", "images/sample/new.png"]
    assert remote_keys(s3) == local_keys(root)


def test_a_foreign_etag_is_compared_by_the_sha256_metadata(s3, tmp_path):
    """Multipart uploads (aws s3 cp of big files) have an ETag that is no MD5: publish asks HeadObject."""
    root = sample_copy(tmp_path)
    body = (root / "images/sample/rose.jpg").read_bytes()

    def multipart(metadata):
        up = s3.create_multipart_upload(Bucket=BUCKET, Key="images/sample/rose.jpg", Metadata=metadata)
        part = s3.upload_part(
            Bucket=BUCKET, Key="images/sample/rose.jpg", UploadId=up["UploadId"], PartNumber=1, Body=body
        )
        s3.complete_multipart_upload(
            Bucket=BUCKET,
            Key="images/sample/rose.jpg",
            UploadId=up["UploadId"],
            MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
        )
        assert s3.head_object(Bucket=BUCKET, Key="images/sample/rose.jpg")["ETag"].endswith('-1"')

    run(root, s3)
    multipart({"sha256": hashlib.sha256(body).hexdigest()})
    calls = Calls(s3)
    run(root, s3)
    assert calls.puts == []

    multipart({})  # same bytes, but nothing says so: uploaded again
    run(root, s3)
    assert calls.puts == ["images/sample/rose.jpg"]


def test_a_broken_catalog_is_refused_with_file_and_line_and_nothing_is_written(s3, tmp_path):
    root = sample_copy(tmp_path)
    shop = root / "catalogs/shop.ini"
    lines = shop.read_text().splitlines()
    number = next(i for i, line in enumerate(lines, 1) if line.startswith("CatalogFile="))
    lines[number - 1] += ",shop/gone.txt"
    shop.write_text("\n".join(lines) + "\n")
    with (root / "catalogs/sample/images.txt").open("ab") as f:
        f.write(b"\tnoid.jpg\n")
    calls = Calls(s3)
    with pytest.raises(PublishError) as info:
        run(root, s3)
    text = str(info.value)
    assert f"catalogs/shop.ini:{number}: ERROR: data file catalogs/shop/gone.txt is missing" in text
    warning_line = len((root / "catalogs/sample/images.txt").read_bytes().splitlines())
    assert f"catalogs/sample/images.txt:{warning_line}: WARNING: empty id; record skipped" in text
    assert "refusing to publish: 1 catalog error(s)" in text
    assert calls.puts == [] and remote_keys(s3) == {}


def test_warnings_alone_do_not_stop_publishing(s3, tmp_path):
    root = sample_copy(tmp_path)
    (root / "catalogs/marked.ini").write_text((root / "catalogs/marked.ini").read_text() + "junk\n")
    out = io.StringIO()
    run(root, s3, out=out)
    assert "catalogs/marked.ini:" in out.getvalue() and "WARNING: no '='" in out.getvalue()
    assert "catalogs/marked.ini" in remote_keys(s3)


def test_dry_run_writes_nothing_and_delete_touches_only_the_managed_roots(s3, tmp_path):
    root = sample_copy(tmp_path)
    s3.put_object(Bucket=BUCKET, Key="images/sample/stale.jpg", Body=b"old")
    s3.put_object(Bucket=BUCKET, Key="catalogs/old.ini", Body=b"RootId=old\n")
    s3.put_object(Bucket=BUCKET, Key="renditions/keep.png", Body=b"not ours")
    calls = Calls(s3)
    out = io.StringIO()
    dry = run(root, s3, dry_run=True, delete=True, out=out)
    assert calls.puts == [] and calls.deletes == []
    assert "would upload catalogs/sample.ini" in out.getvalue()
    assert dry.plan.deletes == ["catalogs/old.ini", "images/sample/stale.jpg"]

    run(root, s3)  # without --delete nothing is removed
    assert calls.deletes == []
    run(root, s3, delete=True)
    assert calls.deletes == ["catalogs/old.ini", "images/sample/stale.jpg"]  # the .ini first
    remote = remote_keys(s3)
    assert "renditions/keep.png" in remote
    del remote["renditions/keep.png"]
    assert remote == local_keys(root)


def test_prefix_puts_everything_under_it(s3):
    run(ROOT, s3, prefix="/staging/")
    assert remote_keys(s3) == {f"staging/{k}": v for k, v in local_keys(ROOT).items()}
    calls = Calls(s3)
    run(ROOT, s3, prefix="staging")
    assert calls.puts == []


def test_the_published_bucket_serves_like_the_folder(s3):
    from fastapi.testclient import TestClient

    from imageserving.app import create_app

    run(ROOT, s3)
    settings = Settings.from_env({}, storage="s3", bucket=BUCKET, catalog_settle_seconds=0)
    reply = TestClient(create_app(settings)).get("/is/image/sample/rose?wid=120&fmt=png")
    assert reply.status_code == 200 and reply.headers["content-type"] == "image/png"


def test_without_tqdm_progress_is_one_plain_line_per_file(s3, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm now raises ImportError
    out, stream = io.StringIO(), io.StringIO()
    run(ROOT, s3, progress="bar", out=out, stream=stream)
    lines = out.getvalue().splitlines()
    assert stream.getvalue() == ""
    assert len(lines) == len(local_keys(ROOT))
    assert lines[-1].startswith("uploaded catalogs/") and lines[-1].endswith(" bytes)")
    body = (ROOT / "images/sample/rose.jpg").read_bytes()
    assert f"uploaded images/sample/rose.jpg ({len(body)} bytes)" in lines


def test_cli_wires_the_arguments(s3, capsys):
    assert main(["publish", str(ROOT), "--bucket", BUCKET, "--dry-run"]) == 0
    out = capsys.readouterr().out
    total = len(local_keys(ROOT))
    assert f"s3://{BUCKET}/: would upload {total} file(s)" in out
    assert remote_keys(s3) == {}
    assert main(["publish", str(ROOT), "--bucket", BUCKET, "--prefix", "p"]) == 0
    assert f"s3://{BUCKET}/p/: uploaded {total} file(s)" in capsys.readouterr().out
    assert main(["publish", str(ROOT), "--bucket", BUCKET, "--prefix", "p"]) == 0
    assert f"uploaded 0 file(s) (0 bytes), {total} unchanged" in capsys.readouterr().out
    assert main(["publish", str(ROOT), "--bucket", "no-such-bucket"]) == 1
    assert "error: S3 NoSuchBucket on LIST s3://no-such-bucket/catalogs/" in capsys.readouterr().err


def test_content_md5_is_sent(s3):
    seen = []
    s3.meta.events.register("before-call.s3.PutObject", lambda params, **_: seen.append(params["headers"]))
    run(ROOT, s3)
    body = (ROOT / "images/sample/rose.jpg").read_bytes()
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    assert any(h.get("Content-MD5") == md5 for h in seen)
