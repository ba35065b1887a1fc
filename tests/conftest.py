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
