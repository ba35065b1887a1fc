"""One request, start to finish: protocol → catalog → storage → render → reply (protocol.md §2).

Errors raised anywhere arrive as :class:`ISError` values; :meth:`ImageServer.handle` is the one
place that decides between default image, error image and a formatted error (§12.6).
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from fractions import Fraction

from . import __version__
from .catalog.model import Catalog, CatalogSet
from .catalog.resolve import PathObject, Source, main_catalog, resolve_object, resolve_path_object
from .catalog.rules import Header
from .catalog.store import CatalogStore
from .errors import ISError, wrap_unexpected
from .protocol.commands import Commands
from .protocol.preprocess import add_rule_headers, object_elements, preprocess
from .protocol.query import Token, decode_value, encode_value, expand_macros, is_nested, skip_brackets, tokenize
from .protocol.values import parse_flag, parse_int, parse_reals
from .render import codec, compose, pipeline
from .responses import properties as P
from .responses.headers import Reply, cache_headers, finish, min_ttl
from .sources import client_cache_off, fetch_source, record_tokens, version_id
from .sources import last_modified as last_modified_of
from .storage import Blob

log = logging.getLogger("imageserving")

IMAGE_TYPES = ("img", "tmb", "mask")
# Far beyond any real Scene7 URL (CDNs and browsers stop near 8-16 KB); bounds the parsing work.
MAX_QUERY_CHARS = 65536
# The only commands of the original request kept by the default image (mode 0) and the error image.
_KEPT_FOR_FALLBACK = ("wid", "hei", "fmt", "qlt")
# Nested IS requests (protocol.md §3.8): how deep ``src=is{…}`` may nest, and the commands a
# nested request ignores (its reply is an intermediate image, never encoded for a client).
MAX_NESTING = 8
MAX_NESTED_RENDERS = 32  # nested requests per request, all levels together
_NESTED_IGNORED = frozenset(("fmt", "qlt", "iccembed", "printres", "quantize", "req", "bgc"))
# Lossless, with alpha, and the cheapest to write and read back: uncompressed TIFF.
_NESTED_FMT = "tif-alpha"
_FALLBACK_CHECKS = {
    "wid": lambda v: parse_int(v, cmd="wid", lo=1),
    "hei": lambda v: parse_int(v, cmd="hei", lo=1),
    "fmt": codec.parse_fmt,
    "qlt": codec.parse_qlt,
}


@dataclass
class Context:
    """What one request has learnt so far; errors are formatted with whatever it holds."""

    cats: CatalogSet | None = None
    main: Catalog | None = None
    path: PathObject | None = None
    url: list[Token] = field(default_factory=list)
    commands: Commands | None = None  # the URL's own commands (request attributes)
    req: P.ReqSpec | None = None
    req_id: str = ""
    handler: str = "s7jsonResponse"
    headers: dict[str, str] = field(default_factory=dict)
    deadline: float = float("inf")
    locale: str = ""  # the effective locale (§5.6)
    context: str = "image"  # "image" (/is/image) or "content" (/is/content)
    rule_headers: tuple[Header, ...] = ()  # from the matched rule-set rules, added last
    client_ip: str = ""
    nesting: int = 0  # how many ``src=is{…}`` levels deep this is
    nested_renders: list[int] = field(default_factory=lambda: [0])  # shared by all nesting levels

    @property
    def is_image(self) -> bool:
        return self.req is None or self.req.type in IMAGE_TYPES


@dataclass
class ImageResult:
    body: bytes
    media_type: str
    ttl: float
    last_modified: datetime | None
    never_expires: bool = False


@dataclass
class Prepared:
    """A request ready to render: its job, validated options and where its pixels come from."""

    job: pipeline.RenderJob
    options: pipeline.Options
    cmds: Commands
    source: Source | None
    record: object | None
    blob: Blob | None
    replaced: bool
    layer_ttls: tuple[float, ...] = ()  # Expiration of every further layer's source (min wins)


@dataclass(frozen=True)
class ImageDescription:
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


def image_version(p: Prepared) -> str:
    """§8.22 ``image.version``: over every layer's source (key, ETag) and the merged commands."""
    parts = [p.blob.key, p.blob.etag] if p.blob is not None else []
    if p.blob is None and p.job.source:  # layer 0 is a nested request's image
        parts.append(hashlib.md5(p.job.source, usedforsecurity=False).hexdigest())
    parts += [f"{n}={v}" for n, v in sorted(p.job.request.items()) + sorted(p.job.layer.items())]
    for layer in p.job.layers[1:]:
        parts += [f"{n}={v}" for n, v in sorted(layer.cmds.items())]
        parts.append(hashlib.md5(layer.source or b"", usedforsecurity=False).hexdigest())
    return version_id(parts)


class ImageServer:
    def __init__(self, settings, storage):
        self.settings = settings
        self.storage = storage
        self.catalogs = CatalogStore(storage, settings)

    # ------------------------------------------------------------------ entry point
    def handle(
        self,
        method: str,
        raw_object: str,
        raw_query: str,
        headers: dict[str, str],
        client_ip: str = "",
        context: str = "image",
    ) -> Reply:
        """Answer one request; ``context`` is ``image`` (``/is/image``) or ``content`` (``/is/content``)."""
        ctx = Context(
            headers=headers,
            deadline=time.monotonic() + self.settings.request_timeout_s,
            context=context,
            client_ip=client_ip,
        )
        try:
            reply = self._serve(ctx, raw_object, raw_query, client_ip)
        except Exception as exc:  # noqa: BLE001 - every failure becomes an ISError reply
            err = wrap_unexpected(exc)
            if err.kind == "server_error":
                log.error("request failed: %s", err, exc_info=err.__cause__ or err)
            reply = self._failure(ctx, err)
        try:
            add_rule_headers(reply.headers, ctx.rule_headers, ctx.url)
        except Exception:  # noqa: BLE001 - a rule header must never cost the reply
            log.exception("rule-set headers dropped")
        if method == "HEAD":
            reply.headers["Content-Length"] = str(len(reply.body))
            reply.body = b""
        return reply

    def _serve(self, ctx: Context, raw_object: str, raw_query: str, client_ip: str) -> Reply:
        if not raw_object.strip("/") and not raw_query and ctx.context == "image":
            return self._identification()
        if len(raw_query) > MAX_QUERY_CHARS:
            raise ISError("bad_request", f"the query string is {len(raw_query)} characters long")
        ctx.cats = self.catalogs.current()
        ctx.main = ctx.cats.default
        ctx.main = main_catalog(ctx.cats, object_elements(raw_object))
        pre = preprocess(
            ctx.cats, ctx.main, raw_object, raw_query, client_ip, context="static" if ctx.context == "content" else "is"
        )
        ctx.cats, ctx.main, ctx.rule_headers = ctx.cats.with_overrides(pre.overrides), pre.main, pre.headers
        ctx.url = expand_macros(tokenize(pre.query), lambda n: ctx.cats.macro(ctx.main, n))
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
        result = self.render_source(ctx, self._template(ctx) or _path_source(ctx), ctx.url, req_type=ctx.req.type)
        reply = Reply(200, result.body, result.media_type)
        return finish(
            reply, result.ttl, ctx.headers, last_modified=result.last_modified, never_expires=result.never_expires
        )

    def _template(self, ctx: Context) -> Source | None:
        """``template=``: the template record replaces the URL object, reachable as ``$object$`` (§7)."""
        name = ctx.commands.value("template")
        if not name:
            return None
        source = resolve_object(ctx.cats, name, ctx.main, ctx.locale)
        if source.record is None:  # a template is a record; not covered by the default image
            raise ISError("not_found", f"template {name}", title="Template not found")
        return source

    def _prepare(
        self,
        ctx: Context,
        source: Source | None,
        url: list[Token],
        *,
        req_type: str,
        variables: dict[str, str] | None = None,
        replacement: Source | None = None,
        watermark: bool = False,
        nested: bool = False,
    ) -> Prepared:
        """Merge Modifier < URL < PostModifier, validate every command, then read the source;
        ``watermark``: merge the main catalog's Watermark into the composite (§12); ``nested``:
        the job renders a nested request's intermediate image (protocol.md §3.8)."""
        cats, main = ctx.cats, ctx.main
        record = source.record if source else None
        parts = [url]
        if record is not None:
            parts = [record_tokens(cats, record, "modifier"), url, record_tokens(cats, record, "postmodifier")]
        cmds = _merge(parts, ctx, variables)
        layer_cmds = cmds.decoded_layer("0", "comp")
        src_value = layer_cmds.pop("src", None)
        nested_src = src_value if src_value and is_nested(src_value) else None
        if nested_src:
            source, record = None, None
        elif src_value:
            source, modifier = self._layer_source(ctx, src_value)
            record = source.record
            if modifier:
                cmds = _merge([modifier, *parts], ctx, variables)
                layer_cmds = cmds.decoded_layer("0", "comp")
                layer_cmds.pop("src", None)
        further = _further_layers(cmds, parts)
        compose.check_count(len(further) + 1)
        job = pipeline.RenderJob(
            req_type=req_type,
            source=None,
            layer=cmds.decoded_layer("comp") if further else layer_cmds,
            request=cmds.decoded_request(),
            defaults=pipeline.defaults_from_catalog(cats, main, source.catalog if source else main, record),
            max_source_pixels=self.settings.max_source_pixels,
            max_render_pixels=self.settings.max_render_pixels,
            max_response_bytes=self.settings.max_response_bytes,
            deadline=ctx.deadline,
        )
        if nested:
            _as_nested(job)
        options = pipeline.parse_options(job)  # bad values fail before any source is read
        blob, replaced = None, False
        layer_ttls: list[float] = []
        if nested_src:
            job.source, ttl, replaced = self._nested(ctx, nested_src, cmds.variables, replacement)
            layer_ttls.append(ttl)
        elif source is not None and source.path:
            blob, replaced = self._fetch_layer(cats, source, replacement)
        elif source is None and replacement is not None and ctx.path is not None and ctx.path.missing:
            # The URL object itself is missing (locale translation found no record): swap it.
            blob, replaced = fetch_source(self.storage, self.settings, cats, replacement, layer=True), True
        if blob is not None:
            job.source = blob.data
        if job.source is None and "size" not in layer_cmds:
            raise ISError("not_found", "the request names no image")
        mark = self._watermark(ctx) if watermark else None
        # Layer scaling of an image (size=, scale=) happens in the compositor (rendering.md §4.3,
        # §4.5: layer 0's size= is the canvas), and so does a watermark (merged before the view
        # transform): a single-layer request with either takes the composite path.
        scaled_layer0 = job.source is not None and any(k in layer_cmds for k in ("size", "sizen", "scale"))
        if further or mark is not None or scaled_layer0:
            job.layers = [compose.Layer(_layer0(cmds), job.source)]
            if not further:
                job.layer = cmds.decoded_layer("comp")
                options = pipeline.parse_options(job)
            for layer_cmds_n in further:
                layer, ttl, used_replacement = self._layer(ctx, cmds, layer_cmds_n, replacement)
                job.layers.append(layer)
                layer_ttls += [ttl] if ttl is not None else []
                replaced = replaced or used_replacement
        if mark is not None:
            job.layers.append(mark[0])
            layer_ttls.append(mark[1])
        return Prepared(job, options, cmds, source, record, blob, replaced, tuple(layer_ttls))

    def _layer(
        self, ctx: Context, cmds: Commands, own: dict[str, str], replacement: Source | None
    ) -> tuple[compose.Layer, float | None, bool]:
        """A layer above layer 0: its ``src=`` resolved and fetched (a record brings its Modifier as
        the layer's prefix and its Anchor, §3.7), its source's TTL (None without a source), and
        whether DefaultImageMode 1 replaced its source."""
        cats, main = ctx.cats, ctx.main
        own = dict(own)
        src_value = own.pop("src", None)
        if not src_value:
            return compose.Layer(own), None, False
        if is_nested(src_value):
            data, ttl, replaced = self._nested(ctx, src_value, cmds.variables, replacement)
            return compose.Layer(own, data), ttl, replaced
        source, modifier = self._layer_source(ctx, src_value)
        record = source.record
        if record is not None:
            prefix = Commands(variables=dict(cmds.variables))
            prefix.add(modifier)
            own = {**prefix.decoded_layer("comp"), **own}  # Modifier < URL; its PostModifier is ignored
            if record.get("anchor").strip() and "anchor" not in own and "anchorn" not in own:
                own["anchor"] = record.get("anchor").strip()
        ttl = self._ttl(cats, source, record, main)
        if not source.path:
            return compose.Layer(own), ttl, False
        blob, replaced = self._fetch_layer(cats, source, replacement)
        return compose.Layer(own, blob.data), ttl, replaced

    def _watermark(self, ctx: Context) -> tuple[compose.Layer, float] | None:
        """The main catalog's Watermark record as a watermark layer, and its TTL (§12): its
        Modifier/PostModifier layer 0/comp commands, of its request commands only ``align=``.
        A missing record or image is logged and the reply goes out without a watermark (Scene7
        does not say; failing every image request of the catalog would be worse)."""
        cats, main = ctx.cats, ctx.main
        obj = (cats.raw_attr(main, "Watermark") or "").strip()
        if not obj:
            return None
        try:
            source = resolve_object(cats, obj, main, ctx.locale)
            blob = fetch_source(self.storage, self.settings, cats, source, layer=True) if source.path else None
        except ISError as err:
            if not err.missing_source:
                raise
            log.warning("watermark %r left out: %s", obj, err)
            return None
        cmds = Commands()
        if source.record is not None:
            cmds.add(record_tokens(cats, source.record, "modifier"))
            cmds.add(record_tokens(cats, source.record, "postmodifier"))
        own = cmds.decoded_layer("0", "comp")  # opac= too: it is the watermark's own merge opacity
        own.pop("src", None)
        if blob is None and not own.get("text") and not own.get("color"):
            log.warning("watermark %r left out: it has no image", obj)
            return None
        try:
            align = cmds.value("align")
            ax, ay = parse_reals(align, 2, cmd="align", lo=-1, hi=1) if align else (Fraction(0), Fraction(0))
        except ISError as err:  # a catalog mistake, not the client's: serve without it
            log.warning("watermark %r left out: %s", obj, err.detail)
            return None
        layer = compose.Layer(own, blob.data if blob else None, align=(ax, ay))
        return layer, self._ttl(cats, source, source.record, main)

    def _layer_source(self, ctx: Context, src_value: str) -> tuple[Source, list[Token]]:
        """The object of a ``src=`` (not a nested request) and the Modifier its record brings as the
        layer's prefix (§3.7)."""
        source = resolve_object(ctx.cats, src_value, ctx.main, ctx.locale)
        if source.record is None:
            return source, []
        modifier = record_tokens(ctx.cats, source.record, "modifier")
        if any(t.kind == "command" and t.name in ("src", "mask") for t in modifier):
            raise ISError("bad_request", f"src={src_value}: its record's Modifier names another source")
        return source, modifier

    def _nested(
        self, ctx: Context, value: str, variables: dict[str, str], replacement: Source | None
    ) -> tuple[bytes, float, bool]:
        """Render ``src=is{object?query}`` (protocol.md §3.8) as a lossless RGBA image: parsed like a
        top-level request (rule sets, macros, template=, its records' Modifier/PostModifier), the
        outer variables forwarded (nested definitions win), the outer locale unless it names one.
        Returns the encoded image, its TTL and whether DefaultImageMode 1 replaced a source."""
        kind = value.split("{", 1)[0].split("(", 1)[0]
        if kind.lower() != "is":
            raise ISError(
                "bad_request", f"src={value[:64]}: unsupported embedded request ({kind.lower() or 'foreign URL'})"
            )
        # The tokenizer kept the group whole; a value may still go on after its closing bracket.
        if skip_brackets(value, len(kind)) != len(value):
            raise ISError("bad_request", f"src={value[:64]}: text after the nested request")
        if ctx.nesting >= MAX_NESTING:
            raise ISError("bad_request", f"src={value[:64]}: nested requests go deeper than {MAX_NESTING}")
        ctx.nested_renders[0] += 1
        if ctx.nested_renders[0] > MAX_NESTED_RENDERS:
            raise ISError("bad_request", f"more than {MAX_NESTED_RENDERS} nested requests in one request")
        if time.monotonic() > ctx.deadline:
            raise ISError("overload", "request took longer than IS_REQUEST_TIMEOUT_S")
        raw_object, _, raw_query = value[len(kind) + 1 : -1].partition("?")
        cats = ctx.cats
        pre = preprocess(cats, main_catalog(cats, object_elements(raw_object)), raw_object, raw_query, ctx.client_ip)
        sub = Context(
            cats=cats.with_overrides(pre.overrides),
            main=pre.main,
            headers=ctx.headers,
            deadline=ctx.deadline,
            client_ip=ctx.client_ip,
            nesting=ctx.nesting + 1,
            nested_renders=ctx.nested_renders,
        )
        # Forwarded as definitions in front of the nested URL; $object$ stays the nested object.
        forwarded = [Token("vardef", n, v) for n, v in variables.items() if n != "object"]
        url = expand_macros(tokenize(pre.query), lambda n: sub.cats.macro(sub.main, n))
        sub.url = forwarded + [t for t in url if not (t.kind == "command" and t.name in _NESTED_IGNORED)]
        probe = sub.commands = Commands()
        probe.add(sub.url)
        sub.locale = (probe.value("locale") or "").strip() or ctx.locale
        sub.path = resolve_path_object(sub.cats, object_elements(pre.object), sub.locale)
        sub.main = sub.path.main
        if not self.settings.allow_default_catalog_requests and sub.main.is_default:
            raise ISError(
                "refused",
                f"src={value[:64]}: nested requests must name a catalog (IS_ALLOW_DEFAULT_CATALOG_REQUESTS=false)",
            )
        p = self._prepare(
            sub, self._template(sub) or _path_source(sub), sub.url, req_type="img", replacement=replacement, nested=True
        )
        planned = pipeline.plan(p.job, p.options)
        if planned.width * planned.height > self.settings.max_render_pixels:
            # Without MaxPix, this is what bounds the intermediate image.
            raise ISError(
                "size_limit",
                f"src={value[:64]}: nested reply of {planned.width}x{planned.height} "
                f"pixels, more than IS_MAX_RENDER_PIXELS {self.settings.max_render_pixels}",
            )
        rendered = pipeline.render(p.job, p.options)
        ttl = min_ttl(self._ttl(sub.cats, p.source, p.record, sub.main), *p.layer_ttls)
        return rendered.body, ttl, p.replaced

    def _fetch_layer(self, cats: CatalogSet, source: Source, replacement: Source | None) -> tuple[Blob, bool]:
        """A layer's source file; with DefaultImageMode 1 (``replacement``) a missing one is swapped."""
        try:
            return fetch_source(self.storage, self.settings, cats, source, layer=True), False
        except ISError as err:
            if replacement is None or not err.missing_source:
                raise
            return fetch_source(self.storage, self.settings, cats, replacement, layer=True), True

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
    ) -> ImageResult:
        """Render ``source`` (record or file) with the URL commands; ``req=img`` replies get the
        catalog's watermark unless ``watermark`` is False (error images)."""
        cats, main = ctx.cats, ctx.main
        p = self._prepare(
            ctx,
            source,
            url,
            req_type=req_type,
            variables=variables,
            replacement=replacement,
            watermark=watermark and req_type == "img",
        )
        rendered = pipeline.render(p.job, p.options)
        if default_image:  # mode 0: the default object is the whole reply
            ttl = self._default_ttl(cats, main, p.record)
        else:
            ttl = min_ttl(self._ttl(cats, p.source, p.record, main), *p.layer_ttls)
            if p.replaced:
                ttl = min_ttl(ttl, self._default_ttl(cats, main, replacement.record))
        if client_cache_off(p.cmds.value("cache")):
            ttl = None
        last_modified = last_modified_of(cats, main, p.record, p.blob)
        never = cats.record_ttl(p.record) == -1 and all(t == -1 for t in p.layer_ttls)
        return ImageResult(rendered.body, rendered.media_type, ttl, last_modified, never)

    def describe_image(self, ctx: Context) -> ImageDescription:
        """``req=props``: the reply as ``req=img`` would make it, planned from headers, not encoded."""
        p = self._prepare(ctx, self._template(ctx) or _path_source(ctx), ctx.url, req_type="img")
        planned = pipeline.plan(p.job, p.options)
        return ImageDescription(
            width=planned.width,
            height=planned.height,
            media_type=planned.output.mime,
            mask=planned.mask,
            quality=planned.quality,
            bgc=planned.bgc,
            print_res=planned.print_res,
            icc_embed=planned.icc_embed and bool(planned.source and planned.source.icc_profile),
            pixel_type={"rgb": "RGB", "gray": "BW", "cmyk": "CMYK"}[planned.output.pixel_type],
            xmp_embed=bool(
                planned.source
                and planned.source.xmp
                and p.job.request.get("xmpembed")
                and parse_flag(p.job.request["xmpembed"], cmd="xmpEmbed")
            ),
            icc_profile=planned.source.icc_profile if planned.source else None,
            version=image_version(p),
        )

    def _ttl(self, cats, source, record, main) -> float:
        return cats.expiration(record, source.catalog if source else main)

    def _default_ttl(self, cats, main, record) -> float:
        ttl = cats.record_ttl(record)
        return ttl if ttl is not None else cats.attr(main, "DefaultExpiration")

    # ------------------------------------------------------------------ failures (§12.6)
    def _failure(self, ctx: Context, err: ISError) -> Reply:
        """default image → error image → formatted error; each fallback failing falls through."""
        image_request = (
            ctx.cats is not None and ctx.req is not None and ctx.req.type in ("img", "tmb") and ctx.context == "image"
        )
        if image_request and err.missing_source:
            reply = self._default_image(ctx, err)
            if reply is not None:
                return reply
        if image_request:
            reply = self._error_image(ctx, err)
            if reply is not None:
                return reply
        return self._formatted_error(ctx, err)

    def _detail_level(self, ctx: Context) -> int:
        cats = ctx.cats
        if cats is None:
            try:
                cats = self.catalogs.current()
            except Exception:  # noqa: BLE001 - no catalogs at all: stay at the safe level 0
                return 0
        return cats.attr(ctx.main or cats.default, "ErrorDetail")

    def _formatted_error(self, ctx: Context, err: ISError) -> Reply:
        fmt = "text" if ctx.is_image or ctx.req.format is None else ctx.req.format
        level = self._detail_level(ctx)
        if fmt != "text":
            level = min(level, 2)  # tracebacks only ever go into plain-text bodies
        status = self.settings.errors.status(err)
        if fmt == "json" and self.settings.jsonp_error_status:
            status = self.settings.jsonp_error_status
        body = P.render_error(err.title, err.message(level), fmt, req_id=ctx.req_id)
        headers = cache_headers(None)
        headers["X-IS-Error"] = err.kind
        return Reply(status, body.content, body.media_type, headers)

    def _fallback_url(self, ctx: Context) -> list[Token]:
        """wid/hei/fmt/qlt of the original request (the last of each) that parse, for fallbacks."""
        kept: dict[str, Token] = {}
        for tok in ctx.url:
            if tok.kind == "command" and tok.name in _KEPT_FOR_FALLBACK:
                kept[tok.name] = tok
        for name, tok in list(kept.items()):
            try:
                _FALLBACK_CHECKS[name](decode_value(tok.value))
            except ISError:
                del kept[name]  # the value that broke the request must not break its fallback
        if ctx.req is not None and ctx.req.type == "tmb":
            kept["req"] = Token("command", "req", "tmb")
        return list(kept.values())

    def _default_image(self, ctx: Context, err: ISError) -> Reply | None:
        """§12.5: ``defaultImage=`` (empty disables) else DefaultImage; mode 0 replaces the request,
        mode 1 only the missing source. Any failure gives the original error back (None)."""
        cats, main = ctx.cats, ctx.main or ctx.cats.default
        override = ctx.commands.value("defaultimage") if ctx.commands is not None else None
        obj = override if override is not None else cats.raw_attr(main, "DefaultImage") or ""
        if not obj:
            return None
        try:
            source = resolve_object(cats, obj, main, ctx.locale)
            if cats.attr(main, "DefaultImageMode") == 1 and source.path:
                result = self.render_source(ctx, ctx.path.source, ctx.url, req_type=ctx.req.type, replacement=source)
            else:
                result = self.render_source(
                    ctx, source, self._fallback_url(ctx), req_type=ctx.req.type, default_image=True
                )
        except Exception as second:  # noqa: BLE001 - the original error is what the client gets
            log.info("default image %r failed: %s", obj, second)
            return None
        reply = Reply(200, result.body, result.media_type, {"X-IS-Default-Image": "1"})
        return finish(
            reply, result.ttl, ctx.headers, last_modified=result.last_modified, never_expires=result.never_expires
        )

    def _error_image(self, ctx: Context, err: ISError) -> Reply | None:
        if err.kind not in self.settings.errors.error_image_kinds:
            return None
        cats, main = ctx.cats, ctx.main or ctx.cats.default
        obj = cats.raw_attr(main, "ErrorImage") or ""
        if not obj:
            return None
        level = min(self._detail_level(ctx), 2)  # error images never show a traceback
        variables = {"error.title": encode_value(err.title), "error.message": encode_value(err.message(level))}
        try:
            source = resolve_object(cats, obj, main)
            result = self.render_source(
                ctx, source, self._fallback_url(ctx), req_type=ctx.req.type, variables=variables, watermark=False
            )
        except Exception as second:  # noqa: BLE001 - the original error is what the client gets
            log.info("error image %r failed: %s", obj, second)
            return None
        headers = cache_headers(None)
        headers["X-IS-Error"] = err.kind
        return Reply(200, result.body, result.media_type, headers)


def _merge(parts: list[list[Token]], ctx: Context, variables: dict[str, str] | None) -> Commands:
    cmds = Commands()
    for part in parts:
        cmds.add(part)
    cmds.variables.setdefault("object", encode_value(ctx.path.object if ctx.path else ""))
    if variables:
        cmds.variables.update(variables)
    return cmds


def _as_nested(job: pipeline.RenderJob) -> None:
    """A nested request's job (§3.8): its client-facing commands and MaxPix/DefaultPix dropped,
    encoded losslessly with alpha; IS_MAX_RESPONSE_BYTES is for replies, not intermediates."""
    job.request = {n: v for n, v in job.request.items() if n not in _NESTED_IGNORED}
    job.request["fmt"] = _NESTED_FMT
    job.defaults = replace(job.defaults, default_pix=(0, 0), max_pix=(0, 0))
    job.max_response_bytes = 2**62


def _layer0(cmds: Commands) -> dict[str, str]:
    """Layer 0's commands in a composite (``src=`` already resolved by the caller)."""
    own = compose.layer0_commands(cmds.decoded_layer("0"), cmds.decoded_layer("comp"))
    own.pop("src", None)
    return own


def _path_source(ctx: Context) -> Source | None:
    """The URL object's source; one that locale translation could not find is a missing source."""
    if ctx.path.missing:
        raise ISError("not_found", f"{ctx.path.object}: no record for locale {ctx.locale!r}", missing_source=True)
    return ctx.path.source


def _further_layers(cmds: Commands, parts: list[list[Token]]) -> list[dict[str, str]]:
    """Decoded commands of the layers above layer 0, by ascending number (z-order, §4.1). Commands
    addressed by name (``layer=name`` after ``layer=n,name``) join that layer's own."""
    names: dict[str, str] = {}
    for part in parts:
        for tok in part:
            if tok.kind == "command" and tok.name == "layer":
                number, _, name = decode_value(tok.value).partition(",")
                if name.strip():
                    names[name.strip().lower()] = number.strip()
    numbered: dict[int, list[str]] = {}
    for key, layer in cmds.layers.items():
        if key == "comp" or not layer:
            continue
        number = key if key.isdigit() else names.get(key)
        if number is None or not number.isdigit():
            raise ISError("bad_request", f"layer={key}: no layer has this name")
        if int(number) == 0 and not key.isdigit():
            raise ISError("bad_request", f"layer={key}: names for layer 0 are not supported")
        numbered.setdefault(int(number), []).append(key)
    return [
        cmds.decoded_layer(*sorted(keys, key=lambda k: not k.isdigit()))
        for number, keys in sorted(numbered.items())
        if number > 0
    ]
