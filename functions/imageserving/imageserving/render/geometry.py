"""Pure geometry of an image reply: layer-0 transforms, view transform, rect=, MaxPix, dpr, draft.

Nothing here touches pixels or storage; every size is decided before a source is decoded
(rendering.md §3 stage 1, §1.1 item 4). Sizes are exact: rationals and ``R(x) = floor(x + 1/2)``
with a minimum of 1 (§0). The one float computation is the bounding box of a rotation by an
arbitrary angle, which reproduces Pillow's own arithmetic so the plan matches what
``Image.rotate(..., expand=True)`` will produce.

Coordinate spaces, from source to reply:

* **source** — pixels of the decoded layer-0 image (after EXIF orientation);
* **layer** — layer 0's rect after crop → flip → rotate → extend (→ ``comp`` flip); in a
  single-image request this *is* the composite;
* **view** — the view canvas (``view_width × view_height``);
* **sent** — the image actually returned (the ``rect=`` window, or the view itself).

Fast path for a single-image request whose rotation is a multiple of 90°, without building the
composite::

    region = view.project(layer.mapping.content_box)      # sent pixels showing source pixels (if any)
    box = layer.mapping.source_box(view.source_box(region))
    size = region width/height, swapped when layer.mapping.swaps_axes
    piece = source.resize(size, resample, box=box)
    piece = piece.transpose(Image.Transpose[layer.mapping.orientation])  # when not None
    canvas.paste(piece, region[:2])     # canvas: width × height, background elsewhere
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from ..errors import ISError
from ..protocol.values import (
    Color,
    parse_color,
    parse_flag,
    parse_int,
    parse_ints,
    parse_real,
    parse_reals,
    round_half_up,
    split_list,
)

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive)
Rect = tuple[int, int, int, int]  # x, y, w, h
FBox = tuple[float, float, float, float]

FIT_MODES = frozenset(("fit", "constrain", "crop", "wrap", "stretch", "hfit", "vfit"))
FLIPS = frozenset(("lr", "ud", "lrud"))
THUMB_CROP, THUMB_FIT, THUMB_TEXTURE = 1, 2, 3
# ThumbHorizAlign / ThumbVertAlign 1, 2, 3 -> alignment -1, 0, +1.
_THUMB_ALIGN = {1: Fraction(-1), 2: Fraction(0), 3: Fraction(1)}
_ZERO, _ONE = Fraction(0), Fraction(1)


def _dim(x: Fraction | int) -> int:
    """A computed pixel dimension: ``max(1, R(x))`` (§0)."""
    return max(1, round_half_up(x))


def _align_offset(view: int, size: int, a: Fraction) -> int:
    """``off(V, S, a) = floor((V − S)(a + 1) / 2)``: odd surplus goes right/bottom (§0, D4)."""
    return math.floor((view - size) * (a + 1) / 2)


def _bad(cmd: str, value: str, why: str) -> ISError:
    return ISError("bad_request", f"{cmd}={value}: {why}")


# =========================================================================== layer 0 (§4.2, §4.3)


@dataclass(frozen=True)
class LayerRequest:
    """Layer-0 geometry commands. Exactly one of ``crop``/``crop_n`` and of ``extend``/``extend_n``
    is set when given. ``rotate`` is clockwise degrees in ``[0, 360)``. ``flip`` acts on the layer
    before rotation; ``comp_flip`` is ``flip=`` addressed to ``comp``, which acts on the composite
    after ``extend`` (§4.1 routing) — the same thing as a final flip of layer 0 when it is alone."""

    crop: Rect | None = None  # in source pixels
    crop_n: tuple[Fraction, ...] | None = None
    flip: str | None = None
    rotate: Fraction = _ZERO
    extend: tuple[int, int, int, int] | None = None  # left, top, right, bottom
    extend_n: tuple[Fraction, ...] | None = None
    comp_flip: str | None = None


def parse_flip(value: str) -> str:
    """``flip=lr|ud|lrud`` (any case)."""
    flip = value.lower()
    if flip not in FLIPS:
        raise _bad("flip", value, "expected lr, ud or lrud")
    return flip


def open_crop(x: int, y: int, w: int, h: int, src_w: int, src_h: int) -> tuple[int, int, int, int]:
    """``crop=coord,size``: the reference types its size as ``size``, where 0 means "not
    constrained" (rendering.md §2.2), so a 0 width or height runs to the source's edge.
    Storefronts send ``crop=0,0,0,0`` for "no crop" (www.jcrew.com/s7-img-facade/…?crop=0,0,0,0).
    A rect left with no width or height (x past the right edge) is still invalid."""
    w, h = w or src_w - x, h or src_h - y
    if w <= 0 or h <= 0:
        raise ISError("bad_request", f"crop: width and height must be greater than 0 (got {w}x{h})")
    return x, y, w, h


def parse_layer(cmds: Mapping[str, str], *, comp: bool = False) -> LayerRequest:
    """Read ``crop``/``cropn``/``extend``/``extendn``/``flip``/``rotate`` from one layer's commands.

    ``comp=True`` when the commands were addressed to ``comp`` (a simple request): ``flip=`` is
    then the composite flip. ``crop=`` and ``cropN=`` (likewise ``extend``/``extendN``) replace
    each other; the one later in ``cmds``' order wins.
    """
    fields: dict[str, object] = {}
    for name, value in cmds.items():
        if name == "crop":
            x, y, w, h = parse_ints(value, 4, cmd=name)
            if w < 0 or h < 0:
                raise _bad(name, value, "width and height must not be negative")
            fields.update(crop=(x, y, w, h), crop_n=None)
        elif name == "cropn":
            nx, ny, nw, nh = parse_reals(value, 4, cmd="cropN")
            if nw <= 0 or nh <= 0:
                raise _bad("cropN", value, "width and height must be greater than 0")
            fields.update(crop=None, crop_n=(nx, ny, nw, nh))
        elif name == "extend":
            fields.update(extend=parse_ints(value, 4, cmd=name), extend_n=None)
        elif name == "extendn":
            fields.update(extend=None, extend_n=parse_reals(value, 4, cmd="extendN"))
        elif name == "flip":
            fields["comp_flip" if comp else "flip"] = parse_flip(value)
        elif name == "rotate":
            fields["rotate"] = parse_real(value, cmd=name) % 360
    return LayerRequest(**fields)  # type: ignore[arg-type]


@dataclass(frozen=True)
class SourceMap:
    """Integer affine map from source pixels to layer pixels when every turn is a multiple of 90°:
    ``x' = a·x + b·y + c``, ``y' = d·x + e·y + f`` (a signed permutation plus a shift)."""

    a: int
    b: int
    c: int
    d: int
    e: int
    f: int
    source_size: tuple[int, int]
    crop_box: Box
    layer_size: tuple[int, int]

    @property
    def orientation(self) -> str | None:
        """The ``PIL.Image.Transpose`` member name turning a piece cut from the source (in source
        orientation) into layer orientation; ``None`` for the identity."""
        return _TRANSPOSE_NAMES[(self.a, self.b, self.d, self.e)]

    @property
    def swaps_axes(self) -> bool:
        return self.a == 0

    def _forward(self, x: Fraction | int, y: Fraction | int) -> tuple[Fraction | int, Fraction | int]:
        return self.a * x + self.b * y + self.c, self.d * x + self.e * y + self.f

    def forward(self, x: Fraction | int, y: Fraction | int) -> tuple[Fraction | int, Fraction | int]:
        """A source point in layer pixels (image maps move their coordinates with it)."""
        return self._forward(x, y)

    def _backward(self, x: Fraction, y: Fraction) -> tuple[Fraction, Fraction]:
        # The linear part is orthogonal, so its inverse is its transpose.
        x, y = x - self.c, y - self.f
        return self.a * x + self.d * y, self.b * x + self.e * y

    @property
    def content_box(self) -> Box | None:
        """Layer pixels covered by source pixels (the rest is crop overhang or extend margin);
        ``None`` when the crop lies entirely outside the source or extend removed it."""
        x0, y0, x1, y1 = self.crop_box
        sw, sh = self.source_size
        inner = (max(x0, 0), max(y0, 0), min(x1, sw), min(y1, sh))
        if inner[0] >= inner[2] or inner[1] >= inner[3]:
            return None
        box = _map_box(self._forward, inner)
        lw, lh = self.layer_size
        out = (max(int(box[0]), 0), max(int(box[1]), 0), min(int(box[2]), lw), min(int(box[3]), lh))
        return out if out[0] < out[2] and out[1] < out[3] else None

    def source_box(self, box: tuple[float | Fraction, ...]) -> FBox:
        """Source-pixel box (fractional, for ``Image.resize(box=...)``) of a layer-space box,
        clamped to the source pixels that the crop keeps."""
        fx0, fy0, fx1, fy1 = _map_box(self._backward, tuple(Fraction(v) for v in box))
        x0, y0, x1, y1 = self.crop_box
        sw, sh = self.source_size
        lo_x, lo_y, hi_x, hi_y = max(x0, 0), max(y0, 0), min(x1, sw), min(y1, sh)
        return (
            float(min(max(fx0, lo_x), hi_x)),
            float(min(max(fy0, lo_y), hi_y)),
            float(min(max(fx1, lo_x), hi_x)),
            float(min(max(fy1, lo_y), hi_y)),
        )


# (a, b, d, e) of the linear part -> PIL.Image.Transpose member (ROTATE_90 is counter-clockwise).
_TRANSPOSE_NAMES = {
    (1, 0, 0, 1): None,
    (-1, 0, 0, 1): "FLIP_LEFT_RIGHT",
    (1, 0, 0, -1): "FLIP_TOP_BOTTOM",
    (-1, 0, 0, -1): "ROTATE_180",
    (0, 1, -1, 0): "ROTATE_90",
    (0, -1, 1, 0): "ROTATE_270",
    (0, 1, 1, 0): "TRANSPOSE",
    (0, -1, -1, 0): "TRANSVERSE",
}


def _map_box(point, box):
    x0, y0, x1, y1 = box
    p, q = point(x0, y0), point(x1, y1)
    return min(p[0], q[0]), min(p[1], q[1]), max(p[0], q[0]), max(p[1], q[1])


@dataclass(frozen=True)
class LayerPlan:
    """Layer 0's geometry: crop box in source pixels, the sizes after each step, and the layer
    rect ``width × height`` (the composite size of a single-image request).

    Renderer, step by step: ``crop(crop_box)`` (as RGBA when ``overhang``) → ``flip`` →
    ``rotate`` (``transpose`` for quarter turns, else ``Image.rotate(pillow_rotate_angle,
    expand=True)``; its size is ``rotated_size``) → paste at ``(extend[0], extend[1])`` on a
    transparent ``width × height`` canvas (negative margins crop) → ``comp_flip``.
    ``mapping`` offers the same result as one resize (module docstring) when it is not ``None``.
    """

    source_size: tuple[int, int]
    crop_box: Box  # x0, y0, x1, y1; may reach outside the source
    flip: str | None
    rotate: Fraction  # clockwise degrees in [0, 360)
    rotated_size: tuple[int, int]
    extend: tuple[int, int, int, int]  # left, top, right, bottom in pixels (extendN resolved)
    comp_flip: str | None
    width: int
    height: int
    mapping: SourceMap | None  # None when the rotation is not a multiple of 90°

    @property
    def crop_size(self) -> tuple[int, int]:
        x0, y0, x1, y1 = self.crop_box
        return x1 - x0, y1 - y0

    @property
    def overhang(self) -> bool:
        """The crop box reaches outside the source: those pixels are transparent."""
        x0, y0, x1, y1 = self.crop_box
        return x0 < 0 or y0 < 0 or x1 > self.source_size[0] or y1 > self.source_size[1]

    @property
    def pillow_rotate_angle(self) -> float:
        """Angle for ``Image.rotate`` (counter-clockwise degrees)."""
        return -float(self.rotate)

    @property
    def transparent(self) -> bool:
        """Some of the layer rect is not covered by source pixels (overhang, margins, corners)."""
        return self.mapping is None or self.mapping.content_box != (0, 0, self.width, self.height)


def plan_layer(src_w: int, src_h: int, layer: LayerRequest) -> LayerPlan:
    """Sizes and placement of layer 0 for a ``src_w × src_h`` source (§4.2 steps 1, 7-9)."""
    if layer.crop is not None:
        x, y, w, h = open_crop(*layer.crop, src_w, src_h)
    elif layer.crop_n is not None:
        nx, ny, nw, nh = layer.crop_n
        x, y = round_half_up(nx * src_w), round_half_up(ny * src_h)
        w, h = _dim(nw * src_w), _dim(nh * src_h)
    else:
        x, y, w, h = 0, 0, src_w, src_h
    crop_box = (x, y, x + w, y + h)

    quarter, rest = divmod(layer.rotate, 90)
    orthogonal = rest == 0
    if orthogonal:
        rw, rh = (h, w) if quarter % 2 else (w, h)
    else:
        rw, rh = pillow_rotated_size(w, h, -float(layer.rotate))

    if layer.extend is not None:
        left, top, right, bottom = layer.extend
    elif layer.extend_n is not None:
        nl, nt, nr, nb = layer.extend_n
        left, top = round_half_up(nl * rw), round_half_up(nt * rh)
        right, bottom = round_half_up(nr * rw), round_half_up(nb * rh)
    else:
        left = top = right = bottom = 0
    width, height = rw + left + right, rh + top + bottom
    if width < 1 or height < 1:
        raise ISError("bad_request", f"extend: negative margins leave a {width}x{height} layer")

    mapping = None
    if orthogonal:
        m = (1, 0, -x, 0, 1, -y)
        m = _then(_flip_map(layer.flip, w, h), m)
        m = _then(_QUARTER_TURNS[int(quarter)](w, h), m)
        m = _then((1, 0, left, 0, 1, top), m)
        m = _then(_flip_map(layer.comp_flip, width, height), m)
        mapping = SourceMap(*m, source_size=(src_w, src_h), crop_box=crop_box, layer_size=(width, height))
    return LayerPlan(
        (src_w, src_h),
        crop_box,
        layer.flip,
        layer.rotate,
        (rw, rh),
        (left, top, right, bottom),
        layer.comp_flip,
        width,
        height,
        mapping,
    )


def _then(outer: tuple[int, ...], inner: tuple[int, ...]) -> tuple[int, ...]:
    """Affine ``outer ∘ inner`` (each ``(a, b, c, d, e, f)``)."""
    a2, b2, c2, d2, e2, f2 = outer
    a1, b1, c1, d1, e1, f1 = inner
    return (
        a2 * a1 + b2 * d1,
        a2 * b1 + b2 * e1,
        a2 * c1 + b2 * f1 + c2,
        d2 * a1 + e2 * d1,
        d2 * b1 + e2 * e1,
        d2 * c1 + e2 * f1 + f2,
    )


def _flip_map(flip: str | None, w: int, h: int) -> tuple[int, ...]:
    lr, ud = flip in ("lr", "lrud"), flip in ("ud", "lrud")
    return (-1 if lr else 1, 0, w if lr else 0, 0, -1 if ud else 1, h if ud else 0)


# Clockwise quarter turns of a w × h image, as maps into the turned image.
_QUARTER_TURNS = (
    lambda w, h: (1, 0, 0, 0, 1, 0),
    lambda w, h: (0, -1, h, 1, 0, 0),  # (x, y) -> (h - y, x)
    lambda w, h: (-1, 0, w, 0, -1, h),
    lambda w, h: (0, 1, 0, -1, 0, w),  # (x, y) -> (y, w - x)
)


def pillow_rotated_size(w: int, h: int, angle: float) -> tuple[int, int]:
    """Size of ``Image.rotate(angle, expand=True)`` on a ``w × h`` image (``angle``
    counter-clockwise), computed exactly as Pillow does: the image's four corners go through
    Pillow's affine matrix (cos/sin rounded to 15 places, rotation about the centre), and the
    size is ``ceil(max) − floor(min)`` per axis. Close to ``ceil(|w cos θ| + |h sin θ|) ×
    ceil(|w sin θ| + |h cos θ|)``, sometimes one pixel more (§4.3 rotate)."""
    angle = angle % 360.0
    if angle in (0.0, 180.0):
        return w, h
    if angle in (90.0, 270.0):
        return h, w
    rad = -math.radians(angle)
    a, b = round(math.cos(rad), 15), round(math.sin(rad), 15)
    d, e = round(-math.sin(rad), 15), round(math.cos(rad), 15)
    cx, cy = w / 2, h / 2
    c = a * -cx + b * -cy + 0.0 + cx
    f = d * -cx + e * -cy + 0.0 + cy
    xs = [a * x + b * y + c for x, y in ((0, 0), (w, 0), (w, h), (0, h))]
    ys = [d * x + e * y + f for x, y in ((0, 0), (w, 0), (w, h), (0, h))]
    return (math.ceil(max(xs)) - math.floor(min(xs)), math.ceil(max(ys)) - math.floor(min(ys)))


# ==================================================================== view commands (§5, §7)


@dataclass(frozen=True)
class ViewRequest:
    """The view commands of a request, validated. ``None`` = absent.

    ``upscale`` is the ``fit=`` flag (default 0). ``rect`` is the window ``x, y, w, h`` and
    ``rect_scale`` its ``k``. ``dpr`` is the effective multiplier (1 when off); ``bgc`` is carried
    for the renderer, geometry does not use it.
    """

    wid: int | None = None
    hei: int | None = None
    scl: Fraction | None = None
    fit: str | None = None
    upscale: bool = False
    align: tuple[Fraction, Fraction] = (_ZERO, _ZERO)
    bgc: Color | None = None
    rgn: Rect | None = None  # in composite pixels
    rect: Rect | None = None  # in rect-scaled view pixels
    rect_scale: Fraction = _ONE
    dpr: Fraction = _ONE


def parse_view(
    cmds: Mapping[str, str], req_type: str = "img", *, client_dpr: Fraction | float | None = None
) -> ViewRequest:
    """Validate the view commands (``wid hei scl fit align bgc rgn rect dpr network``) of
    ``cmds`` (lower-case names, decoded values). ``client_dpr`` is the device pixel ratio the
    edge forwarded (``Sec-CH-DPR``/``DPR``), used by ``dpr=on`` without a value."""
    fields: dict[str, object] = {}
    if "wid" in cmds:
        fields["wid"] = parse_int(cmds["wid"], cmd="wid", lo=1)
    if "hei" in cmds:
        fields["hei"] = parse_int(cmds["hei"], cmd="hei", lo=1)
    if "scl" in cmds:
        fields["scl"] = parse_real(cmds["scl"], cmd="scl", positive=True)
    if "fit" in cmds:
        value = cmds["fit"]
        if req_type == "tmb":
            raise _bad("fit", value, "not allowed with req=tmb")
        parts = split_list(value, (1, 2), cmd="fit")
        mode = parts[0].lower()
        if mode not in FIT_MODES:
            raise _bad("fit", value, f"unknown mode {parts[0]!r}")
        upscale = parse_flag(parts[1], cmd="fit") if len(parts) == 2 else False
        # Under scl= the fit mode is ignored, so it needs no wid=/hei= to fit into.
        if "wid" not in fields and "hei" not in fields and "scl" not in fields:
            raise _bad("fit", value, "needs wid= or hei=")
        fields.update(fit=mode, upscale=upscale)
    if "align" in cmds:
        fields["align"] = parse_reals(cmds["align"], 2, cmd="align", lo=-1, hi=1)
    if "bgc" in cmds:
        fields["bgc"] = parse_color(cmds["bgc"], cmd="bgc")
    if "rgn" in cmds:
        fields["rgn"] = _parse_rect4(cmds["rgn"], "rgn", 4)[0]
    if "rect" in cmds:
        fields["rect"], fields["rect_scale"] = _parse_rect4(cmds["rect"], "rect", (4, 5))
    if "dpr" in cmds:
        fields["dpr"] = _parse_dpr(cmds["dpr"], client_dpr)
    if "network" in cmds:
        parse_flag(cmds["network"], cmd="network")  # accepted and ignored (P2)
    return ViewRequest(**fields)  # type: ignore[arg-type]


def _parse_rect4(value: str, cmd: str, n: int | tuple[int, ...]) -> tuple[Rect, Fraction]:
    """``x,y,w,h`` integers (w, h > 0), for ``rect=`` followed by an optional real ``k > 0``."""
    numbers = parse_reals(value, n, cmd=cmd)
    if any(v.denominator != 1 for v in numbers[:4]):
        raise _bad(cmd, value, "x, y, w and h must be integers")
    x, y, w, h = (int(v) for v in numbers[:4])
    if w <= 0 or h <= 0:
        raise _bad(cmd, value, "width and height must be greater than 0")
    k = numbers[4] if len(numbers) == 5 else _ONE
    if k <= 0:
        raise _bad(cmd, value, "the scale must be greater than 0")
    return (x, y, w, h), k


def _parse_dpr(value: str, client_dpr: Fraction | float | None) -> Fraction:
    parts = split_list(value, (1, 2), cmd="dpr")
    on = parse_flag(parts[0], cmd="dpr")
    d = parse_real(parts[1], cmd="dpr", positive=True) if len(parts) == 2 else None
    if not on:
        return _ONE
    if d is not None:
        return d
    return Fraction(client_dpr) if client_dpr is not None and client_dpr > 0 else _ONE


@dataclass(frozen=True)
class ThumbRules:
    """Catalog thumbnail rules for ``req=tmb`` (§7): ``thumb_type`` 1 crop / 2 fit / 3 texture,
    ``halign``/``valign`` 1/2/3 = left|top / centre / right|bottom, ``texture_scale`` =
    ``ThumbRes / Resolution`` (used by texture only)."""

    default_thumb_pix: tuple[int, int] = (100, 100)
    thumb_type: int = THUMB_FIT
    halign: int = 2
    valign: int = 2
    texture_scale: Fraction = _ONE

    def __post_init__(self):
        if self.thumb_type not in (THUMB_CROP, THUMB_FIT, THUMB_TEXTURE):
            raise ValueError(f"thumb_type {self.thumb_type}")
        if self.halign not in _THUMB_ALIGN or self.valign not in _THUMB_ALIGN:
            raise ValueError(f"thumb alignment {self.halign},{self.valign}")
        if min(self.default_thumb_pix) < 0 or self.texture_scale <= 0:
            raise ValueError("thumb sizes")


@dataclass(frozen=True)
class ViewPlan:
    """The reply geometry.

    The composite, scaled by ``(sx, sy)``, has its top-left at ``offset`` in view coordinates;
    view pixels it does not cover are background. ``rect=`` then scales the view to
    ``rect_view_size`` (factors ``rect_scale``) and cuts the window ``rect`` (x, y, w, h) from it;
    window parts outside that view are background too. ``width × height`` is what is sent.
    ``sx``/``sy`` are the effective factors ``Sw/Rw``, ``Sh/Rh``: the region of interest maps
    exactly onto ``scaled_width × scaled_height`` whole pixels.
    """

    width: int
    height: int
    comp_size: tuple[int, int]
    view_width: int
    view_height: int
    scaled_width: int
    scaled_height: int
    sx: Fraction
    sy: Fraction
    offset: tuple[Fraction, Fraction]
    rect: Rect
    rect_scale: tuple[Fraction, Fraction]
    rect_view_size: tuple[int, int]
    dpr: Fraction  # the multiplier used, after any MaxPix clamp

    @property
    def scale(self) -> tuple[Fraction, Fraction]:
        """Composite pixels → sent pixels (pass ``max`` of it to :func:`draft_scale`)."""
        return self.sx * self.rect_scale[0], self.sy * self.rect_scale[1]

    @property
    def origin(self) -> tuple[Fraction, Fraction]:
        """The composite's top-left in sent-image coordinates."""
        return (self.offset[0] * self.rect_scale[0] - self.rect[0], self.offset[1] * self.rect_scale[1] - self.rect[1])

    @property
    def view_box(self) -> Box | None:
        """Sent pixels that lie inside the (rect-scaled) view; the rest is ``rect=`` overhang."""
        x, y, w, h = self.rect
        vw, vh = self.rect_view_size
        return _clip((-x, -y, vw - x, vh - y), w, h)

    def project(self, box: tuple[Fraction | int, ...]) -> Box | None:
        """Sent pixels showing a composite-space box: edges rounded with ``R``, clipped to the
        view and the sent image; ``None`` when nothing of it is visible."""
        (ox, oy), (fx, fy) = self.origin, self.scale
        x0, y0, x1, y1 = box
        sent = (
            round_half_up(ox + x0 * fx),
            round_half_up(oy + y0 * fy),
            round_half_up(ox + x1 * fx),
            round_half_up(oy + y1 * fy),
        )
        view = self.view_box
        if view is None:
            return None
        return _clip(
            (max(sent[0], view[0]), max(sent[1], view[1]), min(sent[2], view[2]), min(sent[3], view[3])),
            self.width,
            self.height,
        )

    @property
    def content_box(self) -> Box | None:
        """Sent pixels showing the composite (everything else is background)."""
        return self.project((0, 0, *self.comp_size))

    def source_box(self, region: Box) -> FBox:
        """Composite-pixel box (fractional, for ``Image.resize(size, box=...)``) that maps onto
        the sent-pixel ``region``, clamped to the composite."""
        (ox, oy), (fx, fy) = self.origin, self.scale
        cw, ch = self.comp_size
        x0, y0, x1, y1 = region
        return (
            float(min(max((x0 - ox) / fx, 0), cw)),
            float(min(max((y0 - oy) / fy, 0), ch)),
            float(min(max((x1 - ox) / fx, 0), cw)),
            float(min(max((y1 - oy) / fy, 0), ch)),
        )


def _clip(box: Box, w: int, h: int) -> Box | None:
    out = (max(box[0], 0), max(box[1], 0), min(box[2], w), min(box[3], h))
    return out if out[0] < out[2] and out[1] < out[3] else None


def plan_view(
    comp_w: int,
    comp_h: int,
    view: ViewRequest,
    *,
    default_pix: tuple[int, int],
    max_pix: tuple[int, int],
    thumb: ThumbRules | None = None,
    upscale: bool = True,
) -> ViewPlan:
    """The view transform (§5.1; §7 when ``thumb`` is given for ``req=tmb``), ``rect=``, the dpr
    clamp and the MaxPix check (§1.1). ``upscale`` is the catalog switch letting ``wid``/``hei``
    without ``fit=`` enlarge (D1). Raises ``ISError("size_limit")``."""

    def plan(d: Fraction) -> ViewPlan:
        return _plan(comp_w, comp_h, view, d, default_pix, thumb, upscale)

    result = plan(view.dpr)
    if _fits(result, max_pix):
        return result
    if view.dpr > 1:
        base = plan(_ONE)
        if _fits(base, max_pix):
            return _clamp_dpr(plan, base, result, max_pix)
        result = base
    raise ISError("size_limit", f"reply {result.width}x{result.height} exceeds MaxPix {max_pix[0]},{max_pix[1]}")


def _fits(p: ViewPlan, max_pix: tuple[int, int]) -> bool:
    mw, mh = max_pix
    return not ((mw > 0 and p.width > mw) or (mh > 0 and p.height > mh))


def _clamp_dpr(plan, fitting: ViewPlan, too_big: ViewPlan, max_pix) -> ViewPlan:
    """The reply with ``d`` shrunk uniformly so that it fits MaxPix (rendering.md §5 ``dpr=``).

    ``d`` is scaled by the exact ratio that brings the overflowing side onto its limit, and every
    side is then rounded as usual (§0): the aspect stays that of the requested view, so the
    rounding slack just under the limit is not used to widen the other side (816x500 at dpr 3
    under 2000,2000 is 2000x1225, not 2000x1226). Only when the rounding of a derived side
    pushes that reply over the limit does bisection find the largest smaller one that fits
    (sizes grow monotonically with ``d``)."""
    ratios = [Fraction(m, s) for m, s in zip(max_pix, (too_big.width, too_big.height)) if 0 < m < s]
    guess = plan(max(_ONE, too_big.dpr * min(ratios)))
    if _fits(guess, max_pix):
        return guess
    lo, hi = fitting, guess
    for _ in range(48):
        mid = plan((lo.dpr + hi.dpr) / 2)
        lo, hi = (mid, hi) if _fits(mid, max_pix) else (lo, mid)
    return lo


def _plan(
    cw: int,
    ch: int,
    view: ViewRequest,
    d: Fraction,
    default_pix: tuple[int, int],
    thumb: ThumbRules | None,
    upscale: bool,
) -> ViewPlan:
    rx, ry, rw, rh = view.rgn or (0, 0, cw, ch)
    wid = _dim(view.wid * d) if view.wid is not None else None
    hei = _dim(view.hei * d) if view.hei is not None else None
    scl = view.scl / d if view.scl is not None else None

    if thumb is not None:
        gx, gy, vw, vh, (ax, ay) = _thumb_scale(rw, rh, wid, hei, scl, thumb)
    elif scl is not None:
        gx = gy = 1 / scl
        vw, vh, (ax, ay) = wid, hei, view.align
    elif wid is not None or hei is not None:
        if view.fit is None:
            gx, gy, vw, vh, (ax, ay) = _legacy_scale(rw, rh, wid, hei, view.align, upscale)
        else:
            gx, gy, vw, vh, (ax, ay) = _fit_scale(rw, rh, wid, hei, view)
    else:
        gx = gy = _default_pix_factor(rw, rh, default_pix)
        vw = vh = None
        ax = ay = _ZERO

    sw, sh = _dim(rw * gx), _dim(rh * gy)
    vw, vh = vw or sw, vh or sh
    sx, sy = Fraction(sw, rw), Fraction(sh, rh)
    offset = (_align_offset(vw, sw, ax) - rx * sx, _align_offset(vh, sh, ay) - ry * sy)

    if view.rect is not None:
        rect, k = view.rect, view.rect_scale
        rvw, rvh = _dim(vw * k), _dim(vh * k)
    else:
        rect, rvw, rvh = (0, 0, vw, vh), vw, vh
    return ViewPlan(
        rect[2],
        rect[3],
        (cw, ch),
        vw,
        vh,
        sw,
        sh,
        sx,
        sy,
        offset,
        rect,
        (Fraction(rvw, vw), Fraction(rvh, vh)),
        (rvw, rvh),
        d,
    )


def _legacy_scale(rw, rh, wid, hei, align, upscale):
    """``wid``/``hei`` without ``fit=`` (§5.1): fit inside both, or follow the one given."""
    if wid is not None and hei is not None:
        s = min(Fraction(wid, rw), Fraction(hei, rh))
        vw, vh = wid, hei
    else:
        s = Fraction(wid, rw) if wid is not None else Fraction(hei, rh)
        vw, vh = wid or _dim(rw * s), hei or _dim(rh * s)
        align = (_ZERO, _ZERO)
    if not upscale and s > 1:
        s = _ONE
    return s, s, vw, vh, align


def _fit_scale(rw, rh, wid, hei, view: ViewRequest):
    """``fit=`` modes (§5 fit table). Returns nominal scales, the view size (``None`` = the scaled
    size) and the alignment."""
    mode, align = view.fit, view.align

    def clamp(s: Fraction) -> Fraction:
        return s if view.upscale or s <= 1 else _ONE

    if wid is not None and hei is not None:
        gx, gy = Fraction(wid, rw), Fraction(hei, rh)
        vw, vh = wid, hei
        if mode == "stretch":
            sx, sy = clamp(gx), clamp(gy)
        else:
            s = {
                "fit": min(gx, gy),
                "constrain": min(gx, gy),
                "crop": max(gx, gy),
                "wrap": max(gx, gy),
                "hfit": gx,
                "vfit": gy,
            }[mode]
            sx = sy = clamp(s)
    else:
        # One dimension given: it decides the scale; the other view side follows from it
        # before the upscale clamp (D: missing dimension derived).
        s = Fraction(wid, rw) if wid is not None else Fraction(hei, rh)
        vw, vh = wid or _dim(rw * s), hei or _dim(rh * s)
        sx = sy = clamp(s)
    if mode in ("constrain", "wrap"):
        vw = vh = None
    if mode == "stretch":
        align = (_ZERO, _ZERO)
    return sx, sy, vw, vh, align


def _default_pix_factor(rw: int, rh: int, default_pix: tuple[int, int]) -> Fraction:
    """§1.2: the largest reduction fitting inside DefaultPix; never enlarges."""
    dw, dh = default_pix
    f = _ONE
    if dw > 0:
        f = min(f, Fraction(dw, rw))
    if dh > 0:
        f = min(f, Fraction(dh, rh))
    return f


def _thumb_scale(rw, rh, wid, hei, scl, rules: ThumbRules):
    """§7.1: view rect from wid/hei or DefaultThumbPix; scale by thumb type (or scl=)."""
    vw = wid or rules.default_thumb_pix[0]
    vh = hei or rules.default_thumb_pix[1]
    if scl is not None:
        s = 1 / scl
    elif rules.thumb_type == THUMB_TEXTURE:
        s = rules.texture_scale
    elif vw and vh:
        pick = max if rules.thumb_type == THUMB_CROP else min
        s = pick(Fraction(vw, rw), Fraction(vh, rh))
    elif vw:
        s = Fraction(vw, rw)
    elif vh:
        s = Fraction(vh, rh)
    else:
        s = _ONE
    return s, s, vw or None, vh or None, (_THUMB_ALIGN[rules.halign], _THUMB_ALIGN[rules.valign])


# ============================================================================= decoding (§16)


def draft_scale(total_scale: Fraction | float) -> int:
    """Largest JPEG DCT reduction (1, 2, 4, 8) that keeps at least twice the resolution needed
    for ``total_scale`` (source pixels → sent pixels; pass the larger axis factor)."""
    for k in (8, 4, 2):
        if total_scale * 2 * k <= 1:
            return k
    return 1


def draft_size(src_w: int, src_h: int, total_scale: Fraction | float) -> tuple[int, int] | None:
    """The ``size`` to pass to ``Image.draft`` so that Pillow (which divides the stored size by it
    and rounds down) picks exactly :func:`draft_scale`; ``None`` when no reduction applies.
    Read the factor actually used back from the decoded size."""
    k = draft_scale(total_scale)
    while k > 1 and (src_w < k or src_h < k):
        k //= 2
    return (src_w // k, src_h // k) if k > 1 else None
