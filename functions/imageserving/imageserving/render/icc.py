"""Colour management (rendering.md §10): ICC profiles, the working space and the transforms
between them (Pillow's ImageCms, i.e. LittleCMS).

The working space for RGB pixels is sRGB. A single image keeps its own space through scaling and
operations and is converted once, at reply size, to the output profile (§3 stage 10: cheapest,
and what the reference describes for one colour space); layers of a composite are brought to
sRGB when decoded (:func:`to_working`) and the composite is converted to the output profile.
sRGB-tagged and untagged sources served without ``icc=`` take no transform at all.

Transforms are built once per (source profile, destination profile, modes, intent, BPC) and
cached; a profile is compared by its bytes, and any sRGB profile (by its colorants) counts as
the built-in one, so camera and editor variants of sRGB are not converted either.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageCms

from ..errors import ISError
from ..protocol.values import parse_flag

INTENTS = {"perceptual": 0, "relative": 1, "saturation": 2, "absolute": 3}
_PIXEL_TYPES = {b"RGB ": "rgb", b"GRAY": "gray", b"CMYK": "cmyk"}
# LittleCMS modes per pixel type; alpha is carried around the transform, never through it.
_MODES = {"rgb": "RGB", "gray": "L", "cmyk": "CMYK"}
# sRGB's D50-adapted colorants (IEC 61966-2-1 through Bradford, as every sRGB profile stores them).
_SRGB_COLORANTS = (
    (0.4361, 0.2225, 0.0139),
    (0.3851, 0.7169, 0.0971),
    (0.1431, 0.0606, 0.7141),
)
_COLORANT_TOLERANCE = 0.002


@dataclass(frozen=True)
class IccCommand:
    """``icc=object[,renderIntent[,blackpointComp[,dither]]]`` (§10); None = the catalog's."""

    name: str
    intent: int | None = None
    bpc: bool | None = None


def parse_icc(value: str) -> IccCommand:
    parts = [p.strip() for p in value.split(",")]
    if len(parts) > 4:
        raise ISError("bad_request", f"icc={value}: too many values")
    if not parts[0]:
        raise ISError("bad_request", f"icc={value}: no profile named")
    intent = None
    if len(parts) > 1 and parts[1]:
        intent = INTENTS.get(parts[1].lower())
        if intent is None:
            raise ISError("bad_request", f"icc={value}: intent must be perceptual, relative, saturation or absolute")
    bpc = parse_flag(parts[2], cmd="icc") if len(parts) > 2 and parts[2] else None
    if len(parts) > 3 and parts[3]:
        parse_flag(parts[3], cmd="icc")  # dither: validated, then ignored (§10)
    return IccCommand(parts[0], intent, bpc)


@dataclass(frozen=True)
class ColourPlan:
    """A request's colour settings, profiles already read (the assembler resolves the names)."""

    output: bytes | None = None  # icc= or IccProfile<Type>; None = sRGB for RGB replies
    assumed_rgb: bytes | None = None  # IccProfileSrcRgb: the space of untagged RGB sources
    intent: int = 0  # IccRenderIntent (rendering.md §1: perceptual)
    bpc: bool = True  # IccBlackPointCompensation


def pixel_type(data: bytes) -> str | None:
    """rgb, gray or cmyk from the profile header's colour space; None for other spaces."""
    return _PIXEL_TYPES.get(bytes(data[16:20]))


def check_profile(data: bytes, name: str) -> bytes:
    """``data`` when LittleCMS reads it as an RGB, gray or CMYK profile, else a content error."""
    try:
        _profile(data)
    except (ImageCms.PyCMSError, OSError, ValueError) as exc:
        raise ISError("content_error", f"icc={name}: not a usable ICC profile") from exc
    if pixel_type(data) is None:
        raise ISError("content_error", f"icc={name}: not an RGB, gray or CMYK profile")
    return data


def check_output(data: bytes, name: str) -> bytes:
    """``data`` when the working space can be converted into it (an input-only profile, without
    the tables from PCS to device, cannot be an output profile), else a bad request."""
    try:
        _transform(srgb(), data, "RGB", _MODES[pixel_type(data) or "rgb"], 0, True)
    except (ImageCms.PyCMSError, OSError, ValueError) as exc:
        raise ISError("bad_request", f"icc={name}: the profile cannot be used for output") from exc
    return data


# ICC header dateTimeNumber (bytes 24-35): little CMS stamps the moment the profile is built, so
# every process embedded a different sRGB profile and the same reply got a different body and
# ETag per Lambda instance. A fixed date (2000-01-01 00:00:00) keeps it byte-stable; the profile
# ID (bytes 84-99), which would cover the date, is left zero by little CMS.
_FIXED_DATE = bytes.fromhex("07d0 0001 0001 0000 0000 0000")


@lru_cache(maxsize=1)
def srgb() -> bytes:
    """The built-in sRGB profile (the working space), identical in every process."""
    data = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return data[:24] + _FIXED_DATE + data[36:]


@lru_cache(maxsize=64)
def is_srgb(data: bytes) -> bool:
    """Whether ``data`` is an sRGB profile: a matrix profile with sRGB's colorants, or one whose
    description says sRGB (LUT-based variants such as the ICC's sRGB v4 preference profile)."""
    if data == srgb():
        return True
    try:
        p = _profile(data).profile
        colorants = (p.red_colorant, p.green_colorant, p.blue_colorant)
        if all(c is not None for c in colorants):
            return all(
                abs(a - b) <= _COLORANT_TOLERANCE
                for got, want in zip(colorants, _SRGB_COLORANTS)
                for a, b in zip(got[0], want)
            )
        return "srgb" in (p.profile_description or "").lower()
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return False


def same_space(a: bytes, b: bytes) -> bool:
    return a is b or a == b or (is_srgb(a) and is_srgb(b))


@lru_cache(maxsize=16)
def _profile(data: bytes) -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(io.BytesIO(data))


@lru_cache(maxsize=32)
def _transform(src: bytes, dst: bytes, in_mode: str, out_mode: str, intent: int, bpc: bool):
    flags = ImageCms.Flags.BLACKPOINTCOMPENSATION if bpc else ImageCms.Flags.NONE
    return ImageCms.buildTransform(
        _profile(src), _profile(dst), in_mode, out_mode, renderingIntent=ImageCms.Intent(intent), flags=flags
    )


def convert(img: Image.Image, src: bytes, dst: bytes, intent: int = 0, bpc: bool = True) -> Image.Image | None:
    """``img`` (L, LA, RGB, RGBA or CMYK, in ``src``'s space) in ``dst``'s space and pixel type,
    alpha kept where the result can carry it; None when ``img``'s mode does not fit ``src`` or a
    profile is unusable (the caller then leaves the pixels as they are)."""
    src_type, dst_type = pixel_type(src), pixel_type(dst)
    if src_type is None or dst_type is None:
        return None
    base = img.mode[:-1] if img.mode in ("RGBA", "LA") else img.mode
    if base != _MODES[src_type]:
        return None
    alpha = img.getchannel("A") if img.mode != base else None
    out_mode = _MODES[dst_type]
    try:
        if img.mode == "RGBA" and out_mode == "RGB":  # LittleCMS copies RGBA's alpha itself
            return ImageCms.applyTransform(img, _transform(src, dst, "RGBA", "RGBA", intent, bpc))
        work = img.convert(base) if alpha is not None else img
        out = ImageCms.applyTransform(work, _transform(src, dst, base, out_mode, intent, bpc))
    except (ImageCms.PyCMSError, OSError, ValueError):
        return None
    if alpha is not None and out.mode in ("RGB", "L"):
        out.putalpha(alpha)
    return out


def convert_color(color: tuple[int, ...], src: bytes, dst: bytes, intent: int = 0, bpc: bool = True) -> tuple:
    """One RGB colour from ``src`` to ``dst`` (an RGB space); unchanged when that fails."""
    out = convert(Image.new("RGB", (1, 1), tuple(color[:3])), src, dst, intent, bpc)
    return tuple(out.getpixel((0, 0))) if out is not None and out.mode == "RGB" else tuple(color)


def to_working(img: Image.Image, profile: bytes | None) -> tuple[Image.Image, bytes | None]:
    """A decoded layer in the working space: tagged RGB pixels in sRGB (perceptual, BPC: the
    catalog defaults); others as they are. Returns the pixels and their profile."""
    if profile is None or pixel_type(profile) != "rgb" or is_srgb(profile):
        return img, profile
    out = convert(img, profile, srgb())
    return (img, profile) if out is None else (out, srgb())


@dataclass(frozen=True)
class Route:
    """How a reply's pixels get to the output space: ``pixels`` is the space they are drawn in,
    ``target`` the one to convert them to (None: no conversion), ``reply`` the profile that
    describes the sent pixels (what ``iccEmbed`` embeds; None: unknown, nothing embedded)."""

    pixels: bytes | None
    target: bytes | None
    reply: bytes | None


def route(own: bytes | None, mode: str | None, plan: ColourPlan) -> Route:
    """The route for pixels drawn from a single source of ``mode`` with embedded profile ``own``
    (already sRGB for CMYK sources, as decoding makes them), or for a composite or a solid layer
    (``mode`` None: sRGB pixels).

    Untagged RGB pixels are in ``IccProfileSrcRgb`` when the catalog names one, else taken as
    sRGB, the web's default. Gray pixels are converted only to an explicit output profile."""
    rgb = mode is None or mode not in ("L", "LA", "1", "I", "F") and not mode.startswith("I;16")
    kind = "rgb" if rgb else "gray"
    if own is not None and pixel_type(own) != kind:
        own = None  # a profile that does not describe these pixels is ignored, like a broken one
    pixels = own or (plan.assumed_rgb or srgb() if rgb else None)
    target = plan.output or (srgb() if rgb else None)
    if pixels is None or target is None or same_space(pixels, target):
        return Route(pixels, None, plan.output or own)
    return Route(pixels, target, target)
