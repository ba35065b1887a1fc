"""Loading catalogs from storage, caching them per process, revalidating them (catalogs.md §4, §15.2).

A listing of the catalog prefix (one request, ETag and LastModified for every key) decides what
changed; only changed files are fetched and parsed again. A broken catalog fails only the
requests addressed to it; a failed revalidation keeps serving the last good generation.

Storage faults (S3 throttling, 5xx, timeouts: issue 8.2) are never taken for "no such file": a
catalog whose ``.ini`` cannot be read keeps its last good version (or, never read yet, answers 503),
a data file that cannot be read answers 503 for the requests that need it, and every failed read is
tried again on a later request, per key with an exponential backoff (:class:`Backoff`).

Revalidation never holds serving up (issue 8.3). Once catalogs are loaded, the request that finds
the refresh interval passed starts **one** refresh in a thread and waits for it at most
``IS_CATALOG_REFRESH_WAIT_S`` (0.25 s): a normal refresh (one listing, a few changed files) ends
within that, so the change shows up on that very request, as before; a stalled listing or a slow
data file does not, and that request and every one after it are answered from the last good
catalogs until the refresh ends and swaps the new set in (atomically: a request keeps the set it
started with). Requests arriving while a refresh runs do not wait at all, and never start a second
one. Only a cold start, with nothing to serve yet, waits for its load.

The same code serves both runtimes. On the local server (uvicorn's threads) the refresh thread runs
beside the requests. On Lambda the sandbox is frozen between invocations, so a background thread
alone would make no progress while no request runs; here the refresh is started by a request and
runs while that invocation waits its bound and while later invocations are served — the first
invocation after a stall pays at most the bound, none pays the stall. A refresh frozen in the
middle of an S3 call is not lost either: after the thaw botocore's own timeouts end it, the failure
goes through the listing's :class:`Backoff`, and the next due request starts a fresh one.
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


class Backoff:
    """When a read that failed may be tried again, per key: the first retry at once (the next
    request), then after 0.25 s, 0.5 s, 1 s … up to :attr:`CAP` seconds, so that a failing S3 is
    not hammered by every request; a success forgets the key."""

    BASE = 0.25
    CAP = 4.0

    def __init__(self, clock):
        self.clock = clock
        self._state: dict[str, tuple[int, float]] = {}  # key -> (failures in a row, retry at)
        self._lock = threading.Lock()

    def wait(self, key: str) -> float:
        """Seconds until ``key`` may be read again (0: now)."""
        state = self._state.get(key)
        return max(0.0, state[1] - self.clock()) if state else 0.0

    def failed(self, key: str) -> None:
        with self._lock:
            n = self._state.get(key, (0, 0.0))[0] + 1
            delay = 0.0 if n == 1 else min(self.CAP, self.BASE * 2 ** (n - 2))
            self._state[key] = (n, self.clock() + delay)

    def succeeded(self, key: str) -> None:
        self._state.pop(key, None)

    def failures(self, key: str) -> int:
        state = self._state.get(key)
        return state[0] if state else 0


class _Broken(Exception):
    """The bucket's catalogs are unusable as configured (not a fault): no catalog set at all."""

    def __init__(self, err: ISError):
        super().__init__(str(err))
        self.err = err


_LISTING = "\x00listing"  # the Backoff key of the catalog prefix listing


def _fault(exc: ISError) -> ISError:
    """A fresh copy of ``exc`` for one request (a stored exception raised again and again would
    grow its traceback): for a storage fault, the storage's kind (overload = 503 for
    throttling/5xx/timeouts), its detail kept for ErrorDetail 2."""
    return ISError(exc.kind, exc.detail)


class CatalogStore:
    def __init__(self, storage, settings, clock=time.monotonic):
        self.storage = storage
        self.settings = settings
        self.clock = clock
        self._set: CatalogSet | None = None
        self._error: ISError | None = None  # why there is no catalog set (cold start failed)
        self._next = float("-inf")  # when to revalidate next (clock time)
        self._inis: dict[str, Catalog] = {}  # .ini key -> catalog built from it
        self._tables: dict[str, tuple[str, object]] = {}  # data-file key -> (etag, parsed table)
        self._retry: set[str] = set()  # .ini keys whose last read hit a storage fault
        self._unusable: dict[str, str] = {}  # .ini key -> ETag of a broken new version (the old one serves)
        self._reported: dict[str, tuple[str, str]] = {}  # .ini key -> (etag, why) of its last logged refusal
        self.backoff = Backoff(clock)
        self._lock = threading.Lock()  # held by the one load or refresh at work
        self._refreshing: threading.Event | None = None  # set when the refresh in flight ends
        self._flag = threading.Lock()  # guards _refreshing only: never held while working

    def current(self) -> CatalogSet:
        """The catalog set to use for one request (revalidated at most every refresh interval,
        sooner while a read is being retried; see the module docstring for who waits how long)."""
        if self.clock() >= self._next:
            if self._set is None:
                with self._lock:  # cold start (or no usable set): nothing to serve but what this loads
                    if self._set is None and self.clock() >= self._next:
                        self._revalidate()
            else:
                self._refresh_in_background()
        cats = self._set
        if cats is None:
            if self._error is None:  # not reachable by design; never a 500 if it is
                raise ISError("overload", "catalogs are being reloaded")
            raise _fault(self._error)  # a fresh exception each time: tracebacks must not pile up
        return cats

    def _refresh_in_background(self) -> None:
        """Start the one refresh and wait for it at most the bound; if one runs already, return."""
        with self._flag:
            if self._refreshing is not None or self.clock() < self._next:
                return
            done = self._refreshing = threading.Event()
        threading.Thread(target=self._refresh_thread, args=(done,), name="catalog-refresh", daemon=True).start()
        done.wait(self.settings.catalog_refresh_wait_s)

    def _refresh_thread(self, done: threading.Event) -> None:
        try:
            with self._lock:
                self._revalidate()
        except ISError:
            pass  # no usable set any more (default.ini gone): recorded in _error, answered per request
        except Exception:  # noqa: BLE001 - a bug here must not end refreshing for the process
            log.exception("catalog revalidation failed unexpectedly; keeping the loaded catalogs")
            self._next = self.clock() + self.settings.catalog_refresh_seconds
        finally:
            with self._flag:
                self._refreshing = None
            done.set()

    def _read_ok(self, key: str) -> None:
        """The key was read (its content may still be unusable, which is no storage fault): no
        retry and no backoff for it, so a broken .ini does not make every request list the bucket."""
        self.backoff.succeeded(key)
        self._retry.discard(key)

    def _revalidate(self) -> None:
        try:
            self._refresh()
        except _Broken as broken:
            # _error first: a request that does not wait for this refresh may read _set at any moment.
            self._error = broken.err
            self._set = None
            self._next = self.clock() + self.settings.catalog_refresh_seconds
            raise _fault(broken.err) from None
        except ISError as exc:
            self.backoff.failed(_LISTING)
            self._next = self.clock() + self.backoff.wait(_LISTING)
            if self._set is None:
                self._error = _fault(exc)
                log.warning("catalogs cannot be loaded (%s); retrying", exc.detail)
                raise _fault(exc) from exc
            log.warning("catalog revalidation failed (%s); keeping the loaded catalogs", exc.detail)
            return
        self.backoff.succeeded(_LISTING)

    def _refresh(self) -> None:
        prefix = self.settings.catalog_prefix
        listing = self.storage.list(prefix)
        objects = {o.key: o for o in listing}
        inis = sorted(k for k in objects if "/" not in k[len(prefix) :] and k.lower().endswith(".ini"))
        default_key = prefix + "default.ini"
        if default_key not in objects:
            raise _Broken(ISError("server_error", f"{default_key} is missing from {self.storage.describe()}"))

        now = datetime.now(timezone.utc)
        fresh: dict[str, Catalog] = {}
        unavailable: dict[str, ISError] = {}
        for key in inis:
            info = objects[key]
            old = self._inis.get(key)
            is_default = key == default_key
            if old is not None and key not in self._retry and not self._changed(old, info, objects):
                fresh[key] = old
                continue
            if old is not None and self._unusable.get(key) == info.etag:
                fresh[key] = old  # this version was tried and is broken (logged): the last good one serves
                self._read_ok(key)
                continue
            if old is not None and (now - info.last_modified).total_seconds() < self.settings.catalog_settle_seconds:
                fresh[key] = old  # still being uploaded: serve the old version until it settles
                continue
            if self.backoff.wait(key) > 0:  # failed a moment ago: do not ask S3 again yet
                if old is not None:
                    fresh[key] = old
                elif is_default:
                    raise ISError("overload", f"catalog {key} is unavailable (retrying)")
                else:
                    unavailable[key[len(prefix) : -4]] = ISError("overload", f"catalog {key} is unavailable")
                continue
            try:
                cat = self._load(key, info, objects, is_default=is_default)
                if cat is None:
                    continue  # a key no storage can read: not addressable, logged
                if cat.error is not None and old is not None and old.error is None:
                    # A broken reload keeps the last good version (catalogs.md §15.4): losing it would
                    # also hand its RootId to any other .ini that repeats it (issue 8.4).
                    log.error(
                        "catalog %s: its new version is unusable (%s); serving the last good one", key, cat.error.detail
                    )
                    self._unusable[key] = info.etag
                    fresh[key] = old
                    self._read_ok(key)
                    continue
                # The default catalog serves every request, and a catalog in use changes only once
                # its new data files are read: read their tables now.
                if cat.error is None and (is_default or (old is not None and old.tables_loaded)):
                    try:
                        cat.load_tables()
                    except ISError:
                        if old is not None:
                            raise
                        # Cold start: the default catalog is served, its tables read at first use.
                        log.warning("catalog %s: data files unavailable; read again at first use", key)
            except ISError as exc:
                self.backoff.failed(key)
                self._retry.add(key)
                if old is not None:
                    log.warning("catalog %s unreadable (%s); serving its last good version", key, exc.detail)
                    fresh[key] = old
                elif is_default:
                    raise
                else:
                    log.warning("catalog %s unreadable (%s); retrying", key, exc.detail)
                    unavailable[key[len(prefix) : -4]] = ISError("overload", f"catalog {key} is unavailable")
                continue
            self._read_ok(key)
            self._unusable.pop(key, None)
            fresh[key] = cat

        default = fresh[default_key]
        by_root = self._assign_root_ids([fresh[k] for k in inis if k in fresh and k != default_key])
        self._inis = fresh
        self._retry &= set(objects)
        self._unusable = {k: v for k, v in self._unusable.items() if k in objects}
        self._set = CatalogSet(default, by_root, unavailable=unavailable)
        self._error = None
        interval = self.settings.catalog_refresh_seconds
        if self._retry:  # a catalog is being retried: revalidate as soon as its backoff allows
            interval = min(interval, min(self.backoff.wait(k) for k in self._retry))
        self._next = self.clock() + interval

    def _assign_root_ids(self, cats: list[Catalog]) -> dict[str, Catalog]:
        """RootId -> catalog. A RootId claimed by several ``.ini`` files (issue 8.4) stays with the
        established catalog: the one that held it in this process's last generation, else (a cold
        start, or the holder gave the RootId up) the oldest ``.ini`` by LastModified, then by key
        (AMBIG-5) — so a junk file that repeats a RootId cannot take a catalog over, on a warm
        process nor on a fresh Lambda container. Each newcomer is logged at ERROR (once per version
        of it: revalidation runs every few seconds), which ``validate`` and ``publish`` report."""
        held = {root_id: cat.key for root_id, cat in self._set.by_root.items()} if self._set else {}
        claims: dict[str, list[Catalog]] = {}
        for cat in cats:
            if cat.root_id:
                claims.setdefault(cat.root_id, []).append(cat)
            else:
                self._report(cat, "", "catalog %s has no valid RootId; it is not addressable", cat.key)
        by_root: dict[str, Catalog] = {}
        for root_id, claimants in claims.items():
            keeper = next((c for c in claimants if c.key == held.get(root_id)), None)
            keeper = keeper or min(claimants, key=lambda c: (c.last_modified, c.key))
            by_root[root_id] = keeper
            for cat in claimants:
                if cat is not keeper:
                    self._report(
                        cat,
                        keeper.key,
                        "catalog %s repeats RootId %r of the established catalog %s; ignored",
                        cat.key,
                        root_id,
                        keeper.key,
                    )
        self._reported = {k: v for k, v in self._reported.items() if k in {c.key for c in cats}}
        return by_root

    def _report(self, cat: Catalog, why: str, message: str, *args) -> None:
        """Log ``message`` at ERROR once for this version of ``cat`` (and this ``why``)."""
        if self._reported.get(cat.key) != (cat.etag, why):
            self._reported[cat.key] = (cat.etag, why)
            log.error(message, *args)

    def _changed(self, cat: Catalog, info: ObjectInfo, objects: dict[str, ObjectInfo]) -> bool:
        if cat.etag != info.etag or cat.last_modified != info.last_modified:
            return True
        if self.settings.catalog_watch_data_files:
            return any(objects.get(k) is None or objects[k].etag != e for k, e in cat.data_etags.items())
        return False

    def _load(self, key: str, info: ObjectInfo, objects: dict[str, ObjectInfo], *, is_default: bool) -> Catalog | None:
        """The catalog of ``key``; None for a key the storage refuses to read (logged). A storage
        fault on the ``.ini`` or its rule set raises."""
        try:
            blob = self.storage.fetch(key)
        except ISError as exc:
            if exc.kind != "bad_request":
                raise
            log.error("catalog %s: the key cannot be read (%s); it is not addressable", key, exc.detail)
            return None
        if blob is None:
            raise ISError("server_error", f"catalog {key} vanished while loading")
        try:
            ini = F.parse_ini(blob.data)
        except F.CatalogFormatError as exc:
            log.error("catalog %s cannot be parsed: %s", key, exc)
            cat = Catalog("", key, blob.etag, blob.last_modified, {})
            cat.error = ISError("server_error", f"catalog {key} cannot be parsed")
            return cat
        for warning in ini.warnings:
            log.warning("%s: %s", key, warning)
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
        return cat

    def _load_tables(self, cat: Catalog, attrs: dict[str, str], objects: dict[str, ObjectInfo]) -> None:
        """The image, SVG, static content, macro and ICC profile tables of ``cat`` (catalogs.md §4.2-§4.3); all
        of them or none (a storage fault raises and leaves the catalog to be read again)."""
        records: dict[str, Record] = {}
        statics: dict[str, Record] = {}
        macros: dict[str, str] = {}
        profiles: dict[str, str] = {}
        svg_keys = self._data_keys(attrs.get("svgcatalogfile", ""))
        for file_key in self._data_keys(attrs.get("catalogfile", "")) + svg_keys:
            table = self._table(file_key, cat, objects)
            if table is None:
                continue
            for rid, row in table.rows.items():
                # Image records load before SVG records and win an id clash (AMBIG-7); later image files replace.
                if rid in records and file_key in svg_keys:
                    continue
                records[rid] = Record(rid, row.fields, row.quoted, cat)
        for file_key in self._data_keys(attrs.get("staticcontentcatalogfile", "")):
            table = self._table(file_key, cat, objects)
            for rid, row in table.rows.items() if table is not None else ():
                statics[rid] = Record(rid, row.fields, row.quoted, cat)
        macro_keys = self._data_keys(attrs.get("macrofile", ""))
        if macro_keys:
            table = self._table(macro_keys[0], cat, objects, key_field="name")
            if table is not None:
                macros = F.parse_macros(table)
        icc_keys = self._data_keys(attrs.get("iccprofilemapfile", ""))
        if icc_keys:
            table = self._table(icc_keys[0], cat, objects, key_field="name")
            try:
                profiles = F.parse_icc_map(table) if table is not None else {}
            except F.CatalogFormatError as exc:  # its profiles are unknown names, the rest works
                log.error("catalog %s: ICC profile map %s: %s", cat.key, icc_keys[0], exc)
        cat.records_, cat.statics_, cat.macros_, cat.icc_ = records, statics, macros, profiles

    def _load_rules(self, cat: Catalog, key: str) -> None:
        """A rule set that is missing or does not conform fails its catalog closed: it may carry
        IP filters (catalogs.md §15.4). A storage fault raises: the catalog is read again later."""
        try:
            blob = self.storage.fetch(key)
        except ISError as exc:
            if exc.kind != "bad_request":
                raise
            blob = None
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
        """The parsed data file ``key``; None when it is missing or invalid (its records are lost,
        logged). A storage fault raises (503 for throttling/5xx/timeouts) and is never cached: the
        next request that needs the file reads it again once :class:`Backoff` allows."""
        info = objects.get(key)
        cached = self._tables.get(key)
        if cached is not None and info is not None and cached[0] == info.etag:
            cat.data_etags[key] = cached[0]
            return cached[1]
        wait = self.backoff.wait(key)
        if wait > 0:
            raise ISError("overload", f"catalog {cat.key}: data file {key} unavailable (retry in {wait:.2f} s)")
        try:
            blob = self.storage.fetch(key)
        except ISError as exc:
            if exc.kind == "bad_request":  # a key no storage can hold: as good as missing
                log.error("catalog %s: data file %s cannot be read: %s", cat.key, key, exc.detail)
                return None
            self.backoff.failed(key)
            log.warning("catalog %s: data file %s unavailable: %s", cat.key, key, exc.detail)
            raise _fault(exc) from exc
        self.backoff.succeeded(key)
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
