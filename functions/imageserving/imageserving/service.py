"""One request, start to finish (protocol.md §2): identify → preprocess (rule sets, macros) →
resolve the catalog and object → request type → an image (:mod:`.imaging`: assembled in
:mod:`.assemble`, rendered by :mod:`.render`) or a property reply (:mod:`.requests`, :mod:`.content`).

Errors raised anywhere arrive here as :class:`ISError` values and are answered by the error model,
:func:`.fallbacks.failure_reply` (default image → error image → formatted error).
"""

from __future__ import annotations

import functools
import gc
import logging
import time
from contextlib import nullcontext
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from . import __version__, heap, observe, renditions
from .catalog.resolve import Source, main_catalog, resolve_path_object
from .catalog.store import CatalogStore
from .context import IMAGE_TYPES, Context, ImageResult
from .errors import ISError, wrap_unexpected
from .fallbacks import failure_reply
from .protocol.commands import Commands
from .protocol.preprocess import add_rule_headers, object_elements, preprocess
from .protocol.query import Token, expand_macros, expansion_budget, tokenize
from .responses import properties as P
from .responses.headers import Reply, cache_headers
from .signing import Signer
from .slots import RenderSlots
from .sources import request_source

if TYPE_CHECKING:
    from .assemble import Prepared
    from .imaging import ImageDescription, Imaging
    from .render.pipeline import Planned

log = logging.getLogger("imageserving")

# Far beyond any real Scene7 URL (CDNs and browsers stop near 8-16 KB); bounds the parsing work.
MAX_QUERY_CHARS = 65536


class ImageServer:
    def __init__(self, settings, storage):
        self.settings = settings
        self.storage = storage
        self.catalogs = CatalogStore(storage, settings)
        self.signer = Signer(settings.signing_keys, settings.signing_keys_ssm_parameter, settings.signature_required)
        self.slots = RenderSlots(settings.render_slots, settings.render_wait_s)

    # ------------------------------------------------------------------ entry point
    def handle(
        self,
        method: str,
        raw_object: str,
        raw_query: str,
        headers: dict[str, str],
        client_ip: str = "",
        context: str = "image",
        request_id: str = "",
    ) -> Reply:
        """Answer one request; ``context`` is ``image`` (``/is/image``) or ``content`` (``/is/content``).
        Its line goes to the request log (:mod:`.observe`) under ``request_id``."""
        record = observe.begin(request_id or observe.request_id({}, headers), method, context, raw_object, raw_query)
        ctx = Context(
            headers=headers,
            deadline=time.monotonic() + self.settings.request_timeout_s,
            context=context,
            client_ip=client_ip,
        )
        if context == "image":
            heap.keep_freed_buffers()  # the first one only
        try:
            # Image requests render inside a slot (slots.py), fallbacks included.
            with self.slots.hold(ctx.deadline) if context == "image" else nullcontext():
                reply = self._answer(ctx, raw_object, raw_query, client_ip)
        except ISError as busy:  # no slot in time: nothing was done, so a bare 503, no error image
            reply = failure_reply(
                ctx, busy, settings=self.settings, catalogs=self.catalogs.current, render=self.render_source
            )
            reply.headers["Retry-After"] = "1"
        try:
            add_rule_headers(reply.headers, ctx.rule_headers, ctx.url)
        except Exception:  # noqa: BLE001 - a rule header must never cost the reply
            log.exception("rule-set headers dropped")
        try:
            record.catalog = ctx.main.label() if ctx.main is not None else ""
            record.req = ctx.req.type if ctx.req is not None else ""
            observe.finish(record, reply.status, reply.headers, reply.media_type, len(reply.body))
        except Exception:  # noqa: BLE001 - the log line must never cost the reply
            log.exception("request log line dropped")
        if method == "HEAD":
            reply.headers["Content-Length"] = str(len(reply.body))
            reply.body = b""
        return reply

    def _answer(self, ctx: Context, raw_object: str, raw_query: str, client_ip: str) -> Reply:
        try:
            with expansion_budget():  # one macro-expansion budget for everything this request expands
                return self._serve(ctx, raw_object, raw_query, client_ip)
        except Exception as exc:  # noqa: BLE001 - every failure becomes an ISError reply
            err = wrap_unexpected(exc)
            if err.kind == "server_error":
                log.error("request failed: %s", err, exc_info=err.__cause__ or err)
            return failure_reply(
                ctx, err, settings=self.settings, catalogs=self.catalogs.current, render=self.render_source
            )

    def _serve(self, ctx: Context, raw_object: str, raw_query: str, client_ip: str) -> Reply:
        if not raw_object.strip("/") and not raw_query and ctx.context == "image":
            return self._identification()
        if len(raw_query) > MAX_QUERY_CHARS:
            raise ISError("bad_request", f"the query string is {len(raw_query)} characters long")
        with observe.span("catalog"):
            ctx.cats = self.catalogs.current()
        ctx.main = ctx.cats.default
        ctx.main = main_catalog(ctx.cats, object_elements(raw_object))
        with observe.span("parse"):
            raw_query = self.signer.verify(f"/is/{ctx.context}/{raw_object}", raw_query, ctx.main.root_id)
            context = "static" if ctx.context == "content" else "is"
            pre = preprocess(ctx.cats, ctx.main, raw_object, raw_query, client_ip, context=context)
            ctx.cats, ctx.main, ctx.rule_headers = ctx.cats.with_overrides(pre.overrides), pre.main, pre.headers
            tokens = tokenize(pre.query)
            ctx.explicit_fmt = any(t.kind == "command" and t.name == "fmt" for t in tokens)
            try:
                ctx.url = expand_macros(tokens, lambda n: ctx.cats.macro(ctx.main, n))
            except ISError:
                self._image_request_without_macros(ctx, tokens)
                raise
            self._request_type(ctx)
        if ctx.context == "content":
            from .content import answer_content

            return answer_content(self, ctx, object_elements(pre.object))
        ctx.path = resolve_path_object(ctx.cats, object_elements(pre.object), ctx.locale)
        ctx.main = ctx.path.main
        if not self.settings.allow_default_catalog_requests and ctx.main.is_default and ctx.req.type != "catalogprops":
            raise ISError("refused", "requests must name a catalog (IS_ALLOW_DEFAULT_CATALOG_REQUESTS=false)")
        if ctx.req.type in IMAGE_TYPES:
            return self._image_reply(ctx)
        from .requests import answer  # the property request types (req=props, exists, …)

        return answer(self, ctx)

    def _request_type(self, ctx: Context) -> None:
        """Find req=, id= and handler= early so later errors come back in the requested format;
        and the effective locale: ``locale=``, else the main catalog's DefaultLocale."""
        probe = ctx.commands = Commands()  # the URL's own variables apply (§3.6): req=$type$ works
        probe.add(ctx.url)
        default_locale = ctx.cats.raw_attr(ctx.main, "DefaultLocale") or ""
        ctx.locale = (probe.value("locale") or "").strip() or default_locale.strip()
        ctx.req_id = probe.value("id") or ""
        ctx.req = P.parse_req(probe.value("req") or "img")
        if probe.raw("handler") is not None:
            ctx.handler = P.validate_handler(probe.value("handler") or "")

    def _image_request_without_macros(self, ctx: Context, tokens: list[Token]) -> None:
        """A preset that does not expand (unknown to the catalog) fails before the request type
        is known, so its error is text (§2 step 9). Yet a request whose own ``req=`` is img or tmb,
        or that names none, is an image request, and image requests get the catalog's ErrorImage
        (§12.4): a store front whose preset was deleted shows its error image, not a broken one."""
        ctx.url = [t for t in tokens if t.kind != "macro"]
        try:
            self._request_type(ctx)
        except ISError:
            ctx.req = None
            return
        if ctx.req.type not in ("img", "tmb"):
            ctx.req = None  # other types report the error as text, as before

    def _identification(self) -> Reply:
        body = P.render_properties(
            [("copyright", f"imageserving {__version__} - open-source Image Serving")],
            "text",
            now=datetime.now(timezone.utc),
        )
        return Reply(200, body.content, body.media_type, cache_headers(None))

    # ------------------------------------------------------------------ images
    def _image_reply(self, ctx: Context) -> Reply:
        result = self.render_source(ctx, request_source(ctx), ctx.url, req_type=ctx.req.type, inline=False)
        reply = result.reply(ctx.headers)
        if len(reply.body) > self.settings.max_response_bytes:  # only when renditions are on
            return renditions.redirect(self.storage, self.settings, reply)
        return reply

    def render_source(self, ctx: Context, source: Source | None, url: list[Token], **options) -> ImageResult:
        """Render ``source`` with the commands ``url``: :meth:`.imaging.Imaging.render`."""
        return self.imaging.render(ctx, source, url, **options)

    def plan_image(self, ctx: Context) -> tuple[Prepared, Planned]:
        """The reply geometry ``req=img`` would have: :meth:`.imaging.Imaging.plan`."""
        return self.imaging.plan(ctx)

    def describe_image(self, ctx: Context) -> ImageDescription:
        """``req=props``: :meth:`.imaging.Imaging.describe`."""
        return self.imaging.describe(ctx)

    @functools.cached_property
    def imaging(self) -> Imaging:
        """The image half (:mod:`.imaging`: assembly, the renderer, Pillow), built on first use."""
        return _imaging_class()(self.settings, self.storage)


@functools.cache
def _imaging_class() -> type[Imaging]:
    """The one late import of the request path (why: imaging.py). A process that has moved its
    startup objects out of the collector's reach (gc.freeze: handler.py, app._lifespan) moves these
    modules too, so that full collections keep scanning only what requests create."""
    from .imaging import Imaging

    if gc.get_freeze_count():
        gc.freeze()
    return Imaging
