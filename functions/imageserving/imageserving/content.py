"""``/is/content``: static files described by a catalog's static content table (protocol.md §10).

Records come from ``StaticContentCatalogFile``; files live under ``IS_STATIC_ROOT_PREFIXES`` /
``StaticContentRootPath`` / ``static::Path``. Only ``type=``, ``req=userdata|props|exists`` and
``cache=`` apply; replies always carry ``Last-Modified``.
"""

from __future__ import annotations

import mimetypes

from .catalog.resolve import direct_access_allowed, file_keys
from .errors import ISError
from .protocol.commands import Commands
from .responses import properties as P
from .responses.headers import Reply, finish
from .sources import client_cache_off, modified_at

ALLOWED_TYPES = ("img", "userdata", "props", "exists")


def answer_content(server, ctx, elements: list[str]) -> Reply:
    cats = ctx.cats
    cat = cats.catalog(elements[0]) if elements else None
    main, item = (cat, "/".join(elements[1:])) if cat is not None else (cats.default, "/".join(elements))
    ctx.main = main
    if ctx.req.type not in ALLOWED_TYPES:
        ctx.req = P.ReqSpec()  # the error goes out as text: the type has no format here
        raise ISError("bad_request", f"req={ctx.req.type} is not available for /is/content")
    record = main.statics.get(item) or cats.default.statics.get(item) if item else None
    if ctx.req.type == "exists":
        body = P.render_properties(
            [("catalogRecord.exists", P.flag(record is not None))],
            ctx.req.format,
            handler=ctx.handler,
            req_id=ctx.req_id,
        )
        return finish(Reply(200, body.content, body.media_type), cats.attr(main, "NonImgExpiration"), ctx.headers)
    cmds = Commands()
    cmds.add(ctx.url)
    wanted = cmds.value("type")
    if record is not None and wanted is not None and record.get("usertype") and wanted != record.get("usertype"):
        raise ISError("not_found", f"{item}: type {wanted!r} is not {record.get('usertype')!r}")
    owner = record.catalog if record is not None else main
    ttl = cats.expiration(record, owner)
    if client_cache_off(cmds.value("cache")):
        ttl = None
    if ctx.req.type == "userdata":
        text, quoted = (record.get("userdata"), "userdata" in record.quoted) if record is not None else ("", False)
        body = P.render_property_data(
            text, quoted, ctx.req.format, handler=ctx.handler, req_id=ctx.req_id, encoding=ctx.req.encoding
        )
        return finish(Reply(200, body.content, body.media_type), ttl, ctx.headers)

    path = record.get("path") if record is not None else item
    if not path:
        raise ISError("not_found", f"static content {item!r}")
    if record is None and not direct_access_allowed(cats, main, "STATIC"):  # catalogs.md §13.5
        raise ISError("not_found", f"static content {item!r}: AllowDirectAccess closes paths to STATIC objects")
    keys = file_keys(
        path,
        cats.raw_attr(owner, "StaticContentRootPath") or "",
        server.settings,
        server.settings.static_prefixes,
        request=record is None,
    )
    blob = next((b for b in map(server.storage.fetch, keys) if b is not None), None)  # first root that has it
    if blob is None:
        raise ISError("not_found", f"static content {item} ({', '.join(keys)})")
    # static::TimeStamp → attribute::TimeStamp → the .ini's date; a plain path: the file's (§5.3)
    modified = modified_at(cats, record, blob)
    if ctx.req.type == "props":
        pairs = [
            ("path", path),
            ("length", str(len(blob.data))),
            ("expiration", P.java_double(ttl or 0)),
            ("lastModified", P.java_date(modified)),
            ("userType", record.get("usertype") if record else ""),
        ]
        body = P.render_properties(pairs, ctx.req.format, handler=ctx.handler, req_id=ctx.req_id)
        return finish(
            Reply(200, body.content, body.media_type),
            cats.attr(main, "NonImgExpiration"),
            ctx.headers,
            last_modified=modified,
        )
    media_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    return finish(Reply(200, blob.data, media_type), ttl, ctx.headers, last_modified=modified)
