"""From a URL object or a command object to a record or a file (catalogs.md §6, protocol.md §5)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ISError
from .model import Catalog, CatalogSet, Record

_SUFFIX = re.compile(r"\.[^./]+\Z")


@dataclass(frozen=True)
class Source:
    """A resolved object: a record, or a plain file path rooted at ``catalog``'s RootPath."""

    catalog: Catalog          # the layer catalog: owner of the record, or base of the path
    record: Record | None
    path: str                 # catalog::Path of the record, or the request path ('' for a template)
    name: str                 # how to name it in messages and $object$: rootId/id or the path

    @property
    def is_template(self) -> bool:
        return self.record is not None and not self.record.get("path")


@dataclass(frozen=True)
class PathObject:
    main: Catalog
    source: Source | None     # None: the URL names no object (catalog-only request)
    object: str               # the decoded object as written, for $object$


def resolve_path_object(cats: CatalogSet, elements: list[str]) -> PathObject:
    """Main catalog and layer-0 source from the decoded path elements (catalogs.md §6.2)."""
    obj = "/".join(elements)
    if "," in obj:
        raise ISError("bad_request", f"comma in object {obj!r}")
    if not elements or elements == [""]:
        return PathObject(cats.default, None, "")
    if elements[0] == "":                      # /is/image//x/y: the default catalog, explicitly
        rest = "/".join(elements[1:])
        return PathObject(cats.default, _in_catalog(cats, cats.default, rest, rest) if rest else None, rest)
    cat = cats.catalog(elements[0])
    if cat is not None:
        if cat.error is not None:
            raise cat.error
        rest = "/".join(elements[1:])
        if not rest:
            return PathObject(cat, None, obj)
        rec = cats.lookup(cat, rest)
        if rec is not None:
            return PathObject(cat, _from_record(rec, obj), obj)
        if not cats.attr(cat, "FullMatch"):
            return PathObject(cat, Source(cat, None, rest, obj), obj)
    return PathObject(cats.default, _in_catalog(cats, cats.default, obj, obj), obj)


def resolve_object(cats: CatalogSet, obj: str, main: Catalog) -> Source:
    """An object named in a command or attribute (``src=``, DefaultImage, ErrorImage …), §6.3."""
    if not obj or "," in obj:
        raise ISError("bad_request", f"invalid object {obj!r}")
    use_default = obj.startswith("/")
    if use_default:
        obj = obj[1:]
    search = cats.default if use_default else main
    rec = cats.lookup(search, obj)
    if rec is not None:
        return _from_record(rec, obj)
    first, _, rest = obj.partition("/")
    other = cats.catalog(first)
    if other is not None and rest:
        rec = cats.lookup(other, rest)
        if rec is not None:
            return _from_record(rec, obj)
    base = cats.default if (use_default or cats.attr(main, "FullMatch")) else main
    return Source(base, None, obj, obj)


def _in_catalog(cats: CatalogSet, cat: Catalog, record_id: str, name: str) -> Source:
    rec = cats.lookup(cat, record_id)
    return _from_record(rec, name) if rec is not None else Source(cat, None, record_id, name)


def _from_record(rec: Record, name: str) -> Source:
    return Source(rec.catalog, rec, rec.get("path"), name)


def source_keys(cats: CatalogSet, src: Source, settings) -> list[str]:
    """Candidate storage keys of a source file, first existing wins (catalogs.md §6.8)."""
    path = with_default_ext(cats, src.catalog, src.path)
    return file_keys(path, cats.raw_attr(src.catalog, "RootPath") or "", settings)


def with_default_ext(cats: CatalogSet, cat: Catalog, path: str) -> str:
    last = path.rsplit("/", 1)[-1]
    if path and not _SUFFIX.search(last):
        ext = cats.raw_attr(cat, "DefaultExt") or ""
        if ext:
            return path + (ext if ext.startswith(".") else "." + ext)
    return path


def file_keys(path: str, root_path: str, settings) -> list[str]:
    p = _normalize(path)
    if p.startswith("/"):
        return [_rewrite(p, settings)]
    rp = _normalize(root_path)
    if rp.startswith("/"):
        return [_rewrite(_join(rp, p), settings)]
    return [_join(root, rp, p) for root in settings.image_prefixes]


def _normalize(path: str) -> str:
    p = path.replace("\\", "/")
    while "//" in p:
        p = p.replace("//", "/")
    if "\x00" in p or any(seg == ".." for seg in p.split("/")):
        raise ISError("bad_request", f"path {path!r} escapes the image root")
    return p


def _join(*parts: str) -> str:
    return "/".join(s.strip("/") for s in parts if s.strip("/"))


def _rewrite(path: str, settings) -> str:
    for old, new in settings.path_rewrites:
        if path.startswith(old):
            path = new + path[len(old):]
            break
    return path.lstrip("/")
