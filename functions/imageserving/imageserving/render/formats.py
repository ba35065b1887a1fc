"""The reply's format commands (rendering.md §11): ``fmt=`` against the format table, ``qlt=``,
``quantize=``, ``pscan=``, ``jpegSize=`` and ``printRes=``, parsed to plain values.

No Pillow here: the error model (fallbacks.py) checks the ``fmt=``/``qlt=`` a default or error
image keeps without loading the renderer, and :mod:`.codec` encodes what these values describe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ..errors import ISError
from ..protocol.values import parse_flag, parse_int, parse_real
from . import heif

# The JFIF density field is 16 bits wide.
MAX_PRINT_RES = 65535

PIXEL_TYPES = ("rgb", "gray", "cmyk")


@dataclass(frozen=True)
class FormatInfo:
    """One row of the format table (rendering.md §11.2)."""

    mime: str
    pixel_types: tuple[str, ...]
    compressions: tuple[str, ...]  # the first one is the default; ("none",) = no options
    alpha: bool
    pillow_format: str | None  # None: a valid Scene7 format this server cannot produce


_JPEG_TYPES = ("rgb", "gray", "cmyk")
_LOSSY = ("lossy", "lossless")

FORMATS: dict[str, FormatInfo] = {
    "jpeg": FormatInfo("image/jpeg", _JPEG_TYPES, ("none",), False, "JPEG"),
    "pjpeg": FormatInfo("image/jpeg", _JPEG_TYPES, ("none",), False, "JPEG"),
    "png": FormatInfo("image/png", ("rgb", "gray"), ("none",), False, "PNG"),
    "png-alpha": FormatInfo("image/png", ("rgb", "gray"), ("none",), True, "PNG"),
    "png8": FormatInfo("image/png", ("rgb",), ("none",), False, "PNG"),
    "png8-alpha": FormatInfo("image/png", ("rgb",), ("none",), True, "PNG"),
    "gif": FormatInfo("image/gif", ("rgb", "gray"), ("none",), False, "GIF"),
    "gif-alpha": FormatInfo("image/gif", ("rgb", "gray"), ("none",), True, "GIF"),
    "webp": FormatInfo("image/webp", ("rgb",), _LOSSY, False, "WEBP"),
    "webp-alpha": FormatInfo("image/webp", ("rgb",), _LOSSY, True, "WEBP"),
    "avif": FormatInfo("image/avif", ("rgb",), _LOSSY, False, "AVIF"),
    "avif-alpha": FormatInfo("image/avif", ("rgb",), _LOSSY, True, "AVIF"),
    "tif": FormatInfo("image/tiff", _JPEG_TYPES, ("none", "lzw", "zip", "jpeg"), False, "TIFF"),
    "tif-alpha": FormatInfo("image/tiff", ("rgb", "gray"), ("none", "lzw", "zip"), True, "TIFF"),
    "jpeg2000": FormatInfo("image/jp2", ("rgb", "gray"), _LOSSY, False, "JPEG2000"),
    "jpeg2000-alpha": FormatInfo("image/jp2", ("rgb", "gray"), _LOSSY, True, "JPEG2000"),
    "pdf": FormatInfo("application/pdf", _JPEG_TYPES, ("none", "zip", "jpeg"), False, "PDF"),
    "eps": FormatInfo("image/eps", _JPEG_TYPES, ("none",), False, "EPS"),
    # Lossless HEIC through pillow-heif's libheif + x265, when it is installed (it is in the Lambda
    # layer); parse_fmt refuses it otherwise.
    "heic": FormatInfo("image/heic", ("rgb",), ("lossless",), False, "HEIF"),
    # Valid names without a writer (no JPEG XR encoder in Pillow 13's wheels; Flash and streaming
    # manifests are not images).
    "jpegxr": FormatInfo("image/vnd.ms-photo", ("rgb",), _LOSSY, False, None),
    "jpegxr-alpha": FormatInfo("image/vnd.ms-photo", ("rgb",), _LOSSY, True, None),
    "swf": FormatInfo("application/x-shockwave-flash", ("rgb",), ("none",), False, None),
    "swf3": FormatInfo("application/x-shockwave-flash", ("rgb",), ("none",), False, None),
    "swf-alpha": FormatInfo("application/x-shockwave-flash", ("rgb",), ("none",), True, None),
    "swf3-alpha": FormatInfo("application/x-shockwave-flash", ("rgb",), ("none",), True, None),
    "f4m": FormatInfo("application/f4m+xml", ("rgb",), ("none",), False, None),
    "m3u8": FormatInfo("application/vnd.apple.mpegurl", ("rgb",), ("none",), False, None),
}
# ``p-jpg``: Apple's Image Serving store front sends it for progressive JPEG on every product
# image (as-images.apple.com/is/…?fmt=p-jpg); it has no other reading.
FORMAT_ALIASES = {"jpg": "jpeg", "pjpg": "pjpeg", "p-jpg": "pjpeg"}


@dataclass(frozen=True)
class OutputFormat:
    """A parsed ``fmt=`` value; only formats this server can encode are ever built."""

    name: str  # canonical format name, aliases resolved
    pixel_type: str  # rgb | gray | cmyk
    compression: str  # the format's default when not given
    alpha: bool
    mime: str
    pillow_format: str

    def with_pixel_type(self, pixel_type: str) -> OutputFormat:
        """The same format with the pixel type an ``icc=`` profile imposes (§10)."""
        _check_pixel_type(self.name, pixel_type)
        return replace(self, pixel_type=pixel_type)


def parse_fmt(value: str, *, default_pixel_type: str = "rgb") -> OutputFormat:
    """``fmt=format[,[pixelType][,compression]]`` (§11.1); ``default_pixel_type`` is gray for
    ``req=mask`` and falls back to the format's first type when the format does not allow it."""
    parts = [p.strip().lower() for p in value.split(",")]
    if len(parts) > 3:
        raise ISError("bad_request", f"fmt={value}: too many values")
    parts += [""] * (3 - len(parts))
    name = FORMAT_ALIASES.get(parts[0], parts[0])
    info = FORMATS.get(name)
    if info is None:
        raise ISError("bad_request", f"fmt={value}: unknown format {parts[0]!r}")
    if info.pillow_format is None or (info.pillow_format == "HEIF" and not heif.register()):
        raise ISError("bad_request", f"format not supported: {name}")
    pixel_type = parts[1]
    if not pixel_type:
        allowed = default_pixel_type in info.pixel_types
        pixel_type = default_pixel_type if allowed else info.pixel_types[0]
    _check_pixel_type(name, pixel_type)
    compression = parts[2] or info.compressions[0]
    if compression not in info.compressions:
        raise ISError("bad_request", f"fmt={value}: compression {compression!r} not allowed for {name}")
    return OutputFormat(name, pixel_type, compression, info.alpha, info.mime, info.pillow_format)


def _check_pixel_type(name: str, pixel_type: str) -> None:
    if pixel_type not in PIXEL_TYPES:
        raise ISError("bad_request", f"fmt={name}: unknown pixel type {pixel_type!r}")
    if name == "tif-alpha" and pixel_type == "cmyk":
        raise ISError("bad_request", "format not supported: tif-alpha with cmyk")
    if pixel_type not in FORMATS[name].pixel_types:
        raise ISError("bad_request", f"fmt={name}: pixel type {pixel_type} not allowed")


# --------------------------------------------------------------------------------------------
# Encoder option values

_HEX6 = re.compile(r"[0-9a-fA-F]{6}")


def parse_qlt(value: str) -> tuple[int, bool]:
    """``qlt=quality[,chroma]`` (§11.3) -> (quality 1-100, chroma subsampling switched off)."""
    parts = value.split(",")
    if len(parts) > 2:
        raise ISError("bad_request", f"qlt={value}: too many values")
    quality = parse_int(parts[0], cmd="qlt", lo=1, hi=100)
    chroma_off = parse_flag(parts[1], cmd="qlt") if len(parts) == 2 and parts[1] else False
    return quality, chroma_off


def parse_pscan(value: str) -> str:
    """``pscan=auto|3|4|5`` (§11.4); validated only: libjpeg's own progression is always used."""
    scans = value.strip().lower()
    if scans not in ("auto", "3", "4", "5"):
        raise ISError("bad_request", f"pscan={value}: expected auto, 3, 4 or 5")
    return scans


def parse_jpeg_size(value: str) -> float:
    """``jpegSize=kb`` (§11.6): the reply size limit in KB of 1024 bytes; 0 = no limit."""
    return float(parse_real(value, cmd="jpegSize", lo=0))


def parse_print_res(value: str) -> float:
    """``printRes=dpi`` (§11.7): a real in (0, 65535]."""
    return float(parse_real(value, cmd="printRes", positive=True, hi=MAX_PRINT_RES))


@dataclass(frozen=True)
class Quantize:
    """A parsed ``quantize=`` value (§11.5)."""

    kind: str = "adaptive"  # adaptive | web | mac
    dither: bool = True
    colors: int = 256
    color_list: tuple[tuple[int, int, int], ...] = ()


def parse_quantize(value: str, *, fmt: OutputFormat | None = None) -> Quantize:
    """``quantize=type[,dither[,numColors[,colorList]]]``; empty parts take their default.

    ``fmt`` lets the combination ``mac`` + an -alpha format be refused while parsing.
    """
    parts = [p.strip() for p in value.split(",")]
    kind = parts[0].lower() or "adaptive"
    if kind not in ("adaptive", "web", "mac"):
        raise ISError("bad_request", f"quantize={value}: unknown type {parts[0]!r}")
    dither = True
    if len(parts) > 1 and parts[1]:
        mode = parts[1].lower()
        if mode not in ("diffuse", "off"):
            raise ISError("bad_request", f"quantize={value}: dither must be diffuse or off")
        dither = mode == "diffuse"
    colors = parse_int(parts[2], cmd="quantize", lo=2, hi=256) if len(parts) > 2 and parts[2] else 256
    color_list = []
    for text in parts[3:]:
        if not _HEX6.fullmatch(text):
            raise ISError("bad_request", f"quantize={value}: colour {text!r} is not 6 hex digits")
        color_list.append((int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)))
    if len(color_list) > colors:
        raise ISError("bad_request", f"quantize={value}: more colours listed than numColors")
    if kind == "mac" and fmt is not None and fmt.alpha:
        raise ISError("bad_request", f"quantize=mac is not allowed with fmt={fmt.name}")
    return Quantize(kind, dither, colors, tuple(color_list))
