"""Shared fixtures: the app over the repository's sample bucket, or over a bucket a test writes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from imageserving.app import create_app
from imageserving.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def local_client(root: Path, **overrides) -> TestClient:
    # Tests that change catalogs expect the refresh on the next request: no wait bound on a loaded machine.
    overrides = {"catalog_refresh_wait_s": 10, **overrides}
    settings = Settings.from_env({}, storage="local", local_root=str(root), catalog_settle_seconds=0, **overrides)
    return TestClient(create_app(settings))


@pytest.fixture(scope="session")
def client() -> TestClient:
    """The app serving the sample bucket at the repository root (catalogs/, images/)."""
    return local_client(ROOT)


@pytest.fixture
def bucket(tmp_path):
    """A copy of the sample bucket that a test may change; returns (root, make_client)."""
    for folder in ("catalogs", "images", "static"):
        shutil.copytree(ROOT / folder, tmp_path / folder)

    def write(files: dict[str, str | bytes]) -> None:
        for key, content in files.items():
            path = tmp_path / key
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")

    def make(**overrides) -> TestClient:
        return local_client(tmp_path, **overrides)

    return tmp_path, write, make


@pytest.fixture(scope="session")
def s3_client():
    """The app serving a moto S3 copy of the sample bucket (S3Storage through boto3)."""
    import boto3
    from moto import mock_aws
    from test_events import upload_sample_bucket

    with pytest.MonkeyPatch.context() as mp, mock_aws():
        for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
            mp.delenv(name, raising=False)
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="imageserving-tests")
        upload_sample_bucket(s3, "imageserving-tests")
        settings = Settings.from_env({}, storage="s3", bucket="imageserving-tests", catalog_settle_seconds=0)
        yield TestClient(create_app(settings))
