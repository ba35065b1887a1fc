"""Loading catalogs from storage, caching them per process, revalidating them (catalogs.md §4, §15.2).

A listing of the catalog prefix (one request, ETag and LastModified for every key) decides what
changed; only changed files are fetched and parsed again. A broken catalog fails only the
requests addressed to it; a failed revalidation keeps serving the last good generation.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from datetime import datetime, timezone

from ..errors import ISError
from ..storage import ObjectInfo
from . import formats as F
from .model import Catalog, CatalogSet, Record
from .rules import RuleSetError, parse_rule_set

log = logging.getLogger("imageserving.catalog")

_BAD_ROOT_ID = re.compile(r"[/?#&,%\s]")


class CatalogStore:
    def __init__(self, storage, settings, clock=time.monotonic):
        self.storage = storage
        self.settings = settings
        self.clock = clock
        self._set: CatalogSet | None = None
        self._checked = float("-inf")
        self._inis: dict[str, Catalog] = {}  # .ini key -> catalog built from it
        self._tables: dict[str, tuple[str, object]] = {}  # data-file key -> (etag, parsed table)
        self._lock = threading.Lock()

    def current(self) -> CatalogSet:
        """The catalog set to use for one request (revalidated at most every refresh interval)."""
        if self._set is not None and self.clock() - self._checked < self.settings.catalog_refresh_seconds:
            return self._set
        with self._lock:
            if self._set is None or self.clock() - self._checked >= self.settings.catalog_refresh_seconds:
                self._refresh()
        assert self._set is not None
        return self._set

    def _refresh(self) -> None:
        prefix = self.settings.catalog_prefix
        try:
            listing = self.storage.list(prefix)
        except ISError:
            if self._set is None:
                raise
            log.exception("catalog revalidation failed; keeping the loaded catalogs")
            self._checked = self.clock()
            return
        objects = {o.key: o for o in listing}
        inis = sorted(k for k in objects if "/" not in k[len(prefix) :] and k.lower().endswith(".ini"))
        default_key = prefix + "default.ini"
        if default_key not in objects:
            raise ISError("server_error", f"{default_key} is missing from {self.storage.describe()}")

        now = datetime.now(timezone.utc)
        fresh: dict[str, Catalog] = {}
        for key in inis:
            info = objects[key]
            old = self._inis.get(key)
            if old is not None and not self._changed(old, info, objects):
                fresh[key] = old
                continue
            if old is not None and (now - info.last_modified).total_seconds() < self.settings.catalog_settle_seconds:
                fresh[key] = old  # still being uploaded: serve the old version until it settles
                continue
            fresh[key] = self._load(key, info, objects, is_default=(key == default_key))

        default = fresh[default_key]
        by_root: dict[str, Catalog] = {}
        for key in inis:
            cat = fresh[key]
            if key == default_key:
                continue
            if not cat.root_id:
                log.error("catalog %s has no valid RootId; it is not addressable", key)
            elif cat.root_id in by_root:
                log.error("catalog %s repeats RootId %r of %s; ignored", key, cat.root_id, by_root[cat.root_id].key)
            else:
                by_root[cat.root_id] = cat
        self._inis = fresh
        self._set = CatalogSet(default, by_root)
        self._checked = self.clock()

    def _changed(self, cat: Catalog, info: ObjectInfo, objects: dict[str, ObjectInfo]) -> bool:
        if cat.etag != info.etag or cat.last_modified != info.last_modified:
            return True
        if self.settings.catalog_watch_data_files:
            return any(objects.get(k) is None or objects[k].etag != e for k, e in cat.data_etags.items())
        return False

    def _load(self, key: str, info: ObjectInfo, objects: dict[str, ObjectInfo], *, is_default: bool) -> Catalog:
        blob = self.storage.fetch(key)
        if blob is None:
            raise ISError("server_error", f"catalog {key} vanished while loading")
        try:
            ini = F.parse_ini(blob.data)
        except F.CatalogFormatError as exc:
            log.error("catalog %s cannot be parsed: %s", key, exc)
            cat = Catalog("", key, blob.etag, blob.last_modified, {})
            cat.error = ISError("server_error", f"catalog {key} cannot be parsed")
            return cat
        attrs = dict(ini.attrs)
        root_id = attrs.get("rootid", "").strip()
        if is_default:
            if root_id:
                log.error("default.ini must have an empty RootId; %r ignored", root_id)
            root_id = ""
        elif _BAD_ROOT_ID.search(root_id):
            log.error("catalog %s: RootId %r contains forbidden characters", key, root_id)
            root_id = ""
        cat = Catalog(root_id, key, blob.etag, blob.last_modified, attrs)
        rule_keys = self._data_keys(attrs.get("rulesetfile", ""))
        if rule_keys:
            self._load_rules(cat, rule_keys[0])
        cat.loader = lambda c: self._load_tables(c, attrs, objects)
        if is_default:
            cat.load_tables()  # the default catalog serves every request: read it now
        return cat

    def _load_tables(self, cat: Catalog, attrs: dict[str, str], objects: dict[str, ObjectInfo]) -> None:
        """The image, SVG, static content and macro tables of ``cat`` (catalogs.md §4.2-§4.3)."""
        svg_keys = self._data_keys(attrs.get("svgcatalogfile", ""))
        for file_key in self._data_keys(attrs.get("catalogfile", "")) + svg_keys:
            table = self._table(file_key, cat, objects)
            if table is None:
                continue
            for rid, row in table.rows.items():
                # Image records load before SVG records and win an id clash (AMBIG-7); later image files replace.
                if rid in cat.records_ and file_key in svg_keys:
                    continue
                cat.records_[rid] = Record(rid, row.fields, row.quoted, cat)
        for file_key in self._data_keys(attrs.get("staticcontentcatalogfile", "")):
            table = self._table(file_key, cat, objects)
            for rid, row in table.rows.items() if table is not None else ():
                cat.statics_[rid] = Record(rid, row.fields, row.quoted, cat)
        macro_keys = self._data_keys(attrs.get("macrofile", ""))
        if macro_keys:
            table = self._table(macro_keys[0], cat, objects, key_field="name")
            if table is not None:
                cat.macros_ = F.parse_macros(table)

    def _load_rules(self, cat: Catalog, key: str) -> None:
        """A rule set that is missing or does not conform fails its catalog closed: it may carry
        IP filters (catalogs.md §15.4)."""
        blob = self.storage.fetch(key)
        try:
            if blob is None:
                raise RuleSetError("the file is missing")
            cat.rules = parse_rule_set(blob.data)
        except RuleSetError as exc:
            log.error("catalog %s: rule set %s cannot be loaded: %s", cat.key, key, exc)
            cat.error = ISError("server_error", f"catalog {cat.key}: rule set {key} cannot be loaded ({exc})")
            return
        cat.data_etags[key] = blob.etag

    def _data_keys(self, value: str) -> list[str]:
        keys = []
        for path in (p.strip() for p in value.split(",")):
            if not path:
                continue
            path = path.replace("\\", "/")
            if path.startswith("/"):
                for old, new in self.settings.path_rewrites:
                    if path.startswith(old):
                        path = new + path[len(old) :]
                        break
                keys.append(path.lstrip("/"))
            else:
                keys.append(self.settings.catalog_prefix + path)
        return keys

    def _table(self, key: str, cat: Catalog, objects: dict[str, ObjectInfo], key_field: str = "id"):
        info = objects.get(key)
        cached = self._tables.get(key)
        if cached is not None and info is not None and cached[0] == info.etag:
            cat.data_etags[key] = cached[0]
            return cached[1]
        try:
            blob = self.storage.fetch(key)
        except ISError:
            log.exception("catalog %s: data file %s unreadable", cat.key, key)
            return cached[1] if cached else None
        if blob is None:
            log.error("catalog %s: data file %s is missing", cat.key, key)
            return None
        try:
            table = F.parse_table(blob.data, key_field)
        except F.CatalogFormatError as exc:
            log.error("catalog %s: data file %s cannot be parsed: %s", cat.key, key, exc)
            return cached[1] if cached else None
        for warning in table.warnings:
            log.warning("%s: %s", key, warning)
        self._tables[key] = (blob.etag, table)
        cat.data_etags[key] = blob.etag
        return table
