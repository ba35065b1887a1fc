"""Fuzzed catalog files (issue 8.8): ``.ini`` attributes, data rows, macro and static tables as an
operator's typo or a broken export would write them. Whatever they hold, the server and
``validate`` raise no unhandled exception, and no reply shows internals at ErrorDetail 0
(tests/leaks.py): not the serving folder, a storage key, a traceback.

"Unhandled" is read from the log: every failure is answered through the error model, and an
exception that was not an ISError is logged with its traceback by ImageServer.handle (and by the
catalog store's refresh). A 500 is allowed only as the error model's own answer — a catalog whose
rule set cannot load fails closed (catalogs.md §15.4) — never as an escaped exception.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from leaks import assert_no_leak

from imageserving.app import create_app
from imageserving.catalog import formats as F
from imageserving.catalog.check import check_catalogs
from imageserving.errors import ISError
from imageserving.settings import Settings
from imageserving.storage import LocalStorage

ROOT = Path(__file__).resolve().parents[2]

JUNK = st.text(alphabet="abcz019 ,.;:-_/\\%$&=?#{}()'\"\t", max_size=20)
VALUES = st.one_of(
    st.sampled_from(
        [
            "",
            "0",
            "1",
            "-1",
            "2",
            "3",
            "99999999999",
            "1e308",
            "nan",
            "0.5",
            "300,300",
            "0,0",
            "-5,7",
            "ffffff",
            "0xZZ0000",
            "on",
            "true",
            "sharp2",
            "rose",
            "noimage",
            "onError",
            "$thumb$",
            "wid=50&fmt=png",
            "fz/images.txt",
            "fz/missing.txt",
            "/abs/x.txt",
            "../../etc/passwd",
            "s3://other-bucket/x",
            "sample/",
            "fz/",
            "..",
            "/",
            '"quoted, value"',
            "'single'",
            "de_de,_D,|,_E,",
            "include:IS",
            "exclude:STATIC",
            "0.0.0.0/0",
            "10.0.0.0/33",
            "Fri Dec 04 13:07:38 UTC 2026",
            "\u00e9\u00e8",
            "x" * 2000,
        ]
    ),
    JUNK,
)
ATTRIBUTES = sorted(F.ATTRIBUTES) + ["rootid", "ROOTID", "NoSuchAttribute", "lastmodified", "bad name", ""]
INI_LINE = st.one_of(
    st.tuples(st.sampled_from(ATTRIBUTES), st.sampled_from([" = ", "=", "\t=\t"]), VALUES).map("".join),
    st.sampled_from(["# comment", "  # indented comment", "no equals sign", "", "=value", "RootPath=a\\", "\\"]),
    JUNK,
)
LINE_ENDS = st.sampled_from(["\n", "\r\n", "\r"])

COLUMNS = [
    "Modifier",
    "PostModifier",
    "Expiration",
    "UserData",
    "Targets",
    "ImageSet",
    "PrintResolution",
    "Resolution",
    "Anchor",
    "Size",
    "ThumbType",
    "ThumbRes",
    "TimeStamp",
    "Map",
    "IccProfile",
    ".private",
    "Unknown",
    "Bad Name",
    "id",
    "",
]
IDS = st.one_of(
    st.sampled_from(["rose", "tulip", "sku1", "a,b", "", "noimage", "x y", "%41", "é", "../up", "dup", "dup", "t"]),
    st.text(alphabet="abcAB019-_.", min_size=1, max_size=8),
)
PATHS = st.sampled_from(["rose.jpg", "tulip.png", "", "nothing.jpg", "../rose.jpg", "/abs/rose.jpg", "rose", "\\x"])
FIELD = st.one_of(
    VALUES,
    st.sampled_from(["wid=40&$m$", "$m$", "$nosuch$", "layer=1&text=$t$", "a??b", '"tab\tin quotes"', '"line\nbreak"']),
    st.sampled_from(['"', '""', "'", 'x"y', "??", "0;0;1;1", "rose;tulip,sku1", "1:2,3:4"]),
)


@st.composite
def data_file(draw, key: str = "Id") -> str:
    extra = draw(st.lists(st.sampled_from(COLUMNS), max_size=5))
    header = [key, "Path", *extra]
    rows = []
    for _ in range(draw(st.integers(0, 6))):
        cells = [draw(IDS), draw(PATHS), *(draw(FIELD) for _ in extra)]
        rows.append("\t".join(cells[: draw(st.integers(1, len(cells) + 1))]) + draw(st.sampled_from(["", "\textra"])))
    end = draw(LINE_ENDS)
    return end.join(["\t".join(header), *rows]) + end


@st.composite
def macro_file(draw) -> str:
    rows = ["Name\tDefinition"]
    for name in draw(st.lists(st.sampled_from(["m", "t", "thumb", "loop", "M", ""]), max_size=5)):
        body = draw(st.sampled_from(["wid=40", "$m$", "$loop$&wid=1", "$t$", "text=hi", "", "fmt=$x$", "qlt=abc"]))
        rows.append(f"{name}\t{body}")
    return "\n".join(rows) + "\n"


@st.composite
def catalog(draw) -> dict[str, bytes]:
    end = draw(LINE_ENDS)
    lines = ["RootId=fz", "RootPath=sample/", "CatalogFile=fz/images.txt", "MacroFile=fz/macros.txt"]
    lines += ["StaticContentCatalogFile=fz/static.txt", "StaticContentRootPath=sample/"]
    lines += draw(st.lists(INI_LINE, max_size=12))
    # ErrorDetail last (the last definition wins; two line ends close any trailing backslash).
    ini = end.join(lines) + end + end + "ErrorDetail=0" + end
    encoding = draw(st.sampled_from(["latin-1", "bom", "bom-broken"]))
    raw = ini.encode("utf-8" if encoding != "latin-1" else "latin-1", "replace")
    if encoding == "bom":
        raw = b"\xef\xbb\xbf" + raw
    elif encoding == "bom-broken":
        raw = b"\xef\xbb\xbf" + raw + b"PublishInfo=\xff\xfe\n"
    return {
        "catalogs/fz.ini": raw,
        "catalogs/fz/images.txt": draw(data_file()).encode("latin-1", "replace"),
        "catalogs/fz/macros.txt": draw(macro_file()).encode("latin-1", "replace"),
        "catalogs/fz/static.txt": draw(data_file()).encode("latin-1", "replace"),
    }


class _Unhandled(logging.Handler):
    """Log records that carry an exception other than ISError: one escaped the error model."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and not isinstance(exc, ISError):
            self.seen.append(f"{record.getMessage()}: {type(exc).__name__}: {exc}")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzzcat")
    for name in ("catalogs", "images", "static"):
        shutil.copytree(ROOT / name, root / name)
    return root


@pytest.fixture
def unhandled():
    handler = _Unhandled()
    logger = logging.getLogger("imageserving")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def _requests(files: dict[str, bytes]) -> list[str]:
    ids = ["rose", "nothing"]
    for line in files["catalogs/fz/images.txt"].decode("latin-1").splitlines()[1:4]:
        ids.append(line.split("\t", 1)[0])
    urls = ["/is/image/fz?req=catalogprops", "/is/image/fz/rose?$m$&wid=40", "/is/image/fz/rose?template=t&wid=40"]
    for rid in dict.fromkeys(ids):
        obj = quote(rid, safe="")
        urls += [f"/is/image/fz/{obj}?wid=40", f"/is/image/fz/{obj}?req=imageprops", f"/is/image/fz/{obj}?req=userdata"]
        urls += [f"/is/image/fz/{obj}?req=set,json", f"/is/image/fz/{obj}?req=exists", f"/is/content/fz/{obj}"]
    return urls


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(files=catalog())
def test_fuzzed_catalog_files_never_crash_or_leak(folder, unhandled, files):
    for key, data in files.items():
        (folder / key).parent.mkdir(parents=True, exist_ok=True)
        (folder / key).write_bytes(data)
    config = Settings.from_env({}, storage="local", local_root=str(folder), catalog_settle_seconds=0)
    report = check_catalogs(LocalStorage(folder), config)  # validate: never raises
    assert report.catalogs, report.problems
    client = TestClient(create_app(config))
    cats = client.app.state.server.catalogs.current()
    fz = cats.catalog("fz")
    level = cats.attr(fz, "ErrorDetail") if fz is not None else 0
    for url in _requests(files):
        r = client.get(url)
        assert r.status_code in (200, 304, 403, 500), (url, r.status_code, r.text[:300])
        if r.status_code == 500:
            assert r.headers["x-is-error"] == "server_error", url
        if level == 0:
            assert_no_leak(r, secrets=(str(folder),), where=url)
    assert not unhandled.seen, unhandled.seen
