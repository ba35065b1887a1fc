"""Effect layers (rendering.md §13, the reference's "Layer Effects"): drop/inner shadow, glow,
outlines — a colour drawn through a mask made from the parent layer's alpha.

An effect accepts ``blendMode``, ``color`` (required), ``maskUse``, ``opac``, ``op_blur``,
``op_grow``, ``op_noise`` and ``pos`` (its offset from the parent); everything else in its segment
is ignored, as the reference says. The steps, in order: mask → grow → blur (feather) → colour →
noise → opacity → shift by ``pos`` → (inner) clip to the parent / (outer) ApplyEffectMask.

Which mask: an **outer** effect (``effect<0``, drawn under the parent) starts from the parent's
alpha, so a shadow has the parent's outline. An **inner** effect (``effect>0``, drawn over the
parent, only where it is opaque) starts from the parent's *background* — its inverted alpha, with
everything outside the parent's rect counted as background — so that ``$shadow$`` casts a shadow
inward from the top-left edges and ``op_grow=3`` makes the inside-edge border of the reference's
example (what Photoshop's inner shadow and inner glow do). ``maskUse=invert`` swaps the two;
``maskUse=off`` uses the parent's whole rect (an outer invert is kept inside that rect too).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PIL import Image, ImageChops, ImageFilter

from ..errors import ISError
from ..protocol.values import parse_color, parse_int, parse_ints
from . import ops
from .blend import parse_blend_mode

MASK_USES = ("norm", "invert", "off")
# op_grow's range (r-op-grow.md).
_GROW = 100


@dataclass(frozen=True)
class Effect:
    number: int  # < 0 outer, > 0 inner; z-order among the parent's effects
    color: tuple[int, int, int, int]
    opacity: float  # opac= of the effect (its first value only), 0-1
    blur: float | None  # op_blur radius in composite pixels
    grow: int  # op_grow radius in composite pixels, < 0 erodes
    noise: ops.Op | None
    pos: tuple[int, int]  # offset from the parent, composite pixels
    mask_use: str
    blend: str

    @property
    def inner(self) -> bool:
        return self.number > 0


def parse_effect(number: int, cmds: dict[str, str], where: str) -> Effect:
    """One effect layer's commands (validated before any source is read)."""
    if not cmds.get("color"):
        raise ISError("bad_request", f"{where} effect={number}: an effect layer needs color=")
    opacity = 1.0
    if cmds.get("opac"):
        opacity = parse_ints(cmds["opac"], (1, 2), cmd="opac", lo=0, hi=100)[0] / 100
    blur = ops.OPS["op_blur"].parse(cmds["op_blur"]) if cmds.get("op_blur") else None
    grow = parse_int(cmds["op_grow"], cmd="op_grow", lo=-_GROW, hi=_GROW) if cmds.get("op_grow") else 0
    noise = None
    if cmds.get("op_noise"):
        params = ops.OPS["op_noise"].parse(cmds["op_noise"])
        noise = ops.Op(ops.OPS["op_noise"], params) if params is not None else None
    pos = tuple(parse_ints(cmds["pos"], 2, cmd="pos")) if cmds.get("pos") else (0, 0)
    mask_use = (cmds.get("maskuse") or "norm").strip().lower()
    if mask_use not in MASK_USES:
        raise ISError("bad_request", f"maskUse={cmds['maskuse']}: expected norm, invert or off")
    return Effect(
        number,
        parse_color(cmds["color"], cmd="color").rgba(),
        opacity,
        blur,
        grow,
        noise,
        pos,  # type: ignore[arg-type]
        mask_use,
        parse_blend_mode(cmds.get("blendmode")),
    )


def render(
    effect: Effect, parent: Image.Image, scale: float, *, parent_opacity: float = 1.0, apply_mask: bool = True
) -> tuple[Image.Image, tuple[int, int]]:
    """The effect as RGBA pixels at ``scale`` and their top-left relative to the parent's.

    ``parent``: the parent layer's rect as drawn (RGBA at ``scale``); ``parent_opacity``: the
    parent's own ``opac=`` (first value), which its effects share (rendering.md §4.3 ``opac``);
    ``apply_mask``: ApplyEffectMask — an outer effect does not show through a translucent parent.
    """
    alpha = parent.getchannel("A")
    w, h = alpha.size
    px, py = round(effect.pos[0] * scale), round(effect.pos[1] * scale)
    if effect.inner:  # shifted past the parent, an inner effect samples only background: same pixels, bounded margin
        px, py = max(-w, min(w, px)), max(-h, min(h, py))
    grow = round(abs(effect.grow) * scale)
    blur = effect.blur * scale if effect.blur else 0.0
    m = grow + (math.ceil(3 * blur) + 2 if blur else 0) + (max(abs(px), abs(py)) if effect.inner else 0)
    mask = Image.new("L", (w + 2 * m, h + 2 * m), 0)
    mask.paste(alpha if effect.mask_use != "off" else 255, (m, m, m + w, m + h))
    if effect.inner != (effect.mask_use == "invert"):
        mask = ImageChops.invert(mask)
    if effect.mask_use == "off" and effect.inner:
        mask = Image.new("L", mask.size, 255)
    mask = grown(mask, grow if effect.grow > 0 else -grow)
    if blur:
        mask = mask.filter(ImageFilter.GaussianBlur(blur))
    if effect.inner:
        # The parent's pixel (x, y) shows the effect's (x − px, y − py).
        mask = ImageChops.multiply(mask.crop((m - px, m - py, m - px + w, m - py + h)), alpha)
        at = (0, 0)
    else:
        if effect.mask_use == "invert":
            mask = ImageChops.multiply(mask, _placed(Image.new("L", (w, h), 255), mask.size, (m, m), 0))
        if apply_mask:
            mask = ImageChops.multiply(mask, _placed(ImageChops.invert(alpha), mask.size, (m - px, m - py), 255))
        at = (px - m, py - m)
    img = Image.new("RGBA", mask.size, effect.color[:3] + (255,))
    if effect.noise is not None:
        img = effect.noise.apply(img, ops.OpContext(scale=(scale, scale)))
    factor = effect.color[3] / 255 * effect.opacity * parent_opacity
    img.putalpha(mask if factor >= 1 else mask.point(lambda a: round(a * factor)))
    return img, at


# Radii up to this many pixels are grown exactly, 3x3 at a time; larger ones on a mask reduced so that
# the steps stay at this many (their edges are as soft as the reduction), bounding the work.
_EXACT_GROW = 8


def grown(mask: Image.Image, radius: int) -> Image.Image:
    """``mask`` (mode L) dilated (``radius > 0``) or eroded (``< 0``) by a square of ``|radius|``."""
    steps = abs(radius)
    if not steps:
        return mask
    rank = ImageFilter.MaxFilter(3) if radius > 0 else ImageFilter.MinFilter(3)
    work, factor = mask, 1.0
    if steps > _EXACT_GROW:
        factor = steps / _EXACT_GROW
        small = (max(1, round(mask.width / factor)), max(1, round(mask.height / factor)))
        work, steps = mask.resize(small, Image.Resampling.BOX), _EXACT_GROW
    for _ in range(steps):
        work = work.filter(rank)
    return work if factor == 1.0 else work.resize(mask.size, Image.Resampling.BILINEAR)


def _placed(img: Image.Image, size: tuple[int, int], at: tuple[int, int], fill: int) -> Image.Image:
    out = Image.new("L", size, fill)
    out.paste(img, at)
    return out
