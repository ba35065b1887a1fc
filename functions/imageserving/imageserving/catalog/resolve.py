"""From a URL object or a command object to a record or a file (catalogs.md §6, protocol.md §5)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ISError
from .formats import parse_direct_access
from .model import Catalog, CatalogSet, Record

_SUFFIX = re.compile(r"\.[^./]+\Z")


@dataclass(frozen=True)
class Source:
    """A resolved object: a record, or a plain file path rooted at ``catalog``'s RootPath."""

    catalog: Catalog  # the layer catalog: owner of the record, or base of the path
    record: Record | None
    path: str  # catalog::Path of the record, or the request path ('' for a template)
    name: str  # how to name it in messages and $object$: rootId/id or the path

    @property
    def is_template(self) -> bool:
        return self.record is not None and not self.record.get("path")


@dataclass(frozen=True)
class PathObject:
    main: Catalog
    source: Source | None  # None: the URL names no object, or ``missing``
    object: str  # the decoded object as written, for $object$
    # Locale translation found none of the ids it tried for an object that is a record (§6.7),
    # or (``denied``) the object is a file path AllowDirectAccess does not open (§5.5).
    missing: bool = False
    denied: bool = False


def direct_kind(path: str) -> str:
    """The AllowDirectAccess type of a file served by ``/is/image``: ``SVG`` or ``IS``."""
    return "SVG" if path.lower().endswith(".svg") else "IS"


def direct_access_allowed(cats: CatalogSet, main: Catalog, kind: str) -> bool:
    """Whether the main catalog's ``AllowDirectAccess`` lets a path (not a record) reach an
    object of ``kind`` (catalogs.md §13.5; built-in ``exclude:`` = every type, AMBIG-15)."""
    include, types = parse_direct_access(cats.raw_attr(main, "AllowDirectAccess"))
    return (kind in types) == include


def check_direct_access(cats: CatalogSet, main: Catalog, source: Source, kind: str | None = None) -> None:
    """A file path named by the client that AllowDirectAccess closes is a missing source: the
    default image rules apply and nothing tells whether the file exists (protocol.md §5.5)."""
    if source.record is not None or not source.path:
        return
    kind = kind or direct_kind(source.path)
    if not direct_access_allowed(cats, main, kind):
        raise ISError(
            "not_found", f"{source.name}: AllowDirectAccess closes paths to {kind} objects", missing_source=True
        )


def main_catalog(cats: CatalogSet, elements: list[str]) -> Catalog:
    """The catalog whose RootId is the first path element, else the default catalog (§5.1);
    a catalog that failed to load fails its requests."""
    cat = cats.catalog(elements[0]) if elements and elements[0] else None
    if cat is None and elements and elements[0]:
        cats.check_available(elements[0])
    cat = cat or cats.default
    if cat.error is not None:
        raise cat.error
    return cat


def resolve_path_object(cats: CatalogSet, elements: list[str], locale: str | None = None) -> PathObject:
    """Main catalog and layer-0 source from the decoded path elements (catalogs.md §6.2), ids
    translated for ``locale`` (the effective locale; None: no translation)."""
    obj = "/".join(elements)
    if "," in obj:
        raise ISError("bad_request", f"comma in object {obj!r}")
    if not elements or elements == [""]:
        return PathObject(cats.default, None, "")
    main = main_catalog(cats, elements)
    if elements[0] == "":  # /is/image//x/y: the default catalog, explicitly
        rest = "/".join(elements[1:])
        if not rest:
            return PathObject(main, None, rest)
        rec, missing = lookup_translated(cats, main, main, rest, locale)
        return _path_object(cats, main, rec, missing, Source(main, None, rest, rest), rest)
    if not main.is_default:
        rest = "/".join(elements[1:])
        if not rest:
            return PathObject(main, None, obj)
        rec, missing = lookup_translated(cats, main, main, rest, locale)
        if rec is not None or missing or not cats.attr(main, "FullMatch"):
            return _path_object(cats, main, rec, missing, Source(main, None, rest, obj), obj)
    rec, missing = lookup_translated(cats, main, cats.default, obj, locale)
    return _path_object(cats, cats.default, rec, missing, Source(cats.default, None, obj, obj), obj)


def _path_object(
    cats: CatalogSet, main: Catalog, rec: Record | None, missing: bool, file: Source, obj: str
) -> PathObject:
    if missing:
        return PathObject(main, None, obj, missing=True)
    if rec is None:
        if not direct_access_allowed(cats, main, direct_kind(file.path)):
            return PathObject(main, None, obj, missing=True, denied=True)
        return PathObject(main, file, obj)
    # Named rootId/id, so that a translated record shows the id it was translated to.
    return PathObject(main, _from_record(rec, rec.id if main.is_default else f"{main.root_id}/{rec.id}"), obj)


def resolve_object(cats: CatalogSet, obj: str, main: Catalog, locale: str | None = None) -> Source:
    """An object named in a command or attribute (``src=``, DefaultImage, ErrorImage …), §6.3;
    record ids translated for ``locale`` (None: no translation). An object that is a record but
    has no translated record is a missing source."""
    if not obj or "," in obj:
        raise ISError("bad_request", f"invalid object {obj!r}")
    use_default = obj.startswith("/")
    if use_default:
        obj = obj[1:]
    search = cats.default if use_default else main
    rec, missing = lookup_translated(cats, main, search, obj, locale)
    if rec is not None:
        return _from_record(rec, obj)
    first, _, rest = obj.partition("/")
    other = cats.catalog(first)
    if other is None and rest:
        cats.check_available(first)
    if other is not None and rest:
        rec, missing_there = lookup_translated(cats, main, other, rest, locale)
        if rec is not None:
            return _from_record(rec, obj)
        missing = missing or missing_there
    if missing:
        raise ISError("not_found", f"{obj}: no record for locale {locale!r}", missing_source=True)
    base = cats.default if (use_default or cats.attr(main, "FullMatch")) else main
    return Source(base, None, obj, obj)


# --- object id translation (locale=, attribute::LocaleMap) ---------------------------------------------


def parse_locale_map(text: str) -> list[tuple[str, list[str]]]:
    """``LocaleMap`` / ``LocaleStrMap``: ``|``-separated items ``locale,value[,value…]``, white space
    around items and values trimmed (AMBIG-18); locales lower-cased (they match case-insensitively)."""
    items = []
    for item in text.split("|"):
        if not item.strip():
            continue
        locale, *values = (part.strip() for part in item.split(","))
        items.append((locale.lower(), values))
    return items


def locale_map_values(text: str, locale: str) -> list[str] | None:
    """The values of the map item for ``locale``, else of the default rule (empty locale), else None."""
    items = parse_locale_map(text)
    wanted = locale.lower()
    if wanted:
        for item_locale, values in items:
            if item_locale == wanted:
                return values
    for item_locale, values in items:
        if not item_locale:
            return values
    return None


def id_suffixes(cats: CatalogSet, main: Catalog, locale: str) -> list[str] | None:
    """Suffixes to try, in order, on a record id; None when no translation applies. A non-empty
    locale that matches no item of a map without default rule is a bad request (§6.7)."""
    locale_map = (cats.raw_attr(main, "LocaleMap") or "").strip()
    if not locale_map:
        return None
    suffixes = locale_map_values(locale_map, locale)
    if suffixes is None:
        if locale:
            raise ISError("bad_request", f"locale={locale}: not in LocaleMap and no default rule")
        return None
    return suffixes


def lookup_translated(
    cats: CatalogSet, main: Catalog, cat: Catalog, record_id: str, locale: str | None
) -> tuple[Record | None, bool]:
    """``record_id`` in ``cat`` (then the default catalog) after translation with ``main``'s
    LocaleMap: the first ``id + suffix`` that is a record wins. Returns (record, missing), where
    missing means no candidate exists although ``record_id`` itself is a record; a plain file
    path is never translated (catalogs.md §6.7)."""
    suffixes = id_suffixes(cats, main, locale) if locale is not None else None
    if suffixes is None:
        return cats.lookup(cat, record_id), False
    for suffix in suffixes:
        rec = cats.lookup(cat, record_id + suffix)
        if rec is not None:
            return rec, False
    return None, cats.lookup(cat, record_id) is not None


def _from_record(rec: Record, name: str) -> Source:
    return Source(rec.catalog, rec, rec.get("path"), name)


def source_keys(cats: CatalogSet, src: Source, settings) -> list[str]:
    """Candidate storage keys of a source file, first existing wins (catalogs.md §6.8). Only a
    record's ``catalog::Path`` may be absolute; a path from the request is always relative."""
    path = with_default_ext(cats, src.catalog, src.path)
    return file_keys(path, cats.raw_attr(src.catalog, "RootPath") or "", settings, request=src.record is None)


def with_default_ext(cats: CatalogSet, cat: Catalog, path: str) -> str:
    last = path.rsplit("/", 1)[-1]
    if path and not _SUFFIX.search(last):
        ext = cats.raw_attr(cat, "DefaultExt") or ""
        if ext:
            return path + (ext if ext.startswith(".") else "." + ext)
    return path


def file_keys(
    path: str, root_path: str, settings, roots: tuple[str, ...] | None = None, *, request: bool = False
) -> list[str]:
    """Storage keys for ``path`` under ``root_path`` and each server root (images by default).

    ``request``: the path comes from the URL (protocol.md §1.6: always relative, so a leading
    ``/``, an empty element or a ``%2F`` cannot reach the bucket root). Every key, absolute
    catalog paths after ``IS_PATH_REWRITES`` included, must lie under one of ``roots`` and never
    under the catalog prefix: catalogs are not content, and nothing else in the bucket is either.
    """
    roots = settings.image_prefixes if roots is None else roots
    p = _normalize(path)
    if request:
        p = p.lstrip("/")
    rp = _normalize(root_path)
    if p.startswith("/"):
        keys = [_rewrite(p, settings)]
    elif rp.startswith("/"):
        keys = [_rewrite(_join(rp, p), settings)]
    else:
        keys = [_join(root, rp, p) for root in roots]
    for key in keys:
        if not any(key.startswith(root) for root in roots) or (
            settings.catalog_prefix and key.startswith(settings.catalog_prefix)
        ):
            raise ISError("not_found", f"path {path!r} lies outside the configured roots", missing_source=True)
    return keys


def _normalize(path: str) -> str:
    p = path.replace("\\", "/")
    while "//" in p:
        p = p.replace("//", "/")
    if "\x00" in p or any(seg in ("..", ".") for seg in p.split("/")):
        raise ISError("bad_request", f"path {path!r} escapes the image root")
    return p


def _join(*parts: str) -> str:
    return "/".join(s.strip("/") for s in parts if s.strip("/"))


def _rewrite(path: str, settings) -> str:
    for old, new in settings.path_rewrites:
        if path.startswith(old):
            path = new + path[len(old) :]
            break
    return path.lstrip("/")
