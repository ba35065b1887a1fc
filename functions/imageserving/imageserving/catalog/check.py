"""Checking the catalogs of a folder or bucket the way the server loads them (``validate``, ``publish``).

The catalogs are loaded by the server's own :class:`CatalogStore` (every data file read, as the first
request to each catalog would); what it logs at WARNING or above becomes a :class:`Problem` with the
file and, where it can be told, the line: ``catalogs/sample/images.txt:7: WARNING: empty Id; record
skipped``. A problem at ERROR level makes the set broken: that catalog (or its data) would fail requests.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from ..errors import ISError

_LOGGER = "imageserving.catalog"
# "<key>: line <n>: <text>" (data-file and .ini warnings of catalog/formats.py, logged by the store)
_LINE_MESSAGE = re.compile(r"^(?P<file>[^\s:]+): line (?P<line>\d+): (?P<text>.*)$", re.S)
# "catalog <key>[:] <text>" (store errors about one catalog)
_CATALOG_MESSAGE = re.compile(r"^catalog (?P<file>\S+?):? (?P<text>.*)$", re.S)


@dataclass(frozen=True)
class Problem:
    level: str  # "ERROR" or "WARNING"
    file: str  # storage key, e.g. catalogs/sample.ini
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.level}: {self.message}"


@dataclass
class Report:
    catalogs: list[str] = field(default_factory=list)  # one summary line per loaded catalog
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "ERROR"]

    @property
    def ok(self) -> bool:
        return not self.errors


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def check_catalogs(storage, settings) -> Report:
    """Load every catalog of ``storage`` with all its data files and report what the loader did not like."""
    from .store import CatalogStore

    report = Report()
    collect = _Collect()
    logger = logging.getLogger(_LOGGER)
    logger.addHandler(collect)
    propagate, logger.propagate = logger.propagate, False  # reported below, with file:line, not logged twice
    try:
        try:
            cats = CatalogStore(storage, settings).current()
        except ISError as exc:
            report.problems.append(Problem("ERROR", settings.catalog_prefix + "default.ini", None, exc.detail))
            cats = None
        for cat in cats.all_catalogs() if cats else ():
            if cat.error:
                state = f"error: {cat.error.detail}"
            else:
                try:
                    state = f"{len(cat.records)} records, {len(cat.macros)} macros"  # reads the data files
                except ISError as exc:  # a data file that cannot be read (storage fault)
                    report.problems.append(Problem("ERROR", cat.key, None, exc.detail))
                    state = "data files unreadable"
            report.catalogs.append(f"{cat.key}: RootId={cat.root_id or '(default)'} {state}")
    finally:
        logger.removeHandler(collect)
        logger.propagate = propagate
    texts: dict[str, list[str] | None] = {}
    for record in collect.records:
        report.problems.append(_problem(record, storage, settings.catalog_prefix, texts))
    return report


def _problem(record: logging.LogRecord, storage, prefix: str, texts: dict) -> Problem:
    level = "ERROR" if record.levelno >= logging.ERROR else "WARNING"
    message = record.getMessage()
    match = _LINE_MESSAGE.match(message)
    if match:
        return Problem(level, match["file"], int(match["line"]), match["text"])
    match = _CATALOG_MESSAGE.match(message)
    if match:
        key = match["file"]
        # Point at the .ini line that names what went wrong: the data file in the arguments, else RootId.
        needles = [a.rsplit("/", 1)[-1] for a in record.args[1:] if isinstance(a, str)] if record.args else []
        if "RootId" in message:  # a RootId problem is on the RootId line, whatever else the message names
            needles.insert(0, "rootid")
        return Problem(level, key, _line_of(storage, key, needles, texts), match["text"])
    if message.startswith("default.ini"):
        key = prefix + "default.ini"
        return Problem(level, key, _line_of(storage, key, ["rootid"], texts), message)
    return Problem(level, prefix.rstrip("/") or ".", None, message)


def _line_of(storage, key: str, needles: list[str], texts: dict) -> int | None:
    if not needles:
        return None
    if key not in texts:
        try:
            blob = storage.fetch(key)
        except ISError:
            blob = None
        texts[key] = blob.data.decode("utf-8", "replace").splitlines() if blob else None
    lines = texts[key]
    for needle in needles:
        for number, line in enumerate(lines or (), 1):
            if not line.lstrip().startswith("#") and needle.lower() in line.lower():
                return number
    return None
