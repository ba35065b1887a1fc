"""Basic text layers (rendering.md §4.7): plain text or a small RTF subset, wrapped inside a box.

Enough for error-image templates (``text=$error.message$``) and simple captions. The RTF subset:
``\\fsN`` (half-points), ``\\cfN`` with ``{\\colortbl;…}``, ``\\ql \\qc \\qr``, ``\\par``,
``\\line``; other control words and groups are skipped. Fonts: Pillow's bundled font.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from ..errors import ISError

DEFAULT_HALF_POINTS = 24  # 12 pt, RTF's own default size
MAX_TEXT_CHARS = 10_000  # more than any caption; bounds layout work
MAX_FONT_PX = 1000  # FreeType refuses far larger sizes; nobody needs them
MAX_TEXT_PIXELS = 25_000_000  # a self-sized text layer may not grow beyond this
_CONTROL = re.compile(r"\\([a-z]+)(-?\d+)? ?|\\([^a-z])|([{}])|([^\\{}]+)", re.S)


@dataclass
class Paragraph:
    text: str = ""
    size_pt: float = DEFAULT_HALF_POINTS / 2
    color: tuple[int, int, int] = (0, 0, 0)
    align: str = "left"


@dataclass
class TextSpec:
    paragraphs: list[Paragraph] = field(default_factory=list)


def parse_text(value: str) -> TextSpec:
    """Plain text (one paragraph per line) or RTF when the value starts with ``{\\rtf``."""
    if len(value) > MAX_TEXT_CHARS:
        raise ISError("bad_request", f"text= is {len(value)} characters long (at most {MAX_TEXT_CHARS})")
    if not value.lstrip().startswith("{\\rtf"):
        return TextSpec([Paragraph(line) for line in value.replace("\r\n", "\n").split("\n")])
    return _parse_rtf(value)


def _parse_rtf(value: str) -> TextSpec:
    paragraphs = [Paragraph()]
    colors: list[tuple[int, int, int]] = [(0, 0, 0)]
    skip_depth = None  # inside {\fonttbl …} or {\*\…}: ignore text
    depth = 0
    table_color = [0, 0, 0]
    in_colortbl = None
    current = paragraphs[0]
    for word, num, sym, brace, text in _CONTROL.findall(value):
        if brace == "{":
            depth += 1
            continue
        if brace == "}":
            if skip_depth == depth:
                skip_depth = None
            if in_colortbl == depth:
                in_colortbl = None
            depth -= 1
            continue
        if in_colortbl is not None:
            if word in ("red", "green", "blue"):
                table_color["rgb".index(word[0])] = int(num or 0)
            elif text and ";" in text:
                colors.extend([tuple(table_color)] * text.count(";"))
                table_color = [0, 0, 0]
            continue
        if skip_depth is not None:
            continue
        if word == "colortbl":
            in_colortbl, colors = depth, []
        elif word in ("fonttbl", "stylesheet", "info") or sym == "*":
            skip_depth = depth
        elif word == "fs" and num:
            current.size_pt = max(1, int(num)) / 2
        elif word == "cf" and num:
            idx = int(num)
            current.color = colors[idx] if 0 <= idx < len(colors) else (0, 0, 0)
        elif word in ("ql", "qc", "qr"):
            current.align = {"ql": "left", "qc": "center", "qr": "right"}[word]
        elif word in ("par", "line"):
            current = Paragraph(size_pt=current.size_pt, color=current.color, align=current.align)
            paragraphs.append(current)
        elif sym in ("\\", "{", "}"):
            current.text += sym
        elif text:
            current.text += text.replace("\r", "").replace("\n", "")
    if len(paragraphs) > 1 and not paragraphs[-1].text:
        paragraphs.pop()  # a closing \par ends the last line; it adds none
    return TextSpec(paragraphs)


@lru_cache(maxsize=32)
def _font(px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=px)


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, width: int | None, max_lines: int) -> list[str]:
    """Greedy word wrap at ``width`` pixels; a word wider than the box is cut where it overflows.
    Stops after ``max_lines`` (the rest would be clipped anyway)."""
    if width is None:
        return [text]
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        if len(lines) >= max_lines:
            return lines
        trial = f"{line} {word}" if line else word
        if draw.textlength(trial, font=font) <= width or not line:
            line = trial
        else:
            lines.append(line)
            line = word
        while len(line) > 1 and len(lines) < max_lines and draw.textlength(line[: width + 1], font=font) > width:
            # Longest prefix that fits (at least one character); no glyph is narrower than a pixel.
            lo, hi = 1, min(len(line) - 1, width)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if draw.textlength(line[:mid], font=font) <= width:
                    lo = mid
                else:
                    hi = mid - 1
            lines.append(line[:lo])
            line = line[lo:]
    lines.append(line)
    return lines


def render_text(
    spec: TextSpec, box: tuple[int, int] | None, *, res: float = 72.0, color: tuple[int, int, int, int] | None = None
) -> Image.Image:
    """An RGBA image of the laid-out text; ``box`` (w, h) wraps at w and clips at h (0 = fit text)."""
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    width = box[0] if box and box[0] > 0 else None
    laid: list[tuple[str, object, Paragraph, int]] = []
    for para in spec.paragraphs:
        px = max(1, round(para.size_pt * res / 72))
        if px > MAX_FONT_PX:
            raise ISError("bad_request", f"text size {para.size_pt} pt is larger than {MAX_FONT_PX} pixels")
        font = _font(px)
        line_height = round(font.size * 1.25)
        max_lines = box[1] // max(1, line_height) + 1 if box and box[1] > 0 else MAX_TEXT_CHARS
        for line in _wrap(probe, para.text, font, width, max_lines):
            laid.append((line, font, para, line_height))
    text_w = max((round(probe.textlength(line, font=f)) for line, f, _, _ in laid), default=1)
    text_h = sum(h for *_, h in laid) or 1
    out_w = width or max(1, text_w)
    out_h = box[1] if box and box[1] > 0 else max(1, text_h)
    if out_w * out_h > MAX_TEXT_PIXELS:
        raise ISError("size_limit", f"text layer of {out_w}x{out_h} pixels")
    img = Image.new("RGBA", (out_w, out_h), color or (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    y = 0
    for line, font, para, line_height in laid:
        if y >= out_h:
            break
        line_w = probe.textlength(line, font=font)
        x = {"left": 0, "center": (out_w - line_w) / 2, "right": out_w - line_w}[para.align]
        draw.text((x, y), line, font=font, fill=para.color + (255,))
        y += line_height
    return img
