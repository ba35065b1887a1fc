"""The Pillow codec layer: reading source images and writing replies (rendering.md §9-§11, §16).

Sources are opened header-first so sizes and limits are known before any pixel is decoded; JPEGs
are decoded at 1/2, 1/4 or 1/8 scale when the reply is small enough (libjpeg DCT scaling). Decoded
images are normalised to L, LA, RGB or RGBA, upright. Replies are written in every ``fmt=`` format
Pillow can produce; the others are refused as ``bad_request`` (protocol.md §9).
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from dataclasses import dataclass, field, replace
from functools import lru_cache

from PIL import Image, ImageCms, TiffImagePlugin

from ..errors import ISError
from . import budget as decode_budget
from . import heif, j2k
from .formats import OutputFormat, Quantize
from .icc import srgb, to_working


# --------------------------------------------------------------------------------------------
def _avif_aom() -> bool:
    try:
        from PIL import _avif

        return bool(_avif.encoder_codec_available("aom"))
    except ImportError:  # a Pillow built without AVIF: fmt=avif fails at encode time as before
        return False


# Encoder knobs (§16.9). Measured on 500x375 photographic replies, one core, Pillow 13:
# PNG levels 1-3 take ~16 ms and 4-6 ~30 ms, but 1-3 make flat graphics (PNG's real use:
# logos, swatches) ~60 % larger for a ~1 ms saving; photos grow only ~2 %. Level 6 it is.
PNG_COMPRESS_LEVEL = 6
WEBP_METHOD = 4
# AVIF speed 8 took ~50 ms, speed 9 ~15 ms for ~3 % more bytes at equal SSIM. libaom's tune=ssim
# (instead of its PSNR default) is ~5 % smaller at equal SSIM and scores higher PSNR at equal
# bytes too (benchmarks/smart_imaging.py); it is an aom option, so it is only set when the AVIF
# encoder is aom (Pillow's wheels), never passed to another AV1 encoder.
AVIF_SPEED = 9
AVIF_OPTIONS: dict = {"speed": AVIF_SPEED} | ({"codec": "aom", "advanced": {"tune": "ssim"}} if _avif_aom() else {})
# qlt -> libavif quality. libavif's scale is not libjpeg's: passing qlt=80 straight through gave
# an AVIF of SSIM 0.980 / 34.9 dB where the JPEG had 0.942 / 31.4 dB - a better picture, 25 %
# larger (68 KB vs 54 KB on the 12 MP photo at 500x375). These points are the median over 13
# photographs of the lowest AVIF quality whose SSIM reaches the JPEG's at that qlt, plus one
# (``smart_imaging.py --calibrate``); linear in between.
AVIF_QUALITY = ((1, 1), (50, 53), (60, 58), (70, 66), (75, 71), (80, 77), (85, 83), (90, 90), (95, 97), (100, 100))


# --------------------------------------------------------------------------------------------
# Sources (§9)

# Formats accepted as sources (JPEG includes MPO, which Pillow's JPEG opener recognises).
# EPS/PDF would need Ghostscript; the rest are exotic.
SOURCE_FORMATS = ("JPEG", "PNG", "GIF", "TIFF", "WEBP", "AVIF", "JPEG2000", "BMP", "PSD")

_ORIENTATION_TAG = 0x0112
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True)
class SourceImage:
    """What a source's header says; nothing is decoded yet."""

    data: bytes = field(repr=False)
    format: str
    mode: str
    stored_size: tuple[int, int]  # as stored, before EXIF orientation
    orientation: int  # EXIF orientation 1-8 (1 when absent or invalid)
    has_alpha: bool
    icc_profile: bytes | None
    xmp: bytes | None
    dpi: tuple[float, float] | None
    # Reduced copies of page 0 in a pyramid (PTIFF) or multi-page TIFF: (page, stored size),
    # largest first; decoding picks the smallest that keeps the needed resolution (§16.8). A
    # level stored as a SubIFD of page 0 (tag 330) has minus its IFD's file offset as its page.
    levels: tuple[tuple[int, tuple[int, int]], ...] = ()
    max_pixels: int | None = None  # the limit for the level decoded (pyramids: checked in decode)
    budget: int | None = None  # decode-memory budget in bytes (render/budget.py); None: none
    animated: bool = False  # a GIF or WebP with more than one frame
    # One frame of an animation, already read (frames(): seeking a GIF from its start per frame
    # would read it n² times); decode() takes its pixels instead of opening ``data``.
    frame: Image.Image | None = field(default=None, repr=False, compare=False)

    @property
    def size(self) -> tuple[int, int]:
        """The size after EXIF orientation: the size every plan works with (D13)."""
        w, h = self.stored_size
        return (h, w) if self.orientation >= 5 else (w, h)


@dataclass
class Decoded:
    """A decoded, normalised, upright source."""

    image: Image.Image  # mode L, LA, RGB or RGBA
    reduction: float  # source pixels per decoded pixel (2, 4 or 8 after DCT scaling, reduce()'s factor, else 1)
    icc_profile: bytes | None  # the profile of the decoded pixels (sRGB after a CMYK conversion)


def open_source(data: bytes, *, max_pixels: int, budget: int | None = None) -> SourceImage:
    """Read a source's header; refuse it before decoding when it has more than ``max_pixels``.
    ``budget`` (bytes) is checked by :func:`decode` once the decoded size is known."""
    with _open(data) as im:
        w, h = im.size
        xmp = im.info.get("xmp")
        dpi = im.info.get("dpi")
        src = SourceImage(
            data=data,
            format=im.format or "",
            mode=im.mode,
            stored_size=(w, h),
            orientation=_orientation(im),
            has_alpha=_has_alpha(im),
            icc_profile=im.info.get("icc_profile") or None,
            xmp=(xmp.encode() if isinstance(xmp, str) else xmp) or None,
            dpi=(float(dpi[0]), float(dpi[1])) if dpi and dpi[0] > 0 and dpi[1] > 0 else None,
            max_pixels=max_pixels,
            budget=budget,
        )
        levels = _pyramid_levels(im)  # after page 0's metadata: seeking replaces im.info
        smallest = levels[-1][1] if levels else (w, h)
        if w * h > max_pixels and smallest[0] * smallest[1] > max_pixels:
            # A pyramid too large as a whole is still served from a level within the limit
            # (decode checks the level it picks).
            raise ISError("size_limit", f"source is {w}x{h}, more than {max_pixels} pixels")
        if levels:
            return replace(src, levels=levels)
        if im.format in ("GIF", "WEBP") and _is_animated(im):
            return replace(src, animated=True)
        return src


# A pyramid has at most this many levels worth reading (a 2^16-pixel side halves 16 times).
_MAX_LEVELS = 16


def _pyramid_levels(im: Image.Image) -> tuple[tuple[int, tuple[int, int]], ...]:
    """The pages of a multi-page TIFF that are reduced copies of page 0: same mode, smaller, with
    page 0's aspect ratio to within the rounding of halving. Only page headers (IFDs) are read;
    other pages (a different picture, a thumbnail of another shape) are not levels."""
    if im.format != "TIFF":
        return ()
    (w, h), mode = im.size, im.mode

    def reduced(lw: int, lh: int) -> bool:
        # Sides rounded up or down at each halving: the aspect may drift by about a pixel.
        return lw < w and lh < h and abs(lw * h - lh * w) <= max(w, h) * 2

    levels = [(-offset, size) for offset, size in _subifd_levels(im) if reduced(*size)]
    # is_animated only looks for a next page; n_frames would walk every IFD of the file.
    if getattr(im, "is_animated", False):
        try:
            for page in range(1, _MAX_LEVELS + 1):
                im.seek(page)  # EOFError after the last page ends the loop
                if im.mode == mode and reduced(*im.size):
                    levels.append((page, im.size))
        except Exception:  # noqa: BLE001 - a broken later page only means fewer levels
            pass
        finally:
            im.seek(0)
    return tuple(sorted(levels, key=lambda level: -level[1][0]))


# Tags that make two TIFF directories the same kind of pixels (Pillow's mode comes from them).
_PIXEL_TAGS = (258, 262, 277, 284, 339)  # BitsPerSample, Photometric, SamplesPerPixel, Planar, SampleFormat
_SUBIFDS = 330


def _subifd_levels(im: Image.Image) -> list[tuple[int, tuple[int, int]]]:
    """Page 0's SubIFDs (libvips ``subifd=true`` pyramids) with the pixels of page 0: (file
    offset, size). Pillow does not follow tag 330, so each directory is read on its own from the
    offset: its tags only, no pixels."""
    offsets = im.tag_v2.get(_SUBIFDS)
    if not offsets:
        return []
    offsets = (offsets,) if isinstance(offsets, int) else tuple(offsets)
    page0 = [im.tag_v2.get(t) for t in _PIXEL_TAGS]
    header = _tiff_header(im)
    fp = im.fp
    out = []
    try:
        for offset in offsets[:_MAX_LEVELS]:
            ifd = TiffImagePlugin.ImageFileDirectory_v2(header)
            fp.seek(offset)
            ifd.load(fp)
            size = (ifd.get(256), ifd.get(257))
            if isinstance(size[0], int) and isinstance(size[1], int) and [ifd.get(t) for t in _PIXEL_TAGS] == page0:
                out.append((offset, size))
    except Exception:  # noqa: BLE001 - a broken directory only means fewer levels
        pass
    return out


def _tiff_header(im: Image.Image) -> bytes:
    """The file's TIFF header (byte order, classic or BigTIFF), as directories are read with."""
    fp = im.fp
    at = fp.tell()
    fp.seek(0)
    header = fp.read(16)
    fp.seek(at)
    return header if header[2] == 43 else header[:8]


def _open_subifd(data: bytes, offset: int) -> Image.Image:
    """The SubIFD at ``offset`` as an image: the file with its header pointing at that directory
    (offsets in a TIFF are absolute, so every strip and tile stays where it is). One copy of the
    compressed file; Pillow, and libtiff behind it, then read the level like a first page."""
    big = data[2] == 43
    at, fmt = (8, "Q") if big else (4, "I")
    order = "<" if data[:2] == b"II" else ">"
    return _open(data[:at] + struct.pack(order + fmt, offset) + data[at + struct.calcsize(fmt) :])


@dataclass(frozen=True)
class Frame:
    """One frame of an animated source, as a source to decode, and how long it shows (ms)."""

    source: SourceImage
    duration: int


def _is_animated(im: Image.Image) -> bool:
    """Whether ``im`` has more than one frame; a file whose later blocks are corrupt is served as
    its first frame, as before animation was supported."""
    try:
        return bool(getattr(im, "is_animated", False))
    except Exception:  # struct.error, IndexError, EOFError… from Pillow's block walk
        return False


def frame_count(src: SourceImage) -> int:
    """The number of frames. For a GIF, Pillow reads through the file's blocks without decoding
    them (26 ms for a 22 MB GIF of 400 frames): linear in the bytes fetched, which are bounded."""
    with _open(src.data) as im:
        try:
            return getattr(im, "n_frames", 1)
        except Exception:  # Pillow walks the blocks: a truncated or corrupt one raises struct.error, IndexError…
            return 1


def frames(src: SourceImage):
    """The frames of an animated GIF or WebP in order, each composited over the frames before it
    as the format's disposal says (Pillow does that when seeking), read in one pass."""
    im = _open(src.data)
    for index in range(getattr(im, "n_frames", 1)):
        try:
            im.seek(index)
            im.load()
        except Exception as exc:  # any decoder failure on untrusted bytes is the source's fault
            raise ISError("content_error", f"cannot decode frame {index} of the {src.format} source: {exc}") from exc
        frame = im.copy()
        frame.info = dict(im.info)  # transparency of this frame
        yield Frame(replace(src, frame=frame, mode=frame.mode), int(im.info.get("duration") or 100))


def loop_count(src: SourceImage) -> int | None:
    """How often the animation repeats (0 = forever); None = play once (a GIF without NETSCAPE2.0)."""
    with _open(src.data) as im:
        loop = im.info.get("loop")
    return int(loop) if loop is not None else None


def _pyramid_level(src: SourceImage, scale_hint: float | None) -> tuple[int, tuple[int, int]]:
    """The page to decode: the smallest level keeping twice the resolution ``scale_hint`` asks
    for, as JPEG DCT scaling does (§16.2, §16.8); page 0 without a hint."""
    best = (0, src.stored_size)
    if scale_hint is None or not src.levels:
        return best
    w, h = src.stored_size
    need = (math.ceil(w * scale_hint * 2), math.ceil(h * scale_hint * 2))
    for page, (lw, lh) in src.levels:
        if lw >= need[0] and lh >= need[1]:
            best = (page, (lw, lh))
    return best


def check_budget(src: SourceImage, im: Image.Image, work: float = 0.0, size: tuple[int, int] | None = None) -> None:
    """The decode-memory budget for ``im`` as it will be decoded: call after every shrink-on-load
    choice (JPEG draft, pyramid level), before ``load()``. ``work``: bytes per decoded pixel that
    the caller's own full-size work adds (render/budget.py); ``size``: the decoded size when
    ``im.size`` does not say it yet (JPEG 2000 ``reduce``)."""
    decode_budget.check(
        im.format or src.format,
        im.mode,
        size or im.size,
        budget=src.budget,
        alpha=src.has_alpha,
        turned=src.orientation in _TRANSPOSE,
        data_bytes=len(src.data),
        work=work,
    )


def decode(
    src: SourceImage,
    *,
    scale_hint: float | None,
    working: bool = False,
    work: float = 0.0,
    assumed_rgb: bytes | None = None,
) -> Decoded:
    """Decode ``src``; ``scale_hint`` is the total scale from source to reply pixels, if known.
    ``working``: bring tagged RGB pixels to the working space (sRGB) now, as layers of a
    composite need (a single image is converted at reply size instead, :mod:`.icc`), untagged
    RGB ones from ``assumed_rgb`` (IccProfileSrcRgb) when given. ``work``:
    what the caller's full-size work adds, bytes per decoded pixel (for the decode budget).

    JPEGs are DCT-scaled when ``scale_hint <= 0.5``, keeping at least twice the needed pixels
    (§16.2); CMYK JPEGs never are, so their colour conversion sees every pixel.
    """
    im = src.frame if src.frame is not None else _open(src.data)
    reduction = 1.0
    if src.levels or src.max_pixels is not None:
        page, (lw, lh) = _pyramid_level(src, scale_hint)
        if src.max_pixels is not None and lw * lh > src.max_pixels:
            raise ISError("size_limit", f"source level of {lw}x{lh} pixels, more than {src.max_pixels}")
        if page < 0:
            im = _open_subifd(src.data, -page)
            reduction = src.stored_size[0] / lw
        elif page:
            im.seek(page)
            reduction = src.stored_size[0] / lw
    if scale_hint is not None and 0 < scale_hint <= 0.5 and im.format in ("JPEG", "MPO") and im.mode != "CMYK":
        w, h = im.size
        drafted = im.draft(im.mode, (math.ceil(w * scale_hint * 2), math.ceil(h * scale_hint * 2)))
        if drafted is not None:
            reduction = w / drafted[1][2]
    size = None
    # Wavelet levels keep as much as reduce() below does (BOX_REDUCE_MARGIN), not a draft's 2x.
    hint = scale_hint * BOX_REDUCE_MARGIN if scale_hint is not None else None
    if im.format == "JPEG2000" and (levels := j2k.reduction(src.data, im.size, hint)):
        im.reduce = levels  # OpenJPEG skips the finest wavelet levels: 2^levels smaller (j2k.py)
        size = j2k.reduced_size(im.size, levels)
        reduction = im.size[0] / size[0]
    # The caller's work (and the colour conversion) runs on what the box reduce below leaves.
    boxed = reduction == 1 and im.format not in ("JPEG", "MPO")
    factor = _box_factor(decode_budget.normalised_mode(im.mode, src.has_alpha), scale_hint) if boxed else 1
    # Untagged pixels of a layer whose catalog names their RGB space convert from it like a tagged
    # source's (not CMYK ones: _normalise makes those sRGB; gray ones keep their values, below).
    assumed = assumed_rgb if working and src.icc_profile is None and src.mode != "CMYK" else None
    colour = decode_budget.COLOUR_BYTES if working and (src.icc_profile or assumed) else 0.0
    check_budget(src, im, (work + colour) / factor**2, size)
    try:
        im.load()
        image, icc = _normalise(im, src.icc_profile)
    except Image.DecompressionBombError as exc:
        raise ISError("size_limit", f"source too large to decode: {exc}") from exc
    except Exception as exc:  # any decoder failure on untrusted bytes is the source's fault
        raise ISError("content_error", f"cannot decode {src.format} source: {exc}") from exc
    if boxed:
        image, reduction = _box_reduced(image, scale_hint)
    if src.orientation in _TRANSPOSE:
        image = image.transpose(_TRANSPOSE[src.orientation])
    # Header metadata is exposed on SourceImage; dropping it here keeps a stale EXIF orientation
    # or colour tag from being applied a second time downstream.
    image.info = {}
    if working:
        if assumed is not None and image.mode in ("RGB", "RGBA"):
            icc = assumed
        image, icc = to_working(image, icc)
    return Decoded(image, reduction, icc)


# reduce() keeps this much more than a draft would (1.6 x the pipeline's 2.5 = 4x the reply's
# resolution): PNG sources are where line art and text live, and one-pixel lines under LANCZOS
# left the §16 budget with less (2.5x: 99.9th percentile 9, tests/test_render.py).
BOX_REDUCE_MARGIN = 1.6


def _box_reduced(image: Image.Image, scale_hint: float | None) -> tuple[Image.Image, float]:
    """What DCT scaling does for a JPEG, for sources without it (PNG, TIFF pages, WebP …):
    ``reduce()`` by the largest whole factor that keeps ``BOX_REDUCE_MARGIN`` times twice
    ``scale_hint``'s resolution (issue 12: a 12 MP PNG → 500 px resampled every source pixel
    with LANCZOS). Opaque L/RGB only: reduce() does not premultiply alpha."""
    factor = _box_factor(image.mode, scale_hint)
    if factor < 2:
        return image, 1.0
    return image.reduce(factor), image.width / math.ceil(image.width / factor)


def _box_factor(mode: str, scale_hint: float | None) -> int:
    if scale_hint is None or not 0 < scale_hint <= 0.5 or mode not in ("L", "RGB"):
        return 1
    return max(1, math.floor(1 / (2 * scale_hint * BOX_REDUCE_MARGIN)))


def _open(data: bytes) -> Image.Image:
    formats = SOURCE_FORMATS
    if _is_heif(data):
        if not heif.register():
            raise ISError("content_error", "HEIF/HEIC source: this server has no HEIF decoder (pillow-heif)")
        formats += ("HEIF",)
    elif _is_svg(data):
        # No maintained SVG renderer installs from wheels without system libraries (cairo).
        raise ISError("content_error", "SVG source: SVG images are not supported as image sources")
    try:
        return Image.open(io.BytesIO(data), formats=formats)
    except Image.DecompressionBombError as exc:
        raise ISError("size_limit", f"source too large: {exc}") from exc
    except Exception as exc:  # Pillow's plugins raise many types on malformed headers
        raise ISError("content_error", f"unreadable or unsupported source image: {exc}") from exc


# ISO BMFF brands of HEVC-coded HEIF (AVIF's are "avif"/"avis", which Pillow reads itself).
_HEIF_BRANDS = frozenset((b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"))


def _is_heif(data: bytes) -> bool:
    """An ``ftyp`` box naming a HEVC HEIF brand, as major brand or (after mif1/msf1) compatible one."""
    if data[4:8] != b"ftyp":
        return False
    major = data[8:12]
    if major in _HEIF_BRANDS:
        return True
    if major not in (b"mif1", b"msf1"):
        return False
    end = min(int.from_bytes(data[0:4], "big"), 256)
    return any(data[i : i + 4] in _HEIF_BRANDS for i in range(16, end - 3, 4))


def _is_svg(data: bytes) -> bool:
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith(b"<svg") or (head.startswith((b"<?xml", b"<!doctype svg")) and b"<svg" in head)


def _orientation(im: Image.Image) -> int:
    # PNG keeps eXIf wherever the writer put it; looking past IDAT would decode the whole image.
    if im.format == "PNG" and "exif" not in im.info:
        return 1
    try:
        value = im.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # a broken EXIF block must not make the image unusable
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _has_alpha(im: Image.Image) -> bool:
    return im.mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in im.info


def _normalise(im: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
    """Bring any decoded mode to L, LA, RGB or RGBA (§9); returns the image and its profile."""
    mode = im.mode
    if mode.startswith("I;16") or mode == "I":
        # 16-bit samples scaled to 8 bits (Pillow's own I->L conversion clips at 255).
        return im.convert("I").point(lambda v: v / 257 + 0.5).convert("L"), icc
    if mode == "F":
        return im.convert("L"), icc
    if mode == "CMYK":
        return _cmyk_to_rgb(im, icc)
    if mode in ("1", "L", "LA", "La"):
        target = "LA" if _has_alpha(im) else "L"
    else:  # RGB family, palettes, YCbCr, LAB, HSV
        target = "RGBA" if _has_alpha(im) else "RGB"
    return (im if mode == target else im.convert(target)), icc


def _cmyk_to_rgb(im: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
    """A tagged CMYK source goes to sRGB through its profile (D14); an untagged one naively."""
    if icc:
        try:
            return ImageCms.applyTransform(im, _cmyk_to_srgb(icc)), srgb()
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # an unusable profile is treated like none
    return im.convert("RGB"), None


@lru_cache(maxsize=8)
def _cmyk_to_srgb(icc: bytes) -> ImageCms.ImageCmsTransform:
    # Perceptual intent with black point compensation: the catalog defaults (rendering.md §1).
    return ImageCms.buildTransform(
        ImageCms.ImageCmsProfile(io.BytesIO(icc)),
        ImageCms.createProfile("sRGB"),
        "CMYK",
        "RGB",
        renderingIntent=ImageCms.Intent.PERCEPTUAL,
        flags=ImageCms.Flags.BLACKPOINTCOMPENSATION,
    )


# --------------------------------------------------------------------------------------------
# Replies (§10, §11)

# iccEmbed (§10): Pillow writes ICCP/APP2/ICCP chunks for these; its EPS and GIF writers have none.
_ICC_FORMATS = ("JPEG", "PNG", "TIFF", "PDF", "WEBP", "AVIF")
_DPI_FORMATS = ("JPEG", "PNG", "TIFF", "PDF")  # printRes (§11.7)
_XMP_FORMATS = ("JPEG", "TIFF")  # xmpEmbed (§11.8)
_ICC_SPACES = {"RGB": b"RGB ", "RGBA": b"RGB ", "P": b"RGB ", "L": b"GRAY", "LA": b"GRAY", "CMYK": b"CMYK"}
_JPEG_XMP_MAX = 65533 - 2 - 29  # one APP1 segment minus length and namespace
_TIFF_COMPRESSION = {"none": "raw", "lzw": "tiff_lzw", "zip": "tiff_adobe_deflate", "jpeg": "jpeg"}
_TIFF_XMP_TAG = 700
_DEFAULT_QUANTIZE = Quantize()
_PALETTE_SAMPLE_PIXELS = 1 << 14


def encode(
    img: Image.Image,
    out: OutputFormat,
    *,
    quality: int = 80,
    chroma_off: bool = False,
    bgc: tuple[int, ...] = (255, 255, 255),
    quantize: Quantize | None = None,
    print_res: float | None = None,
    icc_profile: bytes | None = None,
    icc_embed: bool = False,
    xmp: bytes | str | None = None,
    jpeg_size_kb: float = 0,
    pscan: str | None = None,
) -> bytes:
    """Write ``img`` as ``out``.

    Alpha is flattened over ``bgc`` for formats without alpha; ``icc_profile`` is embedded only
    with ``icc_embed``, for formats that carry one and when its colour space fits the reply;
    ``xmp`` is the source packet to embed (None = xmpEmbed off). ``pscan`` is accepted and has no
    effect: libjpeg picks the progression (§11.4).
    """
    fmt = out.pillow_format
    dpi = print_res if fmt in _DPI_FORMATS else None
    if isinstance(xmp, str):
        xmp = xmp.encode()
    if fmt not in _XMP_FORMATS or (fmt == "JPEG" and xmp and len(xmp) > _JPEG_XMP_MAX):
        xmp = None  # the format cannot carry it (JPEG: no extended-XMP writer)
    try:
        work, transparency = _reply_image(img, out, bgc[:3], quantize or _DEFAULT_QUANTIZE)
        icc = (
            icc_profile
            if icc_embed and fmt in _ICC_FORMATS and icc_profile and icc_profile[16:20] == _ICC_SPACES.get(work.mode)
            else None
        )
        if fmt == "PDF":
            return _pdf(work, out.compression, _jpeg_options(work, quality, chroma_off), dpi, icc)
        options = _options(work, out, quality, chroma_off, transparency)
        if dpi:
            options["dpi"] = (dpi, dpi)
        if icc:
            options["icc_profile"] = icc
        if xmp:
            if fmt == "JPEG":
                options["xmp"] = xmp
            else:
                options["tiffinfo"] = {_TIFF_XMP_TAG: xmp}
        data = _save(work, fmt, options)
        limit = int(jpeg_size_kb * 1024)
        if fmt == "JPEG" and jpeg_size_kb and len(data) > limit:
            data = _fit_jpeg(work, options, quality, limit)
        return data
    except ISError:
        raise
    except (OSError, ValueError) as exc:
        raise ISError("content_error", f"cannot encode fmt={out.name}: {exc}") from exc
    except Exception as exc:
        raise ISError("server_error", f"encoder failure for fmt={out.name}: {exc}") from exc


def encode_animation(
    frames: list[Image.Image],
    durations: list[int],
    loop: int | None,
    out: OutputFormat,
    *,
    quality: int = 80,
    bgc: tuple[int, ...] = (255, 255, 255),
    icc_profile: bytes | None = None,
    icc_embed: bool = False,
) -> bytes:
    """An animated GIF or WebP of ``frames`` (each prepared as :func:`encode` prepares one image:
    flattened over ``bgc`` without alpha, GIFs with their own adaptive palette)."""
    fmt = out.pillow_format
    try:
        works = []
        for img in frames:
            work, transparency = _reply_image(img, out, bgc[:3], _DEFAULT_QUANTIZE)
            if transparency is not None:
                work.info["transparency"] = transparency  # per frame: every palette is its own
            works.append(work)
        options: dict = {"save_all": True, "append_images": works[1:], "duration": durations}
        if loop is not None:
            options["loop"] = loop
        if fmt == "GIF":
            options["disposal"] = 2 if out.alpha else 1  # transparent pixels must not show the frame before
        else:
            options |= _options(works[0], out, quality, False, None)
            if out.alpha and not options["lossless"]:
                # Lossy animated WebP with key frames only every few frames came out without
                # its alpha channel (no ALPH chunk; Pillow 13, libwebp's anim encoder): all key frames.
                options |= {"kmin": 1, "kmax": 1}
            if icc_embed and icc_profile and icc_profile[16:20] == _ICC_SPACES.get(works[0].mode):
                options["icc_profile"] = icc_profile
        return _save(works[0], fmt, options)
    except ISError:
        raise
    except (OSError, ValueError) as exc:
        raise ISError("content_error", f"cannot encode the animation as fmt={out.name}: {exc}") from exc


def _reply_image(
    img: Image.Image, out: OutputFormat, bgc: tuple[int, ...], quantize: Quantize
) -> tuple[Image.Image, int | None]:
    """A fresh image in the mode the writer needs, with empty ``info`` (Pillow's writers fall back
    to ``im.info`` for ICC, transparency and comments, which must come from the request only).
    Returns the transparent palette index for palette formats with alpha."""
    gray = out.pixel_type == "gray"
    if out.alpha:
        target = "LA" if gray else "RGBA"
    else:
        target = {"rgb": "RGB", "gray": "L", "cmyk": "CMYK"}[out.pixel_type]
    work = img
    if work.mode != target:
        if work.mode != "CMYK":
            work, _ = _normalise(work, None)
        if not out.alpha and _has_alpha(work):
            work = _flatten(work, bgc)
        if work.mode != target:
            work = work.convert(target)
    transparency = None
    if out.name in ("png8", "png8-alpha", "gif", "gif-alpha"):
        if gray:  # gray GIFs quantize like RGB ones: their palettes simply hold grays
            work = work.convert("RGBA" if out.alpha else "RGB")
        work, transparency = _to_palette(work, quantize)
    if work is img:
        work = img.copy()
    work.info = {}
    return work, transparency


def _flatten(img: Image.Image, bgc: tuple[int, ...]) -> Image.Image:
    rgba = img.convert("RGBA")
    base = Image.new("RGB", img.size, bgc)
    base.paste(rgba, mask=rgba.getchannel("A"))
    return base


def _options(work: Image.Image, out: OutputFormat, quality: int, chroma_off: bool, transparency: int | None) -> dict:
    fmt, lossless = out.pillow_format, out.compression == "lossless"
    if fmt == "JPEG":
        return _jpeg_options(work, quality, chroma_off) | {"progressive": out.name == "pjpeg"}
    if fmt == "PNG":
        options: dict = {"compress_level": PNG_COMPRESS_LEVEL}
        return options if transparency is None else options | {"transparency": transparency}
    if fmt == "GIF":
        return {} if transparency is None else {"transparency": transparency}
    if fmt == "WEBP":
        return {"quality": quality, "method": WEBP_METHOD, "lossless": lossless}
    if fmt == "AVIF":
        # No true lossless mode in Pillow's AVIF writer: quality 100 at 4:4:4 comes closest (D15).
        if lossless:
            return AVIF_OPTIONS | {"quality": 100, "subsampling": "4:4:4"}
        return AVIF_OPTIONS | {"quality": avif_quality(quality)} | ({"subsampling": "4:4:4"} if chroma_off else {})
    if fmt == "TIFF":
        options = {"compression": _TIFF_COMPRESSION[out.compression]}
        return options | {"quality": quality} if out.compression == "jpeg" else options
    if fmt == "JPEG2000":
        if lossless:
            return {}  # OpenJPEG's default is the reversible (lossless) wavelet
        return {"irreversible": True, "quality_mode": "rates", "quality_layers": [1 + (100 - quality) * 0.4]}
    if fmt == "HEIF":
        # The reference's heic is lossless only: x265 lossless of full-resolution (4:4:4) YCbCr.
        # Measured on a 500x375 photo: 318 KB in 140 ms, RGB within one level; coding RGB itself
        # (matrix_coefficients=0) is exact but 428 KB in 256 ms and less widely decoded.
        return {"quality": -1, "chroma": 444}
    return {}  # EPS: uncompressed, nothing to choose


def avif_quality(qlt: int) -> int:
    """The libavif quality that matches a JPEG of ``qlt`` (``AVIF_QUALITY``, interpolated)."""
    qlt = max(1, min(100, qlt))
    for (q0, a0), (q1, a1) in zip(AVIF_QUALITY, AVIF_QUALITY[1:]):
        if qlt <= q1:
            return round(a0 + (a1 - a0) * (qlt - q0) / (q1 - q0))
    return 100


def _jpeg_options(work: Image.Image, quality: int, chroma_off: bool) -> dict:
    options = {"quality": quality, "optimize": True}
    if work.mode == "RGB":  # the chroma flag means nothing for gray and CMYK (§11.3)
        options["subsampling"] = 0 if chroma_off else 2
    return options


def _save(work: Image.Image, fmt: str, options: dict) -> bytes:
    buf = io.BytesIO()
    work.save(buf, fmt, **options)
    return buf.getvalue()


def _fit_jpeg(work: Image.Image, options: dict, quality: int, limit: int) -> bytes:
    """The highest quality below ``quality`` whose JPEG fits ``limit`` bytes (§11.6)."""
    best, low, high = None, 1, quality - 1
    while low <= high:
        mid = (low + high) // 2
        data = _save(work, "JPEG", options | {"quality": mid})
        if len(data) <= limit:
            best, low = data, mid + 1
        else:
            high = mid - 1
    if best is None:
        raise ISError("content_error", f"jpegSize: no quality fits in {limit} bytes")
    return best


# --- palettes (§11.5)


def _mac_palette() -> list[int]:
    """The classic 256-colour Macintosh system palette, in system order."""
    steps = (255, 204, 153, 102, 51, 0)
    ramp = (238, 221, 187, 170, 136, 119, 85, 68, 34, 17)
    colours = [(r, g, b) for r in steps for g in steps for b in steps][:-1]  # black comes last
    colours += [(v, 0, 0) for v in ramp] + [(0, v, 0) for v in ramp] + [(0, 0, v) for v in ramp]
    colours += [(v, v, v) for v in ramp] + [(0, 0, 0)]
    return [c for colour in colours for c in colour]


def _palette_image(flat: list[int]) -> Image.Image:
    pal = Image.new("P", (1, 1))
    pal.putpalette(flat)
    return pal


def _to_palette(img: Image.Image, q: Quantize) -> tuple[Image.Image, int | None]:
    """Quantize RGB or RGBA to mode P. With alpha, pixels below alpha 128 share one extra,
    transparent index and the palette is built from the opaque pixels only."""
    alpha = img.mode == "RGBA"
    rgb = img.convert("RGB") if alpha else img
    opaque = img.getchannel("A").point(lambda a: 255 if a >= 128 else 0) if alpha else None
    colors = min(q.colors, 255) if alpha else q.colors
    dither = Image.Dither.FLOYDSTEINBERG if q.dither else Image.Dither.NONE
    if q.kind == "web":
        result = rgb.convert("P", palette=Image.Palette.WEB, dither=dither)
    elif q.kind == "mac":
        result = rgb.quantize(palette=_palette_image(_mac_palette()), dither=dither)
    else:
        result = _adaptive(rgb, opaque, q, colors, dither)
    if opaque is None:
        return result, None
    palette = result.getpalette() or []
    index = len(palette) // 3
    result.putpalette(palette + [0, 0, 0])
    result.paste(index, mask=opaque.point(lambda a: 255 - a))
    return result, index


def _adaptive(
    rgb: Image.Image, opaque: Image.Image | None, q: Quantize, colors: int, dither: Image.Dither
) -> Image.Image:
    """An adaptive palette: the image's own colours when few enough, else the listed colours
    (§11.5 forced colours) plus median cut over a sample of at most ``_PALETTE_SAMPLE_PIXELS``.

    Median cut over a whole 500x375 photograph took 130-300 ms; over the sample ~13 ms at a PSNR
    within 0.7 dB. Fast octree (2 ms) was rejected: it reduces a 256-level gray ramp to 16 grays.
    """
    sample = _opaque_sample(rgb, opaque)
    own = None if q.color_list else sample.getcolors(colors)
    if own is not None:
        # Kept exactly: mapping onto a given palette is only about 6 bits per channel precise.
        return sample.quantize(colors=len(own), method=Image.Quantize.MEDIANCUT)
    palette = list(q.color_list[:colors])
    free = colors - len(palette)
    if free > 0:
        factor = math.ceil(math.sqrt(sample.width * sample.height / _PALETTE_SAMPLE_PIXELS))
        cut = sample.reduce(factor).quantize(colors=free, method=Image.Quantize.MEDIANCUT)
        entries = cut.getpalette() or []
        # Keep only entries that pixels use: the rest is padding, not colours of the image.
        for index in sorted(i for _, i in cut.getcolors(256) or []):
            palette.append(tuple(entries[3 * index : 3 * index + 3]))
    return rgb.quantize(palette=_palette_image([c for colour in palette for c in colour]), dither=dither)


def _opaque_sample(rgb: Image.Image, opaque: Image.Image | None) -> Image.Image:
    """``rgb`` with transparent pixels repainted in an opaque pixel's colour, so that colours
    nobody will see do not take palette entries."""
    box = opaque.getbbox() if opaque is not None else None
    if opaque is None or box is None:
        return rgb
    left, top, right, _ = box
    first = opaque.crop((left, top, right, top + 1)).getbbox()
    assert first is not None  # the bounding box's top row holds an opaque pixel
    sample = Image.new("RGB", rgb.size, rgb.getpixel((left + first[0], top)))
    sample.paste(rgb, mask=opaque)
    return sample


# --- PDF (§11.2): Pillow's PDF writer knows only DCTDecode, so the page is written here.

_PDF_SPACES = {"RGB": "DeviceRGB", "L": "DeviceGray", "CMYK": "DeviceCMYK"}


def _pdf(work: Image.Image, compression: str, jpeg_options: dict, dpi: float | None, icc: bytes | None) -> bytes:
    from PIL import PdfParser  # rare output: off the cold path (~4 ms)

    name = PdfParser.PdfName
    fp = io.BytesIO()
    pdf = PdfParser.PdfParser(f=fp, mode="w+b")
    pdf.start_writing()
    pdf.write_header()
    page, contents = pdf.next_object_id(0), pdf.next_object_id(0)
    pdf.pages.append(page)
    pdf.write_catalog()
    space: object = name(_PDF_SPACES[work.mode])
    if icc:
        profile = pdf.write_obj(None, stream=icc, N=len(work.getbands()), Alternate=space)
        space = PdfParser.PdfArray([name("ICCBased"), profile])
    extra: dict = {}
    if compression == "jpeg":
        stream = _save(work, "JPEG", jpeg_options)
        extra["Filter"] = name("DCTDecode")
        if work.mode == "CMYK":  # Pillow writes Adobe-style inverted CMYK
            extra["Decode"] = [1, 0] * 4
    elif compression == "zip":
        stream = zlib.compress(work.tobytes())
        extra["Filter"] = name("FlateDecode")
    else:
        stream = work.tobytes()
    image = pdf.write_obj(
        None,
        stream=stream,
        Type=name("XObject"),
        Subtype=name("Image"),
        Width=work.width,
        Height=work.height,
        ColorSpace=space,
        BitsPerComponent=8,
        **extra,
    )
    scale = 72.0 / (dpi or 72.0)
    width, height = work.width * scale, work.height * scale
    pdf.write_page(
        page,
        Resources=PdfParser.PdfDict(XObject=PdfParser.PdfDict(image=image)),
        MediaBox=[0, 0, width, height],
        Contents=contents,
    )
    pdf.write_obj(contents, stream=b"q %f 0 0 %f 0 0 cm /image Do Q\n" % (width, height))
    pdf.write_xref_and_trailer()
    return fp.getvalue()
