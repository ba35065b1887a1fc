"""Catalog data as viewers read it: ``req=exists``, ``userdata``, ``targets``, ``imageset``,
``map`` and ``xlate`` (protocol.md §8.9-§8.12, §8.14-§8.15)."""

from __future__ import annotations

from html.parser import HTMLParser

from ..errors import ISError
from ..protocol.query import decode_value
from ..responses import properties as P
from ..responses.headers import Reply
from . import common as C
from . import imagemap
from . import localize as L


def exists(server, ctx) -> Reply:
    """``catalogRecord.exists``: 1 when the (translated) object is a record; files count as 0."""
    path = C.path_record(ctx, C.url_commands(ctx))
    props = [("catalogRecord.exists", P.flag(path.record is not None))]
    body = P.render_properties(props, ctx.req.format, handler=ctx.handler, req_id=ctx.req_id)
    return C.reply(ctx, body, ctx.cats.attr(ctx.main, "NonImgExpiration"), modified=C.last_modified(ctx, path.record))


def userdata(server, ctx) -> Reply:
    return _property_field(ctx, "userdata", None)


def targets(server, ctx) -> Reply:
    return _property_field(ctx, "targets", (".label", ".userdata"))


def _property_field(ctx, field_name: str, localized: tuple[str, ...] | None) -> Reply:
    """``catalog::UserData`` / ``catalog::Targets``: raw text (``??`` → CR LF) or properties."""
    cmds = C.url_commands(ctx)
    record = C.path_record(ctx, cmds).record
    quoted = record is not None and field_name in record.quoted
    text = record.get(field_name) if record is not None else ""
    text = L.localize_properties(
        text, L.string_ids(ctx.cats, ctx.main, C.effective_locale(ctx, cmds)), quoted, localized
    )
    body = P.render_property_data(
        text, quoted, ctx.req.format, handler=ctx.handler, req_id=ctx.req_id, encoding=ctx.req.encoding
    )
    return C.reply(
        ctx,
        body,
        C.record_expiration(ctx.cats, ctx.main, record),
        modified=C.last_modified(ctx, record),
        never=C.never_expires(record),
    )


def imageset(server, ctx) -> Reply:
    """``catalog::ImageSet`` as stored (strings localized); "" for an unknown record."""
    cmds = C.url_commands(ctx)
    record = C.path_record(ctx, cmds).record
    text = L.localize_set(
        record.get("imageset") if record is not None else "",
        L.string_ids(ctx.cats, ctx.main, C.effective_locale(ctx, cmds)),
    )
    body = P.render_imageset(text, ctx.req.format, handler=ctx.handler, req_id=ctx.req_id, encoding=ctx.req.encoding)
    return C.reply(ctx, body, ctx.cats.attr(ctx.main, "NonImgExpiration"), modified=C.last_modified(ctx, record))


# Commands that move, scale or clip the image, and with it the map (§8.14).
_GEOMETRY = frozenset(
    """
    align wid hei scl crop flip rotate scale layer size extend origin pos anchor src map mapa
    cropn sizen extendn originn posn anchorn rgn rect
""".split()
)


def image_map(server, ctx) -> Reply:
    """``catalog::Map`` as HTML ``<AREA>`` text, ``<map>`` XML or a JSON array: passed through,
    or — with geometry commands in the URL or the record's Modifier/PostModifier — moved the way
    ``req=img`` moves the image (:mod:`.imagemap`; one image layer, 90° turns only)."""
    cmds = C.url_commands(ctx)
    path = C.path_record(ctx, cmds)
    record = path.record
    tokens = list(ctx.url)
    if record is not None:
        for field_name in ("modifier", "postmodifier"):
            tokens += C.record_tokens(ctx.cats, record, field_name)
    moved = sorted({t.name for t in tokens if t.kind == "command" and t.name in _GEOMETRY and not _identity(t)})
    text = L.localize_map(
        record.get("map") if record is not None else "", L.string_ids(ctx.cats, ctx.main, C.effective_locale(ctx, cmds))
    )
    if moved:
        text = _composite(server, ctx, text, moved)
    fmt = ctx.req.format
    if fmt == P.TEXT:
        body = P.render_raw_text(text)
    else:
        areas = _areas(text)
        if fmt == P.XML:
            body = C.xml_document("\n" + _map_xml(areas), ctx.req.encoding)
        else:
            body = C.jsonp(ctx.handler, [_area_json(a) for a in areas], ctx.req_id)
    return C.reply(
        ctx,
        body,
        C.record_expiration(ctx.cats, ctx.main, record),
        modified=C.last_modified(ctx, record),
        never=C.never_expires(record),
    )


# Commands that bring further layers or source-pixel maps of their own: not composited yet.
_LAYERING = frozenset(("layer", "src", "mapa"))


def _composite(server, ctx, text: str, moved: list[str]) -> str:
    """The map moved by the reply's geometry, as ``req=img`` would place the image (one layer);
    a ``map=`` command stands for the layer's map, in layer pixels (PROPOSED: it replaces
    ``catalog::Map`` rather than adding to it)."""
    layering = sorted(_LAYERING.intersection(moved))
    if layering:
        raise ISError("bad_request", f"req=map with {', '.join(layering)}: layered composite maps are not supported")
    if not text and "map" not in moved:
        return ""  # nothing to move: no need to read the image
    p, planned = server.plan_image(ctx)
    if p.job.layers or planned.layer.mapping is None:
        raise ISError("bad_request", "req=map: maps of layered or freely rotated images are not supported")
    own = p.job.layer.get("map")
    if own is not None:
        return imagemap.composite(own, imagemap.Geometry(planned.layer.mapping, planned.view, layer_space=True))
    return imagemap.composite(text, imagemap.Geometry(planned.layer.mapping, planned.view))


def _identity(token) -> bool:
    """``scl=1``: full resolution, the map's own coordinates. Scene7's HTML viewers ask for maps
    as ``req=map,json&scl=1`` and scale the areas themselves, so it moves nothing."""
    if token.name != "scl":
        return False
    try:
        return float(decode_value(token.value)) == 1.0
    except ValueError:
        return False


class _AreaParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.areas: list[list[tuple[str, str]]] = []

    def handle_starttag(self, tag, attrs):
        if tag == "area":
            self.areas.append([(name, value or "") for name, value in attrs])


def _areas(text: str) -> list[list[tuple[str, str]]]:
    """The ``<AREA>`` elements of a map, attribute names lower-cased, entities decoded."""
    parser = _AreaParser()
    parser.feed(text)
    parser.close()
    return parser.areas


def _map_xml(areas: list[list[tuple[str, str]]]) -> str:
    if not areas:
        return "<map/>"
    rows = ("<area" + "".join(f' {n}="{C.xml_escape(v)}"' for n, v in attrs) + "/>" for attrs in areas)
    return "<map>" + "".join(rows) + "</map>"


def _area_json(attrs: list[tuple[str, str]]) -> dict[str, object]:
    return {name: _coords(value) if name == "coords" else value for name, value in attrs}


def _coords(value: str) -> list[int | float | str]:
    """``coords`` as numbers; a value that is not one (``10%``) stays a string."""
    out: list[int | float | str] = []
    for part in (p.strip() for p in value.split(",") if p.strip()):
        try:
            number = float(part)
        except ValueError:
            out.append(part)
            continue
        out.append(int(number) if number.is_integer() else number)
    return out


def xlate(server, ctx) -> Reply:
    """``xlate.translatedIds``: the object id, then id+suffix for each LocaleMap suffix, where a
    record exists (§8.15)."""
    obj_id = C.object_id(ctx)
    main = ctx.path.main
    ids: list[str] = []
    if obj_id:
        for candidate in [obj_id] + [obj_id + s for s in L.all_suffixes(ctx.cats, main)]:
            if candidate not in ids and ctx.cats.lookup(main, candidate) is not None:
                ids.append(candidate)
    record = ctx.path.source.record if ctx.path.source is not None else None
    body = P.render_properties(
        [("xlate.translatedIds", ",".join(ids))], ctx.req.format, handler=ctx.handler, req_id=ctx.req_id
    )
    return C.reply(
        ctx,
        body,
        C.record_expiration(ctx.cats, ctx.main, record),
        modified=C.last_modified(ctx, record),
        never=C.never_expires(record),
    )
