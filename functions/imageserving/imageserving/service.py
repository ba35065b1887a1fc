"""One request, start to finish (protocol.md §2): identify → preprocess (rule sets, macros) →
resolve the catalog and object → request type → an image (assembled in :mod:`.assemble`, rendered
by :mod:`.render`) or a property reply (:mod:`.requests`, :mod:`.content`).

Errors raised anywhere arrive here as :class:`ISError` values and are answered by the error model,
:func:`.fallbacks.failure_reply` (default image → error image → formatted error).
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timezone

from . import __version__, heap, observe, renditions
from .assemble import Assembler, Prepared, default_ttl, image_version, request_source, source_ttl
from .catalog.resolve import Source, main_catalog, resolve_path_object
from .catalog.store import CatalogStore
from .context import IMAGE_TYPES, Context, ImageResult
from .errors import ISError, wrap_unexpected
from .fallbacks import failure_reply
from .negotiate import VARY_ACCEPT
from .protocol.commands import Commands
from .protocol.preprocess import add_rule_headers, object_elements, preprocess
from .protocol.query import Token, expand_macros, expansion_budget, tokenize
from .protocol.values import parse_flag
from .render import pipeline
from .responses import properties as P
from .responses.headers import Reply, cache_headers, min_ttl
from .signing import Signer
from .slots import RenderSlots
from .sources import client_cache_off, newest

log = logging.getLogger("imageserving")

# Far beyond any real Scene7 URL (CDNs and browsers stop near 8-16 KB); bounds the parsing work.
MAX_QUERY_CHARS = 65536


@dataclass(frozen=True)
class ImageDescription:
    """``req=props``: the reply ``req=img`` would give, planned from headers alone."""

    width: int
    height: int
    media_type: str
    mask: bool
    quality: int
    bgc: tuple[int, int, int]
    print_res: float
    icc_embed: bool
    pixel_type: str  # RGB, BW or CMYK
    xmp_embed: bool
    icc_profile: bytes | None  # the profile the reply's pixels are in, when known
    version: str


class ImageServer:
    def __init__(self, settings, storage):
        self.settings = settings
        self.storage = storage
        self.catalogs = CatalogStore(storage, settings)
        self.assembler = Assembler(settings, storage)
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
            ctx.url = expand_macros(tokens, lambda n: ctx.cats.macro(ctx.main, n))
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

    def render_source(
        self,
        ctx: Context,
        source: Source | None,
        url: list[Token],
        *,
        req_type: str,
        variables: dict[str, str] | None = None,
        default_image: bool = False,
        replacement: Source | None = None,
        watermark: bool = True,
        inline: bool = True,
    ) -> ImageResult:
        """Render ``source`` (record or file) with the URL commands; ``req=img`` replies get the
        catalog's watermark unless ``watermark`` is False (error images). ``inline``: the body must
        fit IS_MAX_RESPONSE_BYTES (only the request's own image may become a rendition)."""
        cats, main = ctx.cats, ctx.main
        involved = len(ctx.modified)  # a fallback renders again with the same context
        p = self.assembler.prepare(
            ctx,
            source,
            url,
            req_type=req_type,
            variables=variables,
            replacement=replacement,
            watermark=watermark and req_type == "img",
        )
        rendered = pipeline.render(p.job, p.options)
        if inline:
            pipeline.check_reply_size(len(rendered.body), self.settings.max_response_bytes)
        if default_image:  # mode 0: the default object is the whole reply
            ttl = default_ttl(cats, main, p.record)
        else:
            ttl = min_ttl(source_ttl(cats, p.source, p.record, main), *p.layer_ttls)
            if p.replaced:
                ttl = min_ttl(ttl, default_ttl(cats, main, replacement.record))
        if client_cache_off(p.cmds.value("cache")):
            ttl = None
        last_modified = newest(cats, main, ctx.modified[involved:])
        never = cats.record_ttl(p.record) == -1 and all(t == -1 for t in p.layer_ttls)
        return ImageResult(rendered.body, rendered.media_type, ttl, last_modified, never, _hint_headers(p, rendered))

    def plan_image(self, ctx: Context) -> tuple[Prepared, pipeline.Planned]:
        """The reply geometry ``req=img`` would have, from the source's header (no decoding)."""
        p = self.assembler.prepare(ctx, request_source(ctx), ctx.url, req_type="img")
        return p, pipeline.plan(p.job, p.options)

    def describe_image(self, ctx: Context) -> ImageDescription:
        """``req=props``: the reply as ``req=img`` would make it, planned from headers, not encoded."""
        p, planned = self.plan_image(ctx)
        reply_profile = pipeline.colour_route(p.job, planned).reply
        return ImageDescription(
            width=planned.width,
            height=planned.height,
            media_type=planned.output.mime,
            mask=planned.mask,
            quality=planned.quality,
            bgc=planned.bgc,
            print_res=planned.print_res,
            icc_embed=planned.icc_embed and reply_profile is not None,
            pixel_type={"rgb": "RGB", "gray": "BW", "cmyk": "CMYK"}[planned.output.pixel_type],
            xmp_embed=bool(
                planned.source
                and planned.source.xmp
                and p.job.request.get("xmpembed")
                and parse_flag(p.job.request["xmpembed"], cmd="xmpEmbed")
            ),
            icc_profile=reply_profile,
            version=image_version(p),
        )


def _hint_headers(p: Prepared, rendered: pipeline.Rendered) -> dict[str, str]:
    """``Vary`` for the client hints the reply depended on, and what Smart Imaging did."""
    names = (VARY_ACCEPT if rendered.vary_accept else ()) + p.job.hint_vary
    headers = {"Vary": ", ".join(names)} if names else {}
    if rendered.smart_imaging:
        headers["X-IS-Smart-Imaging"] = rendered.smart_imaging
    return headers
