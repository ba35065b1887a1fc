"""``req=set``: the hierarchical description of a ``catalog::ImageSet`` that viewers load
(protocol.md §8.13; the reference's "Media set requests" and ``catalog::ImageSet`` pages).

One element tree is written two ways, so both stay consistent: XML as is, and JSON by the rule
the observed responses follow — attributes and text-only children become string members (in
document order), other children objects, and a name that repeats becomes an array (so a set with
one item has ``"item":{…}`` and a set with several ``"item":[…]``). Observed JSON:
``{"set":{"pv":"1.0","type":"media_set","n":"cat/id","item":[{"i":{"n":"cat/img"},"s":{"n":"cat/img"},
"dx":"1154","dy":"1500","iv":"uDdTL2"}, …]}}``.

PROPOSED where nothing was observed (``mediaset.dtd`` is not public): type names follow the
reference's media-set item types (``img``, ``img_set``, ``spin``, ``ecat``, ``video``, ``video_set``,
``media_set``, ``static``; ``empty`` when there is no set at all); a nested set is an item's
``set`` child next to its swatch; e-catalog spreads list their pages as ``page`` children shaped
like image items; solid-colour swatches are ``<s c="0xRRGGBB" l="label"/>``; a missing swatch
repeats the image (as observed); ``iv`` is the §8.22 version id of the item's source file; an
item whose image cannot be read has no ``dx``/``dy``/``iv``.

OBSERVED through storefront code that walks media sets: an item that is not an image names its
type itself (``x.get('type') == 'img_set'`` then ``x['set']['item']``; ``'spin'``, ``'video_set'``),
image items carry no ``type``, and a video's URL is built from ``v``'s ``path`` under
``/is/content/``.

``labelkey=`` (the reference's media-set page): the value the key indexes in the record's UserData
"is returned in the ``l`` attribute for the ``s`` and ``i``" — ``<i n="…" l="…"/>``,
``"i":{"n":"…","l":"…"}``; ``i`` carries its image record's label, ``s`` its swatch record's (the
image's when the swatch repeats the image). Nothing is added where the key has no value, so a
set without labels keeps ``{"i":{"n":"…"}`` closing right after ``n`` (storefront code scans
bodies for exactly that).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..catalog.formats import parse_size_attr
from ..catalog.model import Record
from ..catalog.resolve import Source, direct_access_allowed, direct_kind, resolve_object, source_keys
from ..errors import ISError
from ..protocol.commands import Commands
from ..protocol.query import decode_path_element, decode_value, substitute
from ..render import codec
from ..responses import properties as P
from ..responses.headers import Reply
from . import common as C
from . import localize as L

# PROPOSED analogue of PS::fvctx.nestingLimit (IS_SET_NESTING_LIMIT in protocol.md §8.13).
SET_NESTING_LIMIT = 8

_ASSET_TYPES = {
    "mediaset": "media_set",
    "spinset": "spin",
    "spinset2d": "spin",
    "videoset": "video_set",
    "imageset": "img_set",
    "ecatalog": "ecat",
}
_ITEM_TYPES = {
    "img": "img",
    "basic": "img",
    "advanced_image": "img",
    "img_set": "img_set",
    "advanced_image_set": "img_set",
    "advanced_imageset": "img_set",
    "advanced_swatchset": "img_set",
    "spin": "spin",
    "video": "video",
    "video_set": "video_set",
    "static": "static",
    "ecat": "ecat",
}
_VIDEO_SUFFIXES = (".mp3", ".mp4", ".flv", ".f4v", ".swf", ".xml")
_OPEN = {"{": "}", "(": ")"}


@dataclass
class Element:
    name: str
    attrs: list[tuple[str, str]] = field(default_factory=list)
    children: list[Element] = field(default_factory=list)
    text: str | None = None

    def xml(self) -> str:
        attrs = "".join(f' {n}="{C.xml_escape(v)}"' for n, v in self.attrs)
        if self.text is not None:
            return f"<{self.name}{attrs}>{C.xml_escape(self.text)}</{self.name}>"
        if not self.children:
            return f"<{self.name}{attrs}/>"
        return f"<{self.name}{attrs}>{''.join(c.xml() for c in self.children)}</{self.name}>"

    def json(self) -> object:
        if self.text is not None:
            return self.text
        groups: dict[str, list[object]] = {}
        for child in self.children:
            groups.setdefault(child.name, []).append(child.json())
        out: dict[str, object] = dict(self.attrs)
        out.update((name, values if len(values) > 1 else values[0]) for name, values in groups.items())
        return out


def answer_set(server, ctx) -> Reply:
    """The set of the URL's record (or of ``imageSet=``) as ``<set>`` XML or ``{"set":…}`` JSONP;
    a record without a set, or a file, is a one-image set; no object and no set: ``empty``."""
    _refuse_colons(ctx)
    cmds = C.url_commands(ctx)
    path = C.path_record(ctx, cmds)
    record = path.record
    builder = _SetBuilder(
        server,
        ctx,
        (cmds.value("labelkey") or "").strip(),
        L.string_ids(ctx.cats, ctx.main, C.effective_locale(ctx, cmds)),
    )
    text = _image_set_override(cmds)
    if text is None:
        text = record.get("imageset") if record is not None else ""
    if text:
        asset_type = record.get("assettype") if record is not None else ""
        root = builder.set_element(text, asset_type, path.name if record is not None else "", 0)
    elif (media := _simple_media(ctx, path)) is not None:
        root = media
    elif path.source is not None:
        root = builder.single_image(path)
    elif path.name:  # locale translation found no record
        raise ISError("not_found", path.name)
    else:
        root = Element("set", [("type", "empty")])
    root.attrs.insert(0, ("pv", "1.0"))
    if ctx.req.format == P.JSON:
        body = C.jsonp(ctx.handler, {"set": root.json()}, ctx.req_id)
    else:
        body = C.xml_document("\n" + root.xml(), ctx.req.encoding)
    return C.reply(ctx, body, ctx.cats.attr(ctx.main, "NonImgExpiration"), modified=C.last_modified(ctx, record))


def _simple_media(ctx, path: C.PathRecord) -> Element | None:
    """The reference's outer type rules for an object without a set, where it is not an image: a
    record of the static content catalog is a video by its file's extension (mp3 mp4 flv f4v swf
    xml), else — unless it is an image record too — static content; a path that is no record at
    all is a file-based video by the same extensions. One item, its ``v`` as in media sets."""
    static = _static_record(ctx.cats, ctx.path.main, ctx.path.object) if ctx.path.object else None
    if static is not None:
        video = _is_video(static.get("path") or static.id)
        if path.record is not None and not video:
            return None  # an image record that also has static content: the image
        name = C.record_name(static.catalog, static.id)
        kind = "video" if video else "static"
    elif path.record is None and path.name and _is_video(path.name):
        name, kind = path.name, "video"
    else:
        return None
    return Element("set", [("type", kind), ("n", name)], [Element("item", children=[_video(ctx, name)])])


def _static_record(cats, main, ref: str) -> Record | None:
    """The static content record ``ref`` names: ``rootId/id`` in that catalog, else ``id`` in the
    main catalog, then in the default catalog (as ``/is/content`` finds them)."""
    first, _, rest = ref.partition("/")
    cat = cats.catalog(first) if rest else None
    if cat is not None and not cat.is_default:
        return cat.statics.get(rest)
    return main.statics.get(ref) or cats.default.statics.get(ref)


def _is_video(name: str) -> bool:
    return name.strip().lower().endswith(_VIDEO_SUFFIXES)


def _refuse_colons(ctx) -> None:
    """The reference forbids ``:`` anywhere in a ``req=set`` request, encoded or not."""
    texts = [ctx.path.object] + [t.value for t in ctx.url]
    if any(":" in t or ":" in decode_value(t) for t in texts):
        raise ISError("bad_request", "req=set: ':' is not allowed in the request")


def _image_set_override(cmds: Commands) -> str | None:
    """``imageSet=``: a ``{…}`` value loses its braces and stays encoded (ids inside are decoded
    one by one); any other value is decoded once like every command value (§3.4)."""
    raw = cmds.raw("imageset")
    if raw is None:
        return None
    value = substitute(raw, cmds.variables)
    if value.startswith("{") and value.endswith("}"):
        return value[1:-1]
    return decode_value(value)


def split_top(text: str, sep: str) -> list[str]:
    """Split at ``sep`` outside ``{…}`` and ``(…)``; unbalanced brackets are a bad request."""
    parts: list[str] = []
    closers: list[str] = []
    start = 0
    for i, ch in enumerate(text):
        if ch in _OPEN:
            closers.append(_OPEN[ch])
        elif ch in ")}":
            if not closers or closers.pop() != ch:
                raise ISError("bad_request", f"unbalanced bracket in image set {text[:80]!r}")
        elif ch == sep and not closers:
            parts.append(text[start:i])
            start = i + 1
    if closers:
        raise ISError("bad_request", f"unbalanced bracket in image set {text[:80]!r}")
    parts.append(text[start:])
    return parts


def _unwrap(part: str) -> str | None:
    """The inside of a part that is one bracketed group (an in-line set), else None."""
    part = part.strip()
    if len(part) < 2 or part[0] not in _OPEN or part[-1] != _OPEN[part[0]]:
        return None
    inner = part[1:-1]
    try:
        split_top(inner, ",")
    except ISError:
        return None  # "{a}{b}": two groups, not one
    return inner


class _SetBuilder:
    def __init__(self, server, ctx, labelkey: str, loc_ids: list[str] | None):
        self.server = server
        self.ctx = ctx
        self.labelkey = labelkey.lower()
        self.loc_ids = loc_ids
        self._dims: dict[str, list[Element]] = {}

    # --- sets

    def set_element(self, text: str, asset_type: str, name: str, depth: int, forced_type: str | None = None) -> Element:
        if depth > SET_NESTING_LIMIT:
            raise ISError("bad_request", f"image set nests deeper than {SET_NESTING_LIMIT} levels")
        text = L.localize_set(text, self.loc_ids)
        entries = [e for e in split_top(text, ",") if e.strip()]
        set_type = forced_type or _ASSET_TYPES.get(asset_type.strip().lower()) or self._detect(entries)
        attrs = [("type", set_type)] + ([("n", name)] if name else [])
        items = {
            "img_set": self._img_set,
            "spin": self._spin,
            "ecat": self._ecat,
            "video_set": self._video_set,
            "media_set": self._media_set,
        }[set_type](entries, depth)
        return Element("set", attrs, items)

    def _detect(self, entries: list[str]) -> str:
        """The reference's outer type rules: ``:`` e-catalog, two ``;`` media set, one ``;`` swatch
        set, nested or referenced sets a 2-D spin set; a plain list is an image set (PROPOSED)."""
        if any(len(split_top(e, ":")) > 1 for e in entries):
            return "ecat"
        semicolons = [len(split_top(e, ";")) - 1 for e in entries]
        if any(n >= 2 for n in semicolons):
            return "media_set"
        if any(n == 1 for n in semicolons):
            return "img_set"
        if any(_unwrap(e) is not None or self._set_record(e) is not None for e in entries):
            return "spin"
        return "img_set"

    def _nested(self, part: str, depth: int, forced_type: str | None = None) -> Element | None:
        """An in-line ``{…}`` set or a reference to a record with an ImageSet, else None."""
        inner = _unwrap(part)
        if inner is not None:
            return self.set_element(inner, "", "", depth + 1, forced_type)
        rec = self._set_record(part)
        if rec is None:
            return None
        return self.set_element(
            rec.get("imageset"), rec.get("assettype"), self._name(part, rec), depth + 1, forced_type
        )

    def _set_record(self, part: str) -> Record | None:
        ref = decode_path_element(part.strip())
        if not ref or "," in ref or ref[0] in _OPEN:
            return None
        rec = resolve_object(self.ctx.cats, ref, self.ctx.main).record
        return rec if rec is not None and rec.get("imageset") else None

    # --- set types (one method per type name)

    def _img_set(self, entries: list[str], depth: int) -> list[Element]:
        items = []
        for entry in entries:
            image, *rest = split_top(entry, ";")
            swatch = rest[0] if rest and rest[0].strip() else None
            nested = self._nested(image, depth)
            if nested is not None:
                items.append(Element("item", children=[nested] + self._swatch_children(swatch)))
            else:
                items.append(self._image_item(image, swatch, with_swatch=True))
        return items

    def _spin(self, entries: list[str], depth: int) -> list[Element]:
        frames = split_top(entries[0], ";") if len(entries) == 1 else []
        if len(frames) > 1:
            return [self._image_item(f, None, with_swatch=False) for f in frames]
        items = []
        for entry in entries:
            nested = self._nested(entry, depth, "spin")
            items.append(
                Element("item", children=[nested])
                if nested is not None
                else self._image_item(entry, None, with_swatch=False)
            )
        return items

    def _ecat(self, entries: list[str], depth: int) -> list[Element]:
        items = []
        for entry in entries:
            pages = [
                Element("page", children=self._image_item(p, None, with_swatch=False).children)
                for p in split_top(entry, ":")
            ]
            items.append(Element("item", children=pages))
        return items

    def _video_set(self, entries: list[str], depth: int) -> list[Element]:
        return [Element("item", children=[_video(self.ctx, e)]) for e in entries]

    def _media_set(self, entries: list[str], depth: int) -> list[Element]:
        items = []
        for entry in entries:
            asset, *rest = split_top(entry, ";")
            swatch = rest[0] if rest and rest[0].strip() else None
            item_type = _ITEM_TYPES.get(rest[1].strip().lower()) if len(rest) > 1 else None
            item_type = item_type or self._item_type(asset)
            if item_type == "media_set":
                raise ISError("bad_request", f"media set item {asset.strip()!r} is itself a media set")
            if item_type == "img":
                items.append(self._image_item(asset, swatch, with_swatch=True))
                continue
            swatch_el = self._swatch_children(swatch)
            if item_type in ("video", "static"):
                items.append(Element("item", [("type", item_type)], [_video(self.ctx, asset)] + swatch_el))
                continue
            nested = self._nested(asset, depth, item_type)
            if nested is None:  # a typed set item whose id names no set: an empty set of that type
                nested = Element("set", [("type", item_type), ("n", self._name(asset, None))])
            items.append(Element("item", [("type", item_type)], [nested] + swatch_el))
        return items

    def _item_type(self, asset: str) -> str:
        """A media-set item without a (known) type, detected like an outer set (§8.13)."""
        inner = _unwrap(asset)
        if inner is not None:
            return self._detect([e for e in split_top(inner, ",") if e.strip()])
        rec = self._set_record(asset)
        if rec is not None:
            return _ASSET_TYPES.get(rec.get("assettype").strip().lower()) or self._detect(
                [e for e in split_top(rec.get("imageset"), ",") if e.strip()]
            )
        ref = decode_path_element(asset.strip())
        static = _static_record(self.ctx.cats, self.ctx.main, ref)
        if static is not None:
            if _is_video(static.get("path") or static.id):
                return "video"
            if resolve_object(self.ctx.cats, ref, self.ctx.main).record is None:
                return "static"
        return "video" if _is_video(asset) else "img"

    # --- items

    def single_image(self, path: C.PathRecord) -> Element:
        """A record without ImageSet, or a file: a set of type ``img`` with its one image."""
        dims = self._dimensions(path.source)
        if not dims:
            raise ISError("not_found", path.name)
        image = Element("i", [("n", path.name)] + self._label(path.record))
        item = Element("item", children=[image] + dims)
        return Element("set", [("type", "img"), ("n", path.name)], [item])

    def _image_item(self, image: str, swatch: str | None, *, with_swatch: bool) -> Element:
        ref, source = self._reference("i", image)
        children = [ref]
        if with_swatch:
            children.append(self._swatch(swatch)[0] if swatch else Element("s", list(ref.attrs)))
        return Element("item", children=children + self._dimensions(source))

    def _swatch_children(self, swatch: str | None) -> list[Element]:
        """The swatch of an item that has no image (a nested set, a video), if it has one."""
        return [self._swatch(swatch)[0]] if swatch else []

    def _swatch(self, text: str) -> tuple[Element, Record | None]:
        inner = _unwrap(text)
        if inner is not None and inner.strip().lower().startswith("0x"):
            color, _, label = inner.strip().partition(" ")
            label = label.strip()
            return Element("s", [("c", "0x" + color[2:].upper())] + ([("l", label)] if label else [])), None
        element, source = self._reference("s", text)
        return element, source.record

    def _reference(self, tag: str, text: str) -> tuple[Element, Source]:
        ref = decode_path_element(text.strip())
        if not ref:
            raise ISError("bad_request", "empty id in image set")
        source = resolve_object(self.ctx.cats, ref, self.ctx.main)
        return Element(tag, [("n", self._name(text, source.record))] + self._label(source.record)), source

    def _name(self, text: str, record: Record | None) -> str:
        """How a viewer requests the object: ``rootId/id`` for a record, the path for a file."""
        ref = decode_path_element(text.strip())
        first = ref.split("/", 1)[0]
        if record is None or self.ctx.cats.catalog(first) is not None or self.ctx.main.is_default:
            return ref
        return f"{self.ctx.main.root_id}/{ref}"

    def _label(self, record: Record | None) -> list[tuple[str, str]]:
        """The ``l`` attribute: the ``labelkey=`` property of the record's UserData."""
        if not self.labelkey or record is None:
            return []
        quoted = "userdata" in record.quoted
        text = L.localize_properties(record.get("userdata"), self.loc_ids, quoted)
        for name, value in P.property_data_to_pairs(text, quoted):
            if name.lower() == self.labelkey:
                return [("l", value)]
        return []

    def _dimensions(self, source: Source) -> list[Element]:
        """``dx``, ``dy`` (full-resolution size) and ``iv`` (version) of an image, or nothing. A
        file path AllowDirectAccess closes is not read: it answers as a missing file does, so the
        set tells nothing about which files exist (protocol.md §5.5)."""
        if not source.path:
            return []
        if source.record is None and not direct_access_allowed(self.ctx.cats, self.ctx.main, direct_kind(source.path)):
            return []
        keys = source_keys(self.ctx.cats, source, self.server.settings)
        if keys[0] not in self._dims:
            self._dims[keys[0]] = self._read_dimensions(source, keys)
        return self._dims[keys[0]]

    def _read_dimensions(self, source: Source, keys: list[str]) -> list[Element]:
        storage = self.server.storage
        size = C.record_size(source.record)
        for key in keys:
            if size is not None:  # catalog::Size spares reading the image
                info = storage.head(key)
                if info is not None:
                    return _dimension_elements(size, key, info.etag)
                continue
            blob = storage.fetch(key)
            if blob is not None:
                header = _header_size(blob.data)
                return _dimension_elements(header, key, blob.etag) if header is not None else []
        return []


def _header_size(data: bytes) -> tuple[int, int] | None:
    """The image's size, or None when it cannot be read (the rest of the set stays usable)."""
    try:
        return codec.open_source(data, max_pixels=C.HEADER_ONLY).size
    except ISError as err:
        if err.kind not in ("content_error", "size_limit"):
            raise
        return None


def _dimension_elements(size: tuple[int, int], key: str, etag: str) -> list[Element]:
    return [
        Element("dx", text=str(size[0])),
        Element("dy", text=str(size[1])),
        Element("iv", text=C.version_id([key, etag, ""])),
    ]


def _video(ctx, text: str) -> Element:
    """``v``: ``n`` names the video, ``path`` is what ``/is/content/`` serves it by (clients build
    the video URL from ``path``; here both are the reference as the set wrote it); a static
    content record's ``VideoSize`` is exported (the reference: "used by req=set requests to
    export video size data") as ``dx``/``dy``, the members clients read (``int(v['v']['dx'])``)."""
    ref = decode_path_element(text.strip())
    attrs = [("n", ref), ("path", ref)]
    static = _static_record(ctx.cats, ctx.main, ref) if ref else None
    size = parse_size_attr(static.get("videosize")) if static is not None else None
    if size is not None:
        attrs += [("dx", str(size[0])), ("dy", str(size[1]))]
    return Element("v", attrs)
