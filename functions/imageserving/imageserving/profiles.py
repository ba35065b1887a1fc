"""ICC profiles by name (catalogs.md §6.3, §10.5; rendering.md §10): ``icc=`` and the catalog's
``IccProfile*`` attributes resolved through the ICC profile maps to profile files, read from
storage once per process.

Profiles are not tracked by cache validation (catalogs.md §15), so a file read once is kept; the
cache holds at most ``_CACHE_ENTRIES`` profiles of at most ``MAX_PROFILE_BYTES`` each per storage.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import OrderedDict

from . import observe
from .catalog.formats import parse_flag_attr
from .catalog.model import Catalog, CatalogSet
from .catalog.resolve import file_keys
from .errors import ISError
from .render import formats, icc

log = logging.getLogger("imageserving")

# Real output profiles are 0.5-3 MB at most (large CMYK LUTs); more is not a profile.
MAX_PROFILE_BYTES = 8 << 20
_CACHE_ENTRIES = 32
_BUILT_IN = "srgb"  # the only built-in name (rendering.md §10)
_OUTPUT_ATTRS = {"rgb": "IccProfileRgb", "gray": "IccProfileGray", "cmyk": "IccProfileCmyk"}

# Per storage (one per app; tests build many over different buckets), by storage key.
_caches: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_lock = threading.Lock()
_warned: set[tuple[str, str, str]] = set()


def colour_plan(storage, settings, cats: CatalogSet, main: Catalog, layer_cat: Catalog | None, request: dict[str, str]):
    """The request's :class:`~imageserving.render.icc.ColourPlan`: ``icc=`` (an unknown profile is
    a bad request) else the main catalog's ``IccProfile<Type>`` for the reply's pixel type;
    intent and BPC from ``icc=`` else ``IccRenderIntent``/``IccBlackPointCompensation``; the
    layer catalog's ``IccProfileSrcRgb`` (else ``IccProfileRgb``) for untagged RGB sources (no
    ``layer_cat``: layer 0 is a nested request's image, already sRGB). Nothing is read when none
    of them is set."""
    command = icc.parse_icc(request["icc"]) if request.get("icc") else None
    intent = _intent(cats.raw_attr(main, "IccRenderIntent"))
    bpc = parse_flag_attr(cats.raw_attr(main, "IccBlackPointCompensation"))
    bpc = True if bpc is None else bpc
    if command is not None:
        output = icc.check_output(_named(storage, settings, cats, main, command.name), command.name)
        intent = command.intent if command.intent is not None else intent
        bpc = command.bpc if command.bpc is not None else bpc
    else:
        try:
            kind = formats.parse_fmt(request.get("fmt") or "jpeg").pixel_type
        except ISError:
            kind = "rgb"  # a bad fmt= is reported by the renderer's own parse
        output = _attribute(storage, settings, cats, main, _OUTPUT_ATTRS[kind], output=True)
    assumed = assumed_rgb(storage, settings, cats, layer_cat) if layer_cat is not None else None
    return icc.ColourPlan(output=output, assumed_rgb=assumed, intent=intent, bpc=bpc)


def assumed_rgb(storage, settings, cats: CatalogSet, layer_cat: Catalog) -> bytes | None:
    """The space of untagged RGB sources of ``layer_cat``: IccProfileSrcRgb, else IccProfileRgb
    (catalogs.md §9: the catalog's RGB space); None = sRGB (icc.route, codec.decode)."""
    for name in ("IccProfileSrcRgb", "IccProfileRgb"):
        assumed = _attribute(storage, settings, cats, layer_cat, name)
        if assumed is not None and icc.pixel_type(assumed) == "rgb":
            return assumed
    return None


def _attribute(storage, settings, cats: CatalogSet, cat: Catalog, name: str, *, output: bool = False) -> bytes | None:
    """A profile named by a catalog attribute (``output``: one to convert replies into). One that
    cannot be found or used is the catalog's mistake: logged, and the reply goes out without it
    rather than failing every request of the catalog."""
    value = (cats.raw_attr(cat, name) or "").strip()
    if not value:
        return None
    try:
        data = _named(storage, settings, cats, cat, value)
        return icc.check_output(data, value) if output else data
    except ISError as err:
        if err.kind not in ("bad_request", "content_error"):
            raise
        if (cat.key, cat.etag, name) not in _warned:  # once per catalog version, not per request
            _warned.add((cat.key, cat.etag, name))
            log.warning("catalog %s: %s=%s left out: %s", cat.label(), name, value, err.detail)
        return None


def _named(storage, settings, cats: CatalogSet, main: Catalog, name: str) -> bytes:
    """A profile by map name, ``rootId/name``, the built-in ``sRGB`` or a file path (§6.3)."""
    use_default = name.startswith("/")
    obj = name[1:] if use_default else name
    search = cats.default if use_default else main
    found = cats.icc_profile(search, obj)
    if found is None:
        first, _, rest = obj.partition("/")
        other = cats.catalog(first)
        if other is not None and rest:
            found = cats.icc_profile(other, rest)
    if found is None and obj.lower() == _BUILT_IN:
        return icc.srgb()
    if found is None:
        found = (cats.default if use_default else main, obj)
    owner, path = found
    data = _read(storage, settings, cats, owner, path)
    if data is None:
        raise ISError("bad_request", f"icc={name}: unknown profile")
    return icc.check_profile(data, name)


def _read(storage, settings, cats: CatalogSet, owner: Catalog, path: str) -> bytes | None:
    try:
        keys = file_keys(path, cats.raw_attr(owner, "RootPath") or "", settings)
    except ISError:
        return None  # outside the roots: as unknown as a missing file
    with _lock:
        cache = _caches.setdefault(storage, OrderedDict())
    for key in keys:
        with _lock:
            if key in cache:
                cache.move_to_end(key)
                if cache[key] is None:
                    continue
                return cache[key]
        with observe.span("fetch"):
            blob = storage.fetch(key)
        if blob is None:
            # Misses are kept too (like the profiles found): a catalog naming a missing profile
            # must not cost a storage read per request.
            with _lock:
                cache[key] = None
                while len(cache) > _CACHE_ENTRIES:
                    cache.popitem(last=False)
            continue
        if len(blob.data) > MAX_PROFILE_BYTES:
            raise ISError("content_error", f"profile {path}: larger than {MAX_PROFILE_BYTES} bytes")
        with _lock:
            cache[key] = blob.data
            while len(cache) > _CACHE_ENTRIES:
                cache.popitem(last=False)
        return blob.data
    return None


def _intent(raw: str | None) -> int:
    value = (raw or "").strip()
    return int(value) if value in ("0", "1", "2", "3") else 0
