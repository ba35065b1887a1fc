"""What the non-image request types share: the path record after locale translation, TTLs,
Last-Modified, version ids, the JSONP frame and the finished reply (protocol.md §5.6, §8.1,
§8.22, §11)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import datetime

from .. import sources
from ..catalog.formats import parse_real_attr, parse_size_attr
from ..catalog.model import Catalog, CatalogSet, Record
from ..catalog.resolve import Source
from ..errors import ISError
from ..protocol.commands import Commands
from ..responses.headers import Reply, finish

# The property writers' own JSON and XML helpers, so that every body escapes the same way
# (the handlers use them as C.xml_document and C.xml_escape).
from ..responses.properties import Body, json_text, xml_document, xml_escape  # noqa: F401
from ..sources import catalog_timestamp, record_timestamp, record_tokens, version_id  # noqa: F401
from ..storage import Blob
from . import localize

# Reading a header decodes no pixels, so the limit that protects decoding does not apply: the
# properties of an image too large to render are still worth reporting.
HEADER_ONLY = sys.maxsize


@dataclass(frozen=True)
class PathRecord:
    """The URL object as the metadata types see it.

    ``source`` is None when the URL names no object or locale translation found no candidate;
    ``name`` is how to report it (``rootId/id`` for a record, the path for a file).
    """

    source: Source | None
    name: str

    @property
    def record(self) -> Record | None:
        return self.source.record if self.source is not None else None


def url_commands(ctx) -> Commands:
    """The URL's commands (request attributes like ``locale=``, ``labelkey=``, ``message=``), as the
    server merged them when it read the request type."""
    if ctx.commands is not None:
        return ctx.commands
    cmds = Commands()
    cmds.add(ctx.url)
    return cmds


def effective_locale(ctx, cmds: Commands) -> str:
    """``locale=`` if given and non-empty, else the main catalog's DefaultLocale (§5.6)."""
    given = (cmds.value("locale") or "").strip()
    return given or (ctx.cats.raw_attr(ctx.main, "DefaultLocale") or "").strip()


def object_id(ctx) -> str:
    """The URL object without the main catalog's RootId (the id locale translation works on)."""
    obj, main = ctx.path.object, ctx.path.main
    if main.is_default:
        return obj
    return obj.removeprefix(main.root_id).removeprefix("/")  # "rootId" alone names no object


def record_name(main: Catalog, record_id: str) -> str:
    return f"{main.root_id}/{record_id}" if not main.is_default else record_id


def path_record(ctx, cmds: Commands) -> PathRecord:
    """The URL object after object id translation (``locale=``, ``attribute::LocaleMap``).

    Translation applies to record ids only: when no translated id is a record, a plain file
    path is still served as such, while an object that was a record counts as missing.
    """
    source = ctx.path.source
    if source is None:  # no object, or one that is missing (its name is still reported)
        return PathRecord(None, ctx.path.object if ctx.path.missing else "")
    cats, main = ctx.cats, ctx.path.main
    obj_id = object_id(ctx)
    suffixes = localize.id_suffixes(cats, main, effective_locale(ctx, cmds))
    if suffixes is None:
        name = record_name(main, source.record.id) if source.record is not None else source.name
        return PathRecord(source, name)
    for suffix in suffixes:
        rec = cats.lookup(main, obj_id + suffix)
        if rec is not None:
            return PathRecord(
                Source(rec.catalog, rec, rec.get("path"), record_name(main, rec.id)), record_name(main, rec.id)
            )
    if source.record is None:
        return PathRecord(source, source.name)
    return PathRecord(None, ctx.path.object)


def require_source(path: PathRecord) -> Source:
    if path.source is None:
        raise ISError("not_found", path.name or "the request names no image")
    return path.source


def record_size(record: Record | None) -> tuple[int, int] | None:
    """``catalog::Size`` when it is two positive integers (it then stands for the file's size)."""
    size = parse_size_attr(record.get("size")) if record is not None else None
    return size if size is not None and size[0] > 0 and size[1] > 0 else None


def record_expiration(cats: CatalogSet, fallback: Catalog, record: Record | None) -> float:
    """``catalog::Expiration`` (§8.1): the record's value unless empty or -2, else its catalog's
    ``attribute::Expiration``; without a record, ``fallback``'s (the main or the file's catalog)."""
    return cats.expiration(record, fallback)


def never_expires(record: Record | None) -> bool:
    return record is not None and parse_real_attr(record.get("expiration")) == -1


def metadata_version(record: Record | None) -> str:
    """``metadata.version`` (§8.22): over the record's Map, Targets, UserData and TimeStamp."""
    fields = ("map", "targets", "userdata", "timestamp")
    return version_id(record.get(f) if record is not None else "" for f in fields)


def jsonp(handler: str, value: object, req_id: str) -> Body:
    """``/*jsonp*/handler(value,"id");`` — the §8.2 JSONP frame around any JSON value."""
    text = f"/*jsonp*/{handler}({json_text(value)},{json_text(req_id)});"
    return Body(text.encode("utf-8"), "text/javascript; charset=UTF-8")


def reply(ctx, body: Body, ttl: float | None, *, modified: datetime | None = None, never: bool = False) -> Reply:
    """A 200 reply with caching headers, ETag and 304 handling (``ttl`` None: not cacheable)."""
    return finish(
        Reply(200, body.content, body.media_type),
        ttl,
        ctx.headers,
        last_modified=modified if ttl is not None else None,
        never_expires=never,
    )


def last_modified(ctx, record: Record | None, blob: Blob | None = None) -> datetime | None:
    return sources.last_modified(ctx.cats, ctx.main, record, blob)


def fetch_source(server, ctx, source: Source) -> Blob:
    return sources.fetch_source(server.storage, server.settings, ctx.cats, source)
