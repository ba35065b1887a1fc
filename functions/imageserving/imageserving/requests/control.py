"""Requests about requests, and the ones a serverless deployment refuses: ``req=validate``,
``resolve``, ``message``, ``loadcache``, ``saveToFile``, ``mbrSet`` (protocol.md §8.17-§8.24)."""

from __future__ import annotations

import json
import logging
import re

from ..errors import ISError
from ..protocol.commands import resolve_value
from ..protocol.query import decode_value, is_nested
from ..render import geometry, pipeline
from ..responses import properties as P
from ..responses.headers import Reply
from ..sources import template_source
from . import common as C

log = logging.getLogger("imageserving")

# A size still holding a variable stands for some valid size, so that fit= finds its companion.
_SIZE_PLACEHOLDER = "1"
_VARIABLE_REFERENCE = re.compile(r"\$[A-Za-z0-9_.\-]+\$")


def validate(server, ctx) -> Reply:
    """``request.isValid=1`` when the request parses as ``req=img`` (the renderer's own option
    parser); objects are not touched and values that still hold a ``$variable$`` are not
    type-checked (§8.17). Tokenizing, brackets and macros were checked before this point."""
    cmds = C.url_commands(ctx)
    request = _checkable(cmds.request)
    request.update((n, _SIZE_PLACEHOLDER) for n in ("wid", "hei", "scl") if n in cmds.request and n not in request)
    layers = {key: _checkable(layer) for key, layer in cmds.layers.items()}
    layer0 = {**layers.pop("0", {}), **layers.pop("comp", {})}
    pipeline.parse_options(pipeline.RenderJob(req_type="img", source=None, layer=layer0, request=request))
    for layer in layers.values():
        geometry.parse_layer(layer)
    body = P.render_properties([("request.isValid", "1")], ctx.req.format, handler=ctx.handler, req_id=ctx.req_id)
    return C.reply(ctx, body, None)


def _checkable(commands: dict[str, str]) -> dict[str, str]:
    """Decoded values that hold no variable reference (those are checked once substituted)."""
    return {n: v if is_nested(v) else decode_value(v) for n, v in commands.items() if not _VARIABLE_REFERENCE.search(v)}


def resolve(server, ctx) -> Reply:
    """The request as the renderer would see it: ``object?cmd=value&…`` (§8.18).

    The same merge as rendering (the assembler's): the request's record (URL object, or the
    ``template=`` record) Modifier < URL < PostModifier, a ``src=`` record's Modifier in front of
    its layer's commands and its PostModifier only where catalogs.md §7.1 applies it; macros
    expanded, variables substituted, definitions, comments and ``req=`` dropped. Request attributes
    first, then ``comp`` and layer 0, then each further layer by number. Values are re-encoded
    only where needed to read the line back.
    """
    template = template_source(ctx)
    source = template or (None if ctx.path.missing else ctx.path.source)
    merged, further = server.imaging.assembler.resolved_commands(ctx, source, ctx.url)
    # req= and template= are spent: the line is the request they produced
    request = {n: v for n, v in merged.request.items() if n not in ("req", "template")}
    parts = [_pair(n, resolve_value(n, v, merged.variables)) for n, v in request.items()]
    for key in ("comp", "0"):
        if merged.layers.get(key) or merged.effects.get(key):
            parts += ["layer=0"] if key == "0" else []
            parts += [_pair(n, resolve_value(n, v, merged.variables)) for n, v in merged.layers.get(key, {}).items()]
            parts += _effect_pairs(merged.decoded_effects(key))
    for number, own, effects in further:
        parts.append(f"layer={number}")
        parts += [_pair(n, v) for n, v in own.items()]
        parts += _effect_pairs(effects)
    body = P.render_raw_text(f"{_object_name(ctx, source)}?{'&'.join(parts)}\n")
    return C.reply(ctx, body, None)


def _effect_pairs(effects: dict[int, dict[str, str]]) -> list[str]:
    """Each effect layer as its own segment after its parent's commands (rendering.md §13)."""
    return [
        p for number, cmds in effects.items() for p in (f"effect={number}", *(_pair(n, v) for n, v in cmds.items()))
    ]


def _object_name(ctx, source) -> str:
    """``rootId/id`` of a record (its own catalog's RootId), the path of a file."""
    if source is None:
        return ctx.path.object
    record = source.record
    if record is None:
        return source.name
    return record.id if record.catalog.is_default else f"{record.catalog.root_id}/{record.id}"


_RESOLVE_ESCAPES = re.compile(r"[%&=\x00-\x1f\x7f]")


def _pair(name: str, value: str) -> str:
    """``name=value`` of a decoded value; nested requests stay as they were written."""
    if not is_nested(value):
        value = _RESOLVE_ESCAPES.sub(lambda m: f"%{ord(m.group()):02X}", value)
    return f"{name}={value}"


# Long enough for any real note, short enough that one request cannot flood the logs.
_MESSAGE_LIMIT = 4096


def message(server, ctx) -> Reply:
    """``message=`` written to the log as one JSON line; an empty, uncacheable reply (§8.19)."""
    text = C.url_commands(ctx).value("message") or ""
    log.info(
        json.dumps(
            {
                "event": "message",
                "id": ctx.req_id,
                "trace": ctx.headers.get("x-amzn-trace-id", ""),
                "catalog": ctx.main.label(),
                "message": text[:_MESSAGE_LIMIT],
            },
            ensure_ascii=False,
        )
    )
    return C.reply(ctx, P.render_raw_text(""), None)


def loadcache(server, ctx) -> Reply:
    """Renders like ``req=img`` and reports the reply's size; there is no cache to fill (§8.20)."""
    result = server.render_source(ctx, ctx.path.source, ctx.url, req_type="img")
    body = P.render_properties([("image.length", str(len(result.body)))], P.TEXT)
    return C.reply(ctx, body, None)


def save_to_file(server, ctx) -> Reply:
    raise ISError("refused", "req=saveToFile: a serverless deployment has no SavePath")


def mbr_set(server, ctx) -> Reply:
    raise ISError("bad_request", "req=mbrSet: unsupported request type")
