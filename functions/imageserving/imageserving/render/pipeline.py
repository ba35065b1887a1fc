"""The image pipeline (rendering.md §3): plan from headers → decode (shrink-on-load) →
operations → one resize into the view → final sharpening → encode.

Input is plain values (source bytes, decoded command values, catalog defaults); output is the
encoded reply. Nothing here knows about HTTP, S3 or catalogs (ARCHITECTURE.md, the one-way flow).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from fractions import Fraction

from PIL import Image, ImageFilter

from .. import observe
from ..catalog.formats import parse_real_attr
from ..errors import ISError
from ..protocol.values import Color, command_flag, parse_color, parse_int, parse_ints, round_half_up
from . import budget, codec, compose, formats, geometry, icc, ops, resample
from .geometry import Box, LayerPlan, ThumbRules, ViewPlan
from .text import MAX_TEXT_PIXELS, parse_text, render_text

Resampling = Image.Resampling
# resMode names and the catalog's ResMode numbers (rendering.md §15).
RES_MODES = {
    "bilin": "bilin",
    "bicub": "bicub",
    "sharp2": "sharp2",
    "sharp": "sharp2",
    "bisharp": "bisharp",
    "trilin": "trilin",
    "2": "bilin",
    "3": "bicub",
    "4": "sharp2",
    "1": "sharp2",
}
_FILTERS = {
    "bilin": Resampling.BILINEAR,
    "bicub": Resampling.BICUBIC,
    "sharp2": Resampling.LANCZOS,
    "bisharp": Resampling.BICUBIC,
    "trilin": Resampling.BILINEAR,
}
_BISHARP = ImageFilter.UnsharpMask(radius=0.5, percent=40, threshold=0)
_TRILIN_GAP = 1.5  # part of trilin's definition (§15), not a shortcut

# Shrink-on-load (§16.2) keeps at least this multiple of the reply's resolution: the smallest
# that stays inside the §16 budget (PSNR ≥ 40 dB, 99.9th percentile |Δ| ≤ 8 against full decode +
# exact-box resampling). benchmarks/budget.py measures it on four real photographs (Debian's 12 MP
# "Elephants", scikit-image's astronaut portrait, coffee cup and motorcycle) at reductions
# 2.4-12x: 2x is inside for LANCZOS and BICUBIC (worst PSNR 43.3 dB, 99.9th percentile 8) but
# not for BILINEAR (astronaut at 8x: 9). Generated hard edges on white (tests/test_render.py:
# flat shapes, a checkerboard) at 2x: 99.9th percentile 9 for every filter; at 2.5x 6 (LANCZOS,
# BICUBIC) and 8 (BILINEAR). So 2.5x, for every resMode. One-pixel line art and small text as a
# JPEG source stay over the percentile with LANCZOS up to 4x headroom (2x: 15, 2.5x: 9, 4x: 5);
# that would cost a full decode for every reduction under 8x, for a kind of source PNG serves.
DRAFT_HEADROOM = 2.5
# ... except where the DCT scale itself is inside the budget at 2x. Per scale, 2x headroom,
# worst 99.9th percentile (photographs / generated shapes): LANCZOS at 1/2 6 / 9, at 1/4 8 / 7,
# at 1/8 12 / 7 (a 32-pixel reply: one pixel is the percentile); BICUBIC at 1/4 8 / 7 but line
# art 13 (tested for BICUBIC); BILINEAR at 1/4 9 on the astronaut. The 2x2 inverse DCT of the 1/4
# scale averages a block much like a box filter, which LANCZOS' remaining 2x reduction hides; the
# 4x4 one of the 1/2 scale keeps the ringing of a hard edge. So LANCZOS (the default resMode)
# decodes a JPEG at 1/4 from an 8x reduction on, instead of 10x: 12 MP -> 500 px decodes
# 1000x750 instead of 2000x1500 (what libvips does), PSNR 43.3 dB on the photograph.
QUARTER_SCALE_HEADROOM = 2.0
# Box pre-reduction (reducing_gap, §16.3) leaves at least this much reduction to the real filter.
# Same photographs, full decode, LANCZOS: gap 3.0 gave max |Δ| 10, 4.0 9, 5.0 6 (BILINEAR 8/8/6).
REDUCING_GAP = 5.0


@dataclass(frozen=True)
class RenderDefaults:
    """Catalog attributes that feed rendering (rendering.md §1), already inherited and parsed."""

    default_pix: tuple[int, int] = (300, 300)
    default_thumb_pix: tuple[int, int] = (100, 100)
    max_pix: tuple[int, int] = (2000, 2000)
    bkg_color: tuple[int, int, int] = (255, 255, 255)
    thumb_bkg_color: tuple[int, int, int] = (255, 255, 255)
    jpeg_quality: tuple[int, bool] = (80, False)
    res_mode: str = "sharp2"
    print_res: float | None = None  # catalog::PrintResolution of the record, if any
    default_print_res: float = 72.0  # attribute::PrintResolution
    thumb: ThumbRules = field(default_factory=ThumbRules)
    usm_radius: str = "doc"  # D5: op_usm radius in full-resolution ("doc") or reply ("output") px


@dataclass
class RenderJob:
    req_type: str  # img | tmb | mask
    source: bytes | None  # encoded layer-0 image; None for a solid/text layer
    layer: dict[str, str]  # decoded commands of layer 0 / comp
    request: dict[str, str]  # decoded request commands (wid, fmt, qlt …)
    defaults: RenderDefaults = field(default_factory=RenderDefaults)
    max_source_pixels: int = 100_000_000
    decode_budget: int | None = None  # bytes one decode may peak at (render/budget.py); None: unbounded
    max_render_pixels: int = 25_000_000  # sent pixels, whatever MaxPix (or a rule) allows
    max_response_bytes: int = 4_400_000
    deadline: float = float("inf")
    client_dpr: float | None = None
    # Smart Imaging (negotiate.py, set by the caller who knows the client): called with the
    # requested output format, its quality, whether the request needs that very format and an
    # ``encode(fmt, quality) -> bytes``; returns what to serve (``body``, ``format``, ``vary``, ``saved``).
    negotiate: (
        Callable[[formats.OutputFormat, int, bool, Callable[[formats.OutputFormat, int], bytes]], object] | None
    ) = None
    slow_network: bool = False  # the client's network is slow: ``network=on`` lowers the quality
    hint_vary: tuple[str, ...] = ()  # the client-hint headers the caller read for this job, for ``Vary``
    # Every layer, layer 0 first, when the request has more than one; ``layer`` then holds the
    # commands addressed to ``comp`` (the composite's flip, opac and op_*).
    layers: list[compose.Layer] = field(default_factory=list)
    # Output profile, intent and source assumptions, profiles already read (icc.py, §10).
    colour: icc.ColourPlan = field(default_factory=icc.ColourPlan)
    # Effect layers attached to ``comp`` (rendering.md §13: the composite is their parent) and
    # ApplyEffectMask / ``effectMask=``.
    comp_effects: dict[int, dict[str, str]] = field(default_factory=dict)
    apply_effect_mask: bool = True


@dataclass(frozen=True)
class Options:
    """Every command of a job parsed and validated; needs no source (protocol.md §2 step 13)."""

    output: formats.OutputFormat
    quality: int
    chroma_off: bool
    view: geometry.ViewRequest
    layer: geometry.LayerRequest
    bgc: tuple[int, int, int]
    res_mode: str
    icc_embed: bool
    print_res: float | None
    operations: ops.OpPlan


@dataclass
class Planned:
    """Everything known before decoding: what ``req=props`` reports and what render() executes."""

    width: int
    height: int
    output: formats.OutputFormat
    quality: int
    chroma_off: bool
    bgc: tuple[int, int, int]
    print_res: float
    icc_embed: bool
    mask: bool  # the reply carries alpha
    source: codec.SourceImage | None
    layer: LayerPlan
    view: ViewPlan
    res_mode: str
    operations: ops.OpPlan


@dataclass
class Rendered:
    body: bytes
    media_type: str
    width: int
    height: int
    vary_accept: bool = False  # the browser's Accept decided the format
    smart_imaging: str | None = None  # what format negotiation did, for the reply's header


# network=on over a slow connection (r-network.md): this much of the quality is kept.
SLOW_NETWORK_QUALITY = 0.75


def parse_options(job: RenderJob) -> Options:
    """Parse the commands of ``job``: a bad value is a ``bad_request`` before any source is read."""
    req, defaults = job.request, job.defaults
    output = formats.parse_fmt(req.get("fmt") or "jpeg", default_pixel_type="gray" if job.req_type == "mask" else "rgb")
    if job.colour.output is not None and job.req_type != "mask":
        # The output profile's type is the reply's pixel type (§10); a misfit is a bad request.
        output = output.with_pixel_type(icc.pixel_type(job.colour.output) or output.pixel_type)
    quality, chroma_off = formats.parse_qlt(req["qlt"]) if req.get("qlt") else defaults.jpeg_quality
    view = geometry.parse_view(req, job.req_type, client_dpr=job.client_dpr)
    bgc = (
        view.bgc.rgb()
        if view.bgc is not None
        else (defaults.thumb_bkg_color if job.req_type == "tmb" else defaults.bkg_color)
    )
    for name in ("quantize", "pscan", "jpegsize"):  # validated now, used by encode
        if req.get(name):
            _ENCODE_OPTIONS[name](req[name], output)
    return Options(
        output=output,
        quality=quality,
        chroma_off=chroma_off,
        view=view,
        layer=geometry.parse_layer(job.layer, comp=True),
        bgc=tuple(bgc),
        res_mode=_res_mode(req.get("resmode"), defaults.res_mode),
        icc_embed=command_flag(req, "iccembed"),
        print_res=formats.parse_print_res(req["printres"]) if req.get("printres") else None,
        operations=ops.parse_ops(job.layer),
    )


def plan(job: RenderJob, options: Options | None = None) -> Planned:
    """The reply geometry from the source header alone, limits enforced (rendering.md §3 stage 1)."""
    o = options or parse_options(job)
    defaults = job.defaults
    source = None
    layer_request = o.layer
    if job.layers:
        # Layer 0's own transforms are drawn by compose; only the composite flip is left here.
        width, height = compose.canvas_size(job.layers, max_pixels=job.max_source_pixels)
        layer_request = geometry.LayerRequest(comp_flip=o.layer.comp_flip)
    elif job.source is not None:
        source = codec.open_source(job.source, max_pixels=job.max_source_pixels, budget=job.decode_budget)
        width, height = source.size
    else:
        width, height = _solid_size(job.layer)
    layer = geometry.plan_layer(width, height, layer_request)
    if layer.width * layer.height > job.max_source_pixels and not _pyramid_serves(source, layer):
        # Margins, overhangs and solid layers are not bounded by the source's own size check.
        raise ISError(
            "size_limit",
            f"composite of {layer.width}x{layer.height} pixels, more than IS_MAX_SOURCE_PIXELS {job.max_source_pixels}",
        )
    view_plan = geometry.plan_view(
        layer.width,
        layer.height,
        o.view,
        default_pix=defaults.default_pix,
        max_pix=defaults.max_pix,
        thumb=defaults.thumb if job.req_type == "tmb" else None,
    )
    if view_plan.width * view_plan.height > job.max_render_pixels:
        raise ISError(
            "size_limit",
            f"reply of {view_plan.width}x{view_plan.height} pixels, more than "
            f"IS_MAX_RENDER_PIXELS {job.max_render_pixels}",
        )
    print_res = (
        o.print_res
        or defaults.print_res
        or (_print_res(source.dpi[0]) if source and source.dpi else None)
        or defaults.default_print_res
    )
    covered = view_plan.content_box == (0, 0, view_plan.width, view_plan.height) and not layer.transparent
    has_alpha = source.has_alpha if source else True
    mask = o.output.alpha and (has_alpha or not covered)
    return Planned(
        view_plan.width,
        view_plan.height,
        o.output,
        o.quality,
        o.chroma_off,
        o.bgc,
        float(print_res),
        o.icc_embed,
        mask,
        source,
        layer,
        view_plan,
        o.res_mode,
        o.operations,
    )


def _pyramid_serves(source: codec.SourceImage | None, layer: LayerPlan) -> bool:
    """A pyramid source over the pixel limit whose layer adds nothing to it: decoding checks the
    limit against the level it reads (rendering.md §16.8)."""
    return source is not None and bool(source.levels) and (layer.width, layer.height) == source.size


def render(job: RenderJob, options: Options | None = None) -> Rendered:
    with observe.span("render"):  # the decode inside is timed on its own
        planned = plan(job, options)
        _check_deadline(job)
        route = colour_route(job, planned)
        if _keeps_animation(job, planned):
            return _render_animation(job, planned, route)
        img, icc = _draw(job, _drawn(job, planned, route))
        _check_deadline(job)
        if job.req_type == "mask":
            img = _alpha_of(img)
        else:
            img, icc = _colour_out(img, icc, route, job.colour)
    if job.slow_network and command_flag(job.request, "network"):
        planned = replace(planned, quality=max(1, round(planned.quality * SLOW_NETWORK_QUALITY)))
    with observe.span("encode"):
        body, output, done = _encode_negotiated(job, planned, img, icc)
    check_reply_size(len(body), job.max_response_bytes)
    rendered = Rendered(body, output.mime, planned.width, planned.height)
    if done is not None and done.vary:
        rendered.vary_accept = True
        if output is not planned.output:
            saved = done.saved
            rendered.smart_imaging = output.name if saved is None else f"{output.name}; saved={saved}"
    return rendered


# An animated GIF/WebP source keeps its animation for fmt=gif/webp up to these bounds (frames, and
# frames × pixels against the same limits as one image); beyond them, its first frame is served.
MAX_FRAMES = 300
_ANIMATED_FORMATS = ("GIF", "WEBP")


def _keeps_animation(job: RenderJob, planned: Planned) -> bool:
    """An animated source rendered as itself: no layers, no operations, no palette or size
    target, a GIF or WebP reply, within the bounds."""
    source = planned.source
    if source is None or not source.animated or job.layers or job.req_type != "img":
        return False
    ops_ = planned.operations
    if planned.output.pillow_format not in _ANIMATED_FORMATS or ops_.composite or ops_.scaled or ops_.final:
        return False
    if job.request.get("quantize") or job.request.get("jpegsize"):
        return False
    count = codec.frame_count(source)
    sw, sh = source.size
    return (
        count <= MAX_FRAMES
        and count * sw * sh <= job.max_source_pixels
        and count * planned.width * planned.height <= job.max_render_pixels
    )


def _render_animation(job: RenderJob, planned: Planned, route: icc.Route) -> Rendered:
    """Every frame drawn as the first would be (same plan), encoded as one animation. Smart
    Imaging does not convert it: the formats it picks would drop the frames or their timing."""
    images, durations, icc_ = [], [], None
    for frame in codec.frames(planned.source):
        _check_deadline(job)
        drawn = replace(planned, source=frame.source)
        img, own = _draw(job, _drawn(job, drawn, route))
        img, icc_ = _colour_out(img, own, route, job.colour)
        images.append(img)
        durations.append(frame.duration)
    with observe.span("encode"):
        body = codec.encode_animation(
            images,
            durations,
            codec.loop_count(planned.source),
            planned.output,
            quality=planned.quality,
            bgc=planned.bgc,
            icc_profile=icc_,
            icc_embed=planned.icc_embed,
        )
    check_reply_size(len(body), job.max_response_bytes)
    return Rendered(body, planned.output.mime, planned.width, planned.height)


def colour_route(job: RenderJob, planned: Planned) -> icc.Route:
    """From which space to which the reply's pixels are converted, known from headers (§10)."""
    source = None if job.layers else planned.source
    if source is None:  # a composite is sRGB: each layer's untagged space applied at its decode
        return icc.route(None, None, replace(job.colour, assumed_rgb=None))
    if source.mode == "CMYK":  # decoding brings CMYK to sRGB (through its profile when tagged)
        return icc.route(icc.srgb() if source.icc_profile else None, "RGB", job.colour)
    return icc.route(source.icc_profile, source.mode, job.colour)


def _drawn(job: RenderJob, planned: Planned, route: icc.Route) -> Planned:
    """``planned`` with ``bgc`` (an output-space colour) in the space the pixels are drawn in,
    when a conversion is pending: the background then comes out of the conversion as asked."""
    if route.target is None or route.pixels is None or icc.pixel_type(route.pixels) != "rgb":
        return planned
    c = job.colour
    return replace(planned, bgc=icc.convert_color(planned.bgc, route.target, route.pixels, c.intent, c.bpc))


def _colour_out(img: Image.Image, own: bytes | None, route: icc.Route, c: icc.ColourPlan):
    """Stage 10: the reply's pixels in the output space and the profile that describes them."""
    if route.target is None:
        return img, route.reply if c.output is not None else own
    with observe.span("colour"):
        out = icc.convert(img, route.pixels, route.target, c.intent, c.bpc)
    return (img, own) if out is None else (out, route.reply)


def _encode_negotiated(job: RenderJob, planned: Planned, img: Image.Image, icc: bytes | None):
    """The body in the requested format, or through ``job.negotiate`` in the one Smart Imaging
    chose (an ``negotiate.Encoded``, or None when there is no negotiation). The pixels are shared;
    only the encode repeats."""
    if job.negotiate is None:
        return _encode(job, planned, img, icc), planned.output, None
    done = job.negotiate(
        planned.output,
        planned.quality,
        _needs_requested_format(job, planned),
        lambda fmt, quality: _encode(job, replace(planned, output=fmt, quality=quality), img, icc),
    )
    return done.body, done.format, done


def _needs_requested_format(job: RenderJob, planned: Planned) -> bool:
    """Commands only the requested format carries: a size target, a palette, embedded metadata."""
    req = job.request
    source = planned.source
    return bool(
        req.get("jpegsize")
        or req.get("quantize")
        or (planned.icc_embed and colour_route(job, planned).reply is not None)
        or (command_flag(req, "xmpembed") and source is not None and source.xmp)
    )


def check_reply_size(size: int, limit: int) -> None:
    if size > limit:
        raise ISError("size_limit", f"encoded reply is {size} bytes, over IS_MAX_RESPONSE_BYTES {limit}")


def _encode(job: RenderJob, planned: Planned, img: Image.Image, icc: bytes | None) -> bytes:
    return codec.encode(
        img,
        planned.output,
        quality=planned.quality,
        chroma_off=planned.chroma_off,
        bgc=planned.bgc,
        quantize=_quantize(job.request, planned.output),
        print_res=planned.print_res,
        icc_profile=icc,
        icc_embed=planned.icc_embed,
        xmp=planned.source.xmp if planned.source and command_flag(job.request, "xmpembed") else None,
        jpeg_size_kb=formats.parse_jpeg_size(job.request["jpegsize"]) if job.request.get("jpegsize") else 0,
    )


# ---------------------------------------------------------------------------------- drawing
def _draw(job: RenderJob, p: Planned) -> tuple[Image.Image, bytes | None]:
    """The reply's pixels with final sharpening (stage 9). Sharpening reads neighbours, so a
    ``rect=`` window is drawn with a margin of the view around it, sharpened, then cut: tiles join
    as if the whole view had been sharpened (§3 notes)."""
    final, view = p.operations.final, p.view
    window = view.view_box
    if not final or window is None:
        return _draw_view(job, p, view)
    ctx = ops.OpContext(scale=_floats(view.scale), usm_radius=job.defaults.usm_radius)
    m = ops.margin(final, ctx)
    x, y = view.rect[:2]
    inner = (x + window[0], y + window[1], x + window[2], y + window[3])  # in rect-scaled view pixels
    rvw, rvh = view.rect_view_size
    grown = (max(inner[0] - m, 0), max(inner[1] - m, 0), min(inner[2] + m, rvw), min(inner[3] + m, rvh))
    if grown == inner and window == (0, 0, view.width, view.height):
        img, icc = _draw_view(job, p, view)
        return ops.run(img, final, ctx), icc
    gw, gh = grown[2] - grown[0], grown[3] - grown[1]
    img, icc = _draw_view(job, p, replace(view, rect=(grown[0], grown[1], gw, gh), width=gw, height=gh))
    piece = ops.run(img, final, ctx).crop(_shift(inner, grown))
    mode, background = _canvas(job, p)
    canvas = Image.new(mode, (view.width, view.height), background)
    _paste(canvas, piece, window[:2])
    return canvas, icc


def _draw_view(job: RenderJob, p: Planned, view: ViewPlan) -> tuple[Image.Image, bytes | None]:
    """The composite scaled into ``view`` (stages 2-8), background where uncovered."""
    mode, background = _canvas(job, p)
    layer = p.layer
    if job.layers:
        comp = compose.build(
            job.layers,
            job.layer,
            _memory_scale(view),
            max_pixels=job.max_source_pixels,
            deadline=job.deadline,
            comp_effects=job.comp_effects,
            apply_effect_mask=job.apply_effect_mask,
            budget=job.decode_budget,
        )
        comp = ops.run(_flip(comp, layer.comp_flip), p.operations.composite, ops.OpContext())
        # After comp's flip and op_*: they are the target's, the watermark is merged onto it (§12).
        comp = compose.watermark(
            comp, job.layers, _memory_scale(view), max_pixels=job.max_source_pixels, budget=job.decode_budget
        )
        return _place(comp, view, mode, background, p), None
    if p.source is None:
        comp = ops.run(_solid_layer(job.layer, layer, _memory_scale(view)), p.operations.composite, ops.OpContext())
        return _place(comp, view, mode, background, p), None
    mapping = layer.mapping
    if mapping is None:
        # An arbitrary rotation builds the composite in memory, at the resolution the view needs.
        scale = _memory_scale(view)
        with observe.span("decode"):
            decoded = codec.decode(p.source, scale_hint=scale if scale < 1 else None, work=budget.ROTATION_BYTES)
        _check_deadline(job)
        comp = ops.run(_layer_image(decoded.image, layer, scale), p.operations.composite, ops.OpContext())
        return _place(comp, view, mode, background, p), decoded.icc_profile

    content = mapping.content_box
    region = view.project(content) if content is not None else None
    if region is None:  # only background is visible: no need to decode
        icc = p.source.icc_profile if p.source.mode != "CMYK" else None
        return Image.new(mode, (view.width, view.height), background), icc
    hint = _decode_hint(p.source, float(max(view.scale)), p.res_mode)
    stream = None if p.operations.composite else resample.JpegStream.open(p.source, hint)
    if stream is not None:
        pixels, icc = stream, p.source.icc_profile
    else:
        with observe.span("decode"):
            work = budget.FULL_SIZE_OPS_BYTES if p.operations.composite else 0.0
            decoded = codec.decode(p.source, scale_hint=hint, work=work)
        _check_deadline(job)
        pixels, icc = decoded.image, decoded.icc_profile
    sw, sh = p.source.size
    fx, fy = pixels.size[0] / sw, pixels.size[1] / sh  # decoded pixels per source pixel (draft)
    cx0, cy0, cx1, cy1 = mapping.crop_box
    kept = (
        math.floor(max(cx0, 0) * fx),
        math.floor(max(cy0, 0) * fy),
        math.ceil(min(cx1, sw) * fx),
        math.ceil(min(cy1, sh) * fy),
    )  # the composite's pixels
    if p.operations.composite:
        pixels = ops.run(
            pixels,
            p.operations.composite,
            ops.OpContext(scale=(fx, fy), composite=_cropper(pixels, kept), composite_scale=(fx, fy)),
        )

    def scaled(r: Box) -> Image.Image:
        x0, y0, x1, y1 = mapping.source_box(view.source_box(r))
        size = (r[2] - r[0], r[3] - r[1])
        if mapping.swaps_axes:
            size = (size[1], size[0])
        piece = _resize(pixels, size, (x0 * fx, y0 * fy, x1 * fx, y1 * fy), p.res_mode)
        return piece.transpose(Image.Transpose[mapping.orientation]) if mapping.orientation else piece

    ctx = ops.OpContext(scale=_floats(view.scale), composite=_cropper(pixels, kept), composite_scale=(fx, fy))
    piece = _scaled_content(view, region, content, scaled, p.operations.scaled, ctx)
    return _compose(piece, region, view, mode, background), icc


def _place(comp: Image.Image, view: ViewPlan, mode: str, background, p: Planned) -> Image.Image:
    """A composite built in memory (solid layer, arbitrary rotation) scaled into ``view``."""
    region = view.content_box
    if region is None:
        return Image.new(mode, (view.width, view.height), background)

    # The composite may have been built smaller than the layer it stands for (_memory_scale).
    fx, fy = comp.width / p.layer.width, comp.height / p.layer.height

    def scaled(r: Box) -> Image.Image:
        x0, y0, x1, y1 = view.source_box(r)
        return _resize(comp, (r[2] - r[0], r[3] - r[1]), (x0 * fx, y0 * fy, x1 * fx, y1 * fy), p.res_mode)

    ctx = ops.OpContext(scale=_floats(view.scale), composite=lambda: comp)
    piece = _scaled_content(view, region, (0, 0, *comp.size), scaled, p.operations.scaled, ctx)
    return _compose(piece, region, view, mode, background)


def _scaled_content(
    view: ViewPlan,
    region: Box,
    content: Box,
    scaled: Callable[[Box], Image.Image],
    after: tuple[ops.Op, ...],
    ctx: ops.OpContext,
) -> Image.Image:
    """The composite's pixels for the sent ``region``, with the composite operations that run
    after scaling (§16.5). Those reading neighbours (blur) are given the composite's pixels
    around ``region`` even where the view or a ``rect=`` window cuts it."""
    m = ops.margin(after, ctx)
    grown = region
    if m:
        (ox, oy), (sx, sy) = view.origin, view.scale
        x0, y0, x1, y1 = content
        whole = (
            round_half_up(ox + x0 * sx),
            round_half_up(oy + y0 * sy),
            round_half_up(ox + x1 * sx),
            round_half_up(oy + y1 * sy),
        )  # view.project, unclipped
        grown = (
            max(region[0] - m, whole[0]),
            max(region[1] - m, whole[1]),
            min(region[2] + m, whole[2]),
            min(region[3] + m, whole[3]),
        )
    piece = ops.run(scaled(grown), after, ctx)
    return piece if grown == region else piece.crop(_shift(region, grown))


def _compose(piece: Image.Image, region: Box, view: ViewPlan, mode: str, background) -> Image.Image:
    # Alpha meets the background here already for formats without alpha (§3: flatten at stage 7
    # when no colour conversion is pending), so that sharpening sees the flattened edges.
    if region == (0, 0, view.width, view.height) and (piece.mode == mode or (piece.mode, mode) == ("L", "RGB")):
        return piece  # the composite fills the reply: no canvas copy
    canvas = Image.new(mode, (view.width, view.height), background)
    _paste(canvas, piece, region[:2])
    return canvas


def _canvas(job: RenderJob, p: Planned) -> tuple[str, tuple[int, ...]]:
    if p.output.alpha or job.req_type == "mask":
        return "RGBA", (0, 0, 0, 0)
    return "RGB", p.bgc


def _paste(canvas: Image.Image, piece: Image.Image, at: tuple[int, int]) -> None:
    if piece.mode in ("RGBA", "LA") and canvas.mode == "RGB":
        rgba = piece.convert("RGBA") if piece.mode == "LA" else piece
        canvas.paste(rgba, at, rgba)
    else:
        canvas.paste(piece if piece.mode == canvas.mode else piece.convert(canvas.mode), at)


def _shift(box: Box, origin: Box) -> Box:
    return box[0] - origin[0], box[1] - origin[1], box[2] - origin[0], box[3] - origin[1]


def _floats(pair) -> tuple[float, float]:
    return float(pair[0]), float(pair[1])


def _cropper(pixels: Image.Image | resample.JpegStream, box: Box) -> Callable[[], Image.Image]:
    if isinstance(pixels, resample.JpegStream):
        return lambda: pixels.image().crop(box)
    return lambda: pixels.crop(box)


# -------------------------------------------------------------------------------- resampling
def _decode_hint(source: codec.SourceImage, scale: float, res_mode: str) -> float:
    """codec.decode's ``scale_hint`` for layer 0 at ``scale`` reply pixels per source pixel (it
    keeps twice the hint): DRAFT_HEADROOM, or QUARTER_SCALE_HEADROOM where that lands a LANCZOS
    JPEG decode on the 1/4 DCT scale (1/16 < scale ≤ 1/8)."""
    quarter = scale * QUARTER_SCALE_HEADROOM
    if source.format == "JPEG" and _FILTERS.get(res_mode) is Resampling.LANCZOS and 1 / 8 < quarter <= 1 / 4:
        return quarter / 2
    return scale * DRAFT_HEADROOM / 2


def _resize(pixels: Image.Image | resample.JpegStream, size: tuple[int, int], box, res_mode: str) -> Image.Image:
    """One resample of ``box`` (fractional, in source pixels as decoded) to ``size`` with the
    resMode's filter (§15). Alpha is resampled premultiplied so that transparent pixels do not
    bleed; Image.resize would do that too, but once per band instead of once."""
    stream = isinstance(pixels, resample.JpegStream)
    if size == pixels.size and tuple(box) == (0, 0, *pixels.size):
        return pixels.image() if stream else pixels
    gap = _TRILIN_GAP if res_mode == "trilin" else REDUCING_GAP
    if stream:
        out = pixels.resize(size, box, _FILTERS[res_mode], gap)
        mode = out.mode
    else:
        mode = pixels.mode
        premultiplied = mode in ("RGBA", "LA")
        work = pixels.convert(mode[:-1] + "a") if premultiplied else pixels
        out = resample.resample(work, size, box, _FILTERS[res_mode], gap)
    if res_mode == "bisharp" and (box[2] - box[0] > size[0] or box[3] - box[1] > size[1]):
        out = out.filter(_BISHARP)
    return out.convert(mode) if out.mode != mode else out


# ------------------------------------------------------------------------- layer 0 in memory
# Largest composite buffer drawn in memory (64 MB as RGBA); bigger ones are drawn smaller.
MEMORY_PIXELS = 16_000_000


def _memory_scale(view: ViewPlan) -> float:
    """Scale at which a composite built in memory (solid layer, arbitrary rotation, layers) is
    drawn: DRAFT_HEADROOM times what the view needs, never more than full size, and never more
    than MEMORY_PIXELS in all. A 4000-pixel source rotated into a 500-pixel reply is rotated at
    1250 pixels, not 4000; a 1×10⁸ strip is not allocated at full size because the view is 1 wide."""
    scale = min(1.0, float(max(view.scale)) * DRAFT_HEADROOM)
    size = view.comp_size
    if compose.scaled_pixels(size, scale) > MEMORY_PIXELS:
        scale = math.sqrt(MEMORY_PIXELS / (size[0] * size[1]))
        if compose.scaled_pixels(size, scale) > MEMORY_PIXELS:  # a strip: one side stays 1 pixel
            scale = MEMORY_PIXELS / max(size)
    return scale


def _layer_image(img: Image.Image, layer: LayerPlan, scale: float = 1.0) -> Image.Image:
    """Layer 0 as pixels (crop → flip → rotate → extend → comp flip) at ``scale`` of the layer's
    size; ``img`` may be a draft-reduced decode (its own scale is read from its size)."""
    sw, sh = layer.source_size
    fx, fy = img.width / sw, img.height / sh
    x0, y0, x1, y1 = layer.crop_box
    work = img.convert("RGBA") if img.mode != "RGBA" else img
    # Pillow fills crop overhang with zeros (transparent).
    work = work.crop((round(x0 * fx), round(y0 * fy), round(x1 * fx), round(y1 * fy)))
    size = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
    if work.size != size:
        work = work.resize(size, Resampling.LANCZOS, reducing_gap=REDUCING_GAP)
    work = _flip(work, layer.flip)
    if layer.rotate:
        work = work.rotate(layer.pillow_rotate_angle, Resampling.BICUBIC, expand=True)
    left, top, _, _ = layer.extend
    canvas_size = (max(1, round(layer.width * scale)), max(1, round(layer.height * scale)))
    if canvas_size != work.size or left or top:
        canvas = Image.new("RGBA", canvas_size, (0, 0, 0, 0))
        canvas.paste(work, (round(left * scale), round(top * scale)))
        work = canvas
    return _flip(work, layer.comp_flip)


def _flip(img: Image.Image, flip: str | None) -> Image.Image:
    if flip in ("lr", "lrud"):
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if flip in ("ud", "lrud"):
        img = img.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    return img


# ------------------------------------------------------------------------- solid/text layers
def _solid_size(cmds: dict[str, str]) -> tuple[int, int]:
    if "size" not in cmds:
        raise ISError("not_found", "the request names no image")
    w, h = parse_ints(cmds["size"], 2, cmd="size", lo=0)
    if w <= 0 or h <= 0:
        if "text" not in cmds:
            raise ISError("bad_request", f"size={cmds['size']}: a solid layer needs a width and a height")
        return render_text(parse_text(cmds["text"]), (w, h)).size
    return w, h


def _solid_layer(cmds: dict[str, str], layer: LayerPlan, scale: float = 1.0) -> Image.Image:
    """A layer without an image: ``color=`` fill (else transparent) with optional ``text=``.
    A plain colour is drawn at ``scale`` (it looks the same at any size); text at full size."""
    w, h = layer.source_size
    fill: Color | None = parse_color(cmds["color"], cmd="color") if cmds.get("color") else None
    if cmds.get("text"):
        if w * h > MAX_TEXT_PIXELS:
            raise ISError("size_limit", f"text layer of {w}x{h} pixels")
        scale = 1.0
    img = Image.new("RGBA", (max(1, round(w * scale)), max(1, round(h * scale))), fill.rgba() if fill else (0, 0, 0, 0))
    if cmds.get("text"):
        img.alpha_composite(render_text(parse_text(cmds["text"]), (w, h)))
    if img.size == (layer.width, layer.height) and not layer.flip and not layer.rotate:
        return img
    return _layer_image(img, layer, scale)


# ---------------------------------------------------------------------------------- helpers
def _alpha_of(img: Image.Image) -> Image.Image:
    if img.mode in ("RGBA", "LA"):
        return img.getchannel("A")
    return Image.new("L", img.size, 255)


def _quantize(req: dict[str, str], output: formats.OutputFormat) -> formats.Quantize | None:
    return formats.parse_quantize(req["quantize"], fmt=output) if req.get("quantize") else None


_ENCODE_OPTIONS = {
    "quantize": lambda v, out: formats.parse_quantize(v, fmt=out),
    "pscan": lambda v, out: formats.parse_pscan(v),
    "jpegsize": lambda v, out: formats.parse_jpeg_size(v),
}


def _res_mode(value: str | None, default: str) -> str:
    if not value:
        return default
    mode = RES_MODES.get(value.strip().lower())
    if mode is None or value.strip().isdigit():
        raise ISError("bad_request", f"resMode={value}: expected bilin, bicub, sharp2, bisharp or trilin")
    return mode


def _check_deadline(job: RenderJob) -> None:
    if time.monotonic() > job.deadline:
        raise ISError("overload", "request took longer than IS_REQUEST_TIMEOUT_S")


def _print_res(dpi: float | None) -> float | None:
    """A catalog's or a source's dpi when it fits the reply headers (0 < dpi <= 65535, the JFIF
    density field; PNG's pHYs overflows beyond 2^32 px/m), else None: the next default applies,
    as for an invalid value (``printRes=`` itself is refused out of range by formats.parse_print_res)."""
    return float(dpi) if dpi is not None and 0 < dpi <= formats.MAX_PRINT_RES else None


def defaults_from_catalog(cats, main, layer_cat, record) -> RenderDefaults:
    """Read the rendering attributes with inheritance (request-wide from ``main``, per layer from
    ``layer_cat``; record fields first)."""
    q = (cats.raw_attr(main, "JpegQuality") or "80,0").split(",")
    try:
        quality = (parse_int(q[0], cmd="JpegQuality", lo=1, hi=100), len(q) > 1 and q[1].strip() == "1")
    except ISError:
        quality = (80, False)
    res = RES_MODES.get(str(cats.raw_attr(main, "ResMode") or "4").strip().lower(), "sharp2")
    record_pr = None
    if record is not None and record.get("printresolution").strip():
        try:
            record_pr = float(parse_int(record.get("printresolution"), cmd="PrintResolution", lo=1))
        except ISError:
            pass
    attr_pr = cats.attr(layer_cat, "PrintResolution")
    thumb_type = _int_field(record, "thumbtype") or cats.attr(layer_cat, "ThumbType") or 2
    return RenderDefaults(
        default_pix=cats.attr(main, "DefaultPix"),
        default_thumb_pix=cats.attr(main, "DefaultThumbPix"),
        max_pix=cats.attr(main, "MaxPix"),
        bkg_color=cats.attr(main, "BkgColor"),
        thumb_bkg_color=cats.attr(main, "ThumbBkgColor"),
        jpeg_quality=quality,
        res_mode=res,
        print_res=_print_res(record_pr),
        default_print_res=_print_res(attr_pr) or 72.0,
        thumb=ThumbRules(
            default_thumb_pix=cats.attr(main, "DefaultThumbPix"),
            thumb_type=thumb_type if thumb_type in (1, 2, 3) else 2,
            halign=cats.attr(main, "ThumbHorizAlign") or 2,
            valign=cats.attr(main, "ThumbVertAlign") or 2,
            texture_scale=_texture_scale(cats, layer_cat, record),
        ),
    )


def _texture_scale(cats, layer_cat, record) -> Fraction:
    """``ThumbType=3`` (texture) scales by ``ThumbRes / Resolution``: the record's fields, else the
    layer catalog's attributes (catalogs.md §5: missing, empty or 0 inherit)."""

    def value(name: str) -> float:
        own = parse_real_attr(record.get(name.lower())) if record is not None else None
        return own or cats.attr(layer_cat, name) or 72.0

    return Fraction(value("ThumbRes")) / Fraction(value("Resolution"))


def _int_field(record, name: str) -> int | None:
    if record is None:
        return None
    text = record.get(name).strip()
    return int(text) if text.isdigit() and int(text) > 0 else None
