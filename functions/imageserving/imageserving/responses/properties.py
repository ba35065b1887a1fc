"""Property responses in the four ``req=`` formats, and the error bodies (protocol.md §8.1-§8.2, §12.3).

Every non-image request type answers with a list of ``(name, value)`` pairs; this module owns how
such a list is written as Java-properties text, JavaScript assignments, ``<prop-group>`` XML or
JSONP, plus the ``req=type,format,encoding`` grammar that picks one of them.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Sequence

from ..errors import ISError

TEXT, JAVASCRIPT, XML, JSON = "text", "javascript", "xml", "json"
DEFAULT_HANDLER = "s7jsonResponse"
ERROR_HANDLER = "s7jsonError"

_UTF8_TEXT = "text/plain; charset=UTF-8"
_UTF8_SCRIPT = "text/javascript; charset=UTF-8"


@dataclass(frozen=True)
class Body:
    """A response body with its full Content-Type (charset included)."""

    content: bytes
    media_type: str


# ---------------------------------------------------------------------------------------------
# req= grammar (§8.1)

# Canonical spelling -> how to produce the bytes. Java's "UTF-16" writes a big-endian BOM; the
# explicit-endian names carry no BOM (RFC 2781), so a reader learns the order from the charset.
_ENCODINGS = ("UTF-8", "UTF-16", "UTF-16LE", "UTF-16BE", "ISO-8859-1")
_CODECS = {"UTF-8": "utf-8", "UTF-16LE": "utf-16-le", "UTF-16BE": "utf-16-be", "ISO-8859-1": "latin-1"}

_ALL = (TEXT, JAVASCRIPT, XML, JSON)
# type -> (formats, default first; encodings the xml format accepts). Empty formats = image reply.
_REQ_TYPES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "img": ((), ()),
    "tmb": ((), ()),
    "mask": ((), ()),
    "props": (_ALL, ()),
    "ctx": (_ALL, ()),  # PROPOSED: not in the reference; Scene7's legacy zoom viewers send it
    "imageprops": (_ALL, ()),
    "catalogprops": (_ALL, ()),
    "exists": (_ALL, ()),
    "userdata": ((TEXT, XML, JSON), _ENCODINGS),
    "targets": ((TEXT, XML, JSON), _ENCODINGS),
    "imageset": (_ALL, _ENCODINGS),
    "set": ((XML, JSON), _ENCODINGS),
    "map": ((TEXT, XML, JSON), _ENCODINGS),
    "xlate": (_ALL, ()),
    "xmp": ((XML,), ("UTF-8",)),
    "validate": (_ALL, ()),
    "resolve": ((TEXT,), ()),
    "message": ((TEXT,), ()),
    "loadcache": ((TEXT,), ()),
    "savetofile": ((TEXT,), ()),
    "mbrset": ((TEXT, XML), _ENCODINGS),
}

_HANDLER_RE = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z_$][A-Za-z0-9_$]*)*")
_HANDLER_MAX = 128


@dataclass(frozen=True)
class ReqSpec:
    """A parsed ``req=`` value.

    ``type`` is always lower-case (``savetofile``, ``mbrset`` included); ``format`` is None for the
    image types (img, tmb, mask); ``encoding`` is the canonical charset name and only matters for xml.
    """

    type: str = "img"
    format: str | None = None
    encoding: str = "UTF-8"


def parse_req(value: str) -> ReqSpec:
    """Parse ``type[,format[,encoding]]`` (case-insensitive); an empty part means its default."""
    parts = value.split(",")
    if len(parts) > 3:
        raise ISError("bad_request", f"req={value}: too many parts")
    req_type = parts[0].strip().lower() or "img"
    if req_type not in _REQ_TYPES:
        raise ISError("bad_request", f"req={value}: unknown request type '{parts[0]}'")
    formats, encodings = _REQ_TYPES[req_type]
    fmt_word = parts[1].strip().lower() if len(parts) > 1 else ""
    enc_word = parts[2].strip() if len(parts) > 2 else ""
    if not formats:
        if fmt_word or enc_word:
            raise ISError("bad_request", f"req={value}: {req_type} takes no format")
        return ReqSpec(req_type)
    fmt = fmt_word or formats[0]
    if fmt not in formats:
        raise ISError("bad_request", f"req={value}: format '{parts[1]}' not allowed for {req_type}")
    if not enc_word:
        return ReqSpec(req_type, fmt)
    encoding = canonical_encoding(enc_word)
    if encoding is None:
        raise ISError("bad_request", f"req={value}: unknown encoding '{enc_word}'")
    if encoding == "UTF-8":
        # What every text reply is anyway; viewers send it with json too (req=set,json,UTF-8).
        return ReqSpec(req_type, fmt)
    if fmt != XML or encoding not in encodings:
        raise ISError("bad_request", f"req={value}: encoding not allowed for {req_type},{fmt}")
    return ReqSpec(req_type, fmt, encoding)


def canonical_encoding(name: str) -> str | None:
    """The canonical spelling of a supported xml encoding name, or None."""
    upper = name.upper()
    return upper if upper in _ENCODINGS else None


def validate_handler(name: str) -> str:
    """The ``handler=`` JSONP callback if it is a (dotted) JavaScript identifier path, else bad_request."""
    if len(name) > _HANDLER_MAX or not _HANDLER_RE.fullmatch(name):
        raise ISError("bad_request", f"handler={name[:_HANDLER_MAX]}: not a valid callback name")
    return name


# ---------------------------------------------------------------------------------------------
# Value formatting (§8.2, Java-compatible)

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def java_double(x: float) -> str:
    """``Double.toString``: shortest round-trip digits, plain between 1e-3 and 1e7, else ``d.dddE±n``."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    sign = "-" if math.copysign(1.0, x) < 0 else ""
    if x == 0:
        return sign + "0.0"
    _, digit_tuple, exponent = Decimal(repr(abs(float(x)))).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    point = len(digits) + exponent  # position of the decimal point within digits
    if 1e-3 <= abs(x) < 1e7:
        if point <= 0:
            return f"{sign}0.{'0' * -point}{digits}"
        whole, frac = digits[:point].ljust(point, "0"), digits[point:]
        return f"{sign}{whole}.{frac or '0'}"
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{point - 1}"


def java_date(dt: datetime) -> str:
    """``Date.toString`` in UTC: ``Thu Jan 01 00:00:00 UTC 2026`` (naive datetimes are taken as UTC)."""
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc)
    return (
        f"{_DAYS[dt.weekday()]} {_MONTHS[dt.month - 1]} {dt.day:02d} "
        f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d} UTC {dt.year}"
    )


def hex_color(rgb: Sequence[int]) -> str:
    """``0xRRGGBB`` in upper-case hex from the first three channels (an alpha channel is not shown)."""
    r, g, b = rgb[:3]
    return f"0x{r:02X}{g:02X}{b:02X}"


def flag(value: bool) -> str:
    return "1" if value else "0"


# ---------------------------------------------------------------------------------------------
# Escaping per format


def _properties_escape(text: str, *, is_key: bool) -> str:
    """Java ``Properties.store`` escaping (``saveConvert`` with non-ASCII left as is)."""
    out = []
    for i, ch in enumerate(text):
        if ch == "\\":
            out.append("\\\\")
        elif ch == " ":
            # A space ends a key when read back; in a value only a leading one would be lost.
            out.append("\\ " if is_key or i == 0 else " ")
        elif ch in "\t\n\r\f":
            out.append({"\t": "\\t", "\n": "\\n", "\r": "\\r", "\f": "\\f"}[ch])
        elif ch in "=:#!":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


_JS_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_JS_RE = re.compile(r"[\\'\n\r\u2028\u2029]|</")


def _js_escape(text: str) -> str:
    """Single-quoted JavaScript string content; ``</`` is broken so the body can sit in a <script>."""
    return _JS_RE.sub(lambda m: _JS_ESCAPES.get(m.group(), "<\\/"), text)


# Characters XML 1.0 cannot carry at all, not even as a character reference.
_XML_ILLEGAL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# TAB/LF/CR as references: a parser would otherwise normalise them to spaces in attribute values.
_XML_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"}
_XML_RE = re.compile('[&<>"\t\n\r]')


def xml_escape(text: str) -> str:
    """Attribute-safe (and content-safe) XML text; unrepresentable characters become U+FFFD."""
    text = _XML_ILLEGAL_RE.sub("\ufffd", text)
    return _XML_RE.sub(lambda m: _XML_ESCAPES[m.group()], text)


_JSON_HARDENING = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_JSON_RE = re.compile("[<>&\u2028\u2029]")


def json_text(value: object) -> str:
    """Compact JSON with the characters that could end or confuse a <script> written as escapes."""
    # These characters only ever occur inside JSON strings, so replacing them in the text is safe.
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return _JSON_RE.sub(lambda m: _JSON_HARDENING[m.group()], text)


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "replace")


def xml_document(text: str, encoding: str) -> Body:
    canonical = canonical_encoding(encoding)
    if canonical is None:
        raise ValueError(f"unsupported xml encoding {encoding!r}")
    document = f'<?xml version="1.0" encoding="{canonical}"?>' + text
    if canonical == "UTF-16":
        content = codecs.BOM_UTF16_BE + document.encode("utf-16-be")
    else:
        # Only ISO-8859-1 can meet an unencodable character; a character reference keeps it.
        content = document.encode(_CODECS[canonical], "xmlcharrefreplace")
    return Body(content, f"text/xml; charset={canonical}")


# ---------------------------------------------------------------------------------------------
# Writers


def _text(props: Sequence[tuple[str, str]]) -> str:
    return "".join(f"{_properties_escape(n, is_key=True)}={_properties_escape(v, is_key=False)}\n" for n, v in props)


def _javascript(props: Sequence[tuple[str, str]]) -> Body:
    lines = "".join(f"{name}='{_js_escape(value)}'\n" for name, value in props)
    return Body(_utf8(lines), _UTF8_SCRIPT)


def _prop_group(props: Sequence[tuple[str, str]]) -> str:
    """The root ``<prop-group>``: names split at the first dot into a named group and a property."""
    # Root children in order of first appearance: a group name (str) or a bare property (tuple).
    children: list[str | tuple[str, str]] = []
    groups: dict[str, list[tuple[str, str]]] = {}
    for name, value in props:
        group, dot, prop = name.partition(".")
        if not dot:
            children.append((name, value))
            continue
        if group not in groups:
            groups[group] = []
            children.append(group)
        groups[group].append((prop, value))

    def prop_xml(name: str, value: str) -> str:
        return f'<property name="{xml_escape(name)}" value="{xml_escape(value)}"/>'

    parts = ["<prop-group>"]
    for child in children:
        if isinstance(child, tuple):
            parts.append(prop_xml(*child))
        else:
            parts.append(f'<prop-group name="{xml_escape(child)}">')
            parts.extend(prop_xml(n, v) for n, v in groups[child])
            parts.append("</prop-group>")
    parts.append("</prop-group>")
    return "".join(parts)


def _jsonp(callback: str, props: Sequence[tuple[str, str]], req_id: str) -> Body:
    text = f"/*jsonp*/{callback}({json_text(dict(props))},{json_text(req_id)});"
    return Body(_utf8(text), _UTF8_SCRIPT)


def render_properties(
    props: Sequence[tuple[str, str]],
    fmt: str,
    *,
    handler: str = DEFAULT_HANDLER,
    req_id: str = "",
    encoding: str = "UTF-8",
    now: datetime | None = None,
) -> Body:
    """A properties response (§8.2). ``now`` dates the text header (default: the current time);
    ``handler``/``req_id`` apply to json, ``encoding`` to xml. Later duplicate names win in json."""
    if fmt == TEXT:
        stamp = java_date(now or datetime.now(timezone.utc))
        return Body(_utf8(f"#S7Z OK\n#{stamp}\n" + _text(props)), _UTF8_TEXT)
    if fmt == JAVASCRIPT:
        return _javascript(props)
    if fmt == XML:
        return xml_document("\n" + _prop_group(props), encoding)
    if fmt == JSON:
        return _jsonp(validate_handler(handler), props, req_id)
    raise ValueError(f"not a properties format: {fmt!r}")


def render_error(title: str, message: str, fmt: str | None, *, req_id: str = "") -> Body:
    """An error body (§12.3) in ``fmt`` (None, the image types' format, means text). Always UTF-8;
    json always calls ``s7jsonError`` with ``message`` before ``title``."""
    props = [("error.title", title), ("error.message", message)]
    if fmt is None or fmt == TEXT:
        return Body(_utf8(_text(props)), _UTF8_TEXT)
    if fmt == JAVASCRIPT:
        return _javascript(props)
    if fmt == XML:
        return xml_document("\n" + _prop_group(props), "UTF-8")
    if fmt == JSON:
        return _jsonp(ERROR_HANDLER, [("message", message), ("title", title)], req_id)
    raise ValueError(f"not a properties format: {fmt!r}")


def render_raw_text(text: str) -> Body:
    """A ``text/plain`` UTF-8 body written verbatim (userdata, targets, imageset, map in text)."""
    return Body(_utf8(text), _UTF8_TEXT)


def render_imageset(
    image_set: str, fmt: str, *, handler: str = DEFAULT_HANDLER, req_id: str = "", encoding: str = "UTF-8"
) -> Body:
    """``req=imageset`` (§8.12): the ``catalog::ImageSet`` text ("" for an unknown record)."""
    if fmt == TEXT:
        return render_raw_text(userdata_text(image_set, quoted=True))
    if fmt == XML:
        return xml_document(f"<IMAGE_SET>{xml_escape(image_set)}</IMAGE_SET>", encoding)
    return render_properties([("IMAGE_SET", image_set)], fmt, handler=handler, req_id=req_id)


# ---------------------------------------------------------------------------------------------
# Property data (catalog::UserData, catalog::Targets; §8.10-§8.11, catalogs.md §3.4)

_LINE_BREAK_RE = re.compile(r"\r\n|\r|\n")
_PROPERTY_NAME_RE = re.compile(r"[A-Za-z0-9._\-]+")


def property_data_to_pairs(text: str, quoted: bool) -> list[tuple[str, str]]:
    """Parse property data into pairs for xml/json.

    Items are separated by line breaks, and by ``??`` unless the catalog field was quoted. Values
    are kept verbatim. Items whose name is not letters/digits/``.``/``-``/``_`` (so any name with
    ``:``) and items without ``=`` are skipped. Names are case-insensitive: a repeated name keeps
    its first spelling and position and takes the last value. Text with no ``=`` at all is returned
    whole as the single property ``userdata``; empty text gives no properties.
    """
    if not text:
        return []
    if "=" not in text:
        return [("userdata", text)]
    items = _LINE_BREAK_RE.split(text if quoted else text.replace("??", "\r\n"))
    pairs: dict[str, tuple[str, str]] = {}
    for item in items:
        name, eq, value = item.partition("=")
        name = name.strip(" \t")
        if not eq or not _PROPERTY_NAME_RE.fullmatch(name):
            continue
        key = name.lower()
        pairs[key] = (pairs[key][0] if key in pairs else name, value)
    return list(pairs.values())


def userdata_text(text: str, quoted: bool) -> str:
    """The text-format body of userdata/targets/imageset: ``??`` → CR LF unless quoted, plus CR LF."""
    return (text if quoted else text.replace("??", "\r\n")) + "\r\n"


def render_property_data(
    text: str, quoted: bool, fmt: str, *, handler: str = "s7jsonResponse", req_id: str = "", encoding: str = "UTF-8"
) -> Body:
    """A property-data field (UserData, Targets): raw text with CR LF lines, or properties (§8.10)."""
    if fmt == TEXT:
        return render_raw_text(userdata_text(text, quoted))
    return render_properties(
        property_data_to_pairs(text, quoted), fmt, handler=handler, req_id=req_id, encoding=encoding
    )
