"""Request assembly: from a resolved object and the URL's commands to a render job (protocol.md §3.7,
§3.8, §7, §12; rendering.md §4).

:meth:`Assembler.prepare` is the one way in. In order, it

1. merges the object's record Modifier < URL < PostModifier into one set of commands;
2. resolves layer 0's ``src=`` (a record brings its own Modifier in front; ``src=is{…}`` is a
   nested request, rendered first as a lossless intermediate image);
3. builds the :class:`~imageserving.render.pipeline.RenderJob` and validates every command, so bad
   values fail before any source is read;
4. reads layer 0's pixels (``DefaultImageMode`` 1 swaps a missing source for the default image);
5. stacks the further layers (each ``src=`` resolved the same way) and the catalog's watermark.

The renderer knows nothing of catalogs; this module is where catalog records become layers.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, replace
from fractions import Fraction

from .catalog.formats import parse_flag_attr, parse_real_attr
from .catalog.model import CatalogSet, Record
from .catalog.resolve import Source, check_direct_access, main_catalog, resolve_object, resolve_path_object
from .context import Context
from .errors import ISError
from .negotiate import VARY_DPR, VARY_NETWORK, client_hints, encode_choice, negotiate
from .profiles import assumed_rgb, colour_plan
from .protocol.commands import Commands
from .protocol.preprocess import object_elements, preprocess
from .protocol.query import Token, decode_value, encode_value, expand_macros, is_nested, skip_brackets, tokenize
from .protocol.values import command_flag, parse_flag, parse_reals
from .render import compose, icc, pipeline
from .responses.headers import min_ttl
from .sources import fetch_source, modified_at, record_or_attr, record_tokens, request_source, version_id
from .storage import Blob

log = logging.getLogger("imageserving")

# Nested IS requests (protocol.md §3.8): how deep ``src=is{…}`` may nest, and the commands a
# nested request ignores (its reply is an intermediate image, never encoded for a client).
MAX_NESTING = 8
MAX_NESTED_RENDERS = 32  # nested requests per request, all levels together
# icc= too: a nested image stays in the working space; the outer request converts (rendering.md §10).
_NESTED_IGNORED = frozenset(("fmt", "qlt", "iccembed", "icc", "printres", "quantize", "req", "bgc"))
# Lossless, with alpha, and the cheapest to write and read back: uncompressed TIFF.
_NESTED_FMT = "tif-alpha"
# Layer-0 commands of a single-image request that only the compositor draws (rendering.md §4.2-§4.5,
# §4.9): layer scaling, masks, the colour fills; ``opac=`` of ``comp`` too (the translucent image
# over the background). The pipeline's fast path does the rest.
_COMPOSED = frozenset(
    ("size", "sizen", "scale", "res", "mask", "maskuse", "color", "bgcolor", "opac")
    + ("clippath", "clippathe", "croppathe", "op_growmask", "op_growmaskr")
)


@dataclass
class Prepared:
    """A request ready to render: its job, validated options and where its pixels come from."""

    job: pipeline.RenderJob
    options: pipeline.Options
    cmds: Commands
    source: Source | None
    record: Record | None
    blob: Blob | None
    replaced: bool
    layer_ttls: tuple[float, ...] = ()  # Expiration of every further layer's source (min wins)


# Request attributes that pick the reply type or are "always ignored by the server" (id=): the
# version a viewer reads with req=props,json&id=… must be the one of the image it then requests.
_NOT_IN_VERSION = frozenset(("req", "id", "handler", "cache", "labelkey", "message"))


def image_version(p: Prepared) -> str:
    """§8.22 ``image.version``: over every layer's source (key, ETag) and the merged commands."""
    parts = [p.blob.key, p.blob.etag] if p.blob is not None else []
    if p.blob is None and p.job.source:  # layer 0 is a nested request's image
        parts.append(hashlib.md5(p.job.source, usedforsecurity=False).hexdigest())
    request = [(n, v) for n, v in sorted(p.job.request.items()) if n not in _NOT_IN_VERSION]
    parts += [f"{n}={v}" for n, v in request + sorted(p.job.layer.items())]
    for layer in p.job.layers[1:]:
        parts += [f"{n}={v}" for n, v in sorted(layer.cmds.items())]
        parts.append(hashlib.md5(layer.source or b"", usedforsecurity=False).hexdigest())
    # Effects and masks only when present, so that the versions of other requests stay as they were.
    for i, effects in [(-1, p.job.comp_effects)] + [(i, layer.effects) for i, layer in enumerate(p.job.layers)]:
        for number, cmds in effects.items():
            parts += [f"{i}/effect={number}", *(f"{n}={v}" for n, v in sorted(cmds.items()))]
    for i, layer in enumerate(p.job.layers):
        if layer.mask is not None:
            parts += [f"{i}/mask", hashlib.md5(layer.mask, usedforsecurity=False).hexdigest()]
    return version_id(parts)


def source_ttl(cats: CatalogSet, source: Source | None, record: Record | None, main) -> float:
    """The Expiration of a source: its record's, else its catalog's (§9)."""
    return cats.expiration(record, source.catalog if source else main)


def default_ttl(cats: CatalogSet, main, record: Record | None) -> float:
    """The TTL of a default-image reply: its record's Expiration, else DefaultExpiration (§12.5)."""
    ttl = cats.record_ttl(record)
    return ttl if ttl is not None else cats.attr(main, "DefaultExpiration")


@dataclass
class _Layer0:
    """Layer 0 once its ``src=`` is resolved: the merged commands (with the Modifier a ``src=``
    record brings), its own commands, and where its pixels come from."""

    cmds: Commands
    own: dict[str, str]
    source: Source | None
    record: Record | None
    nested: str | None  # the ``src=is{…}`` value, when layer 0 is a nested request

    def composed(self) -> bool:
        """Whether a single-layer request needs the compositor (see _COMPOSED)."""
        maskpath = self.record is not None and self.record.get("maskpath").strip()
        return bool(
            any(k in self.own for k in _COMPOSED)
            or maskpath
            or self.cmds.effects.get("0")
            or self.cmds.effects.get("comp")
        )


class Assembler:
    def __init__(self, settings, storage):
        self.settings = settings
        self.storage = storage

    def prepare(
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
        """``replacement``: the default image for missing sources (DefaultImageMode 1);
        ``watermark``: merge the main catalog's Watermark into the composite (§12); ``nested``:
        the job renders a nested request's intermediate image (protocol.md §3.8)."""
        record = source.record if source else None
        parts = [url]
        if record is not None:
            parts = [record_tokens(ctx.cats, record, "modifier"), url, record_tokens(ctx.cats, record, "postmodifier")]
        layer0 = self._resolve_layer0(ctx, _merge(parts, ctx, variables), parts, source, variables)
        further = _further_layers(layer0.cmds, parts)
        compose.check_count(len(further) + 1 + sum(len(fx) for _, fx in further))
        compose.check_text_area([layer0.own, *(own for own, _ in further)])
        job = self._job(ctx, layer0, further, req_type, nested)
        options = pipeline.parse_options(job)  # bad values fail before any source is read
        blob, replaced, layer_ttls = self._read_layer0(ctx, job, layer0, replacement)
        if record is not None and record is not layer0.record:  # a template, or a src= record's holder
            _involve(ctx, record, None)
        _involve(ctx, replacement.record if replaced else layer0.record, blob)
        if job.source is None and "size" not in layer0.own:
            raise ISError("not_found", "the request names no image")
        mark = self._watermark(ctx) if watermark else None
        # Layer scaling, masks, fills and effects happen in the compositor (rendering.md §4), and so
        # does a watermark (merged before the view transform): a single-layer request with any of
        # them takes the composite path.
        if further or mark is not None or layer0.composed():
            job.layers = [self._layer0(ctx, layer0, job.source, None if replaced else replacement, replaced)]
            job.layers[0].assumed_rgb = job.colour.assumed_rgb
            if req_type == "tmb":
                job.layers[0].thumb = job.defaults.thumb
            job.comp_effects = layer0.cmds.decoded_effects("comp")
            job.apply_effect_mask = _apply_effect_mask(ctx, layer0.cmds)
            if not further:
                job.layer = layer0.cmds.decoded_layer("comp")
                options = pipeline.parse_options(job)
            for own, fx in further:
                layer, ttl, used_replacement = self._layer(ctx, layer0.cmds, own, replacement)
                layer.effects = _merged_effects(layer.effects, fx)
                job.layers.append(layer)
                layer_ttls += [ttl] if ttl is not None else []
                replaced = replaced or used_replacement
        if mark is not None:
            job.layers.append(mark[0])
            layer_ttls.append(mark[1])
        return Prepared(job, options, layer0.cmds, layer0.source, layer0.record, blob, replaced, tuple(layer_ttls))

    def resolved_commands(
        self, ctx: Context, source: Source | None, url: list[Token]
    ) -> tuple[Commands, list[tuple[int, dict[str, str], dict[int, dict[str, str]]]]]:
        """What :meth:`prepare` renders with, from catalogs alone (``req=resolve``, protocol.md
        §8.18): layer 0's merged commands and, by number, each further layer's decoded commands
        with its ``src=`` record's Modifier in front (its PostModifier ignored, catalogs.md §7.1)
        and its effect layers."""
        record = source.record if source else None
        parts = [url]
        if record is not None:
            parts = [record_tokens(ctx.cats, record, "modifier"), url, record_tokens(ctx.cats, record, "postmodifier")]
        layer0 = self._resolve_layer0(ctx, _merge(parts, ctx, None), parts, source, None)
        further = []
        for number, own, effects in _numbered_layers(layer0.cmds, parts):
            src = own.get("src")
            if src and not is_nested(src):
                layer_source, modifier = self._layer_source(ctx, src)
                if layer_source.record is not None:
                    own = _with_modifier(own, modifier, layer0.cmds.variables)
                    effects = _merged_effects(_modifier_effects(modifier, layer0.cmds.variables), effects)
            further.append((number, own, effects))
        return layer0.cmds, further

    # ------------------------------------------------------------------ layer 0
    def _resolve_layer0(
        self, ctx: Context, cmds: Commands, parts: list[list[Token]], source: Source | None, variables
    ) -> _Layer0:
        own = cmds.decoded_layer("0", "comp")
        src_value = own.pop("src", None)
        if not src_value:
            return _Layer0(cmds, own, source, source.record if source else None, None)
        if is_nested(src_value):
            return _Layer0(cmds, own, None, None, src_value)
        request_record = source.record if source is not None else None
        source, modifier = self._layer_source(ctx, src_value)
        # catalogs.md §7.1: the src= record's Modifier goes in front of everything else; only
        # layer 0's PostModifier applies — the request's own record's (URL object, template:
        # AMBIG-11) when it has one, else this record's, which then is layer 0's only record.
        post = []
        if request_record is None and source.record is not None:
            post = record_tokens(ctx.cats, source.record, "postmodifier")
        if modifier or post:
            cmds = _merge([modifier, *parts, post], ctx, variables)
            own = cmds.decoded_layer("0", "comp")
            own.pop("src", None)
        return _Layer0(cmds, own, source, source.record, None)

    def _job(
        self, ctx: Context, layer0: _Layer0, further: list[dict[str, str]], req_type: str, nested: bool
    ) -> pipeline.RenderJob:
        cats, main, cmds = ctx.cats, ctx.main, layer0.cmds
        job = pipeline.RenderJob(
            req_type=req_type,
            source=None,
            layer=cmds.decoded_layer("comp") if further else layer0.own,
            request=cmds.decoded_request(),
            defaults=pipeline.defaults_from_catalog(
                cats, main, layer0.source.catalog if layer0.source else main, layer0.record
            ),
            max_source_pixels=self.settings.max_source_pixels,
            decode_budget=self.settings.decode_budget_bytes,
            max_render_pixels=self.settings.max_render_pixels,
            max_response_bytes=self.settings.render_bytes_limit,
            deadline=ctx.deadline,
        )
        # A nested request's image is sRGB already: no catalog's untagged space applies to it.
        layer_cat = None if layer0.nested else layer0.source.catalog if layer0.source else main
        if nested:
            _as_nested(job)
            # Its untagged sources leave it in sRGB like every layer (the output space is the outer's).
            if layer_cat is not None:
                job.colour = icc.ColourPlan(assumed_rgb=assumed_rgb(self.storage, self.settings, cats, layer_cat))
        else:
            job.colour = colour_plan(self.storage, self.settings, cats, main, layer_cat, job.request)
            self._smart_imaging(ctx, job, cmds)
        return job

    def _smart_imaging(self, ctx: Context, job: pipeline.RenderJob, cmds: Commands) -> None:
        """Client hints into the job (issue 10): the device pixel ratio for ``dpr=on``, a slow
        network for ``network=on`` (which also turns DPR off, r-network.md) and the format
        negotiation, on unless ``bfc=off``, the catalog's ``Bfc`` or ``IS_BFC`` says otherwise."""
        client = client_hints(ctx.headers)
        job.client_dpr = client.dpr
        job.slow_network = client.slow
        network = command_flag(job.request, "network")
        if client.slow and network and "dpr" in job.request:
            job.request["dpr"] = "off"
        job.hint_vary = (VARY_DPR if _reads_client_dpr(job.request) else ()) + (VARY_NETWORK if network else ())
        if not _bfc(ctx, cmds, self.settings.bfc):
            return
        # A fmt= typed into the URL is kept unless the URL also asks for bfc=on; a preset's, a
        # record's or the catalog's format converts (storefront URLs stay unchanged).
        explicit = ctx.explicit_fmt and (ctx.commands is None or ctx.commands.value("bfc") is None)

        def smart(requested, quality, keep, encode):
            choice = negotiate(
                requested, explicit=explicit, bfc=True, accept=client.accept, quality=quality, keep_requested=keep
            )
            return encode_choice(choice, encode)

        job.negotiate = smart

    def _read_layer0(
        self, ctx: Context, job: pipeline.RenderJob, layer0: _Layer0, replacement: Source | None
    ) -> tuple[Blob | None, bool, list[float]]:
        """Layer 0's pixels into ``job.source``: its blob, whether it was replaced, and the TTL of
        a nested request's image."""
        blob, replaced, ttls = None, False, []
        if layer0.nested:
            job.source, ttl, replaced = self._nested(ctx, layer0.nested, layer0.cmds.variables, replacement)
            ttls.append(ttl)
        elif layer0.source is not None and layer0.source.path:
            blob, replaced = self._fetch_layer(ctx.cats, layer0.source, replacement)
        elif layer0.source is None and replacement is not None and ctx.path is not None and ctx.path.missing:
            # The URL object itself is missing (locale translation found no record): swap it.
            blob, replaced = fetch_source(self.storage, self.settings, ctx.cats, replacement, layer=True), True
        if blob is not None:
            job.source = blob.data
        return blob, replaced, ttls

    def _layer0(
        self, ctx: Context, layer0: _Layer0, source: bytes | None, replacement: Source | None, replaced: bool
    ) -> compose.Layer:
        """Layer 0 as a compositor layer: its commands, effects, mask and resolution (a default
        image standing in for it keeps none of its record's MaskPath)."""
        cmds = layer0.cmds
        layer = compose.Layer(_layer0_commands(cmds), source, effects=cmds.decoded_effects("0"))
        self._attach_mask(ctx, layer, None if replaced else layer0.source, cmds.variables, replacement)
        layer.cmds.pop("mask", None)
        if layer0.source is not None:
            layer.resolution = _resolution(ctx.cats, layer0.source)
        return layer

    def _attach_mask(
        self,
        ctx: Context,
        layer: compose.Layer,
        source: Source | None,
        variables: dict[str, str],
        replacement: Source | None,
        value: str | None = None,
    ) -> None:
        """The layer's mask (rendering.md §4.9): ``mask=`` (a record's MaskPath, else its Path; a
        file; a nested request), else the MaskPath of the layer's own record."""
        value = value if value is not None else layer.cmds.get("mask")
        if value:
            if is_nested(value):
                layer.mask, _, _ = self._nested(ctx, value, variables, replacement)
                return
            mask, _ = self._layer_source(ctx, value)
            maskpath = mask.record.get("maskpath").strip() if mask.record is not None else ""
            if maskpath:
                mask = replace(mask, path=maskpath)
            if mask.path:
                layer.mask = self._fetch_mask(ctx, mask)
            return
        maskpath = source.record.get("maskpath").strip() if source is not None and source.record is not None else ""
        if maskpath:
            layer.mask = self._fetch_mask(ctx, replace(source, path=maskpath))
            layer.exact_mask = True

    def _fetch_mask(self, ctx: Context, mask: Source) -> bytes:
        blob = fetch_source(self.storage, self.settings, ctx.cats, mask, layer=True)
        _involve(ctx, mask.record, blob)
        return blob.data

    # ------------------------------------------------------------------ further layers
    def _layer(
        self, ctx: Context, cmds: Commands, own: dict[str, str], replacement: Source | None
    ) -> tuple[compose.Layer, float | None, bool]:
        """A layer above layer 0: its ``src=`` resolved and fetched (a record brings its Modifier as
        the layer's prefix and its Anchor, §3.7), its source's TTL (None without a source), and
        whether DefaultImageMode 1 replaced its source."""
        cats, main = ctx.cats, ctx.main
        own = dict(own)
        src_value = own.pop("src", None)
        mask_value = own.pop("mask", None)
        if not src_value:
            layer = compose.Layer(own)
            self._attach_mask(ctx, layer, None, cmds.variables, replacement, mask_value)
            return layer, None, False
        if is_nested(src_value):
            data, ttl, replaced = self._nested(ctx, src_value, cmds.variables, replacement)
            layer = compose.Layer(own, data)
            self._attach_mask(ctx, layer, None, cmds.variables, replacement, mask_value)
            return layer, ttl, replaced
        source, modifier = self._layer_source(ctx, src_value)
        record = source.record
        effects: dict[int, dict[str, str]] = {}
        if record is not None:
            own = _with_modifier(own, modifier, cmds.variables)
            effects = _modifier_effects(modifier, cmds.variables)
            if record.get("anchor").strip() and "anchor" not in own and "anchorn" not in own:
                own["anchor"] = record.get("anchor").strip()
        ttl = source_ttl(cats, source, record, main)
        if not source.path:
            _involve(ctx, record, None)
            layer = compose.Layer(own, effects=effects, resolution=_resolution(cats, source))
            self._attach_mask(ctx, layer, source, cmds.variables, replacement, mask_value)
            return layer, ttl, False
        blob, replaced = self._fetch_layer(cats, source, replacement)
        _involve(ctx, replacement.record if replaced else record, blob)
        layer = compose.Layer(own, blob.data, effects=effects, resolution=_resolution(cats, source))
        owner = (replacement if replaced else source).catalog
        layer.assumed_rgb = assumed_rgb(self.storage, self.settings, cats, owner)
        self._attach_mask(ctx, layer, None if replaced else source, cmds.variables, replacement, mask_value)
        return layer, ttl, replaced

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
        layer.assumed_rgb = assumed_rgb(self.storage, self.settings, cats, source.catalog) if blob else None
        _involve(ctx, source.record, blob)
        return layer, source_ttl(cats, source, source.record, main)

    def _layer_source(self, ctx: Context, src_value: str) -> tuple[Source, list[Token]]:
        """The object of a ``src=`` (not a nested request) and the Modifier its record brings as the
        layer's prefix (§3.7). A template, or a record whose Modifier names a source of its own or
        layers, is no legal target (catalogs.md §6.3): the way to use one is ``src=is{…}``."""
        source = resolve_object(ctx.cats, src_value, ctx.main, ctx.locale)
        if source.record is None:
            check_direct_access(ctx.cats, ctx.main, source)
            return source, []
        if source.record.is_template:
            raise ISError("bad_request", f"src={src_value}: a template record is not a source; nest it as src=is{{…}}")
        modifier = record_tokens(ctx.cats, source.record, "modifier")
        if any(t.kind == "command" and t.name in ("src", "mask", "layer") for t in modifier):
            raise ISError("bad_request", f"src={src_value}: its record's Modifier names another source")
        return source, modifier

    def _fetch_layer(self, cats: CatalogSet, source: Source, replacement: Source | None) -> tuple[Blob, bool]:
        """A layer's source file; with DefaultImageMode 1 (``replacement``) a missing one is swapped."""
        try:
            return fetch_source(self.storage, self.settings, cats, source, layer=True), False
        except ISError as err:
            if replacement is None or not err.missing_source:
                raise
            return fetch_source(self.storage, self.settings, cats, replacement, layer=True), True

    # ------------------------------------------------------------------ nested requests
    def _nested(
        self, ctx: Context, value: str, variables: dict[str, str], replacement: Source | None
    ) -> tuple[bytes, float, bool]:
        """Render ``src=is{object?query}`` (protocol.md §3.8) as a lossless RGBA image: parsed like a
        top-level request (rule sets, macros, template=, its records' Modifier/PostModifier), the
        outer variables forwarded (nested definitions win), the outer locale unless it names one.
        Returns the encoded image, its TTL and whether DefaultImageMode 1 replaced a source."""
        sub = self._nested_context(ctx, value, variables)
        p = self.prepare(sub, request_source(sub), sub.url, req_type="img", replacement=replacement, nested=True)
        planned = pipeline.plan(p.job, p.options)
        if planned.width * planned.height > self.settings.max_render_pixels:
            # Without MaxPix, this is what bounds the intermediate image.
            raise ISError(
                "size_limit",
                f"src={value[:64]}: nested reply of {planned.width}x{planned.height} "
                f"pixels, more than IS_MAX_RENDER_PIXELS {self.settings.max_render_pixels}",
            )
        rendered = pipeline.render(p.job, p.options)
        ttl = min_ttl(source_ttl(sub.cats, p.source, p.record, sub.main), *p.layer_ttls)
        return rendered.body, ttl, p.replaced

    def _nested_context(self, ctx: Context, value: str, variables: dict[str, str]) -> Context:
        """A nested request's own context, its bounds checked: nesting depth, count, deadline."""
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
            modified=ctx.modified,
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
        return sub


def _involve(ctx: Context, record: Record | None, blob: Blob | None) -> None:
    """Note a record or file the reply is made from, for its Last-Modified."""
    stamp = modified_at(ctx.cats, record, blob)
    if stamp is not None:
        ctx.modified.append(stamp)


def _resolution(cats: CatalogSet, source: Source) -> float:
    """``catalog::Resolution``, else its catalog's ``Resolution`` (what ``res=`` divides by)."""
    return float(record_or_attr(cats, source, "Resolution", parse_real_attr) or 72)


def _apply_effect_mask(ctx: Context, cmds: Commands) -> bool:
    """``effectMask=`` of the request, else the main catalog's ApplyEffectMask (r-effectmask.md)."""
    value = cmds.value("effectmask")
    if value is not None:
        if value.strip() not in ("0", "1"):
            raise ISError("bad_request", f"effectMask={value}: expected 0 or 1")
        return value.strip() == "1"
    flag = parse_flag_attr(ctx.cats.raw_attr(ctx.main, "ApplyEffectMask"))
    return True if flag is None else flag


def _reads_client_dpr(request: dict[str, str]) -> bool:
    """``dpr=on`` without a ratio: the reply takes the client's (r-dpr.md)."""
    parts = request.get("dpr", "").split(",")
    try:
        return len(parts) == 1 and parse_flag(parts[0], cmd="dpr")  # as geometry parses it
    except ISError:  # a bad value is answered by the geometry, with its own message
        return False


def _bfc(ctx: Context, cmds: Commands, default: bool) -> bool:
    """``bfc=`` of the request, else the catalog's ``Bfc`` when a catalog defines it, else ``default``."""
    value = cmds.value("bfc")
    if value is not None:
        return parse_flag(value, cmd="bfc")
    if ctx.cats.defines(ctx.main, "Bfc"):
        return bool(ctx.cats.attr(ctx.main, "Bfc"))
    return default


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


def _layer0_commands(cmds: Commands) -> dict[str, str]:
    """Layer 0's commands in a composite (``src=`` already resolved by the caller)."""
    own = compose.layer0_commands(cmds.decoded_layer("0"), cmds.decoded_layer("comp"))
    own.pop("src", None)
    return own


def _with_modifier(own: dict[str, str], modifier: list[Token], variables: dict[str, str]) -> dict[str, str]:
    """A further layer's commands with its ``src=`` record's Modifier in front (Modifier < URL)."""
    prefix = Commands(variables=dict(variables))
    prefix.add(modifier)
    return {**prefix.decoded_layer("comp"), **own}


def _modifier_effects(modifier: list[Token], variables: dict[str, str]) -> dict[int, dict[str, str]]:
    """The effect layers a ``src=`` record's Modifier attaches to its layer."""
    prefix = Commands(variables=dict(variables))
    prefix.add(modifier)
    return prefix.decoded_effects("comp")


def _merged_effects(first: dict[int, dict[str, str]], then: dict[int, dict[str, str]]) -> dict[int, dict[str, str]]:
    """Effect layers of two parts, command by command, ``then`` winning (Modifier < URL)."""
    out = {n: dict(c) for n, c in first.items()}
    for n, cmds in then.items():
        out.setdefault(n, {}).update(cmds)
    return dict(sorted(out.items()))


def _further_layers(cmds: Commands, parts: list[list[Token]]) -> list[tuple[dict[str, str], dict[int, dict[str, str]]]]:
    return [(own, effects) for _, own, effects in _numbered_layers(cmds, parts)]


def _numbered_layers(
    cmds: Commands, parts: list[list[Token]]
) -> list[tuple[int, dict[str, str], dict[int, dict[str, str]]]]:
    """Number, decoded commands and effect layers of the layers above layer 0, by ascending number
    (z-order, §4.1). Commands addressed by name (``layer=name`` after ``layer=n,name``) join that
    layer's own."""
    names: dict[str, str] = {}
    for part in parts:
        for tok in part:
            if tok.kind == "command" and tok.name == "layer":
                number, _, name = (x.strip() for x in decode_value(tok.value).partition(","))
                name = name.lower()
                if not name:
                    continue
                # rendering.md §4.1: a name binds one layer (binding it again to the same one is fine)
                if name == "comp" or names.setdefault(name, number) != number:
                    raise ISError("bad_request", f"layer={number},{name}: the name is taken")
    numbered: dict[int, list[str]] = {}
    for key in dict.fromkeys([*cmds.layers, *cmds.effects]):
        if key == "comp" or not (cmds.layers.get(key) or cmds.effects.get(key)):
            continue
        number = key if key.isdigit() else names.get(key)
        if number is None or not number.isdigit():
            raise ISError("bad_request", f"layer={key}: no layer has this name")
        if int(number) == 0 and not key.isdigit():
            raise ISError("bad_request", f"layer={key}: names for layer 0 are not supported")
        numbered.setdefault(int(number), []).append(key)
    ordered = [(number, sorted(keys, key=lambda k: not k.isdigit())) for number, keys in sorted(numbered.items())]
    return [(number, cmds.decoded_layer(*keys), cmds.decoded_effects(*keys)) for number, keys in ordered if number > 0]
