"""Catalog loading, inheritance, resolution and revalidation (catalogs.md §4-§6, §15)."""

from pathlib import Path

import pytest

from imageserving.catalog.resolve import resolve_object, resolve_path_object, source_keys
from imageserving.catalog.store import CatalogStore
from imageserving.errors import ISError
from imageserving.settings import Settings
from imageserving.storage import LocalStorage


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def write(root: Path, files: dict[str, str]):
    for key, text in files.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="latin-1")


BASE = {
    "catalogs/default.ini": "RootId=\nDefaultExt=.jpg\nCatalogFile=default-images.txt\nErrorImage=err\n"
    "DefaultImage=noimage\nExpiration=10\nRootPath=\n",
    "catalogs/default-images.txt": "Id\tPath\nnoimage\tdefaults/noimage.png\nshared\tshared/pic\n",
    "catalogs/cat.ini": "RootId=cat\nRootPath=cat/\nCatalogFile=cat/images.txt\nErrorImage=\nExpiration=\n",
    "catalogs/cat/images.txt": "Id\tPath\tExpiration\nshoe\tshoes/shoe\t2\nlogo\t/abs/logo.png\t\n",
    "catalogs/full.ini": "RootId=full\nFullMatch=1\nRootPath=full/\n",
}


@pytest.fixture
def store(tmp_path):
    write(tmp_path, BASE)
    settings = Settings.from_env(
        {}, storage="local", local_root=str(tmp_path), catalog_settle_seconds=0, catalog_refresh_wait_s=10
    )
    clock = Clock()
    return CatalogStore(LocalStorage(tmp_path), settings, clock=clock), clock, tmp_path, settings


def test_absent_inherits_and_empty_disables(store):
    cats = store[0].current()
    cat = cats.catalog("cat")
    assert cats.raw_attr(cat, "DefaultImage") == "noimage"  # absent -> default.ini
    assert cats.raw_attr(cat, "ErrorImage") == ""  # defined-but-empty -> disabled
    assert cats.attr(cat, "Expiration") == 10.0  # empty, not in the empty-is-value set -> inherit
    assert cats.attr(cat, "MaxPix") == (2000, 2000)  # built-in when default.ini lacks it


def test_path_object_resolution(store):
    cats, settings = store[0].current(), store[3]
    po = resolve_path_object(cats, ["cat", "shoe"])
    assert po.main.root_id == "cat" and po.source.record.id == "shoe"
    assert source_keys(cats, po.source, settings) == ["images/cat/shoes/shoe.jpg"]
    po = resolve_path_object(cats, ["cat", "dir", "file.png"])  # no record: rootId replaced by RootPath
    assert po.source.record is None and source_keys(cats, po.source, settings) == ["images/cat/dir/file.png"]
    po = resolve_path_object(cats, ["cat", "shared"])  # record from the default catalog
    assert po.source.record.catalog.is_default
    assert source_keys(cats, po.source, settings) == ["images/shared/pic.jpg"]
    po = resolve_path_object(cats, ["full", "x"])  # FullMatch: whole object, default catalog
    assert po.main.is_default and source_keys(cats, po.source, settings) == ["images/full/x.jpg"]
    po = resolve_path_object(cats, ["nocat", "x.png"])
    assert po.main.is_default and source_keys(cats, po.source, settings) == ["images/nocat/x.png"]
    po = resolve_path_object(cats, ["", "cat", "shoe"])  # leading '/' = default catalog explicitly
    assert po.main.is_default and po.source.record is None


def test_absolute_record_paths_are_bucket_relative_but_stay_in_the_roots(store):
    cats, settings = store[0].current(), store[3]
    src = resolve_object(cats, "logo", cats.catalog("cat"))
    with pytest.raises(ISError) as e:  # /abs/logo.png is outside images/
        source_keys(cats, src, settings)
    assert e.value.kind == "not_found" and e.value.missing_source
    moved = Settings.from_env({"IS_PATH_REWRITES": "/abs/=images/moved/"}, storage="local")
    assert source_keys(cats, src, moved) == ["images/moved/logo.png"]
    into_catalogs = Settings.from_env({"IS_PATH_REWRITES": "/abs/=catalogs/", "IS_IMAGE_ROOT_PREFIXES": "/"})
    with pytest.raises(ISError):  # a root of the whole bucket still leaves catalogs out
        source_keys(cats, src, into_catalogs)


def test_command_objects(store):
    cats = store[0].current()
    main = cats.catalog("cat")
    assert resolve_object(cats, "cat/shoe", cats.default).record.id == "shoe"
    assert resolve_object(cats, "noimage", main).record.catalog.is_default
    assert resolve_object(cats, "/shoe", main).record is None  # '/' skips the main catalog
    with pytest.raises(ISError):
        resolve_object(cats, "a,b", main)


@pytest.mark.parametrize("obj", [["cat", "..", "x"], ["cat", "a,b"]])
def test_bad_objects_are_rejected(store, obj):
    cats, settings = store[0].current(), store[3]
    with pytest.raises(ISError) as e:
        po = resolve_path_object(cats, obj)
        source_keys(cats, po.source, settings)
    assert e.value.kind == "bad_request"


def test_revalidation_picks_up_changes_and_survives_broken_files(store):
    cat_store, clock, root, _ = store
    assert "shoe" in cat_store.current().catalog("cat").records
    write(
        root,
        {
            "catalogs/cat.ini": "RootId=cat\nRootPath=cat/\nCatalogFile=cat/other.txt\n",
            "catalogs/cat/other.txt": "Id\tPath\nboot\tboot.jpg\n",
        },
    )
    assert "shoe" in cat_store.current().catalog("cat").records  # not yet: refresh interval
    clock.now += 11
    cats = cat_store.current()
    assert set(cats.catalog("cat").records) == {"boot"}
    (root / "catalogs/default.ini").unlink()
    clock.now += 11
    with pytest.raises(ISError) as e:  # a missing default.ini is a server error, clearly worded
        cat_store.current()
    assert e.value.kind == "server_error" and "default.ini" in e.value.detail


JUNK = "RootId=cat\nRootPath=other/\nCatalogFile=junk.txt\n"


def _age(root: Path, key: str, seconds: float) -> None:
    """Make ``key`` look uploaded ``seconds`` ago (LastModified is the file's mtime)."""
    import os
    import time

    when = time.time() - seconds
    os.utime(root / key, (when, when))


def test_a_repeated_root_id_keeps_the_established_catalog(store, caplog):
    """Issue 8.4: a newcomer that repeats a RootId is refused even when its key sorts first."""
    cat_store, clock, root, _ = store
    assert cat_store.current().catalog("cat").key == "catalogs/cat.ini"
    write(root, {"catalogs/aa.ini": JUNK})
    _age(root, "catalogs/cat.ini", 3600)
    _age(root, "catalogs/aa.ini", 7200)  # even older than the established catalog: it still loses
    with caplog.at_level("ERROR", "imageserving.catalog"):
        for _ in range(3):  # three revalidations ...
            clock.now += 11
            cats = cat_store.current()
            assert cats.catalog("cat").key == "catalogs/cat.ini" and "shoe" in cats.catalog("cat").records
    refusals = [r.getMessage() for r in caplog.records if "repeats RootId" in r.getMessage()]
    assert refusals == [  # ... one log line, naming both files
        "catalog catalogs/aa.ini repeats RootId 'cat' of the established catalog catalogs/cat.ini; ignored"
    ]


def test_a_repeated_root_id_at_a_cold_start_goes_to_the_oldest_ini(store):
    """A fresh process (a new Lambda container) has no last generation: the older .ini is the
    established one, whatever the key order."""
    _, _, root, settings = store
    write(root, {"catalogs/aa.ini": JUNK})
    _age(root, "catalogs/cat.ini", 3600)
    cold = CatalogStore(LocalStorage(root), settings, clock=Clock())
    assert cold.current().catalog("cat").key == "catalogs/cat.ini"
    _age(root, "catalogs/aa.ini", 7200)  # same LastModified order reversed: the other one wins
    assert CatalogStore(LocalStorage(root), settings, clock=Clock()).current().catalog("cat").key == "catalogs/aa.ini"


def test_the_established_catalog_keeps_its_root_id_when_its_new_version_is_broken(store, caplog):
    cat_store, clock, root, _ = store
    assert "shoe" in cat_store.current().catalog("cat").records
    write(root, {"catalogs/aa.ini": JUNK})
    (root / "catalogs/cat.ini").write_bytes(b"\xef\xbb\xbfRootId=cat\nRootPath=\xff bad utf-8\n")
    with caplog.at_level("ERROR", "imageserving.catalog"):
        for _ in range(2):
            clock.now += 11
            cats = cat_store.current()
            assert cats.catalog("cat").key == "catalogs/cat.ini" and "shoe" in cats.catalog("cat").records
    assert sum("new version is unusable" in r.getMessage() for r in caplog.records) == 1
    write(root, {"catalogs/cat.ini": "RootId=cat\nRootPath=cat/\nCatalogFile=cat/other.txt\n"})
    write(root, {"catalogs/cat/other.txt": "Id\tPath\nboot\tboot.jpg\n"})
    clock.now += 11
    assert set(cat_store.current().catalog("cat").records) == {"boot"}  # a good version is taken again


def test_a_junk_ini_cannot_take_a_catalog_over(bucket):
    root, write_files, make = bucket
    client = make()
    assert client.get("/is/image/sample/rose?wid=50").headers.get("x-is-default-image") is None
    write_files({"catalogs/0-junk.ini": "RootId=sample\nRootPath=nowhere/\n"})
    _age(root, "catalogs/sample.ini", 3600)
    for c in (client, make()):  # the warm server after a refresh, and a cold one
        store = c.app.state.server.catalogs
        store._next = float("-inf")  # revalidate now
        r = c.get("/is/image/sample/rose?wid=50")
        assert r.status_code == 200 and r.headers.get("x-is-default-image") is None


def test_validate_reports_a_repeated_root_id(bucket, capsys):
    from imageserving.cli import main

    root, write_files, _ = bucket
    write_files({"catalogs/0-junk.ini": "# a copy gone wrong\nRootPath=nowhere/\nRootId=sample\n"})
    _age(root, "catalogs/sample.ini", 3600)
    assert main(["validate", "--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert (
        "catalogs/0-junk.ini:3: ERROR: repeats RootId 'sample' of the established catalog catalogs/sample.ini; ignored"
        in out
    )
    assert "catalogs/sample.ini: RootId=sample" in out


def test_missing_data_file_only_loses_its_records(store):
    cat_store, clock, root, _ = store
    write(root, {"catalogs/cat.ini": "RootId=cat\nCatalogFile=cat/images.txt,cat/missing.txt\n"})
    clock.now += 11
    assert "shoe" in cat_store.current().catalog("cat").records


def test_malformed_catalog_fails_only_its_requests(bucket):
    root, write, make = bucket
    write({"catalogs/broken.ini": b"\xef\xbb\xbfRootId=broken\nRootPath=\xff\xfe bad utf-8\n"})
    client = make()
    assert client.get("/is/image/sample/rose?wid=50").status_code == 200
    r = client.get("/is/image/broken/rose?wid=50&defaultImage=")
    assert r.status_code == 403 and "broken" not in r.text


def test_validate_command_reports_catalogs(capsys):
    from imageserving.cli import main

    root = Path(__file__).resolve().parents[1]
    assert main(["validate", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "catalogs/sample.ini: RootId=sample" in out and "catalogs/default.ini: RootId=(default)" in out


def test_a_catalog_reads_its_data_files_on_first_use(store):
    cat_store, _, root, _ = store
    fetched = []
    real_fetch = cat_store.storage.fetch
    cat_store.storage.fetch = lambda key: fetched.append(key) or real_fetch(key)
    cats = cat_store.current()
    assert "catalogs/default-images.txt" in fetched  # the default catalog: at once
    assert "catalogs/cat/images.txt" not in fetched  # another catalog: not yet
    assert "shoe" in cats.catalog("cat").records
    assert fetched.count("catalogs/cat/images.txt") == 1
    assert "shoe" in cats.catalog("cat").records and fetched.count("catalogs/cat/images.txt") == 1


def test_backoff_retries_at_once_then_exponentially():
    from imageserving.catalog.store import Backoff

    clock = Clock()
    b = Backoff(clock)
    assert b.wait("k") == 0
    waits = []
    for _ in range(7):
        b.failed("k")
        waits.append(b.wait("k"))
    assert waits == [0, 0.25, 0.5, 1.0, 2.0, 4.0, 4.0]
    clock.now += 4
    assert b.wait("k") == 0
    b.succeeded("k")
    b.failed("k")
    assert b.wait("k") == 0  # a success starts the schedule over


def test_a_data_file_fault_is_not_remembered_as_no_records(store):
    cat_store, clock, root, _ = store
    cats = cat_store.current()
    real_fetch = cat_store.storage.fetch

    def failing(key):
        if key == "catalogs/cat/images.txt":
            raise ISError("overload", f"S3 SlowDown on GET {key}")
        return real_fetch(key)

    cat_store.storage.fetch = failing
    with pytest.raises(ISError) as e:
        cats.catalog("cat").load_tables()
    assert e.value.kind == "overload"
    cat_store.storage.fetch = real_fetch
    assert "shoe" in cats.catalog("cat").records  # the next use reads it again


def test_an_unreadable_key_in_the_listing_costs_only_that_catalog(store):
    cat_store, clock, root, _ = store
    write(root, {"catalogs/bad\\name.ini": "RootId=bad\n"})
    cats = cat_store.current()
    assert cats.catalog("bad") is None and "shoe" in cats.catalog("cat").records


def _stall_listing(cat_store):
    """Make the store's listing wait: (set once a listing started, set to let it go on)."""
    import threading

    listing, release = threading.Event(), threading.Event()
    real_list = cat_store.storage.list

    def slow_list(prefix):
        listing.set()
        assert release.wait(10)
        return real_list(prefix)

    cat_store.storage.list = slow_list
    return listing, release


def test_requests_during_a_revalidation_are_served_the_loaded_catalogs(store):
    """Issue 12.4: one request lists and reads; the others do not queue behind it."""
    import threading

    cat_store, clock, root, _ = store
    assert "shoe" in cat_store.current().catalog("cat").records
    listing, release = _stall_listing(cat_store)
    write(root, {"catalogs/cat/images.txt": "Id\tPath\nboot\tboot.jpg\n", "catalogs/cat.ini": BASE["catalogs/cat.ini"]})
    clock.now += 11
    revalidating = threading.Thread(target=cat_store.current)
    revalidating.start()
    assert listing.wait(10)
    seen = []
    other = threading.Thread(target=lambda: seen.append(cat_store.current()))
    other.start()
    other.join(5)
    try:
        assert not other.is_alive(), "a concurrent request waited for the revalidation"
        assert "shoe" in seen[0].catalog("cat").records  # the loaded generation
    finally:
        release.set()
        revalidating.join(10)
    assert "boot" in cat_store.current().catalog("cat").records


def test_without_loaded_catalogs_concurrent_requests_wait_for_the_first_load(store):
    import threading

    cat_store, _, _, _ = store
    listing, release = _stall_listing(cat_store)
    first = threading.Thread(target=cat_store.current)
    first.start()
    assert listing.wait(10)
    seen = []
    other = threading.Thread(target=lambda: seen.append(cat_store.current()))
    other.start()
    other.join(0.3)
    assert other.is_alive()  # nothing to serve yet: it waits
    release.set()
    first.join(10)
    other.join(10)
    assert "shoe" in seen[0].catalog("cat").records
