"""The parsed catalog set and attribute inheritance (catalogs.md §2, §4.4, §5)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from ..errors import ISError
from . import formats as F
from .rules import Rule


@dataclass(eq=False)
class Record:
    """One row of an image data file; ``catalog`` is the catalog that holds it."""

    id: str
    fields: dict[str, str]
    quoted: frozenset[str]
    catalog: "Catalog"

    def get(self, name: str) -> str:
        return self.fields.get(name, "")

    @property
    def is_template(self) -> bool:
        """A template record (catalogs.md §7.4): no image of its own, its body in the Modifier."""
        return not self.get("path").strip() and bool(self.get("modifier").strip())


@dataclass(eq=False)
class Catalog:
    root_id: str  # "" for default.ini
    key: str  # storage key of the .ini
    etag: str
    last_modified: datetime
    attrs: dict[str, str]  # lower-cased name -> raw value ('' = defined-but-empty)
    records_: dict[str, Record] = field(default_factory=dict, repr=False)
    statics_: dict[str, Record] = field(default_factory=dict, repr=False)  # /is/content records
    macros_: dict[str, str] = field(default_factory=dict, repr=False)
    icc_: dict[str, str] = field(default_factory=dict, repr=False)  # lower-cased icc::Name -> ProfilePath
    data_etags: dict[str, str] = field(default_factory=dict)  # data-file key -> etag it was parsed from
    rules: tuple[Rule, ...] = ()  # the RuleSetFile's request preprocessing rules (catalogs.md §12)
    error: ISError | None = None  # set when the catalog failed to load: its requests fail, others don't

    # Fills records_/statics_/macros_ on first use (catalogs.md §15.2: a catalog's data files are
    # read when a request first needs them, so a cold start reads only what it serves).
    loader: Callable[["Catalog"], None] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def load_tables(self) -> None:
        """Read the data files once. A loader that raises (S3 unavailable) stays in place: the next
        request that needs the tables tries again (the store decides how soon, issue 8.2)."""
        if self.loader is not None:
            with self._lock:
                if self.loader is not None:
                    self.loader(self)
                    self.loader = None

    @property
    def tables_loaded(self) -> bool:
        return self.loader is None

    @property
    def records(self) -> dict[str, Record]:
        self.load_tables()
        return self.records_

    @property
    def statics(self) -> dict[str, Record]:
        self.load_tables()
        return self.statics_

    @property
    def macros(self) -> dict[str, str]:
        self.load_tables()
        return self.macros_

    @property
    def icc_profiles(self) -> dict[str, str]:
        self.load_tables()
        return self.icc_

    @property
    def is_default(self) -> bool:
        return self.root_id == ""

    def label(self) -> str:
        return self.root_id or "default"


# Parsers per typed attribute; a value they reject counts as "not set" and is inherited.
_TYPED: dict[str, Callable[[str], object]] = {
    "bkgcolor": F.parse_color_attr,
    "thumbbkgcolor": F.parse_color_attr,
    "bfc": F.parse_flag_attr,
    "fullmatch": F.parse_flag_attr,
    "uselastmodified": F.parse_flag_attr,
    "requestlock": F.parse_flag_attr,
    "allowdirecturls": F.parse_flag_attr,
    "errordetail": lambda v: F.parse_enum_attr(v, (0, 1, 2, 3)),
    "defaultimagemode": lambda v: F.parse_enum_attr(v, (0, 1)),
    "requestobfuscation": lambda v: F.parse_enum_attr(v, (0, 1)),
    "thumbtype": lambda v: F.parse_enum_attr(v, (1, 2, 3)),
    "thumbhorizalign": lambda v: F.parse_enum_attr(v, (1, 2, 3)),
    "thumbvertalign": lambda v: F.parse_enum_attr(v, (1, 2, 3)),
    "expiration": F.parse_real_attr,
    "defaultexpiration": F.parse_real_attr,
    "nonimgexpiration": F.parse_real_attr,
    "resolution": F.parse_real_attr,
    "printresolution": F.parse_int_attr,
    "thumbres": F.parse_real_attr,
    "maxpix": F.parse_size_attr,
    "defaultpix": F.parse_size_attr,
    "defaultthumbpix": F.parse_size_attr,
}


class CatalogSet:
    """All catalogs of one generation: the default catalog plus the others by RootId."""

    def __init__(
        self,
        default: Catalog,
        by_root: dict[str, Catalog],
        overrides: dict[str, str] | None = None,
        unavailable: dict[str, ISError] | None = None,
    ):
        self.default = default
        self.by_root = by_root
        # Catalogs whose .ini could not be read yet (S3 fault, no earlier version): by file name
        # stem, the RootId they most likely carry; their requests answer 503 rather than falling
        # through to the default catalog as "not found" (issue 8.2).
        self.unavailable = unavailable or {}
        # Attribute values that matched rule-set rules set for one request (lower-cased names).
        self.overrides = overrides or {}

    def with_overrides(self, overrides: dict[str, str]) -> CatalogSet:
        """This generation as one request sees it: rule overrides win over every catalog's value
        (catalogs.md §12.3; a record's own ``catalog::Expiration`` still wins over ``Expiration``)."""
        if not overrides:
            return self
        return CatalogSet(self.default, self.by_root, {**self.overrides, **overrides}, self.unavailable)

    def catalog(self, root_id: str) -> Catalog | None:
        return self.by_root.get(root_id)

    def check_available(self, root_id: str) -> None:
        """Raise the fault of a catalog named ``root_id`` that could not be read yet (503)."""
        if root_id not in self.by_root and root_id in self.unavailable:
            err = self.unavailable[root_id]
            raise ISError(err.kind, err.detail)  # a fresh one: a stored exception's traceback would grow

    def raw_attr(self, cat: Catalog, name: str) -> str | None:
        """Effective raw value of attribute ``name`` for ``cat`` (None = not set anywhere)."""
        name = name.lower()
        if name in self.overrides:
            return self.overrides[name]  # checked when the rule set was loaded
        parse = _TYPED.get(name)
        # File lists and TimeStamp belong to one catalog (catalogs.md §5.2): never default.ini's.
        own_only = cat.is_default or name in F.NOT_INHERITED
        for source in (cat.attrs,) if own_only else (cat.attrs, self.default.attrs):
            if name not in source:
                continue
            value = source[name]
            if value == "":
                if name in F.EMPTY_IS_VALUE:
                    return ""
                continue
            if parse is None or parse(value) is not None:
                return value
        if cat.is_default or name not in F.NOT_INHERITED:
            return F.BUILTIN_ATTRIBUTES.get(name)
        return None

    def defines(self, cat: Catalog, name: str) -> bool:
        """Whether ``cat``, ``default.ini`` or a rule set sets ``name`` (not only the built-in)."""
        name = name.lower()
        return name in self.overrides or name in cat.attrs or name in self.default.attrs

    def attr(self, cat: Catalog, name: str):
        """Effective typed value (raw string for untyped attributes)."""
        raw = self.raw_attr(cat, name)
        parse = _TYPED.get(name.lower())
        if raw is None or parse is None:
            return raw
        value = parse(raw)
        if value is None:  # a built-in always parses; guard against a broken default anyway
            value = parse(F.BUILTIN_ATTRIBUTES.get(name.lower(), ""))
        return value

    def record_ttl(self, record: Record | None) -> float | None:
        """``catalog::Expiration`` in hours; None when missing, empty, -2 (use the default) or invalid."""
        value = F.parse_real_attr(record.get("expiration")) if record is not None else None
        return None if value is None or value == -2 else value

    def expiration(self, record: Record | None, fallback: Catalog) -> float:
        """A record's TTL, else its catalog's ``Expiration``; without a record, ``fallback``'s (§8.1)."""
        ttl = self.record_ttl(record)
        if ttl is not None:
            return ttl
        return self.attr(record.catalog if record is not None else fallback, "Expiration")

    def lookup(self, cat: Catalog, record_id: str) -> Record | None:
        """``record_id`` in ``cat``, else in the default catalog (catalogs.md §5.4)."""
        rec = cat.records.get(record_id)
        if rec is None and not cat.is_default:
            rec = self.default.records.get(record_id)
        return rec

    def macro(self, cat: Catalog, name: str) -> str | None:
        body = cat.macros.get(name)
        if body is None and not cat.is_default:
            body = self.default.macros.get(name)
        return body

    def icc_profile(self, cat: Catalog, name: str) -> tuple[Catalog, str] | None:
        """``icc::ProfilePath`` of profile ``name`` (case-insensitive) and the catalog whose
        RootPath it is relative to: ``cat``'s map first, then the default catalog's (§10.5)."""
        for owner in (cat, self.default) if not cat.is_default else (cat,):
            path = owner.icc_profiles.get(name.lower())
            if path:
                return owner, path
        return None

    def all_catalogs(self) -> list[Catalog]:
        return [self.default, *self.by_root.values()]
