"""Properties of images and catalogs: ``req=props``, ``imageprops``, ``catalogprops`` and ``xmp``
(protocol.md §8.6-§8.8, §8.16)."""

from __future__ import annotations

import io
from functools import partial

from PIL import Image, ImageCms

from ..catalog.formats import parse_int_attr, parse_real_attr, parse_timestamp
from ..catalog.model import Catalog, CatalogSet, Record
from ..render import codec, paths
from ..responses import properties as P
from ..responses.headers import Reply
from ..responses.properties import Body
from ..sources import record_or_attr as _field_or_attr
from . import common as C


def props(server, ctx) -> Reply:
    """Reply-image properties of the request evaluated as ``req=img`` (§8.6).

    The evaluation is the renderer's: ``server.describe_image(ctx)`` answers width, height,
    media_type, mask, quality, bgc, print_res, icc_embed and version, or raises ``not_found``
    for a missing source (no default image for property requests).
    """
    desc = server.describe_image(ctx)
    record = ctx.path.source.record if ctx.path.source is not None else None
    pairs = [
        ("image.bgc", P.hex_color(desc.bgc)),
        ("image.height", str(desc.height)),
        ("image.width", str(desc.width)),
        ("image.iccEmbed", P.flag(desc.icc_embed)),
        ("image.iccProfile", _profile_description(desc.icc_profile)),
        # No server-side reply cache in Lambda: the length of a cached reply is never known.
        ("image.length", "0"),
        ("image.mask", P.flag(desc.mask)),
        ("image.pixTyp", desc.pixel_type),
        ("image.pathEmbed", "0"),  # clipping paths are never written into replies
        ("image.printRes", _number(desc.print_res)),
        ("image.quality", str(desc.quality)),
        ("image.type", desc.media_type),
        ("image.xmpEmbed", P.flag(desc.xmp_embed)),
        ("image.version", desc.version),
        ("metadata.version", C.metadata_version(record)),
    ]
    return _reply_properties(ctx, pairs, record)


def context(server, ctx) -> Reply:
    """``req=ctx``: the reply image's context for a zoom viewer (PROPOSED: not in Adobe's reference).

    Scene7's own legacy zoom viewers ask ``req=ctx,json&scl=1`` (or ``,javascript`` with
    ``image``/``metadata`` objects made beforehand) and read ``image.rect`` — ``x,y,w,h``, of
    which they take w and h as the size the server renders at those commands — and the two
    version ids. The request is evaluated as ``req=img`` exactly like ``req=props``.
    """
    desc = server.describe_image(ctx)
    record = ctx.path.source.record if ctx.path.source is not None else None
    pairs = [
        ("image.rect", f"0,0,{desc.width},{desc.height}"),
        ("image.version", desc.version),
        ("metadata.version", C.metadata_version(record)),
    ]
    return _reply_properties(ctx, pairs, record)


def _reply_properties(ctx, pairs: list[tuple[str, str]], record: Record | None) -> Reply:
    body = P.render_properties(pairs, ctx.req.format, handler=ctx.handler, req_id=ctx.req_id)
    return C.reply(ctx, body, ctx.cats.attr(ctx.main, "NonImgExpiration"), modified=C.last_modified(ctx, record))


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else P.java_double(value)


def imageprops(server, ctx) -> Reply:
    """Properties of the source named by the URL path; other commands are ignored (§8.7)."""
    path = C.path_record(ctx, C.url_commands(ctx))
    source = C.require_source(path)
    blob = C.fetch_source(server, ctx, source)
    src = codec.open_source(blob.data, max_pixels=C.HEADER_ONLY)
    cats, record = ctx.cats, source.record
    width, height = C.record_size(record) or src.size
    tiff = _tiff_tags(src)
    path_names = photoshop_path_names(src)
    stamp = parse_timestamp(record.get("timestamp")) if record is not None else None
    pairs = [
        ("image.anchor", _anchor(record) or f"{width // 2},{height // 2}"),
        ("image.expiration", P.java_double(C.record_expiration(cats, source.catalog, record))),
        ("image.width", str(width)),
        ("image.height", str(height)),
        ("image.iccProfile", _icc_name(cats, source.catalog, src)),
        ("image.embeddedIccProfile", P.flag(src.icc_profile)),
        ("image.embeddedPhotoshopPaths", P.flag(path_names)),
        ("image.embeddedXmpData", P.flag(src.xmp)),
        ("image.mask", str(_mask_kind(src, record, tiff))),
        ("image.modifier", record.get("modifier") if record is not None else ""),
        ("image.photoshopPathNames", ",".join(path_names)),
        ("image.pixTyp", _pixel_type(src.mode)),
        ("image.postModifier", record.get("postmodifier") if record is not None else ""),
        ("image.printRes", str(_field_or_attr(cats, source, "PrintResolution", parse_int_attr))),
        ("image.resolution", P.java_double(_field_or_attr(cats, source, "Resolution", parse_real_attr))),
        ("image.timeStamp", P.java_date(stamp or blob.last_modified)),
        ("image.thumbRes", P.java_double(_field_or_attr(cats, source, "ThumbRes", parse_real_attr))),
        ("image.thumbType", str(_field_or_attr(cats, source, "ThumbType", parse_int_attr))),
        ("image.translatedId", path.name),
    ]
    body = P.render_properties(pairs, ctx.req.format, handler=ctx.handler, req_id=ctx.req_id)
    return C.reply(ctx, body, cats.attr(ctx.main, "NonImgExpiration"), modified=C.last_modified(ctx, record, blob))


def _anchor(record: Record | None) -> str | None:
    parts = record.get("anchor").split(",") if record is not None else []
    values = [parse_int_attr(p) for p in parts]
    if len(values) != 2 or None in values:
        return None
    return f"{values[0]},{values[1]}"


_GRAY_MODES = ("1", "L", "LA", "La", "I", "F")


def _pixel_type(mode: str) -> str:
    if mode == "CMYK":
        return "CMYK"
    if mode in _GRAY_MODES or mode.startswith("I;16"):
        return "BW"
    return "RGB"


_TIFF_EXTRA_SAMPLES = 338
_TIFF_PHOTOSHOP = 34377
_ASSOCIATED_ALPHA = 1


def _tiff_tags(src: codec.SourceImage) -> dict[int, object]:
    """The ExtraSamples and Photoshop tags of a TIFF source (Pillow un-premultiplies associated
    alpha on load, so only the tag tells premultiplied from straight alpha)."""
    if src.format != "TIFF":
        return {}
    with Image.open(io.BytesIO(src.data)) as im:
        return {tag: im.tag_v2[tag] for tag in (_TIFF_EXTRA_SAMPLES, _TIFF_PHOTOSHOP) if tag in im.tag_v2}


def _mask_kind(src: codec.SourceImage, record: Record | None, tiff: dict[int, object]) -> int:
    """0 none, 1 premultiplied alpha, 2 straight alpha, 3 separate mask (``catalog::MaskPath``,
    which replaces a straight alpha channel but not a premultiplied one)."""
    extra = tiff.get(_TIFF_EXTRA_SAMPLES, ())
    if src.mode in ("RGBa", "La") or _ASSOCIATED_ALPHA in (extra if isinstance(extra, tuple) else (extra,)):
        return 1
    if record is not None and record.get("maskpath"):
        return 3
    return 2 if src.has_alpha else 0


_SOURCE_PROFILES = {
    "RGB": ("IccProfileSrcRgb", "IccProfileRgb"),
    "BW": ("IccProfileSrcGray", "IccProfileGray"),
    "CMYK": ("IccProfileSrcCmyk", "IccProfileCmyk"),
}


def _profile_description(icc: bytes | None) -> str:
    if not icc:
        return ""
    try:
        return ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc))).strip()
    except (ImageCms.PyCMSError, OSError, ValueError):
        return ""


def _icc_name(cats: CatalogSet, cat: Catalog, src: codec.SourceImage) -> str:
    """The embedded profile's description, else the catalog's source profile for the pixel type."""
    if src.icc_profile:
        return _profile_description(src.icc_profile)
    for name in _SOURCE_PROFILES[_pixel_type(src.mode)]:
        value = cats.raw_attr(cat, name)
        if value:
            return value
    return ""


# --- Photoshop paths: image resources 2000-2997 (ids 2999 and up name the clipping path etc.)


def photoshop_path_names(src: codec.SourceImage) -> list[str]:
    """Names of the Photoshop paths saved in a JPEG (APP13) or TIFF (tag 34377) source."""
    return paths.path_names(src.data, src.format)


# --- catalogprops


def catalogprops(server, ctx) -> Reply:
    """Effective attributes of the catalog named by the first path element (§8.8)."""
    cats = ctx.cats
    first = ctx.path.object.split("/", 1)[0]
    cat = cats.catalog(first) if first else None
    cat = cat or cats.default
    attr = partial(cats.attr, cat)
    raw = partial(_raw_attr, cats, cat)
    pairs = [
        ("catalog.bkgColor", P.hex_color(attr("BkgColor"))),
        ("catalog.defaultExt", raw("DefaultExt")),
        ("catalog.defaultPix", _pair(attr("DefaultPix"))),
        ("catalog.defaultThumbPix", _pair(attr("DefaultThumbPix"))),
        ("catalog.expiration", P.java_double(attr("Expiration"))),
        ("catalog.defaultExpiration", P.java_double(attr("DefaultExpiration"))),
        ("catalog.nonImgExpiration", P.java_double(attr("NonImgExpiration"))),
        ("catalog.fileTime", P.java_date(C.catalog_timestamp(cats, cat))),
        ("catalog.jpegQuality", raw("JpegQuality")),
        ("catalog.maxPix", _pair(attr("MaxPix"))),
        ("catalog.printResolution", str(attr("PrintResolution"))),
        ("catalog.publishInfo", raw("PublishInfo")),
        ("catalog.resMode", raw("ResMode")),
        ("catalog.resolution", P.java_double(attr("Resolution"))),
        ("catalog.thumbBkgColor", P.hex_color(attr("ThumbBkgColor"))),
        ("catalog.thumbHorizAlign", str(attr("ThumbHorizAlign"))),
        ("catalog.thumbRes", P.java_double(attr("ThumbRes"))),
        ("catalog.thumbType", str(attr("ThumbType"))),
        ("catalog.thumbVertAlign", str(attr("ThumbVertAlign"))),
        ("catalog.watermark", raw("Watermark")),
    ]
    body = P.render_properties(pairs, ctx.req.format, handler=ctx.handler, req_id=ctx.req_id)
    modified = C.catalog_timestamp(cats, cat) if cats.attr(ctx.main, "UseLastModified") else None
    return C.reply(ctx, body, cats.attr(ctx.main, "NonImgExpiration"), modified=modified)


def _raw_attr(cats: CatalogSet, cat: Catalog, name: str) -> str:
    return (cats.raw_attr(cat, name) or "").strip()


def _pair(value: tuple[int, int]) -> str:
    return f"{value[0]},{value[1]}"


# --- xmp

_NO_XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"/>'


def xmp(server, ctx) -> Reply:
    """The XMP packet embedded in the source, as stored (§8.16)."""
    path = C.path_record(ctx, C.url_commands(ctx))
    source = C.require_source(path)
    blob = C.fetch_source(server, ctx, source)
    packet = codec.open_source(blob.data, max_pixels=C.HEADER_ONLY).xmp
    body = Body(packet or _NO_XMP, "text/xml; charset=UTF-8")
    return C.reply(
        ctx,
        body,
        C.record_expiration(ctx.cats, source.catalog, source.record),
        modified=C.last_modified(ctx, source.record, blob),
        never=C.never_expires(source.record),
    )
