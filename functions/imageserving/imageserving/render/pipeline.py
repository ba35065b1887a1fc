"""The image pipeline: plan from headers → decode (shrink-on-load) → place → sharpen → encode.

Input is plain values (source bytes, decoded command values, catalog defaults); output is the
encoded reply. Nothing here knows about HTTP, S3 or catalogs (ARCHITECTURE.md, the one-way flow).
Steps that other commands add (layer ops, composition) slot in as functions between the stages.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable

from PIL import Image, ImageFilter

from ..errors import ISError
from ..protocol.values import Color, parse_color, parse_flag, parse_int, parse_real
from . import codec, geometry
from .geometry import LayerPlan, ThumbRules, ViewPlan

Resampling = Image.Resampling
# resMode names and the catalog's ResMode numbers (rendering.md §15).
RES_MODES = {"bilin": "bilin", "bicub": "bicub", "sharp2": "sharp2", "sharp": "sharp2", "bisharp": "bisharp",
             "trilin": "trilin", "2": "bilin", "3": "bicub", "4": "sharp2", "1": "sharp2"}
_FILTERS = {"bilin": Resampling.BILINEAR, "bicub": Resampling.BICUBIC, "sharp2": Resampling.LANCZOS,
            "bisharp": Resampling.BICUBIC, "trilin": Resampling.BILINEAR}


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
    print_res: float | None = None       # catalog::PrintResolution of the record, if any
    default_print_res: float = 72.0      # attribute::PrintResolution
    thumb: ThumbRules = field(default_factory=ThumbRules)


@dataclass
class RenderJob:
    req_type: str                        # img | tmb | mask
    source: bytes | None                 # encoded layer-0 image; None for a solid/text layer
    layer: dict[str, str]                # decoded commands of layer 0 / comp
    request: dict[str, str]              # decoded request commands (wid, fmt, qlt …)
    defaults: RenderDefaults = field(default_factory=RenderDefaults)
    max_source_pixels: int = 100_000_000
    max_response_bytes: int = 4_400_000
    deadline: float = float("inf")
    client_dpr: float | None = None


@dataclass
class Planned:
    """Everything known before decoding: what ``req=props`` reports and what render() executes."""

    width: int
    height: int
    output: codec.OutputFormat
    quality: int
    chroma_off: bool
    bgc: tuple[int, int, int]
    print_res: float
    icc_embed: bool
    mask: bool                           # the reply carries alpha
    source: codec.SourceImage | None
    layer: LayerPlan
    view: ViewPlan
    res_mode: str


@dataclass
class Rendered:
    body: bytes
    media_type: str
    width: int
    height: int


@dataclass(frozen=True)
class Options:
    """Every command of a job parsed and validated; needs no source (protocol.md §2 step 13)."""

    output: codec.OutputFormat
    quality: int
    chroma_off: bool
    view: geometry.ViewRequest
    layer: geometry.LayerRequest
    bgc: tuple[int, int, int]
    res_mode: str
    icc_embed: bool
    print_res: float | None


def parse_options(job: RenderJob) -> Options:
    """Parse the commands of ``job``: a bad value is a ``bad_request`` before any source is read."""
    req, defaults = job.request, job.defaults
    output = codec.parse_fmt(req.get("fmt") or "jpeg", default_pixel_type="gray" if job.req_type == "mask" else "rgb")
    quality, chroma_off = codec.parse_qlt(req["qlt"]) if req.get("qlt") else defaults.jpeg_quality
    view = geometry.parse_view(req, job.req_type, client_dpr=job.client_dpr)
    bgc = view.bgc.rgb() if view.bgc is not None else (
        defaults.thumb_bkg_color if job.req_type == "tmb" else defaults.bkg_color)
    for name in ("quantize", "pscan", "jpegsize"):           # validated now, used by encode
        if req.get(name):
            _ENCODE_OPTIONS[name](req[name], output)
    return Options(
        output=output, quality=quality, chroma_off=chroma_off, view=view,
        layer=geometry.parse_layer(job.layer, comp=True), bgc=tuple(bgc),
        res_mode=_res_mode(req.get("resmode"), defaults.res_mode),
        icc_embed=_flag(req, "iccembed"),
        print_res=parse_real(req["printres"], cmd="printRes", positive=True) if req.get("printres") else None)


def plan(job: RenderJob, options: Options | None = None) -> Planned:
    """The reply geometry from the source header alone, limits enforced (rendering.md §3 stage 1)."""
    o = options or parse_options(job)
    defaults = job.defaults
    source = None
    if job.source is not None:
        source = codec.open_source(job.source, max_pixels=job.max_source_pixels)
        width, height = source.size
    else:
        width, height = _solid_size(job.layer)
    layer = geometry.plan_layer(width, height, o.layer)
    view_plan = geometry.plan_view(layer.width, layer.height, o.view, default_pix=defaults.default_pix,
                                   max_pix=defaults.max_pix,
                                   thumb=defaults.thumb if job.req_type == "tmb" else None)
    print_res = (o.print_res or defaults.print_res or (source.dpi[0] if source and source.dpi else None)
                 or defaults.default_print_res)
    covered = view_plan.content_box == (0, 0, view_plan.width, view_plan.height) and not layer.transparent
    has_alpha = source.has_alpha if source else True
    mask = o.output.alpha and (has_alpha or not covered)
    return Planned(view_plan.width, view_plan.height, o.output, o.quality, o.chroma_off, o.bgc,
                   float(print_res), o.icc_embed, mask, source, layer, view_plan, o.res_mode)


def render(job: RenderJob, options: Options | None = None) -> Rendered:
    planned = plan(job, options)
    _check_deadline(job)
    img, icc = _draw(job, planned)
    _check_deadline(job)
    img = _final_sharpening(img, job.layer, planned)
    if job.req_type == "mask":
        img = _alpha_of(img)
    body = codec.encode(
        img, planned.output, quality=planned.quality, chroma_off=planned.chroma_off,
        bgc=planned.bgc, quantize=_quantize(job.request, planned.output), print_res=planned.print_res,
        icc_profile=icc, icc_embed=planned.icc_embed,
        xmp=planned.source.xmp if planned.source and _flag(job.request, "xmpembed") else None,
        jpeg_size_kb=codec.parse_jpeg_size(job.request["jpegsize"]) if job.request.get("jpegsize") else 0)
    if len(body) > job.max_response_bytes:
        raise ISError("size_limit", f"encoded reply is {len(body)} bytes, over IS_MAX_RESPONSE_BYTES "
                                    f"{job.max_response_bytes}")
    return Rendered(body, planned.output.mime, planned.width, planned.height)


# ---------------------------------------------------------------------------------- drawing
def _draw(job: RenderJob, p: Planned) -> tuple[Image.Image, bytes | None]:
    """The reply's pixels: the composite scaled into the view, background where uncovered."""
    view, layer = p.view, p.layer
    keep_alpha = p.output.alpha or job.req_type == "mask"
    canvas_mode = "RGBA" if keep_alpha else "RGB"
    background = (0, 0, 0, 0) if keep_alpha else p.bgc
    resample = _FILTERS[p.res_mode]

    if p.source is None:
        comp = _solid_layer(job.layer, layer)
        return _place(comp, view, canvas_mode, background, resample, p.res_mode), None

    # Arbitrary rotations are drawn at full source resolution: no shrink-on-load for them.
    hint = float(max(view.scale)) if layer.mapping is not None else None
    decoded = codec.decode(p.source, scale_hint=hint)
    img = decoded.image
    _check_deadline(job)
    sw, sh = p.source.size
    fx, fy = img.width / sw, img.height / sh         # decoded pixels per source pixel (draft)

    if layer.mapping is None:                         # arbitrary rotation: build the composite
        comp = _layer_image(img, layer, fx, fy)
        return _place(comp, view, canvas_mode, background, resample, p.res_mode), decoded.icc_profile

    mapping = layer.mapping
    content = mapping.content_box
    region = view.project(content) if content is not None else None
    canvas_size = (view.width, view.height)
    if region is None:
        return Image.new(canvas_mode, canvas_size, background), decoded.icc_profile
    x0, y0, x1, y1 = mapping.source_box(view.source_box(region))
    box = (x0 * fx, y0 * fy, x1 * fx, y1 * fy)
    size = (region[2] - region[0], region[3] - region[1])
    if mapping.swaps_axes:
        size = (size[1], size[0])
    piece = _resize(img, size, box, resample, p.res_mode)
    if mapping.orientation:
        piece = piece.transpose(Image.Transpose[mapping.orientation])
    if region == (0, 0, *canvas_size) and (piece.mode == canvas_mode or not keep_alpha):
        return piece, decoded.icc_profile           # the composite fills the reply: no canvas copy
    canvas = Image.new(canvas_mode, canvas_size, background)
    _paste(canvas, piece, region[:2])
    return canvas, decoded.icc_profile


def _place(comp: Image.Image, view: ViewPlan, mode: str, background, resample, res_mode) -> Image.Image:
    canvas = Image.new(mode, (view.width, view.height), background)
    region = view.content_box
    if region is not None:
        size = (region[2] - region[0], region[3] - region[1])
        piece = _resize(comp, size, view.source_box(region), resample, res_mode)
        _paste(canvas, piece, region[:2])
    return canvas


def _paste(canvas: Image.Image, piece: Image.Image, at: tuple[int, int]) -> None:
    if piece.mode in ("RGBA", "LA") and canvas.mode == "RGB":
        canvas.paste(piece.convert("RGBA"), at, piece.convert("RGBA"))
    else:
        canvas.paste(piece if piece.mode == canvas.mode else piece.convert(canvas.mode), at)


def _resize(img: Image.Image, size: tuple[int, int], box, resample, res_mode: str) -> Image.Image:
    bw, bh = box[2] - box[0], box[3] - box[1]
    if size == (img.width, img.height) and box == (0, 0, img.width, img.height):
        return img
    shrink = max(bw / max(size[0], 1), bh / max(size[1], 1))
    gap = 1.5 if res_mode == "trilin" else (3.0 if shrink > 3 else None)
    if img.mode == "RGBA":
        # Resample premultiplied so transparent pixels do not bleed their colour into edges.
        out = img.convert("RGBa").resize(size, resample, box=box, reducing_gap=gap).convert("RGBA")
    else:
        out = img.resize(size, resample, box=box, reducing_gap=gap)
    if res_mode == "bisharp" and shrink > 1:
        out = out.filter(ImageFilter.UnsharpMask(radius=0.5, percent=40, threshold=0))
    return out


def _layer_image(img: Image.Image, layer: LayerPlan, fx: float, fy: float) -> Image.Image:
    """Layer 0 as pixels (crop → flip → rotate → extend → comp flip), in full-source resolution."""
    if (fx, fy) != (1.0, 1.0):
        img = img.resize(layer.source_size, Image.Resampling.BICUBIC)
    x0, y0, x1, y1 = layer.crop_box
    work = img.convert("RGBA") if img.mode != "RGBA" else img
    work = work.crop((x0, y0, x1, y1))            # Pillow fills overhang with zeros (transparent)
    work = _flip(work, layer.flip)
    if layer.rotate:
        work = work.rotate(layer.pillow_rotate_angle, Image.Resampling.BICUBIC, expand=True)
    left, top, _, _ = layer.extend
    if (layer.width, layer.height) != work.size or left or top:
        canvas = Image.new("RGBA", (layer.width, layer.height), (0, 0, 0, 0))
        canvas.paste(work, (left, top))
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
    from ..protocol.values import parse_ints

    w, h = parse_ints(cmds["size"], 2, cmd="size", lo=0)
    if w <= 0 or h <= 0:
        if "text" not in cmds:
            raise ISError("bad_request", f"size={cmds['size']}: a solid layer needs a width and a height")
        from .text import parse_text, render_text

        img = render_text(parse_text(cmds["text"]), (w, h))
        return img.size
    return w, h


def _solid_layer(cmds: dict[str, str], layer: LayerPlan) -> Image.Image:
    """A layer without an image: ``color=`` fill (else transparent) with optional ``text=``."""
    w, h = layer.source_size
    fill: Color | None = parse_color(cmds["color"], cmd="color") if cmds.get("color") else None
    img = Image.new("RGBA", (w, h), fill.rgba() if fill else (0, 0, 0, 0))
    if cmds.get("text"):
        from .text import parse_text, render_text

        text = render_text(parse_text(cmds["text"]), (w, h))
        img.alpha_composite(text)
    if (w, h) == (layer.width, layer.height) and not layer.flip and not layer.rotate:
        return img
    return _layer_image(img, layer, 1.0, 1.0)


# --------------------------------------------------------------------------- final stages
FinalStep = Callable[[Image.Image, dict[str, str], Planned], Image.Image]
# Comp-level operations after scaling (op_sharpen, op_usm …) register here (rendering.md §3 stage 9).
FINAL_STEPS: list[FinalStep] = []


def _final_sharpening(img: Image.Image, cmds: dict[str, str], planned: Planned) -> Image.Image:
    for step in FINAL_STEPS:
        img = step(img, cmds, planned)
    return img


def _alpha_of(img: Image.Image) -> Image.Image:
    if img.mode in ("RGBA", "LA"):
        return img.getchannel("A")
    return Image.new("L", img.size, 255)


def _quantize(req: dict[str, str], output: codec.OutputFormat) -> codec.Quantize | None:
    return codec.parse_quantize(req["quantize"], fmt=output) if req.get("quantize") else None


_ENCODE_OPTIONS = {
    "quantize": lambda v, out: codec.parse_quantize(v, fmt=out),
    "pscan": lambda v, out: codec.parse_pscan(v),
    "jpegsize": lambda v, out: codec.parse_jpeg_size(v),
}


def _flag(req: dict[str, str], name: str) -> bool:
    return parse_flag(req[name], cmd=name) if req.get(name) else False


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


def defaults_from_catalog(cats, main, layer_cat, record) -> RenderDefaults:
    """Read the rendering attributes with inheritance (request-wide from ``main``, per layer from
    ``layer_cat``; record fields first)."""
    q = (cats.raw_attr(main, "JpegQuality") or "80,0").split(",")
    try:
        quality = (parse_int(q[0], cmd="JpegQuality", lo=1, hi=100),
                   len(q) > 1 and q[1].strip() == "1")
    except ISError:
        quality = (80, False)
    res = RES_MODES.get(str(cats.raw_attr(main, "ResMode") or "4").strip().lower(), "sharp2")
    record_pr = None
    if record is not None and record.get("printresolution").strip():
        try:
            record_pr = float(parse_int(record.get("printresolution"), cmd="PrintResolution", lo=1)) or None
        except ISError:
            record_pr = None
    thumb_type = _int_field(record, "thumbtype") or cats.attr(layer_cat, "ThumbType") or 2
    return RenderDefaults(
        default_pix=cats.attr(main, "DefaultPix"),
        default_thumb_pix=cats.attr(main, "DefaultThumbPix"),
        max_pix=cats.attr(main, "MaxPix"),
        bkg_color=cats.attr(main, "BkgColor"),
        thumb_bkg_color=cats.attr(main, "ThumbBkgColor"),
        jpeg_quality=quality,
        res_mode=res,
        print_res=record_pr,
        default_print_res=float(cats.attr(layer_cat, "PrintResolution") or 72),
        thumb=ThumbRules(default_thumb_pix=cats.attr(main, "DefaultThumbPix"),
                         thumb_type=thumb_type if thumb_type in (1, 2, 3) else 2,
                         halign=cats.attr(main, "ThumbHorizAlign") or 2,
                         valign=cats.attr(main, "ThumbVertAlign") or 2),
    )


def _int_field(record, name: str) -> int | None:
    if record is None:
        return None
    text = record.get(name).strip()
    return int(text) if text.isdigit() and int(text) > 0 else None
