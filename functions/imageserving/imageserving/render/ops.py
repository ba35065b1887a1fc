"""Image operations ``op_*`` (rendering.md §8): one parse function and one apply function each.

Every operation registers itself by command name, in the order operations run: the composite
operations in the order §3 stage 6 lists them, then final sharpening (stage 9). The order of the
commands in the URL does not matter, so equal sets of commands always give equal pixels.

A parse function turns the decoded value into parameters (``None`` when the value has no effect)
or raises ``ISError("bad_request")``; it runs before any source is read. An apply function
takes an image in mode L, LA, RGB or RGBA and returns one (colour operations may turn L into
RGB); alpha is left alone except by the neighbourhood filters, which work premultiplied.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from fractions import Fraction
from statistics import NormalDist

from PIL import Image, ImageChops, ImageEnhance, ImageFilter, ImageOps

from ..errors import ISError
from ..protocol.values import parse_color, parse_flag, parse_int, parse_real, round_half_up

COMPOSITE, FINAL = "composite", "final"
_IDENTITY = list(range(256))


@dataclass(frozen=True)
class OpContext:
    """What an operation needs to know about the image it is given.

    ``scale``: pixels of that image per composite pixel (x, y), for radii given in composite
    pixels. ``composite``: the whole composite as it was before the operations of this run (any
    resolution: ``composite_scale``), for statistics that must not depend on which part of the
    composite a reply shows (``rect=`` tiles); ``None`` when the image given is the whole
    composite. ``usm_radius``: D5's switch, ``doc`` (op_usm radius in full-resolution pixels) or
    ``output`` (in reply pixels).
    """

    scale: tuple[float, float] = (1.0, 1.0)
    composite: Callable[[], Image.Image] | None = None
    composite_scale: tuple[float, float] = (1.0, 1.0)
    usm_radius: str = "doc"


@dataclass(frozen=True)
class OpSpec:
    name: str
    stage: str  # COMPOSITE (§3 stage 6) or FINAL (stage 9)
    parse: Callable[[str], object | None]
    apply: Callable[[Image.Image, object, OpContext], Image.Image]
    commutes: bool  # may run on the scaled image instead (§16.5)
    margin: Callable[[object, OpContext], int] | None  # neighbours read on each side, in pixels


@dataclass(frozen=True)
class Op:
    spec: OpSpec
    params: object

    def apply(self, img: Image.Image, ctx: OpContext) -> Image.Image:
        return self.spec.apply(img, self.params, ctx)


@dataclass(frozen=True)
class OpPlan:
    """The operations of one request, by where the pipeline runs them.

    ``composite``: on the composite before the view transform; ``scaled``: composite operations
    that commute with resampling, run on the scaled content instead (cheaper, §16.5); ``final``:
    sharpening of the view after all scaling."""

    composite: tuple[Op, ...] = ()
    scaled: tuple[Op, ...] = ()
    final: tuple[Op, ...] = ()


OPS: dict[str, OpSpec] = {}


def register(
    name: str,
    stage: str,
    parse: Callable[[str], object | None],
    *,
    commutes: bool = True,
    margin: Callable[[object, OpContext], int] | None = None,
):
    """Register the decorated apply function for command ``name`` (lower case)."""

    def add(apply):
        OPS[name] = OpSpec(name, stage, parse, apply, commutes, margin)
        return apply

    return add


def parse_ops(cmds: Mapping[str, str]) -> OpPlan:
    """Validate every ``op_*`` command of ``cmds`` (lower-case names, decoded values) that this
    server implements; the others are left to whoever handles them."""
    chosen = [
        Op(spec, params)
        for name, spec in OPS.items()
        if name in cmds and (params := spec.parse(cmds[name])) is not None
    ]
    stage6 = [op for op in chosen if op.spec.stage == COMPOSITE]
    # Everything up to the last operation that must see composite pixels runs there, so the
    # documented order holds; the rest runs after scaling.
    cut = max((i + 1 for i, op in enumerate(stage6) if not op.spec.commutes), default=0)
    return OpPlan(tuple(stage6[:cut]), tuple(stage6[cut:]), tuple(op for op in chosen if op.spec.stage == FINAL))


def run(img: Image.Image, ops: tuple[Op, ...], ctx: OpContext) -> Image.Image:
    for i, op in enumerate(ops):
        img = op.apply(img, _after(ctx, ops[:i]))
    return img


def _after(ctx: OpContext, done: tuple[Op, ...]) -> OpContext:
    """``ctx`` with its composite as the operations ``done`` so far have changed it."""
    if not done or ctx.composite is None:
        return ctx
    sample, own = ctx.composite, replace(ctx, scale=ctx.composite_scale, composite=None)
    return replace(ctx, composite=lambda: run(sample(), done, own))


def margin(ops: tuple[Op, ...], ctx: OpContext) -> int:
    """Pixels of context each side that ``ops`` read beyond the pixels they change."""
    return max((op.spec.margin(op.params, ctx) for op in ops if op.spec.margin), default=0)


# ------------------------------------------------------------------------------ value helpers
def _parts(value: str, cmd: str, most: int) -> list[str]:
    """Comma-separated parts, padded with "" up to ``most``; empty optional parts take defaults."""
    parts = value.split(",")
    if len(parts) > most:
        raise ISError("bad_request", f"{cmd}={value}: at most {most} values")
    if not parts[0]:
        raise ISError("bad_request", f"{cmd}={value}: the first value is required")
    return parts + [""] * (most - len(parts))


def _adjustment(cmd: str, lo: int = -100, hi: int = 100) -> Callable[[str], int | None]:
    def parse(value: str) -> int | None:
        return parse_int(value, cmd=cmd, lo=lo, hi=hi) or None

    return parse


def _switch(cmd: str) -> Callable[[str], bool | None]:
    def parse(value: str) -> bool | None:
        return parse_flag(value, cmd=cmd) or None

    return parse


def _clip(v: Fraction | int) -> int:
    return min(255, max(0, round_half_up(v)))


def _offset(adj: int) -> int:
    """``R(2.55 · adj)``: an adjustment in percent as a level offset."""
    return round_half_up(Fraction(255, 100) * adj)


def _point(img: Image.Image, *luts: list[int]) -> Image.Image:
    """Apply one LUT per colour band (cycled); alpha is kept."""
    table: list[int] = []
    colour = 0
    for band in img.getbands():
        if band == "A":
            table += _IDENTITY
        else:
            table += luts[colour % len(luts)]
            colour += 1
    return img.point(table)


def _rgb(img: Image.Image) -> Image.Image:
    """Colour operations work on RGB: gray turns into RGB naïvely (§8)."""
    return img.convert({"L": "RGB", "LA": "RGBA"}[img.mode]) if img.mode in ("L", "LA") else img


def _split_alpha(img: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    if img.mode == "RGBA":
        return img.convert("RGB"), img.getchannel("A")
    return img, None


def _with_alpha(img: Image.Image, alpha: Image.Image | None) -> Image.Image:
    if alpha is None:
        return img
    out = img.convert("RGBA")
    out.putalpha(alpha)
    return out


def _premultiplied(img: Image.Image, fn: Callable[[Image.Image], Image.Image]) -> Image.Image:
    """Neighbourhood filters on premultiplied data, so that transparent pixels (whose colour
    nobody sees) do not bleed into visible edges."""
    if img.mode in ("RGBA", "LA"):
        return fn(img.convert(img.mode[:-1] + "a")).convert(img.mode)
    return fn(img)


# ------------------------------------------------------------------- composite operations
def _parse_blur(value: str) -> float | None:
    return float(parse_real(value, cmd="op_blur", lo=0, hi=100)) or None


def _blur_radii(radius: float, ctx: OpContext) -> tuple[float, float]:
    return radius * ctx.scale[0], radius * ctx.scale[1]


@register("op_blur", COMPOSITE, _parse_blur, margin=lambda r, ctx: math.ceil(3 * max(_blur_radii(r, ctx))) + 2)
def _blur(img: Image.Image, radius: float, ctx: OpContext) -> Image.Image:
    """Gaussian blur, ``radius`` (σ) in composite pixels."""
    radii = _blur_radii(radius, ctx)
    return _premultiplied(img, lambda im: im.filter(ImageFilter.GaussianBlur(radii)))


@register("op_brightness", COMPOSITE, _adjustment("op_brightness"))
def _brightness(img: Image.Image, adj: int, ctx: OpContext) -> Image.Image:
    """``v' = clip(v + R(2.55·adj))``."""
    d = _offset(adj)
    return _point(img, [_clip(v + d) for v in range(256)])


@register("op_contrast", COMPOSITE, _adjustment("op_contrast"))
def _contrast(img: Image.Image, adj: int, ctx: OpContext) -> Image.Image:
    """Around level 128: ``f = 1 + adj/100`` below 0, ``100/(100 − adj)`` above; 100 thresholds."""
    if adj >= 100:
        lut = [0 if v < 128 else 255 if v > 128 else 128 for v in range(256)]
    else:
        f = Fraction(100 + adj, 100) if adj <= 0 else Fraction(100, 100 - adj)
        lut = [_clip(128 + (v - 128) * f) for v in range(256)]
    return _point(img, lut)


def _parse_colorbalance(value: str) -> tuple[int, int, int] | None:
    parts = value.split(",")
    if len(parts) != 3:
        raise ISError("bad_request", f"op_colorbalance={value}: expected r,g,b")
    rgb = tuple(parse_int(p, cmd="op_colorbalance", lo=-100, hi=100) for p in parts)
    return rgb if any(rgb) else None  # type: ignore[return-value]


@register("op_colorbalance", COMPOSITE, _parse_colorbalance)
def _colorbalance(img: Image.Image, rgb: tuple[int, int, int], ctx: OpContext) -> Image.Image:
    """Per channel ``v' = clip(v + R(2.55·adj))``."""
    return _point(_rgb(img), *([_clip(v + _offset(adj)) for v in range(256)] for adj in rgb))


@dataclass(frozen=True)
class Colorize:
    color: tuple[int, int, int]
    normalize: bool
    contrast: Fraction


def _parse_colorize(value: str) -> Colorize:
    # A decimal colour has commas of its own: it ends where the off|norm keyword (or an empty
    # part) stands.
    parts = value.split(",")
    end = next((i for i, part in enumerate(parts) if i and part.lower() in ("", "off", "norm")), len(parts))
    color = ",".join(parts[:end])
    mode, contrast = (parts[end:] + ["", ""])[:2]
    if len(parts) > end + 2:
        raise ISError("bad_request", f"op_colorize={value}: expected color[,off|norm[,contrast]]")
    c = parse_color(color, cmd="op_colorize")
    if c.kind != "rgb":
        raise ISError("bad_request", f"op_colorize={value}: the colour must be RGB")
    if mode.lower() not in ("", "norm", "off"):
        raise ISError("bad_request", f"op_colorize={value}: expected off or norm")
    level = parse_real(contrast, cmd="op_colorize", lo=0, hi=100) if contrast else Fraction(0)
    return Colorize(c.rgb(), mode.lower() != "off", level)


@register("op_colorize", COMPOSITE, _parse_colorize)
def _colorize(img: Image.Image, p: Colorize, ctx: OpContext) -> Image.Image:
    """Luminance mapped black → ``color`` (at 128) → white; ``norm`` first moves the composite's
    median luminance to 128 and, with a contrast > 0, scales levels around 128 so that they span
    ``contrast`` % of the range."""
    rgb, alpha = _split_alpha(_rgb(img))
    gray = rgb.convert("L")
    if p.normalize:
        gray = gray.point(_normalizer(ctx.composite() if ctx.composite else img, p.contrast))
    out = ImageOps.colorize(gray, (0, 0, 0), (255, 255, 255), mid=p.color, midpoint=128)
    return _with_alpha(out, alpha)


def _normalizer(composite: Image.Image, contrast: Fraction) -> list[int]:
    """The LUT of ``norm``, from the luminance histogram of the visible composite pixels."""
    mask = composite.getchannel("A") if composite.mode in ("RGBA", "LA") else None
    hist = composite.convert("L").histogram(mask)
    total = sum(hist)
    if not total:
        return _IDENTITY
    seen, median = 0, 0
    for median, count in enumerate(hist):  # noqa: B007 - the break keeps it
        seen += count
        if 2 * seen >= total:
            break
    shift = 128 - median
    factor = Fraction(1)
    if contrast > 0:
        used = [v for v, count in enumerate(hist) if count]
        reach = max(128 - (used[0] + shift), used[-1] + shift - 128)
        if reach > 0:
            factor = contrast * Fraction(255, 200) / reach
    return [_clip(128 + (v + shift - 128) * factor) for v in range(256)]


@register("op_hue", COMPOSITE, _adjustment("op_hue", -180, 180))
def _hue(img: Image.Image, degrees: int, ctx: OpContext) -> Image.Image:
    """Hue turned in HSV: ``H' = (H + R(adj·256/360)) mod 256``; grays stay gray."""
    if img.mode in ("L", "LA"):
        return img
    shift = round_half_up(Fraction(degrees * 256, 360))
    rgb, alpha = _split_alpha(img)
    h, s, v = rgb.convert("HSV").split()
    h = h.point([(x + shift) % 256 for x in range(256)])
    return _with_alpha(Image.merge("HSV", (h, s, v)).convert("RGB"), alpha)


@register("op_saturation", COMPOSITE, _adjustment("op_saturation"))
def _saturation(img: Image.Image, adj: int, ctx: OpContext) -> Image.Image:
    """``ImageEnhance.Color(1 + adj/100)``: −100 is gray; grays stay gray."""
    if img.mode in ("L", "LA"):
        return img
    return ImageEnhance.Color(img).enhance(1 + adj / 100)


@register("op_invert", COMPOSITE, _switch("op_invert"))
def _invert(img: Image.Image, _: bool, ctx: OpContext) -> Image.Image:
    return _point(img, [255 - v for v in range(256)])


@dataclass(frozen=True)
class Noise:
    amount: int  # percent of 255
    gaussian: bool
    monochrome: bool


def _parse_noise(value: str) -> Noise | None:
    amount, kind, mono = _parts(value, "op_noise", 3)
    level = parse_int(amount, cmd="op_noise", lo=0, hi=100)
    if kind.lower() not in ("", "uniform", "gaussian"):
        raise ISError("bad_request", f"op_noise={value}: expected uniform or gaussian")
    monochrome = parse_flag(mono, cmd="op_noise") if mono else False
    return Noise(level, kind.lower() == "gaussian", monochrome) if level else None


# Noise keeps its documented stage (§16.5): it does not commute with resampling.
@register("op_noise", COMPOSITE, _parse_noise, commutes=False)
def _noise(img: Image.Image, p: Noise, ctx: OpContext) -> Image.Image:
    """Add noise of amplitude ``A = R(amount % · 255)``: uniform in ``[−A, A]`` or Gaussian with
    σ = A/2; ``monochrome`` adds the same value to every channel. The noise comes from SHAKE-128
    seeded with the parameters and the image size, so equal requests give equal bytes."""
    a = round_half_up(Fraction(p.amount * 255, 100))
    if p.gaussian:
        normal = NormalDist(0, a / 2)
        offsets = [round_half_up(Fraction(normal.inv_cdf((u + 0.5) / 256))) for u in range(256)]
    else:
        offsets = [u * (2 * a + 1) // 256 - a for u in range(256)]
    colour = 1 if img.mode in ("L", "LA") else 3
    drawn = 1 if p.monochrome else colour
    seed = f"op_noise {p} {img.mode} {img.width}x{img.height}".encode()
    raw = hashlib.shake_128(seed).digest(img.width * img.height * drawn)
    noise = Image.frombytes("L" if drawn == 1 else "RGB", img.size, raw)
    bands = noise.split() * (colour // drawn)

    def plane(lut: list[int]) -> Image.Image:
        planes = [b.point(lut) for b in bands]
        if img.mode in ("LA", "RGBA"):
            planes.append(Image.new("L", img.size, 0))
        return Image.merge(img.mode, planes)

    raised = ImageChops.add(img, plane([max(n, 0) for n in offsets]))
    return ImageChops.subtract(raised, plane([max(-n, 0) for n in offsets]))


# ----------------------------------------------------------------------- final sharpening
@register("op_sharpen", FINAL, _switch("op_sharpen"), margin=lambda p, ctx: 2)
def _sharpen(img: Image.Image, _: bool, ctx: OpContext) -> Image.Image:
    return _premultiplied(img, lambda im: im.filter(ImageFilter.SHARPEN))


@dataclass(frozen=True)
class Usm:
    amount: Fraction  # 1 = 100 %
    radius: float
    threshold: int
    monochrome: bool
    scaled: bool  # op_usm: radius in full-resolution pixels (D5); op_usmR: as given


def _parse_usm(cmd: str, scaled: bool) -> Callable[[str], Usm | None]:
    name = "op_usmR" if cmd == "op_usmr" else cmd

    def parse(value: str) -> Usm | None:
        amount, radius, threshold, mono = _parts(value, name, 4)
        usm = Usm(
            parse_real(amount, cmd=name, lo=0, hi=5),
            float(parse_real(radius, cmd=name, lo=0, hi=250)) if radius else 0.0,
            parse_int(threshold, cmd=name, lo=0, hi=255, round_real=True) if threshold else 0,
            parse_flag(mono, cmd=name) if mono else False,
            scaled,
        )
        return usm if usm.amount and usm.radius else None

    return parse


def _usm_radius(p: Usm, ctx: OpContext) -> float:
    if p.scaled and ctx.usm_radius == "doc":
        # Reply pixels per full-resolution pixel, never above 1 (rendering.md D5).
        return p.radius * min(1.0, max(ctx.scale))
    return p.radius


def _usm(img: Image.Image, p: Usm, ctx: OpContext) -> Image.Image:
    """Unsharp mask; ``monochrome`` sharpens luminance only (and the alpha, premultiplied)."""
    f = ImageFilter.UnsharpMask(
        radius=_usm_radius(p, ctx), percent=round_half_up(p.amount * 100), threshold=p.threshold
    )
    if not p.monochrome or img.mode in ("L", "LA"):
        return _premultiplied(img, lambda im: im.filter(f))
    alpha = None
    rgb = img
    if img.mode == "RGBA":
        r, g, b, a = img.convert("RGBa").split()
        rgb, alpha = Image.merge("RGB", (r, g, b)), a.filter(f)
    y, cb, cr = rgb.convert("YCbCr").split()
    out = Image.merge("YCbCr", (y.filter(f), cb, cr)).convert("RGB")
    if alpha is None:
        return out
    return Image.merge("RGBa", (*out.split(), alpha)).convert("RGBA")


for _name, _scaled in (("op_usm", True), ("op_usmr", False)):
    register(_name, FINAL, _parse_usm(_name, _scaled), margin=lambda p, ctx: math.ceil(3 * _usm_radius(p, ctx)) + 2)(
        _usm
    )
