"""What a request reads besides its commands: record Modifiers, source files, dates, version ids.

Shared by the image path (service.py, imaging.py), the property request types (requests/) and /is/content.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from typing import Iterable

from . import observe
from .catalog.formats import parse_timestamp
from .catalog.model import Catalog, CatalogSet, Record
from .catalog.resolve import Source, resolve_object, source_keys
from .context import Context
from .errors import ISError
from .protocol.query import Token, expand_macros, tokenize
from .storage import Blob


def record_tokens(cats: CatalogSet, record: Record, field_name: str) -> list[Token]:
    """A record's Modifier or PostModifier as tokens, its own catalog's macros expanded (§7.2)."""
    text = record.get(field_name)
    if not text:
        return []
    return expand_macros(tokenize(text), lambda name: cats.macro(record.catalog, name))


def record_or_attr(cats: CatalogSet, source: Source, name: str, parse):
    """A record field that falls back to its catalog's attribute when missing, empty or 0
    (catalogs.md §5: Resolution, PrintResolution, ThumbRes, ThumbType)."""
    if source.record is not None:
        value = parse(source.record.get(name.lower()))
        if value:
            return value
    return cats.attr(source.catalog, name)


def fetch_source(storage, settings, cats: CatalogSet, source: Source, *, layer: bool = False) -> Blob:
    """The source file (first existing candidate key), else ``not_found``; ``layer=True`` marks it
    as a missing layer source, the one failure the default image covers."""
    keys = source_keys(cats, source, settings)
    for key in keys:
        with observe.span("fetch"):
            blob = storage.fetch(key)
        if blob is not None:
            return blob
    raise ISError("not_found", f"{source.name} ({', '.join(keys)})", missing_source=layer)


def last_modified(cats: CatalogSet, main: Catalog, record: Record | None, blob: Blob | None = None) -> datetime | None:
    """``Last-Modified`` of a reply made from one record or file (§11.4; see :func:`newest`)."""
    stamp = modified_at(cats, record, blob)
    return newest(cats, main, [stamp] if stamp is not None else [])


def newest(cats: CatalogSet, main: Catalog, stamps: Iterable[datetime]) -> datetime | None:
    """``Last-Modified`` when the main catalog sets UseLastModified (catalogs.md §8.3): the newest
    date of every record and file the reply was made from, else the main catalog's TimeStamp."""
    if not cats.attr(main, "UseLastModified"):
        return None
    return max(stamps, default=None) or catalog_timestamp(cats, main)


def modified_at(cats: CatalogSet, record: Record | None, blob: Blob | None) -> datetime | None:
    """What one layer contributes to Last-Modified: a record its TimeStamp, a plain file its
    storage date (catalogs.md §8.3), anything else (a solid colour, a text) nothing."""
    if record is not None:
        return record_timestamp(cats, record)
    return blob.last_modified if blob is not None else None


def record_timestamp(cats: CatalogSet, record: Record) -> datetime:
    """``catalog::TimeStamp`` / ``static::TimeStamp`` (catalogs.md §5.3): the record's own, else its
    catalog's; a malformed value goes straight to the date of the catalog's ``.ini``."""
    own = record.get("timestamp").strip(" \t")
    if own:
        return parse_timestamp(own) or record.catalog.last_modified
    return catalog_timestamp(cats, record.catalog)


def catalog_timestamp(cats: CatalogSet, cat: Catalog) -> datetime:
    """``attribute::TimeStamp`` (never inherited from default.ini), else the ``.ini``'s own date."""
    return parse_timestamp(cats.raw_attr(cat, "TimeStamp")) or cat.last_modified


def version_id(parts: Iterable[str]) -> str:
    """A §8.22 version id: 22 characters of unpadded base64url over the MD5 of ``parts``."""
    digest = hashlib.md5("\x00".join(parts).encode("utf-8", "surrogatepass"), usedforsecurity=False).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def client_cache_off(value: str | None) -> bool:
    """``cache=off`` or ``cache=off,…``: the client part switched off (§11.5)."""
    return bool(value) and value.split(",", 1)[0].strip().lower() == "off"


def template_source(ctx: Context) -> Source | None:
    """``template=``: the template record replaces the URL object, reachable as ``$object$`` (§7)."""
    name = ctx.commands.value("template")
    if not name:
        return None
    source = resolve_object(ctx.cats, name, ctx.main, ctx.locale)
    if source.record is None:  # a template is a record; not covered by the default image
        raise ISError("not_found", f"template {name}", title="Template not found")
    return source


def request_source(ctx: Context) -> Source | None:
    """What a request renders: its template, else the URL object; an object that locale
    translation could not find is a missing source."""
    template = template_source(ctx)
    if template is not None:
        return template
    if ctx.path.missing:
        why = "AllowDirectAccess closes paths to it" if ctx.path.denied else f"no record for locale {ctx.locale!r}"
        raise ISError("not_found", f"{ctx.path.object}: {why}", missing_source=True)
    return ctx.path.source
