"""``blendMode=`` (rendering.md §4.3): how a layer or an effect meets what lies under it.

The reference's modes are the Photoshop ones it names: ``norm``, ``dissolve``, ``lighten``,
``darken``, ``mult``, ``screen``. Each separable mode ``B`` is one ImageChops function; the
result follows Photoshop's formula ``(1 − αb)·Cs + αb·B(Cb, Cs)`` (where nothing lies under the
layer it shows its own colour), then source-over with the layer's alpha. ``dissolve`` keeps each
pixel whole or drops it, with probability = its alpha, from noise seeded by the layer so equal
requests give equal bytes (D: the reference defines no seed).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from PIL import Image, ImageChops

from ..errors import ISError

_SEPARABLE: dict[str, Callable[[Image.Image, Image.Image], Image.Image]] = {
    "lighten": ImageChops.lighter,
    "darken": ImageChops.darker,
    "mult": ImageChops.multiply,
    "screen": ImageChops.screen,
}
MODES = ("norm", "dissolve", *_SEPARABLE)


def parse_blend_mode(value: str | None) -> str:
    """``blendMode=`` of a layer (any case), ``norm`` when absent."""
    if not value:
        return "norm"
    mode = value.strip().lower()
    if mode not in MODES:
        raise ISError("bad_request", f"blendMode={value}: not supported (expected one of {', '.join(MODES)})")
    return mode


def draw(canvas: Image.Image, img: Image.Image, at: tuple[int, int], mode: str = "norm", seed: str = "") -> None:
    """Blend RGBA ``img`` onto RGBA ``canvas`` with its top-left at ``at`` (may be negative or past
    the edge: clipped, §4.1)."""
    x, y = at
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + img.width, canvas.width), min(y + img.height, canvas.height)
    if x0 >= x1 or y0 >= y1:
        return
    part = (x0 - x, y0 - y, x1 - x, y1 - y)
    if mode == "norm":
        canvas.alpha_composite(img, (x0, y0), part)
        return
    src = img.crop(part)
    if mode == "dissolve":
        canvas.alpha_composite(_dissolved(src, f"{seed} {at}"), (x0, y0))
        return
    under = canvas.crop((x0, y0, x1, y1))
    cs = src.convert("RGB")
    mixed = Image.composite(_SEPARABLE[mode](under.convert("RGB"), cs), cs, under.getchannel("A"))
    mixed.putalpha(src.getchannel("A"))
    under.alpha_composite(mixed)
    canvas.paste(under, (x0, y0))


def _dissolved(img: Image.Image, seed: str) -> Image.Image:
    """Each pixel fully opaque with probability alpha/255, else transparent."""
    noise = Image.frombytes("L", img.size, hashlib.shake_128(seed.encode()).digest(img.width * img.height))
    alpha = ImageChops.subtract(img.getchannel("A"), noise).point(lambda v: 255 if v else 0)
    out = img.copy()
    out.putalpha(alpha)
    return out
