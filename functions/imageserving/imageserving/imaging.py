"""The image half of a request: assemble the job (:mod:`.assemble`), render it (:mod:`.render`,
Pillow) and give the reply its TTL, Last-Modified and client-hint headers; ``req=props`` plans the
same reply from headers alone.

This module is how service.py reaches the renderer, and the one seam where that is imported
late: :attr:`.service.ImageServer.imaging` loads it on the first request that renders or
describes an image (~50 ms of imports, Pillow included, that the cold import of handler.py no
longer pays; formatted errors and /is/content files never load it, the property request types in
requests/ load the renderer when first asked). ``handler.prime`` loads it before a SnapStart
snapshot and the local server's startup (``app._lifespan``) before serving.
"""

from __future__ import annotations

from dataclasses import dataclass

from .assemble import Assembler, Prepared, default_ttl, image_version, source_ttl
from .catalog.resolve import Source
from .context import Context, ImageResult
from .negotiate import VARY_ACCEPT
from .protocol.query import Token
from .protocol.values import parse_flag
from .render import pipeline
from .responses.headers import min_ttl
from .sources import client_cache_off, newest, request_source


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


class Imaging:
    def __init__(self, settings, storage):
        self.settings = settings
        self.assembler = Assembler(settings, storage)

    def render(
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

    def plan(self, ctx: Context) -> tuple[Prepared, pipeline.Planned]:
        """The reply geometry ``req=img`` would have, from the source's header (no decoding)."""
        p = self.assembler.prepare(ctx, request_source(ctx), ctx.url, req_type="img")
        return p, pipeline.plan(p.job, p.options)

    def describe(self, ctx: Context) -> ImageDescription:
        """``req=props``: the reply as ``req=img`` would make it, planned from headers, not encoded."""
        p, planned = self.plan(ctx)
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
