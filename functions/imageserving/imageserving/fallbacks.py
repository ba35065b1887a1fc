"""The error model: what a failed request gets (protocol.md §12; Adobe's "Errors" and
"DefaultImage"/"ErrorImage" pages).

Every failure reaches :func:`failure_reply` as one :class:`~imageserving.errors.ISError`. The
answer is decided in this order, and each step that fails itself falls through to the next with
the *original* error (a broken fallback never hides what went wrong, nor breaks the reply):

1. **Default image** (§12.5): only for an image request (``req=img|tmb`` on ``/is/image``) whose
   source is missing. ``defaultImage=`` names it (empty disables it), else the main catalog's
   ``DefaultImage``. ``DefaultImageMode`` 0 replaces the whole request — of the original commands
   only the valid ``wid/hei/fmt/qlt`` are kept; mode 1 renders the original request with only the
   missing source swapped. Served as 200 with the default object's short TTL
   (``DefaultExpiration``), marked ``X-IS-Default-Image``, so no cache keeps it as the real image.
   A storage fault while it is read (``overload``: S3 throttling, 5xx, timeouts) is not a missing
   default image: it becomes the request's error (503 unless an error image answers it), never a
   cacheable "not found".
2. **Error image** (§12.6): any other error of an image request whose kind is in
   ``IS_ERROR_IMAGE_KINDS``: the catalog's ``ErrorImage`` (an image, a record or a template that
   may use ``$error.title$`` / ``$error.message$``), rendered with the kept ``wid/hei/fmt/qlt``, no
   watermark, served as 200 and never cached, marked ``X-IS-Error``.
3. **Formatted error**: the status of the error's kind (``IS_ERROR_STATUS_*``), the body in the
   format ``req=`` asked for (text, javascript, xml, json; image requests get text), its message
   cut to the catalog's ``ErrorDetail`` level: 0 says only the title, 1 adds the detail without
   internals, 2 adds the internal detail, 3 the traceback — in plain text only. Never cached.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from .catalog.model import CatalogSet
from .catalog.resolve import resolve_object
from .context import Context, ImageResult
from .errors import ISError
from .protocol.query import Token, decode_value, encode_value
from .protocol.values import parse_int
from .render import formats
from .responses import properties as P
from .responses.headers import Reply, cache_headers

log = logging.getLogger("imageserving")

# The only commands of the original request kept by the default image (mode 0) and the error image.
_KEPT = ("wid", "hei", "fmt", "qlt")
_CHECKS = {
    "wid": lambda v: parse_int(v, cmd="wid", lo=1),
    "hei": lambda v: parse_int(v, cmd="hei", lo=1),
    "fmt": formats.parse_fmt,
    "qlt": formats.parse_qlt,
}

Render = Callable[..., ImageResult]  # ImageServer.render_source


def failure_reply(ctx: Context, err: ISError, *, settings, catalogs: Callable[[], CatalogSet], render: Render) -> Reply:
    """The reply to a failed request. ``catalogs`` gives the current catalogs when the request
    failed before it had any (for the ErrorDetail level); ``render`` renders a source with commands."""
    image_request = (
        ctx.cats is not None and ctx.req is not None and ctx.req.type in ("img", "tmb") and ctx.context == "image"
    )
    if image_request and err.missing_source:
        try:
            reply = _default_image(ctx, render)
        except ISError as fault:
            # Storage could not say whether the default image is there (S3 throttling, 5xx, a
            # timeout): answering the missing image's 403 would tell the client to give up and a
            # cache to keep it; the fault (503, retryable, never cached) is the request's error now.
            err, reply = fault, None
        if reply is not None:
            return reply
    if image_request and err.kind in settings.errors.error_image_kinds:
        reply = _error_image(ctx, err, _detail_level(ctx, catalogs), render)
        if reply is not None:
            return reply
    return _formatted_error(ctx, err, _detail_level(ctx, catalogs), settings)


def _default_image(ctx: Context, render: Render) -> Reply | None:
    cats, main = ctx.cats, ctx.main or ctx.cats.default
    override = ctx.commands.value("defaultimage") if ctx.commands is not None else None
    obj = override if override is not None else cats.raw_attr(main, "DefaultImage") or ""
    if not obj:
        return None
    try:
        source = resolve_object(cats, obj, main, ctx.locale)
        if cats.attr(main, "DefaultImageMode") == 1 and source.path:
            result = render(ctx, ctx.path.source, ctx.url, req_type=ctx.req.type, replacement=source)
        else:
            result = render(ctx, source, _kept_commands(ctx), req_type=ctx.req.type, default_image=True)
    except ISError as second:
        if second.kind == "overload":
            log.warning("default image %r unavailable: %s", obj, second.detail)
            raise
        log.info("default image %r failed: %s", obj, second)
        return None
    except Exception as second:  # noqa: BLE001 - the original error is what the client gets
        log.info("default image %r failed: %s", obj, second)
        return None
    return result.reply(ctx.headers, {"X-IS-Default-Image": "1"})


def _error_image(ctx: Context, err: ISError, level: int, render: Render) -> Reply | None:
    cats, main = ctx.cats, ctx.main or ctx.cats.default
    obj = cats.raw_attr(main, "ErrorImage") or ""
    if not obj:
        return None
    level = min(level, 2)  # error images never show a traceback
    variables = {"error.title": encode_value(err.title), "error.message": encode_value(err.message(level))}
    try:
        source = resolve_object(cats, obj, main)
        result = render(ctx, source, _kept_commands(ctx), req_type=ctx.req.type, variables=variables, watermark=False)
    except Exception as second:  # noqa: BLE001 - the original error is what the client gets
        log.info("error image %r failed: %s", obj, second)
        return None
    headers = {**result.headers, **cache_headers(None)}
    headers["X-IS-Error"] = err.kind
    return Reply(200, result.body, result.media_type, headers)


def _formatted_error(ctx: Context, err: ISError, level: int, settings) -> Reply:
    fmt = "text" if ctx.is_image or ctx.req.format is None else ctx.req.format
    if fmt != "text":
        level = min(level, 2)  # tracebacks only ever go into plain-text bodies
    status = settings.errors.status(err)
    if fmt == "json" and settings.jsonp_error_status:
        status = settings.jsonp_error_status
    body = P.render_error(err.title, err.message(level), fmt, req_id=ctx.req_id)
    headers = cache_headers(None)
    headers["X-IS-Error"] = err.kind
    return Reply(status, body.content, body.media_type, headers)


def _detail_level(ctx: Context, catalogs: Callable[[], CatalogSet]) -> int:
    """The main catalog's ErrorDetail; with no catalogs at all, the safe level 0."""
    cats = ctx.cats
    if cats is None:
        try:
            cats = catalogs()
        except Exception:  # noqa: BLE001 - no catalogs at all: stay at the safe level 0
            return 0
    return cats.attr(ctx.main or cats.default, "ErrorDetail")


def _kept_commands(ctx: Context) -> list[Token]:
    """wid/hei/fmt/qlt of the original request (the last of each) that parse, for fallbacks."""
    kept: dict[str, Token] = {}
    for tok in ctx.url:
        if tok.kind == "command" and tok.name in _KEPT:
            kept[tok.name] = tok
    for name, tok in list(kept.items()):
        try:
            _CHECKS[name](decode_value(tok.value))
        except ISError:
            del kept[name]  # the value that broke the request must not break its fallback
    if ctx.req is not None and ctx.req.type == "tmb":
        kept["req"] = Token("command", "req", "tmb")
    return list(kept.values())
