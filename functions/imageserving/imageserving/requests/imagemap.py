"""Composite image maps: ``catalog::Map`` (or a ``map=`` command) carried through the geometry of
``req=img`` (the reference's "Image maps" page and ``req=map``; protocol.md §8.14).

``catalog::Map`` coordinates are source pixels, ``map=`` ones layer pixels; the reply's geometry
(crop, flip, 90° turns, extend, then wid/hei/scl/fit/align/rect) is the renderer's plan from the
image header, so the areas land exactly where the pixels they cover land. Per the reference only
``SHAPE`` and ``COORDS`` change: ``DEFAULT`` becomes a ``RECT`` over the whole image, areas are
clipped to the reply and dropped when nothing of them is left; every other attribute, and the
text between the ``<AREA>`` tags, is kept byte for byte.

PROPOSED where the page is silent: coordinates are rounded half up; a circle keeps its centre
and scales its radius by the mean of the two scale factors, and is dropped only when its
bounding box misses the reply (a circle is not clipped); an unknown shape is dropped.
"""

from __future__ import annotations

import re
from fractions import Fraction

from ..protocol.values import round_half_up
from ..render.geometry import SourceMap, ViewPlan

_AREA_RE = re.compile(r"<\s*area\b[^>]*>", re.I)
_ATTR_RE = re.compile(r"""([A-Za-z_:][-\w:.]*)(\s*=\s*)("[^"]*"|'[^']*'|[^\s"'>]+)""")
_NUMBER_RE = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)")

Point = tuple[Fraction, Fraction]


class Geometry:
    """Map coordinates → reply pixels for one image layer, with the reply's visible box.

    ``catalog::Map`` is in source pixels (``layer_space=False``); a ``map=`` command is in layer
    pixels, "relative to the top-left corner of the layer (after rotate= and extend=)".
    """

    def __init__(self, mapping: SourceMap, view: ViewPlan, *, layer_space: bool = False):
        self.mapping = mapping
        self.view = view
        self.layer_space = layer_space
        (self.ox, self.oy), (self.fx, self.fy) = view.origin, view.scale
        if layer_space:
            self.kept = (0, 0, *mapping.layer_size)
        else:
            x0, y0, x1, y1 = mapping.crop_box
            sw, sh = mapping.source_size
            # Source pixels the crop keeps: map areas outside them cover nothing of the reply.
            self.kept = (max(x0, 0), max(y0, 0), min(x1, sw), min(y1, sh))
        view_box = view.view_box
        self.visible = (
            None
            if view_box is None
            else (max(view_box[0], 0), max(view_box[1], 0), min(view_box[2], view.width), min(view_box[3], view.height))
        )

    def layer(self, x: Fraction, y: Fraction) -> tuple[Fraction | int, Fraction | int]:
        return (x, y) if self.layer_space else self.mapping.forward(x, y)

    def point(self, x: Fraction, y: Fraction) -> Point:
        lx, ly = self.layer(x, y)
        return self.ox + lx * self.fx, self.oy + ly * self.fy

    def box(self, x0: Fraction, y0: Fraction, x1: Fraction, y1: Fraction) -> tuple[int, int, int, int] | None:
        """A source-pixel box as reply pixels, clipped; None when nothing of it shows."""
        kx0, ky0, kx1, ky1 = self.kept
        x0, y0, x1, y1 = max(min(x0, x1), kx0), max(min(y0, y1), ky0), min(max(x0, x1), kx1), min(max(y0, y1), ky1)
        if x0 >= x1 or y0 >= y1:
            return None
        p, q = self.layer(x0, y0), self.layer(x1, y1)
        return self.view.project((min(p[0], q[0]), min(p[1], q[1]), max(p[0], q[0]), max(p[1], q[1])))


def composite(text: str, geometry: Geometry) -> str:
    """``text`` (``<AREA …>`` elements) with every area moved into reply coordinates."""
    return _AREA_RE.sub(lambda m: _area(m.group(), geometry), text)


def _area(tag: str, geometry: Geometry) -> str:
    attrs = {m.group(1).lower(): m for m in _ATTR_RE.finditer(tag)}
    shape = _unquote(attrs["shape"].group(3)).strip().lower() if "shape" in attrs else "rect"
    numbers = [Fraction(n) for n in _NUMBER_RE.findall(_unquote(attrs["coords"].group(3)))] if "coords" in attrs else []
    if shape == "default":
        coords = _rect(geometry, [Fraction(v) for v in geometry.kept])
        shape_out = "RECT"
    elif shape in ("rect", "rectangle"):
        coords, shape_out = _rect(geometry, numbers), None
    elif shape in ("circle", "circ"):
        coords, shape_out = _circle(geometry, numbers), None
    elif shape in ("poly", "polygon"):
        coords, shape_out = _poly(geometry, numbers), None
    else:
        coords, shape_out = None, None
    if coords is None or geometry.visible is None:
        return ""
    return _rewrite(tag, attrs, shape_out, ",".join(str(c) for c in coords))


def _rect(geometry: Geometry, n: list[Fraction]) -> list[int] | None:
    if len(n) < 4:
        return None
    return list(box) if (box := geometry.box(*n[:4])) is not None else None


def _circle(geometry: Geometry, n: list[Fraction]) -> list[int] | None:
    if len(n) < 3 or geometry.visible is None:
        return None
    cx, cy = geometry.point(n[0], n[1])
    r = n[2] * (geometry.fx + geometry.fy) / 2
    vx0, vy0, vx1, vy1 = geometry.visible
    if cx + r <= vx0 or cx - r >= vx1 or cy + r <= vy0 or cy - r >= vy1 or r <= 0:
        return None
    return [round_half_up(cx), round_half_up(cy), round_half_up(r)]


def _poly(geometry: Geometry, n: list[Fraction]) -> list[int] | None:
    if len(n) < 6 or geometry.visible is None:
        return None
    points = [geometry.point(n[i], n[i + 1]) for i in range(0, len(n) - 1, 2)]
    points = _clip_polygon(points, geometry.visible)
    rounded: list[tuple[int, int]] = []
    for x, y in points:  # clipping and rounding can repeat a vertex: keep one
        p = (round_half_up(x), round_half_up(y))
        if not rounded or rounded[-1] != p:
            rounded.append(p)
    if len(rounded) > 1 and rounded[0] == rounded[-1]:
        rounded.pop()
    if len(rounded) < 3 or _area2(rounded) == 0:
        return None
    return [c for p in rounded for c in p]


def _clip_polygon(points: list[Point], box: tuple[int, int, int, int]) -> list[Point]:
    """Sutherland–Hodgman against the four edges of ``box``."""
    x0, y0, x1, y1 = box
    edges = (
        (lambda p: p[0] >= x0, lambda p, q: _cut_x(p, q, x0)),
        (lambda p: p[0] <= x1, lambda p, q: _cut_x(p, q, x1)),
        (lambda p: p[1] >= y0, lambda p, q: _cut_y(p, q, y0)),
        (lambda p: p[1] <= y1, lambda p, q: _cut_y(p, q, y1)),
    )
    for inside, cut in edges:
        out: list[Point] = []
        for i, p in enumerate(points):
            prev = points[i - 1]
            if inside(p):
                if not inside(prev):
                    out.append(cut(prev, p))
                out.append(p)
            elif inside(prev):
                out.append(cut(prev, p))
        points = out
        if not points:
            break
    return points


def _cut_x(p: Point, q: Point, x: int) -> Point:
    t = (x - p[0]) / (q[0] - p[0])
    return Fraction(x), p[1] + t * (q[1] - p[1])


def _cut_y(p: Point, q: Point, y: int) -> Point:
    t = (y - p[1]) / (q[1] - p[1])
    return p[0] + t * (q[0] - p[0]), Fraction(y)


def _area2(points: list[tuple[int, int]]) -> int:
    return sum(points[i - 1][0] * p[1] - p[0] * points[i - 1][1] for i, p in enumerate(points))


def _unquote(value: str) -> str:
    return value[1:-1] if value[:1] in "\"'" and value[-1:] == value[:1] and len(value) >= 2 else value


def _rewrite(tag: str, attrs: dict[str, re.Match], shape: str | None, coords: str) -> str:
    """The tag with its SHAPE (when it changes) and COORDS values replaced, everything else as is."""
    edits: list[tuple[int, int, str]] = []
    if shape is not None and "shape" in attrs:
        m = attrs["shape"]
        edits.append((m.start(3), m.end(3), f'"{shape}"'))
    if "coords" in attrs:
        m = attrs["coords"]
        edits.append((m.start(3), m.end(3), f'"{coords}"'))
    else:
        anchor = attrs["shape"].end() if "shape" in attrs else len(tag) - (2 if tag.endswith("/>") else 1)
        edits.append((anchor, anchor, f' COORDS="{coords}"'))
    for start, end, text in sorted(edits, reverse=True):
        tag = tag[:start] + text + tag[end:]
    return tag
