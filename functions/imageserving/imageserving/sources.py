"""What a request reads besides its commands: record Modifiers, source files, dates, version ids.

Shared by the image path (service.py), the property request types (requests/) and /is/content.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from typing import Iterable

from . import observe
from .catalog.formats import parse_timestamp
from .catalog.model import Catalog, CatalogSet, Record
from .catalog.resolve import Source, source_keys
from .errors import ISError
from .protocol.query import Token, expand_macros, tokenize
from .storage import Blob


def record_tokens(cats: CatalogSet, record: Record, field_name: str) -> list[Token]:
    """A record's Modifier or PostModifier as tokens, its own catalog's macros expanded (§7.2)."""
    text = record.get(field_name)
    if not text:
        return []
    return expand_macros(tokenize(text), lambda name: cats.macro(record.catalog, name))


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
    """``Last-Modified`` when the main catalog sets UseLastModified (§11.4): the record's TimeStamp,
    else its catalog's, else the ``.ini`` date; a plain file's own date; else the main catalog's."""
    if not cats.attr(main, "UseLastModified"):
        return None
    if record is not None:
        return record_timestamp(cats, record)
    if blob is not None:
        return blob.last_modified
    return catalog_timestamp(cats, main)


def record_timestamp(cats: CatalogSet, record: Record) -> datetime:
    return parse_timestamp(record.get("timestamp")) or catalog_timestamp(cats, record.catalog)


def catalog_timestamp(cats: CatalogSet, cat: Catalog) -> datetime:
    return parse_timestamp(cats.raw_attr(cat, "TimeStamp")) or cat.last_modified


def version_id(parts: Iterable[str]) -> str:
    """A §8.22 version id: 22 characters of unpadded base64url over the MD5 of ``parts``."""
    digest = hashlib.md5("\x00".join(parts).encode("utf-8", "surrogatepass"), usedforsecurity=False).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def client_cache_off(value: str | None) -> bool:
    """``cache=off`` or ``cache=off,…``: the client part switched off (§11.5)."""
    return bool(value) and value.split(",", 1)[0].strip().lower() == "off"
