"""heap.py: glibc's malloc thresholds, set on the first image request unless the operator set them."""

from __future__ import annotations

import os
import sys

import pytest

from imageserving import heap

glibc = sys.platform.startswith("linux") and bool(os.confstr("CS_GNU_LIBC_VERSION") if hasattr(os, "confstr") else "")


@pytest.fixture(autouse=True)
def fresh():
    heap.keep_freed_buffers.cache_clear()
    yield
    heap.keep_freed_buffers.cache_clear()


@pytest.mark.skipif(not glibc, reason="glibc only")
def test_set_on_glibc(monkeypatch):
    for name in heap._OPERATOR:
        monkeypatch.delenv(name, raising=False)
    assert heap.keep_freed_buffers() is True


@pytest.mark.parametrize("name", heap._OPERATOR)
def test_left_to_the_operator(monkeypatch, name):
    monkeypatch.setenv(name, "131072")
    assert heap.keep_freed_buffers() is False


def test_asked_for_by_image_requests_not_content(client, monkeypatch):
    calls = []
    monkeypatch.setattr(heap, "keep_freed_buffers", lambda: calls.append(1))
    client.get("/is/content/sample/size-chart")
    assert calls == []
    assert client.get("/is/image/sample/rose?wid=50").status_code == 200
    assert calls == [1]
