"""Multi-layer composites (rendering.md §3 stages 3-4, §4): each layer transformed on its own,
then drawn in ascending order on a transparent canvas the size of layer 0's rect.

Geometry is planned in full-resolution composite pixels; pixels are drawn at ``scale`` of that
(the resolution the view needs, rendering.md §16), so a 500-pixel reply of a 4000-pixel template
never holds 4000-pixel layers. A request with one layer and no watermark never comes here
(pipeline's fast path).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from fractions import Fraction

from PIL import Image, ImageChops

from ..errors import ISError
from ..protocol.values import command_flag, parse_color, parse_ints, parse_real, parse_reals, round_half_up
from . import codec, ops, paths
from .blend import draw, parse_blend_mode
from .effects import Effect, grown, parse_effect
from .effects import render as render_effect
from .geometry import THUMB_CROP, THUMB_TEXTURE, ThumbRules, open_crop, parse_flip, pillow_rotated_size
from .text import MAX_TEXT_PIXELS, parse_text, render_text

# Bounds the work of one request: every layer is a decode, a resample and a full-canvas blend.
MAX_LAYERS = 100
# comp-addressed commands that act on the composite instead of layer 0 (§4.1 routing).
_COMPOSITE_ONLY = frozenset(("flip", "opac", "clippath"))
_LANCZOS = Image.Resampling.LANCZOS
_REDUCING_GAP = 5.0


@dataclass
class Layer:
    """One layer of a composite: its decoded commands (``src=`` already resolved) and the encoded
    source image, ``None`` for solid colour and text layers."""

    cmds: dict[str, str]
    source: bytes | None = None
    # A separate mask (``mask=`` or the record's ``catalog::MaskPath``, rendering.md §4.9);
    # ``exact_mask``: it is the catalog's, which must match the image's size.
    mask: bytes | None = None
    exact_mask: bool = False
    # The layer's effect layers by number (``effect=n`` segments, §13), and the object resolution
    # ``res=`` scales by (``catalog::Resolution``, else ``attribute::Resolution``).
    effects: dict[int, dict[str, str]] = field(default_factory=dict)
    resolution: float = 72.0
    # The space of the source's pixels when it is untagged RGB: its catalog's IccProfileSrcRgb
    # (else IccProfileRgb); None = sRGB. A nested request's image is already sRGB (None).
    assumed_rgb: bytes | None = None
    # req=tmb (rendering.md §7.2): layer 0's size=w,h is then the canvas, the image placed in it by
    # the catalog's thumbnail rules.
    thumb: ThumbRules | None = None
    # Set on the watermark (rendering.md §12): its ``align=``. The watermark is drawn by
    # :func:`watermark` on the finished composite, placed by the §0 alignment offset instead of
    # pos/origin, with ``sizeN`` relative to the composite.
    align: tuple[Fraction, Fraction] | None = None

    @property
    def is_watermark(self) -> bool:
        return self.align is not None


def layer0_commands(own: dict[str, str], comp: dict[str, str]) -> dict[str, str]:
    """Layer 0's commands: its own, then those addressed to ``comp`` that §4.1 routes to layer 0
    (``comp`` wins, as in a simple request); ``flip``, ``opac`` and ``op_*`` stay with the composite."""
    return {**own, **{n: v for n, v in comp.items() if not _on_composite(n)}}


def _on_composite(name: str) -> bool:
    return name in _COMPOSITE_ONLY or (name.startswith("op_") and not name.startswith("op_growmask"))


@dataclass
class _Plan:
    """One layer's geometry in full-resolution composite pixels."""

    index: int
    cmds: dict[str, str]
    source: codec.SourceImage | None  # the image, or the mask of a solid colour layer (``solid``)
    content: Image.Image | None  # text layers: the laid-out text (full size)
    crop: tuple[int, int, int, int]  # x, y, w, h in source pixels (image layers)
    fitted: tuple[int, int]  # the content after crop and scale
    box: tuple[int, int]  # the content rect (layer 0 size= box, else fitted)
    flip: str | None
    rotate: Fraction  # clockwise degrees in [0, 360)
    rotated: tuple[int, int]
    extend: tuple[int, int, int, int]
    size: tuple[int, int]  # the layer rect
    origin: tuple[float, float]  # in layer-rect pixels
    mask: codec.SourceImage | None = None  # a separate mask of an image layer
    solid: bool = False  # a solid colour layer shaped by its mask (§4.6): ``source`` is the mask
    effects: tuple[Effect, ...] = ()
    blend: str = "norm"
    path_at: tuple[int, int] = (0, 0)  # clipPath= coordinates of the rect's top-left (self-sized)
    place: tuple[Fraction, Fraction] = (Fraction(0), Fraction(0))  # alignment of fitted in box (§0)
    assumed_rgb: bytes | None = None  # Layer.assumed_rgb


def check_count(count: int) -> None:
    if count > MAX_LAYERS:
        raise ISError("bad_request", f"layer: {count} layers, at most {MAX_LAYERS} are allowed")


# Text is laid out and drawn at full size before it is scaled (rendering.md §4.7), so its cost is
# its full-size area whatever the reply size: all text layers of one request together may cover
# what one may (MAX_TEXT_PIXELS, ~0.8 s of drawing here). 60 layers of 4000x4000 took 13-25 s.
TEXT_PIXEL_BUDGET = MAX_TEXT_PIXELS


def check_text_area(layers: list[dict[str, str]]) -> None:
    """Refuse, before any work (issue 8.6), text layers whose ``size=`` boxes together exceed
    :data:`TEXT_PIXEL_BUDGET`; self-sized text (``size=0,0``, ``sizeN=``) is counted as it is laid out."""
    total = 0
    for cmds in layers:
        if cmds.get("text") and cmds.get("size"):
            w, h = parse_ints(cmds["size"], 2, cmd="size", lo=0)
            total += w * h if w > 0 and h > 0 else 0
    _check_text(total)


def _check_text(total: int) -> None:
    if total > TEXT_PIXEL_BUDGET:
        raise ISError("size_limit", f"text layers cover {total} pixels, more than {TEXT_PIXEL_BUDGET}")


def canvas_size(layers: list[Layer], *, max_pixels: int) -> tuple[int, int]:
    """The composite size: layer 0's rect after its own transforms (§4.5)."""
    check_count(len(_stacked(layers)))
    return _plan(0, layers[0], max_pixels, None, None).size


def build(
    layers: list[Layer],
    comp: dict[str, str],
    scale: float,
    *,
    max_pixels: int,
    deadline: float = math.inf,
    comp_effects: dict[int, dict[str, str]] | None = None,
    apply_effect_mask: bool = True,
    budget: int | None = None,
) -> Image.Image:
    """The RGBA composite at ``scale`` of its full size, with ``comp``'s effect layers
    (``comp_effects``, §13: the composite is their parent) and ``opac`` applied (``flip`` and
    ``op_*`` of ``comp`` are left to the pipeline, as for a single layer; the watermark to
    :func:`watermark`). ``apply_effect_mask``: ApplyEffectMask / ``effectMask=``.
    Every layer's decode is held to ``budget`` bytes (render/budget.py)."""
    layers = _stacked(layers)
    check_count(len(layers))
    base = _plan(0, layers[0], max_pixels, None, budget)
    cw, ch = base.size
    canvas = Image.new("RGBA", (max(1, round(cw * scale)), max(1, round(ch * scale))), (0, 0, 0, 0))
    on_comp = _effects(comp_effects or {}, "comp")  # validated before any layer is drawn
    spent = 0.0
    text = 0
    for i, layer in enumerate(layers):
        if time.monotonic() > deadline:
            raise ISError("overload", "request took longer than IS_REQUEST_TIMEOUT_S")
        p = base if i == 0 else _plan(i, layer, max_pixels, base.size, budget)
        if p.content is not None:  # laid-out text: what check_text_area could not know in advance
            text += p.content.width * p.content.height
            _check_text(text)
        if command_flag(p.cmds, "hide"):
            continue  # hide=1 on layer 0 still sizes the canvas (§4.3 hide); its effects go too
        spent = _spend(spent, p, scale)
        if i == 0:
            x, y = 0.0, 0.0
        else:
            px, py = _pos(p.cmds, base.size)
            x = round_half_up(Fraction(base.origin[0] + px - p.origin[0]))
            y = round_half_up(Fraction(base.origin[1] + py - p.origin[1]))
        img = _pixels(p, layer, scale)
        at = (round(x * scale), round(y * scale))
        if p.effects:
            spent = _spend(spent, p, scale, len(p.effects))
            # Effects follow the parent's shape before its opac=, and share its first value (§4.3).
            plain = _pixels(p, layer, scale, opac=False) if p.cmds.get("opac") else img
            opacity = _opac(p.cmds["opac"], first=True) if p.cmds.get("opac") else 1.0
            _draw_with_effects(
                canvas,
                img,
                at,
                scale,
                blend=p.blend,
                fx=p.effects,
                plain=plain,
                opacity=opacity,
                apply_mask=apply_effect_mask,
                seed=f"layer {i}",
            )
        else:
            draw(canvas, img, at, p.blend, seed=f"layer {i}")
    if comp.get("clippath"):
        canvas = _clip(canvas, comp["clippath"], scale)
    if on_comp:
        parent, canvas = canvas, Image.new("RGBA", canvas.size, (0, 0, 0, 0))
        _draw_with_effects(
            canvas,
            parent,
            (0, 0),
            scale,
            blend="norm",
            fx=on_comp,
            plain=parent,
            opacity=1.0,
            apply_mask=apply_effect_mask,
            seed="comp",
        )
    if comp.get("opac"):
        canvas = _opacity(canvas, _opac(comp["opac"]))
    return canvas


def _draw_with_effects(
    canvas: Image.Image,
    img: Image.Image,
    at: tuple[int, int],
    scale: float,
    *,
    blend: str,
    fx: tuple[Effect, ...],
    plain: Image.Image,
    opacity: float,
    apply_mask: bool,
    seed: str,
) -> None:
    """A layer and its effects (§4.5): outer effects under it, inner ones over it, each group in
    the order of the effect numbers. ``plain``: the layer before its ``opac=`` (their mask)."""

    def one(effect: Effect) -> None:
        pixels, (dx, dy) = render_effect(effect, plain, scale, parent_opacity=opacity, apply_mask=apply_mask)
        draw(canvas, pixels, (at[0] + dx, at[1] + dy), effect.blend, seed=f"{seed} effect {effect.number}")

    for effect in fx:
        if not effect.inner:
            one(effect)
    draw(canvas, img, at, blend, seed=seed)
    for effect in fx:
        if effect.inner:
            one(effect)


def _effects(cmds: dict[int, dict[str, str]], where: str) -> tuple[Effect, ...]:
    return tuple(parse_effect(n, c, where) for n, c in sorted(cmds.items()))


def watermark(
    canvas: Image.Image, layers: list[Layer], scale: float, *, max_pixels: int, budget: int | None = None
) -> Image.Image:
    """``canvas`` (the composite at ``scale``, comp effects applied) with the watermark layers of
    ``layers`` merged on top (rendering.md §12): fitted by ``sizeN`` to the composite, placed with
    ``off(C, W, align)`` (§0)."""
    marks = [layer for layer in layers if layer.is_watermark]
    if not marks:
        return canvas
    size = _plan(0, layers[0], max_pixels, None, None).size
    if canvas.mode != "RGBA":
        canvas = canvas.convert("RGBA")
    for mark in marks:
        p = _plan(len(layers), mark, max_pixels, size, budget)
        _spend(0.0, p, scale)
        at = (
            math.floor((size[0] - p.size[0]) * (mark.align[0] + 1) / 2),
            math.floor((size[1] - p.size[1]) * (mark.align[1] + 1) / 2),
        )
        # The watermark's own blendMode= and opac= are its merge (§12).
        mode = parse_blend_mode(mark.cmds.get("blendmode"))
        draw(canvas, _pixels(p, mark, scale), (round(at[0] * scale), round(at[1] * scale)), mode, seed="watermark")
    return canvas


# Pixels all layers of one composite may occupy once scaled (256 MB as RGBA): bounds the work of
# many large layers, or of layers that lie mostly outside the canvas.
LAYER_PIXEL_BUDGET = 64_000_000


def scaled_pixels(size: tuple[int, int], scale: float) -> int:
    """Pixels of a ``size`` buffer drawn at ``scale`` (each side at least one pixel)."""
    return max(1, round(size[0] * scale)) * max(1, round(size[1] * scale))


def _spend(spent: float, p: "_Plan", scale: float, times: int = 1) -> float:
    spent += scaled_pixels(p.size, scale) * times
    if spent > LAYER_PIXEL_BUDGET:
        raise ISError("size_limit", f"layers cover more than {LAYER_PIXEL_BUDGET} pixels")
    return spent


def _stacked(layers: list[Layer]) -> list[Layer]:
    return [layer for layer in layers if not layer.is_watermark]


# ---------------------------------------------------------------------------------- planning
def _plan(index: int, layer: Layer, max_pixels: int, canvas: tuple[int, int] | None, budget: int | None) -> _Plan:
    c = layer.cmds
    where = f"layer {index}"
    if "textps" in c:
        raise ISError("bad_request", f"{where}: textPs= is not supported")
    source = content = mask = None
    solid = self_sized = False
    path_at = (0, 0)
    crop = (0, 0, 0, 0)
    if layer.mask is not None:
        mask = codec.open_source(layer.mask, max_pixels=max_pixels, budget=budget)
    if layer.source is not None:
        source = codec.open_source(layer.source, max_pixels=max_pixels, budget=budget)
        if mask is not None and layer.exact_mask and mask.size != source.size:
            raise ISError(
                "content_error",
                f"{where}: its MaskPath image is {mask.size[0]}x{mask.size[1]}, "
                f"the image {source.size[0]}x{source.size[1]}",
            )
    elif mask is not None and not c.get("text"):
        # A solid colour layer shaped by a mask: the mask is cropped and scaled like an image (§4.6).
        if not c.get("color"):
            raise ISError("bad_request", f"{where}: a solid colour layer needs color=")
        source, mask, solid = mask, None, True
    if source is not None:
        crop = _crop(c, *source.size) if solid or not c.get("croppathe") else _crop_path(c, source)
        fitted = _fit(c, crop[2], crop[3], index, canvas, layer.resolution)
    elif c.get("text"):
        box = _size(c, index, canvas)
        content = render_text(parse_text(c["text"]), box)
        fitted = content.size
    else:
        box = _size(c, index, canvas)
        if box is None and index > 0 and c.get("clippath"):
            path_at, box = _path_extent(c, where)
            self_sized = True
        if box is None or box[0] <= 0 or box[1] <= 0:
            raise ISError("bad_request", f"{where}: a solid colour layer needs size=w,h (both > 0)")
        if index > 0 and not c.get("color"):
            raise ISError("bad_request", f"{where}: a solid colour layer needs color=")
        fitted = box
    # An image layer's rect is the scaled image, layer 0's too: size= only constrains it (§4.3,
    # §4.5), never pads it to a w×h box — except for a thumbnail (§4.5, §7.2).
    boxed, place = fitted, (Fraction(0), Fraction(0))
    if index == 0 and layer.thumb is not None and source is not None and not solid and c.get("size"):
        w, h = parse_ints(c["size"], 2, cmd="size", lo=0)
        if w > 0 and h > 0:
            fitted, place = _thumb_fit(layer.thumb, crop[2], crop[3], w, h)
            boxed = (w, h)
    flip = parse_flip(c["flip"]) if c.get("flip") else None
    rotate = parse_real(c["rotate"], cmd="rotate") % 360 if c.get("rotate") else Fraction(0)
    rotated = pillow_rotated_size(*boxed, -float(rotate))
    extend = _extend(c, rotated)
    size = (rotated[0] + extend[0] + extend[2], rotated[1] + extend[1] + extend[3])
    if size[0] < 1 or size[1] < 1:
        raise ISError("bad_request", f"{where}: extend leaves a {size[0]}x{size[1]} layer")
    if size[0] * size[1] > max_pixels:
        raise ISError(
            "size_limit", f"{where} of {size[0]}x{size[1]} pixels, more than IS_MAX_SOURCE_PIXELS {max_pixels}"
        )
    p = _Plan(index, c, source, content, crop, fitted, boxed, flip, rotate, rotated, extend, size, (0.0, 0.0))
    # A self-sizing path layer's origin is (0,0) of the path's coordinates (r-clippath.md).
    if self_sized and not (c.get("origin") or c.get("originn")):
        p.origin = (float(-path_at[0]), float(-path_at[1]))
    else:
        p.origin = _origin(p)
    p.path_at, p.place = path_at, place
    p.mask, p.solid = mask, solid
    p.assumed_rgb = layer.assumed_rgb
    _mask_use(c)
    p.effects = _effects(layer.effects, where)
    blend = parse_blend_mode(c.get("blendmode"))  # checked on layer 0 too, where it is ignored (§4.3)
    p.blend = blend if index > 0 else "norm"
    return p


def _crop(c: dict[str, str], sw: int, sh: int) -> tuple[int, int, int, int]:
    if c.get("crop"):
        return open_crop(*parse_ints(c["crop"], 4, cmd="crop"), sw, sh)
    elif c.get("cropn"):
        nx, ny, nw, nh = parse_reals(c["cropn"], 4, cmd="cropN")
        x, y, w, h = (round_half_up(nx * sw), round_half_up(ny * sh), round_half_up(nw * sw), round_half_up(nh * sh))
    else:
        return 0, 0, sw, sh
    if w <= 0 or h <= 0:
        raise ISError("bad_request", f"crop: width and height must be greater than 0 (got {w}x{h})")
    return x, y, w, h


def _thumb_fit(rules: ThumbRules, cw: int, ch: int, w: int, h: int):
    """The image in a thumbnail's ``w×h`` canvas (§7.1): scaled to cover it (crop), to fit it (fit)
    or by ``ThumbRes / Resolution`` (texture), aligned by ThumbHorizAlign/ThumbVertAlign."""
    if rules.thumb_type == THUMB_TEXTURE:
        s = rules.texture_scale
    else:
        pick = max if rules.thumb_type == THUMB_CROP else min
        s = pick(Fraction(w, cw), Fraction(h, ch))
    align = {1: Fraction(-1), 2: Fraction(0), 3: Fraction(1)}
    fitted = (max(1, round_half_up(cw * s)), max(1, round_half_up(ch * s)))
    return fitted, (align[rules.halign], align[rules.valign])


def _path_extent(c: dict[str, str], where: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """A solid colour layer without ``size=`` sized by its ``clipPath=`` (r-clippath.md): the path's
    bounding box — its top-left in path coordinates, and its size; it may not scale or rotate."""
    for name in ("scale", "rotate", "anchor", "anchorn"):
        if c.get(name):
            raise ISError("bad_request", f"{where}: {name}= is not allowed on a layer sized by its clipPath=")
    box = paths.bbox(paths.parse_clip_path(c["clippath"]), (1.0, 1.0))
    x0, y0 = math.floor(box[0]), math.floor(box[1])
    return (x0, y0), (max(1, math.ceil(box[2]) - x0), max(1, math.ceil(box[3]) - y0))


def _crop_path(c: dict[str, str], source: codec.SourceImage) -> tuple[int, int, int, int]:
    """``cropPathE=``: the bounding box of each named embedded path in turn (their intersection);
    names the source lacks are ignored (r-croppath.md). An explicit ``crop=``/``cropN=`` wins."""
    sw, sh = source.size
    if c.get("crop") or c.get("cropn"):
        return _crop(c, sw, sh)
    found = paths.embedded(source.data, source.format)
    x0, y0, x1, y1 = 0.0, 0.0, float(sw), float(sh)
    for name in paths.names(c["croppathe"]):
        box = paths.bbox(found[name], (sw, sh)) if name in found else None
        if box is not None:
            x0, y0, x1, y1 = max(x0, box[0]), max(y0, box[1]), min(x1, box[2]), min(y1, box[3])
    x, y = math.floor(x0), math.floor(y0)
    return x, y, max(1, math.ceil(x1) - x), max(1, math.ceil(y1) - y)


def _size(c: dict[str, str], index: int, canvas: tuple[int, int] | None) -> tuple[int, int] | None:
    """``size=``/``sizeN=`` as pixels (``sizeN`` relative to layer 0, §4.3)."""
    if c.get("sizen"):
        if canvas is None:
            raise ISError("bad_request", f"sizeN={c['sizen']}: not allowed for layer 0 or comp")
        nw, nh = parse_reals(c["sizen"], 2, cmd="sizeN", lo=0)
        return round_half_up(nw * canvas[0]), round_half_up(nh * canvas[1])
    if c.get("size"):
        w, h = parse_ints(c["size"], 2, cmd="size", lo=0)
        return w, h
    return None


def _fit(c: dict[str, str], cw: int, ch: int, index: int, canvas, resolution: float) -> tuple[int, int]:
    """Crop size times the first of ``size=`` (aspect kept, up or down) → ``scale=`` →
    ``res=`` (``res / Resolution``, §4.3) → 1."""
    box = _size(c, index, canvas)
    factors = [Fraction(t, s) for t, s in zip(box, (cw, ch), strict=True) if t > 0] if box else []
    if factors:
        s = min(factors)
    elif c.get("scale"):
        s = parse_real(c["scale"], cmd="scale")
        if s <= 0:
            raise ISError("bad_request", f"scale={c['scale']}: must be greater than 0")
    elif c.get("res"):
        s = parse_real(c["res"], cmd="res", positive=True) / Fraction(resolution)
    else:
        return cw, ch
    return max(1, round_half_up(cw * s)), max(1, round_half_up(ch * s))


def _extend(c: dict[str, str], rotated: tuple[int, int]) -> tuple[int, int, int, int]:
    if c.get("extend"):
        return tuple(parse_ints(c["extend"], 4, cmd="extend"))  # type: ignore[return-value]
    if c.get("extendn"):
        nl, nt, nr, nb = parse_reals(c["extendn"], 4, cmd="extendN")
        w, h = rotated
        return round_half_up(nl * w), round_half_up(nt * h), round_half_up(nr * w), round_half_up(nb * h)
    return 0, 0, 0, 0


def _origin(p: _Plan) -> tuple[float, float]:
    """§4.4: origin=, originN=, else the anchor carried through the transforms, else the centre."""
    c, (lw, lh) = p.cmds, p.size
    if c.get("origin"):
        x, y = parse_ints(c["origin"], 2, cmd="origin")
        return float(x), float(y)
    if c.get("originn"):
        nx, ny = parse_reals(c["originn"], 2, cmd="originN")
        return lw * float(nx + Fraction(1, 2)), lh * float(ny + Fraction(1, 2))
    anchor = _anchor(p)
    if anchor is None:
        return lw / 2, lh / 2
    ax, ay = anchor
    bw, bh = p.box
    if p.flip in ("lr", "lrud"):
        ax = bw - ax
    if p.flip in ("ud", "lrud"):
        ay = bh - ay
    theta = math.radians(float(p.rotate))
    dx, dy = ax - bw / 2, ay - bh / 2
    rw, rh = p.rotated
    ax = rw / 2 + dx * math.cos(theta) - dy * math.sin(theta)
    ay = rh / 2 + dx * math.sin(theta) + dy * math.cos(theta)
    return ax + p.extend[0], ay + p.extend[1]


def _anchor(p: _Plan) -> tuple[float, float] | None:
    """The anchor in content-rect pixels (after crop and scale), or None when none is defined."""
    c = p.cmds
    sw, sh = p.source.size if p.source is not None else p.fitted
    if c.get("anchor"):
        x, y = (float(v) for v in parse_reals(c["anchor"], 2, cmd="anchor"))
    elif c.get("anchorn"):
        nx, ny = parse_reals(c["anchorn"], 2, cmd="anchorN")
        x, y = sw * float(nx + Fraction(1, 2)), sh * float(ny + Fraction(1, 2))
    else:
        return None
    if p.source is None:
        return x, y
    cx, cy, cw, ch = p.crop
    fx, fy = p.fitted[0] / cw, p.fitted[1] / ch
    return ((x - cx) * fx + (p.box[0] - p.fitted[0]) / 2, (y - cy) * fy + (p.box[1] - p.fitted[1]) / 2)


def _pos(c: dict[str, str], canvas: tuple[int, int]) -> tuple[float, float]:
    if c.get("pos"):
        x, y = parse_ints(c["pos"], 2, cmd="pos")
        return float(x), float(y)
    if c.get("posn"):
        nx, ny = parse_reals(c["posn"], 2, cmd="posN")
        return float(nx * canvas[0]), float(ny * canvas[1])
    return 0.0, 0.0


# ----------------------------------------------------------------------------------- pixels
def _pixels(p: _Plan, layer: Layer, scale: float, *, opac: bool = True) -> Image.Image:
    """The layer rect at ``scale``: content (crop → scale → mask) → op_* → opac → color → flip →
    rotate → extend → bgColor (§4.2). ``opac=False`` leaves the layer's ``opac=`` out."""
    c = p.cmds

    def scaled(wh: tuple[int, int] | tuple[float, float]) -> tuple[int, int]:
        return max(1, round(wh[0] * scale)), max(1, round(wh[1] * scale))

    fill = parse_color(c["color"], cmd="color").rgba() if c.get("color") else None
    if p.source is not None:
        img = _image_content(p, scale)
        if p.solid:
            fill = None  # color= is the foreground of a masked solid layer, drawn by _masked
    elif p.content is not None:
        img = p.content if scale == 1 else p.content.resize(scaled(p.content.size), _LANCZOS)
    else:
        img, fill = Image.new("RGBA", scaled(p.fitted), fill or (0, 0, 0, 0)), None
    if p.box != p.fitted:
        boxed = Image.new("RGBA", scaled(p.box), (0, 0, 0, 0))
        ax, ay = p.place
        boxed.paste(
            img,
            (
                math.floor((boxed.width - img.width) * (ax + 1) / 2),
                math.floor((boxed.height - img.height) * (ay + 1) / 2),
            ),
        )
        img = boxed
    if c.get("clippath"):  # in the content rect's pixels, after crop and scale (r-clippath.md)
        img = _clip(img, c["clippath"], scale, p.path_at)
    plan = ops.parse_ops(c)
    img = ops.run(img, plan.composite + plan.scaled, ops.OpContext(scale=(scale, scale)))
    if img.mode != "RGBA":
        img = img.convert("RGBA")
    if opac and c.get("opac"):
        img = _opacity(img, _opac(c["opac"]))
    if fill is not None:
        img = _behind(img, fill)
    if p.flip in ("lr", "lrud"):
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if p.flip in ("ud", "lrud"):
        img = img.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    if p.rotate % 90 == 0 and p.rotate:
        img = img.transpose(
            {90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_90}[
                int(p.rotate)
            ]
        )
    elif p.rotate:
        img = img.convert("RGBa").rotate(-float(p.rotate), Image.Resampling.BICUBIC, expand=True).convert("RGBA")
    left, top, _, _ = p.extend
    if any(p.extend):
        rect = Image.new("RGBA", scaled(p.size), (0, 0, 0, 0))
        rect.paste(img, (round(left * scale), round(top * scale)))
        img = rect
    if c.get("bgcolor"):
        img = _behind(img, parse_color(c["bgcolor"], cmd="bgColor").rgba())
    return img


def _image_content(p: _Plan, scale: float) -> Image.Image:
    """Crop (overhang transparent) and scale the source to ``fitted × scale`` pixels; only the part
    of the crop inside the source is decoded and resampled, so a huge overhang costs nothing."""
    x, y, w, h = p.crop
    sw, sh = p.source.size
    fw, fh = p.fitted
    out_size = (max(1, round(fw * scale)), max(1, round(fh * scale)))
    kx, ky = out_size[0] / w, out_size[1] / h  # output pixels per source pixel
    out = Image.new("RGBA", out_size, (0, 0, 0, 0))
    inner = (max(x, 0), max(y, 0), min(x + w, sw), min(y + h, sh))
    if inner[0] >= inner[2] or inner[1] >= inner[3]:
        return out
    # ``scale`` already has the pipeline's headroom over the view; codec.decode keeps twice its hint.
    hint = min(kx, ky) / 2 if max(kx, ky) < 1 else None
    # Layers merge in sRGB (icc.py).
    decoded = codec.decode(p.source, scale_hint=hint, working=True, assumed_rgb=p.assumed_rgb)
    img = _masked(p, decoded.image, kx)
    dx, dy = img.width / sw, img.height / sh
    at = (round((inner[0] - x) * kx), round((inner[1] - y) * ky))
    size = (max(1, round((inner[2] - x) * kx) - at[0]), max(1, round((inner[3] - y) * ky) - at[1]))
    box = (inner[0] * dx, inner[1] * dy, inner[2] * dx, inner[3] * dy)
    if img.mode in ("RGBA", "LA"):
        # Premultiplied, so that transparent pixels do not bleed into their neighbours.
        img = img.convert("RGBA").convert("RGBa")
    piece = img.resize(size, _LANCZOS, box=box, reducing_gap=_REDUCING_GAP)
    out.paste(piece.convert("RGBA"), at)
    return out


def _mask_use(c: dict[str, str]) -> str:
    value = (c.get("maskuse") or "norm").strip().lower()
    if value not in ("norm", "invert", "off"):
        raise ISError("bad_request", f"maskUse={c['maskuse']}: expected norm, invert or off")
    return value


def _masked(p: _Plan, img: Image.Image, out_per_source: float) -> Image.Image:
    """Step 3 of §4.2, on the decoded source before crop and scale (so that both apply to the
    mask alike): ``mask=``/MaskPath replaces the image's own alpha, ``op_growMask``/``R`` dilate
    or erode it, ``maskUse=`` picks how it is used (§4.9, r-maskuse.md's table). A masked solid
    colour layer becomes its colour through the mask. ``out_per_source``: layer pixels drawn per
    source pixel."""
    use = _mask_use(p.cmds)
    grow = _grow_radius(p, img.width / p.source.size[0], out_per_source)
    img = _clip_embedded(p, img)
    if p.solid:
        alpha = _mask_alpha(img)
        img = Image.new("RGBA", img.size, parse_color(p.cmds["color"], cmd="color").rgba())
        if img.getpixel((0, 0))[3] < 255:
            alpha = ImageChops.multiply(alpha, img.getchannel("A"))
    elif p.mask is not None:
        # Decoded at the size the image was (a draft decode may have reduced it).
        alpha = _mask_alpha(codec.decode(p.mask, scale_hint=None).image)
        if alpha.size != img.size:
            alpha = alpha.resize(img.size, _LANCZOS)
    elif use == "norm" and not (grow and img.mode in ("RGBA", "LA")):
        return img
    else:
        alpha = img.getchannel("A") if img.mode in ("RGBA", "LA") else None
    if alpha is not None and grow:
        alpha = grown(alpha, grow)
    if use == "off":
        alpha = None
    elif use == "invert":
        alpha = Image.new("L", img.size, 0) if alpha is None else ImageChops.invert(alpha)  # no mask: hidden
    img = img.convert("RGBA") if img.mode != "RGBA" else img.copy()
    img.putalpha(alpha if alpha is not None else 255)
    return img


# op_growMask's range (rendering.md §4.9).
_GROW_MASK = 100


def _grow_radius(p: _Plan, decoded_per_source: float, out_per_source: float) -> int:
    """``op_growMask=r`` (full-resolution source pixels, scaled with the layer) or ``op_growMaskR=r``
    (layer pixels, as is), as a radius in decoded pixels; 0 when neither is given."""
    c = p.cmds
    if c.get("op_growmask"):
        r = parse_ints(c["op_growmask"], 1, cmd="op_growMask", lo=-_GROW_MASK, hi=_GROW_MASK)[0]
        return round(r * decoded_per_source)
    if c.get("op_growmaskr"):
        r = parse_ints(c["op_growmaskr"], 1, cmd="op_growMaskR", lo=-_GROW_MASK, hi=_GROW_MASK)[0]
        return round(r * decoded_per_source / out_per_source)
    return 0


def _clip_embedded(p: _Plan, img: Image.Image) -> Image.Image:
    """``clipPathE=``: transparent outside the named embedded paths (their intersection), drawn on
    the decoded source so that crop and scale follow; names the source lacks are ignored."""
    if not p.cmds.get("clippathe") or p.solid:
        return img
    found = paths.embedded(p.source.data, p.source.format)
    shapes = [found[n] for n in paths.names(p.cmds["clippathe"]) if n in found]
    if not shapes:
        return img
    img = img.convert("RGBA") if img.mode != "RGBA" else img.copy()
    alpha = img.getchannel("A")
    for shape in shapes:
        alpha = ImageChops.multiply(alpha, paths.mask(shape, img.size, img.size))
    img.putalpha(alpha)
    return img


def _clip(img: Image.Image, value: str, scale: float, at: tuple[int, int] = (0, 0)) -> Image.Image:
    """``clipPath=``: transparent outside the path, given in pixels of ``img``'s rect at full size
    (``at``: the path coordinates of the rect's top-left)."""
    shape = paths.parse_clip_path(value)
    img = img.convert("RGBA") if img.mode != "RGBA" else img.copy()
    drawn = paths.mask(shape, img.size, (scale, scale), (-at[0] * scale, -at[1] * scale))
    img.putalpha(ImageChops.multiply(img.getchannel("A"), drawn))
    return img


def _mask_alpha(mask: Image.Image) -> Image.Image:
    """A mask image's alpha when it has one, else its grey values (r-mask.md)."""
    if mask.mode in ("RGBA", "LA", "PA") or (mask.mode == "P" and "transparency" in mask.info):
        return mask.convert("RGBA").getchannel("A")
    return mask.convert("L")


def _opac(value: str, *, first: bool = False) -> float:
    """``opac=opacity[,fillOpacity]`` as a factor; ``first``: the opacity alone (what effects share)."""
    parts = parse_ints(value, (1, 2), cmd="opac", lo=0, hi=100)
    return parts[0] * (parts[1] if len(parts) > 1 and not first else 100) / 10000


def _opacity(img: Image.Image, factor: float) -> Image.Image:
    if factor >= 1:
        return img
    alpha = img.getchannel("A").point(lambda a: round(a * factor))
    out = img.copy()
    out.putalpha(alpha)
    return out


def _behind(img: Image.Image, rgba: tuple[int, int, int, int]) -> Image.Image:
    under = Image.new("RGBA", img.size, rgba)
    under.alpha_composite(img)
    return under
