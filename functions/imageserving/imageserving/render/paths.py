"""Clipping paths (r-clippath.md, r-croppath.md): Photoshop paths embedded in a source, and the
SVG-like ``clipPath=`` path data, as masks and bounding boxes.

Embedded paths are read from what Pillow hands over undecoded: a JPEG's APP13 "Photoshop 3.0"
segments and a TIFF's tag 34377 — both the same list of ``8BIM`` image resources, where ids
2000-2997 are saved paths. A path resource is a list of 26-byte records (Adobe's "Path resource
format"): subpath length records (closed 0, open 3) each followed by that many Bézier knots (1, 2
closed; 4, 5 open), a knot being three points (the control point before, the anchor, the control
point after), each vertical then horizontal as signed 8.24 fixed point relative to the image's
height and width; the fill-rule and clipboard records (6, 7, 8) are skipped. Covered: every
subpath, closed or open (closed with a straight line), curves flattened to 16 segments each;
subpaths combine even-odd (XOR), which is what a path of one outline and its holes needs. Not
covered: Photoshop's per-subpath combine operations (unite/subtract/intersect, CS6 and later),
which are stored in fields this reader ignores; PSD, PNG and other formats carry no paths here.
"""

from __future__ import annotations

import io
import math
import re
import struct
from dataclasses import dataclass

from PIL import Image, ImageChops, ImageDraw

from ..errors import ISError

_PHOTOSHOP_APP13 = b"Photoshop 3.0\x00"
_TIFF_PHOTOSHOP = 34377
_FIRST_PATH, _LAST_PATH = 2000, 2997
_CURVE_STEPS = 16
# Knots one embedded path may have (each is a polygon vertex ×16 once flattened).
MAX_KNOTS = 20_000

Point = tuple[float, float]  # x, y: fractions of the image (embedded) or layer pixels (clipPath=)


@dataclass(frozen=True)
class Knot:
    before: Point
    anchor: Point
    after: Point


@dataclass(frozen=True)
class Subpath:
    knots: tuple[Knot, ...]
    closed: bool


# ------------------------------------------------------------------------- image resources
def resources(data: bytes, fmt: str | None) -> list[tuple[int, str, bytes]]:
    """``(id, name, payload)`` of each Photoshop image resource of a JPEG or TIFF source."""
    if fmt in ("JPEG", "MPO"):
        block = _jpeg_photoshop_block(data)
    elif fmt == "TIFF":
        with Image.open(io.BytesIO(data)) as im:
            value = im.tag_v2.get(_TIFF_PHOTOSHOP, b"")
        block = value if isinstance(value, bytes) else bytes(value)
    else:
        return []
    return _image_resources(block)


def path_names(data: bytes, fmt: str | None) -> list[str]:
    return [name for res_id, name, _ in resources(data, fmt) if _FIRST_PATH <= res_id <= _LAST_PATH]


def embedded(data: bytes, fmt: str | None) -> dict[str, tuple[Subpath, ...]]:
    """The source's saved paths by name (the first of a name wins)."""
    out: dict[str, tuple[Subpath, ...]] = {}
    for res_id, name, payload in resources(data, fmt):
        if _FIRST_PATH <= res_id <= _LAST_PATH and name not in out:
            out[name] = parse_path_resource(payload)
    return out


def _jpeg_photoshop_block(data: bytes) -> bytes:
    """The concatenated image-resource payloads of the APP13 segments before the scan data."""
    out = []
    i = 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker in (0xD9, 0xDA):
            break
        if marker == 0x01 or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            i += 1 if marker == 0xFF else 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        segment = data[i + 4 : i + 2 + length]
        if marker == 0xED and segment.startswith(_PHOTOSHOP_APP13):
            out.append(segment[len(_PHOTOSHOP_APP13) :])
        i += 2 + length
    return b"".join(out)


def _image_resources(block: bytes) -> list[tuple[int, str, bytes]]:
    """Each ``8BIM`` resource; a truncated block ends the list quietly."""
    out = []
    i = 0
    while i + 7 <= len(block) and block[i : i + 4] == b"8BIM":
        (res_id,) = struct.unpack(">H", block[i + 4 : i + 6])
        name_len = block[i + 6]
        name = block[i + 7 : i + 7 + name_len].decode("mac_roman")
        i += 6 + ((1 + name_len + 1) & ~1)  # Pascal string padded to an even length
        if i + 4 > len(block):
            break
        (size,) = struct.unpack(">I", block[i : i + 4])
        out.append((res_id, name, block[i + 4 : i + 4 + size]))
        i += 4 + size + (size & 1)
    return out


def parse_path_resource(payload: bytes) -> tuple[Subpath, ...]:
    """The subpaths of one path resource (see the module docstring); malformed records end it."""
    subpaths: list[Subpath] = []
    total = 0
    knots: list[Knot] = []
    closed, left = False, 0
    for at in range(0, len(payload) - 25, 26):
        (selector,) = struct.unpack(">H", payload[at : at + 2])
        if selector in (0, 3):
            if knots:
                subpaths.append(Subpath(tuple(knots), closed))
            (left,) = struct.unpack(">H", payload[at + 2 : at + 4])
            knots, closed = [], selector == 0
        elif selector in (1, 2, 4, 5) and left > 0:
            v = struct.unpack(">6i", payload[at + 2 : at + 26])
            pts = [(v[k + 1] / (1 << 24), v[k] / (1 << 24)) for k in (0, 2, 4)]
            knots.append(Knot(*pts))
            left -= 1
            total += 1  # a running count: re-summing per knot made hostile resources quadratic
            if total > MAX_KNOTS:
                raise ISError("content_error", f"embedded path with more than {MAX_KNOTS} knots")
    if knots:
        subpaths.append(Subpath(tuple(knots), closed))
    return tuple(subpaths)


# ------------------------------------------------------------------------------ clipPath=
_TOKEN = re.compile(r"[MmLlCcZz]|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[\s,]+|.")
_ARITY = {"m": 2, "l": 2, "c": 6}
_MAX_COORDINATE = 1e6  # layer pixels; far beyond any canvas (IS_MAX_RENDER_PIXELS)


def parse_clip_path(value: str) -> tuple[Subpath, ...]:
    """``clipPath=`` path data (SVG ``d=`` with commas): M/m, L/l, C/c, Z/z in layer pixels; every
    subpath is closed, a relative moveto after a closed subpath starts from its first point."""
    tokens = [t for t in _TOKEN.findall(value) if t.strip(" ,")]
    subpaths: list[Subpath] = []
    knots: list[Knot] = []
    pos = start = (0.0, 0.0)
    cmd, i = None, 0

    def finish() -> None:
        nonlocal knots
        if knots:
            subpaths.append(Subpath(tuple(knots), True))
        knots = []

    while i < len(tokens):
        t = tokens[i]
        if t in "MmLlCcZz" and len(t) == 1:
            cmd, i = t, i + 1
            if t in "Zz":
                finish()
                pos = start
                cmd = None
            continue
        if cmd is None:
            raise ISError("bad_request", f"clipPath={value[:64]}: expected a path command before {t!r}")
        n = _ARITY[cmd.lower()]
        try:
            nums = [float(x) for x in tokens[i : i + n]]
        except ValueError:
            raise ISError("bad_request", f"clipPath={value[:64]}: bad number near {t!r}") from None
        if not all(abs(x) <= _MAX_COORDINATE for x in nums):  # also refuses inf ("1e400") and nan
            raise ISError("bad_request", f"clipPath={value[:64]}: a coordinate beyond {_MAX_COORDINATE:g}")
        if len(nums) < n:
            raise ISError("bad_request", f"clipPath={value[:64]}: {cmd} needs {n} numbers")
        i += n
        base = pos if cmd.islower() else (0.0, 0.0)
        pts = [(base[0] + nums[k], base[1] + nums[k + 1]) for k in range(0, n, 2)]
        if cmd in "Mm":
            finish()
            pos = start = pts[0]
            knots.append(Knot(pos, pos, pos))
            cmd = "l" if cmd == "m" else "L"  # further pairs are linetos (SVG)
        elif cmd in "Ll":
            if not knots:
                knots.append(Knot(pos, pos, pos))
            pos = pts[0]
            knots.append(Knot(pos, pos, pos))
        else:
            if not knots:
                knots.append(Knot(pos, pos, pos))
            last = knots[-1]
            knots[-1] = Knot(last.before, last.anchor, pts[0])
            pos = pts[2]
            knots.append(Knot(pts[1], pos, pos))
        if len(knots) > MAX_KNOTS:
            raise ISError("bad_request", f"clipPath=: more than {MAX_KNOTS} points")
    finish()
    if not subpaths:
        raise ISError("bad_request", f"clipPath={value[:64]}: no path")
    return tuple(subpaths)


# ------------------------------------------------------------------------------- drawing
def _polygon(sub: Subpath, sx: float, sy: float, dx: float, dy: float) -> list[Point]:
    pts: list[Point] = []
    ks = sub.knots
    pairs = list(zip(ks, ks[1:])) + ([(ks[-1], ks[0])] if len(ks) > 1 else [])
    for a, b in pairs:
        p0, p1, p2, p3 = a.anchor, a.after, b.before, b.anchor
        if p0 == p1 and p2 == p3:
            pts.append(p0)
            continue
        for k in range(_CURVE_STEPS):
            t = k / _CURVE_STEPS
            u = 1 - t
            pts.append(
                (
                    u**3 * p0[0] + 3 * u * u * t * p1[0] + 3 * u * t * t * p2[0] + t**3 * p3[0],
                    u**3 * p0[1] + 3 * u * u * t * p1[1] + 3 * u * t * t * p2[1] + t**3 * p3[1],
                )
            )
    if len(ks) == 1:
        pts.append(ks[0].anchor)
    return [(x * sx + dx, y * sy + dy) for x, y in pts]


def mask(
    subpaths: tuple[Subpath, ...], size: tuple[int, int], scale: tuple[float, float], offset=(0.0, 0.0)
) -> Image.Image:
    """An L mask of ``size``: 255 inside the path (even-odd), 0 outside. Path points are mapped as
    ``p * scale + offset``."""
    out = Image.new("L", size, 0)
    for sub in subpaths:
        poly = _polygon(sub, scale[0], scale[1], offset[0], offset[1])
        if len(poly) < 3:
            continue
        # Each subpath is drawn over its own bounding box only (an integer shift leaves the
        # rasterisation as it is): many small subpaths no longer cost a full-size image each.
        x0 = max(0, math.floor(min(p[0] for p in poly)))
        y0 = max(0, math.floor(min(p[1] for p in poly)))
        x1 = min(size[0], math.ceil(max(p[0] for p in poly)) + 1)
        y1 = min(size[1], math.ceil(max(p[1] for p in poly)) + 1)
        if x0 >= x1 or y0 >= y1:
            continue
        box = (x0, y0, x1, y1)
        layer = Image.new("L", (x1 - x0, y1 - y0), 0)
        ImageDraw.Draw(layer).polygon([(x - x0, y - y0) for x, y in poly], fill=255)
        out.paste(ImageChops.difference(out.crop(box), layer), box)
    return out


def bbox(subpaths: tuple[Subpath, ...], scale: tuple[float, float]) -> tuple[float, float, float, float] | None:
    """The bounding box (x0, y0, x1, y1) of the path's outline, mapped by ``scale``."""
    pts = [p for sub in subpaths for p in _polygon(sub, scale[0], scale[1], 0.0, 0.0)]
    if not pts:
        return None
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return min(xs), min(ys), max(xs), max(ys)


def names(value: str) -> list[str]:
    """``clipPathE=``/``cropPathE=`` names: comma-separated, ASCII only (the reference)."""
    out = [n.strip() for n in value.split(",") if n.strip()]
    if not out or not all(n.isascii() for n in out):
        raise ISError("bad_request", f"path names must be ASCII: {value[:64]}")
    return out
