"""Parsers for Scene7 catalog files: `.ini` attribute files, TAB-separated data files, macro tables and
the catalog value types (catalogs.md §3, §5.2, §9-§11, §17).

Pure functions over bytes and strings: no storage access, no logging. Problems that do not stop a file
from loading are returned as ``warnings`` for the loader to log; problems that do raise
:class:`CatalogFormatError`, which the loader turns into the load-failure handling of §15.4.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

__all__ = [
    "ATTRIBUTES",
    "ATTRIBUTE_ALIASES",
    "BUILTIN_ATTRIBUTES",
    "EMPTY_IS_VALUE",
    "ENUM_VALUES",
    "NOT_INHERITED",
    "RES_MODE_NAMES",
    "CatalogFormatError",
    "IniFile",
    "Row",
    "Table",
    "decode_text",
    "parse_color_attr",
    "parse_enum_attr",
    "parse_flag_attr",
    "parse_ini",
    "parse_int_attr",
    "parse_macros",
    "parse_real_attr",
    "parse_size_attr",
    "parse_table",
    "parse_timestamp",
    "parse_direct_access",
]


class CatalogFormatError(ValueError):
    """A catalog file that cannot be loaded at all (bad encoding, unusable header)."""


# --- attribute vocabulary (§9) ------------------------------------------------------------------

ATTRIBUTES: frozenset[str] = frozenset(
    name.lower()
    for name in """
    AllowDirectAccess AllowDirectUrls ApplyEffectMask AudioBitRate Bfc BkgColor CacheValidationPolicy
    CatalogFile ClientAddressFilter DefaultExpiration DefaultExt DefaultFont DefaultImage
    DefaultImageMode DefaultLocale DefaultPix DefaultThumbPix DigimarcId DigimarcInfo ErrorDetail
    ErrorImage Expiration FontMapFile FullMatch HttpAppleStreamingContext HttpFlashStreamingContext
    IccBlackPointCompensation IccDither IccProfileCmyk IccProfileGray IccProfileMapFile IccProfileRgb
    IccProfileSrcCmyk IccProfileSrcGray IccProfileSrcRgb IccRenderIntent JpegQuality LocaleMap
    LocaleStrMap MacroFile MaxPix NonImgExpiration PrintResolution PublishInfo RequestLock
    RequestObfuscation ResMode Resolution RootId RootPath RootUrl RuleSetFile SavePath
    StaticContentCatalogFile StaticContentRootPath SvgCatalogFile SynthesizeFontStyles ThumbBkgColor
    ThumbHorizAlign ThumbRes ThumbType ThumbVertAlign TimeStamp TotalStreamBitRate TrustedDomains
    UseLastModified VideoBitRate VideoSize Watermark
""".split()
)

# Names the Adobe docs use for attributes defined under another name (§9 end, AMBIG-17).
ATTRIBUTE_ALIASES: dict[str, str] = {
    "lastmodified": "timestamp",
    "addressfilter": "clientaddressfilter",
    "staticcontentsrootpath": "staticcontentrootpath",
}

# Used when neither the catalog nor default.ini defines the attribute (§5.1 step 4). Attributes
# without a built-in (file lists, RootId, TimeStamp, video-only names) are absent.
BUILTIN_ATTRIBUTES: dict[str, str] = {
    "allowdirectaccess": "exclude:",
    "allowdirecturls": "0",
    "applyeffectmask": "1",
    "bfc": "false",
    "bkgcolor": "FFFFFF",
    "cachevalidationpolicy": "0",
    "clientaddressfilter": "0.0.0.0/0",
    "defaultexpiration": "1",
    "defaultext": "",
    "defaultfont": "",
    "defaultimage": "",
    "defaultimagemode": "0",
    "defaultlocale": "",
    "defaultpix": "300,300",
    "defaultthumbpix": "100,100",
    "digimarcid": "",
    "digimarcinfo": "",
    "errordetail": "0",
    "errorimage": "",
    "expiration": "10",
    "fullmatch": "0",
    "iccblackpointcompensation": "1",
    "iccdither": "0",
    "iccprofilecmyk": "",
    "iccprofilegray": "",
    "iccprofilergb": "",
    "iccprofilesrccmyk": "",
    "iccprofilesrcgray": "",
    "iccprofilesrcrgb": "",
    "iccrenderintent": "0",
    "jpegquality": "80,0",
    "localemap": "",
    "localestrmap": "",
    "maxpix": "2000,2000",
    "nonimgexpiration": "0.1",
    "printresolution": "72",
    "publishinfo": "",
    "requestlock": "0",
    "requestobfuscation": "0",
    "resmode": "4",
    "resolution": "72",
    "rootpath": "",
    "rooturl": "",
    "savepath": "",
    "staticcontentrootpath": "",
    "synthesizefontstyles": "1",
    "thumbbkgcolor": "FFFFFF",
    "thumbhorizalign": "2",
    "thumbres": "72",
    "thumbtype": "2",
    "thumbvertalign": "2",
    "trusteddomains": "",
    "uselastmodified": "0",
    "watermark": "",
}

# Defined-but-empty switches the feature off instead of inheriting (§5.2).
EMPTY_IS_VALUE: frozenset[str] = frozenset(
    {
        "defaultext",
        "defaultimage",
        "errorimage",
        "watermark",
        "rootpath",
        "staticcontentrootpath",
        "rooturl",
        "savepath",
        "allowdirectaccess",
        "trusteddomains",
    }
)

# Never taken from default.ini (§4.2, §5.2).
NOT_INHERITED: frozenset[str] = frozenset(
    {
        "rootid",
        "catalogfile",
        "svgcatalogfile",
        "staticcontentcatalogfile",
        "macrofile",
        "fontmapfile",
        "iccprofilemapfile",
        "rulesetfile",
        "timestamp",
    }
)

# Listed values of the enum attributes (§3.4, §9); anything else means "unspecified".
ENUM_VALUES: dict[str, frozenset[int]] = {
    "cachevalidationpolicy": frozenset({0, 1}),
    "defaultimagemode": frozenset({0, 1}),
    "errordetail": frozenset({0, 1, 2, 3}),
    "iccrenderintent": frozenset({0, 1, 2, 3}),
    "requestobfuscation": frozenset({0, 1}),
    "resmode": frozenset({1, 2, 3, 4}),
    "thumbhorizalign": frozenset({1, 2, 3}),
    "thumbtype": frozenset({1, 2, 3}),
    "thumbvertalign": frozenset({1, 2, 3}),
}

RES_MODE_NAMES: dict[str, int] = {"sharp": 1, "bilin": 2, "bicub": 3, "sharp2": 4}


# --- encoding (§3.1) ----------------------------------------------------------------------------

_BOM = b"\xef\xbb\xbf"


def decode_text(data: bytes) -> str:
    """Decode a catalog text file: UTF-8 after a BOM (BOM dropped), ISO-8859-1 otherwise."""
    if data.startswith(_BOM):
        try:
            return data[len(_BOM) :].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CatalogFormatError(
                f"invalid UTF-8 at byte {exc.start + len(_BOM)} of a file with a UTF-8 BOM"
            ) from exc
    return data.decode("iso-8859-1")


# Only CR, LF and CR LF end a record; str.splitlines would also split on Latin-1 0x85 (NEL) etc.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


# --- attribute files (§3.2) ---------------------------------------------------------------------

_ATTR_NAME = re.compile(r"[A-Za-z0-9._-]+")


@dataclass
class IniFile:
    """A parsed `.ini`: lower-cased canonical name -> raw value ('' = defined but empty)."""

    attrs: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # lower-cased name -> spelling in the file
    warnings: list[str] = field(default_factory=list)


def _unquote_ini_value(value: str) -> str:
    # AMBIG-2: one pair of matching outer quotes is a delimiter only if every inner quote of that
    # kind is doubled; anything else is literal text.
    if len(value) >= 2 and value[0] in "\"'" and value[-1] == value[0]:
        quote = value[0]
        inner = value[1:-1]
        if quote not in inner.replace(quote * 2, ""):
            return inner.replace(quote * 2, quote)
    return value


def parse_ini(data: bytes) -> IniFile:
    """Parse an attribute file; never raises except for a bad UTF-8 BOM file."""
    lines = _LINE_BREAK.split(decode_text(data))
    ini = IniFile()
    by_alias: dict[str, tuple[str, str, int]] = {}  # canonical -> (spelling, value, line)
    i = 0
    while i < len(lines):
        line_no = i + 1
        record = lines[i]
        i += 1
        content = record.lstrip(" \t")
        if not content or content.startswith("#"):
            continue
        # AMBIG-1: a backslash right before a line break joins the next line; both are dropped.
        # (The last element of `lines` has no line break after it.)
        while record.endswith("\\") and i < len(lines):
            record = record[:-1] + lines[i]
            i += 1
        name, equals, value = record.partition("=")
        name = name.strip(" \t")
        if not equals:
            ini.warnings.append(f"line {line_no}: no '=' in {record.strip()!r}; line ignored")
            continue
        if not _ATTR_NAME.fullmatch(name):
            ini.warnings.append(f"line {line_no}: invalid attribute name {name!r}; line ignored")
            continue
        value = _unquote_ini_value(value.strip(" \t"))
        key = name.lower()
        if key in ATTRIBUTE_ALIASES:
            by_alias[ATTRIBUTE_ALIASES[key]] = (name, value, line_no)
        else:
            ini.attrs[key] = value
            ini.names[key] = name
    for canonical, (name, value, line_no) in by_alias.items():
        if canonical in ini.attrs:
            ini.warnings.append(f"line {line_no}: {name} ignored because {ini.names[canonical]} is also defined")
        else:
            ini.attrs[canonical] = value
            ini.names[canonical] = name
    unknown = [ini.names[key] for key in ini.attrs if key not in ATTRIBUTES]
    if unknown:
        ini.warnings.append("unknown attributes (kept, not used): " + ", ".join(unknown))
    return ini


# --- data files (§3.3) --------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One data record: lower-cased column name -> raw field, and the columns that were quoted."""

    fields: dict[str, str]
    quoted: frozenset[str] = frozenset()


@dataclass
class Table:
    """A parsed data file. ``rows`` is keyed by the key field (a tuple for composite keys)."""

    columns: tuple[str, ...]
    rows: dict[str | tuple[str, ...], Row]
    warnings: list[str] = field(default_factory=list)


# A quoted field runs to a closing quote that stands right before a TAB, a line break or the end of
# the file, with every inner quote of its kind doubled (§3.3 rule 7, AMBIG-3). Anything else that
# starts with a quote — `'til dawn`, `"abc"def` — is literal text up to the next TAB.
_QUOTED_FIELD = {q: re.compile(rf"{q}([^{q}]*(?:{q}{q}[^{q}]*)*){q}(?=[\t\r\n]|\Z)") for q in ('"', "'")}
_PLAIN_FIELD = re.compile(r"[^\t\r\n]*")
_COLUMN_NAME = re.compile(r"[a-z0-9_-]+")
_NOT_QUOTED: frozenset[str] = frozenset()


def _needs_quote_scan(line: str) -> bool:
    return line.startswith(('"', "'")) or '\t"' in line or "\t'" in line


def _scan_record(text: str, pos: int) -> tuple[list[str], set[int], int]:
    """Read one quote-aware record starting at ``pos``; return fields, quoted indexes, next pos."""
    fields: list[str] = []
    quoted: set[int] = set()
    end = len(text)
    while True:
        quote = text[pos : pos + 1]
        match = _QUOTED_FIELD[quote].match(text, pos) if quote in _QUOTED_FIELD else None
        if match:
            quoted.add(len(fields))
            fields.append(match.group(1).replace(quote * 2, quote))
        else:
            match = _PLAIN_FIELD.match(text, pos)
            fields.append(match.group())
        pos = match.end()
        if pos == end:
            return fields, quoted, pos
        if text[pos] == "\t":
            pos += 1
            continue
        return fields, quoted, pos + (2 if text.startswith("\r\n", pos) else 1)


def _records(text: str) -> Iterator[tuple[int, list[str], set[int]]]:
    """Yield (line number, fields, quoted indexes) for every record, blank lines included."""
    pos, line_no, end = 0, 1, len(text)
    while pos < end:
        brk = _LINE_BREAK.search(text, pos)
        line_end = brk.start() if brk else end
        line = text[pos:line_end]
        if _needs_quote_scan(line):
            fields, quoted, next_pos = _scan_record(text, pos)
            consumed = len(_LINE_BREAK.findall(text, pos, next_pos))
        else:
            # Fast path: without a field that starts with a quote, a line is a plain TAB split.
            fields, quoted = line.split("\t"), set()
            next_pos = brk.end() if brk else end
            consumed = 1
        yield line_no, fields, quoted
        pos, line_no = next_pos, line_no + consumed


def _header(fields: list[str], line_no: int, warnings: list[str]) -> list[str | None]:
    """Column name per field position; None for positions that are ignored."""
    names: list[str | None] = []
    for position, raw in enumerate(fields, 1):
        name = raw.strip(" ").lower()  # header names cannot contain spaces; stray ones are noise
        if name.startswith("."):
            names.append(None)
            continue
        if not name:
            warnings.append(f"line {line_no}: header column {position} has no name; column ignored")
            names.append(None)
            continue
        if name in names:
            raise CatalogFormatError(f"header names column {raw!r} twice")
        if not _COLUMN_NAME.fullmatch(name):
            warnings.append(f"line {line_no}: header column {raw!r} has characters outside A-Z 0-9 - _")
        names.append(name)
    return names


def parse_table(data: bytes, key: str | tuple[str, ...] = "id") -> Table:
    """Parse a TAB-separated data file with a header record, indexed by ``key`` column(s)."""
    key_columns = (key.lower(),) if isinstance(key, str) else tuple(k.lower() for k in key)
    warnings: list[str] = []
    rows: dict[str | tuple[str, ...], Row] = {}
    positions: list[str | None] | None = None
    columns: tuple[str, ...] = ()
    kept: list[int] | None = None  # positions of the kept columns; None = all (zip suffices)
    width = primary_at = 0
    for line_no, fields, quoted in _records(decode_text(data)):
        if fields == [""] and not quoted:
            continue
        if positions is None:
            positions = _header(fields, line_no, warnings)
            missing = [k for k in key_columns if k not in positions]
            if missing:
                raise CatalogFormatError(f"header lacks key column(s) {', '.join(missing)}")
            width = len(positions)
            columns = tuple(name for name in positions if name)
            kept = None if all(positions) else [i for i, name in enumerate(positions) if name]
            primary_at = positions.index(key_columns[0])
            continue
        if any(fields[width:]):
            warnings.append(f"line {line_no}: {len(fields) - width} field(s) beyond the header dropped")
        fields += [""] * (width - len(fields))
        primary = fields[primary_at]
        if not primary:
            warnings.append(f"line {line_no}: empty {key_columns[0]}; record skipped")
            continue
        if "," in primary:
            warnings.append(f"line {line_no}: {key_columns[0]} {primary!r} contains ','; record skipped")
            continue
        row = Row(
            fields=dict(zip(columns, fields if kept is None else [fields[i] for i in kept])),
            quoted=frozenset(positions[i] for i in quoted if i < width and positions[i]) if quoted else _NOT_QUOTED,
        )
        row_key = primary if isinstance(key, str) else tuple(row.fields[k] for k in key_columns)
        if row_key in rows:
            warnings.append(f"line {line_no}: {row_key!r} again; this record replaces the earlier one")
        rows[row_key] = row
    return Table(columns=columns, rows=rows, warnings=warnings)


# --- macros (§10.3, §11) ------------------------------------------------------------------------


def parse_macros(table: Table) -> dict[str, str]:
    """Macro table (columns Name, Definition) -> lower-cased name -> definition, in file order.

    Nested invocations are left as written; expanding them is the macro expander's job.
    """
    for column in ("name", "definition"):
        if column not in table.columns:
            raise CatalogFormatError(f"macro file lacks the {column.capitalize()} column")
    return {row.fields["name"].lower(): row.fields["definition"] for row in table.rows.values()}


def parse_icc_map(table: Table) -> dict[str, str]:
    """ICC profile map (columns Name, ProfilePath; §10.5) -> lower-cased name -> profile path.
    Rows without a path are skipped: they could only ever fail."""
    for column in ("name", "profilepath"):
        if column not in table.columns:
            raise CatalogFormatError(f"the ICC profile map lacks the {column} column")
    return {
        row.fields["name"].lower(): row.fields["profilepath"].strip()
        for row in table.rows.values()
        if row.fields.get("profilepath", "").strip()
    }


# --- value types (§3.4) -------------------------------------------------------------------------
# Each helper returns None for "not set or invalid", which callers treat as "inherit".

_HEX_COLOR = re.compile(r"(?:0[xX])?([0-9A-Fa-f]{6})")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_REAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_FLAGS = {"0": False, "1": True, "false": False, "true": True, "off": False, "on": True}


def _clean(value: str | None) -> str:
    return "" if value is None else value.strip(" \t")


def parse_color_attr(value: str | None) -> tuple[int, int, int] | None:
    """``RRGGBB`` or ``0xRRGGBB`` -> (r, g, b)."""
    match = _HEX_COLOR.fullmatch(_clean(value))
    if not match:
        return None
    packed = int(match.group(1), 16)
    return packed >> 16, (packed >> 8) & 0xFF, packed & 0xFF


def parse_direct_access(value: str | None) -> tuple[bool, frozenset[str]]:
    """``AllowDirectAccess`` -> (include?, types): ``[include:|exclude:]TYPE[,TYPE…]``, no keyword
    meaning ``include``, so ``include:`` and an empty value allow nothing and ``exclude:`` all.
    Keywords and types compare case-insensitively; unknown types are kept (they match nothing)."""
    text = _clean(value)
    keyword, colon, rest = text.partition(":")
    include = True
    if colon and keyword.strip().lower() in ("include", "exclude"):
        include, text = keyword.strip().lower() == "include", rest
    return include, frozenset(t.strip().upper() for t in text.split(",") if t.strip())


def parse_flag_attr(value: str | None) -> bool | None:
    """``0``/``1``, ``false``/``true``, ``off``/``on`` (any case) -> bool."""
    return _FLAGS.get(_clean(value).lower())


def parse_int_attr(value: str | None) -> int | None:
    """Signed decimal integer; a real with no fraction (``72.0``) is accepted as that integer."""
    text = _clean(value)
    if _INTEGER.fullmatch(text):
        return int(text)
    real = parse_real_attr(text)
    return int(real) if real is not None and real.is_integer() else None


def parse_real_attr(value: str | None) -> float | None:
    """Signed decimal number, exponent allowed (``12.5``, ``-2.34e4``)."""
    text = _clean(value)
    if not _REAL.fullmatch(text):
        return None
    number = float(text)
    return number if number not in (float("inf"), float("-inf")) else None


def parse_enum_attr(value: str | None, allowed: Collection[int], names: Mapping[str, int] | None = None) -> int | None:
    """Integer from ``allowed`` (or a name from ``names``, any case); others are unspecified."""
    text = _clean(value)
    if names and text.lower() in names:
        return names[text.lower()]
    number = int(text) if _INTEGER.fullmatch(text) else None
    return number if number in allowed else None


def parse_size_attr(value: str | None) -> tuple[int, int] | None:
    """``w,h`` -> (w, h); both non-negative integers (the meaning of 0 is the caller's)."""
    parts = _clean(value).split(",")
    if len(parts) != 2:
        return None
    width, height = (parse_int_attr(part) for part in parts)
    if width is None or height is None or width < 0 or height < 0:
        return None
    return width, height


# Zone abbreviations that name a fixed offset (DST already encoded: PST -8, PDT -7), in minutes.
_ZONES: dict[str, int] = {
    "GMT": 0,
    "UTC": 0,
    "UT": 0,
    "WET": 0,
    "WEST": 60,
    "BST": 60,
    "IST": 330,
    "CET": 60,
    "CEST": 120,
    "MET": 60,
    "MEST": 120,
    "EET": 120,
    "EEST": 180,
    "MSK": 180,
    "HKT": 480,
    "SGT": 480,
    "AWST": 480,
    "JST": 540,
    "KST": 540,
    "ACST": 570,
    "ACDT": 630,
    "AEST": 600,
    "AEDT": 660,
    "NZST": 720,
    "NZDT": 780,
    "NST": -210,
    "NDT": -150,
    "AST": -240,
    "ADT": -180,
    "EST": -300,
    "EDT": -240,
    "CST": -360,
    "CDT": -300,
    "MST": -420,
    "MDT": -360,
    "PST": -480,
    "PDT": -420,
    "AKST": -540,
    "AKDT": -480,
    "HST": -600,
    "HDT": -540,
    "SST": -660,
}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_EPOCH_MS = re.compile(r"-?[0-9]+")
_DATE_TIME = re.compile(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})[ \t]+([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})[ \t]+(.+)")
# ``GMT -7``, ``GMT+05:30`` (the reference's forms), also ``GMT - 7`` and the ``GMT-0700`` Java's
# formatters write; the sign stays mandatory (``GMT 5`` is malformed).
_GMT_OFFSET = re.compile(
    r"(?:GMT|UTC)[ \t]*([+-])[ \t]*(?:([0-9]{1,2})(?::([0-9]{2}))?|([0-9]{2})([0-9]{2}))", re.IGNORECASE
)


def _zone_minutes(zone: str) -> int | None:
    if zone.upper() in _ZONES:
        return _ZONES[zone.upper()]
    match = _GMT_OFFSET.fullmatch(zone)
    if not match:
        return None
    sign = match.group(1)
    hours, minutes = (
        (int(match.group(2)), int(match.group(3) or 0))
        if match.group(2)
        else (int(match.group(4)), int(match.group(5)))
    )
    if minutes > 59:
        return None
    return (hours * 60 + minutes) * (-1 if sign == "-" else 1)


def parse_timestamp(value: str | None) -> datetime | None:
    """Catalog date/time -> aware UTC datetime, or None when absent or malformed.

    Forms: milliseconds since the epoch; ``mm/dd/yyyy hh:mm:ss ZZZ`` (zone abbreviation);
    ``mm/dd/yyyy hh:mm:ss GMT±h[:mm]``.
    """
    text = _clean(value)
    try:
        if _EPOCH_MS.fullmatch(text):
            return _EPOCH + timedelta(milliseconds=int(text))
        match = _DATE_TIME.fullmatch(text)
        if not match:
            return None
        offset = _zone_minutes(match.group(7))
        if offset is None:
            return None
        month, day, year, hour, minute, second = (int(g) for g in match.groups()[:6])
        local = datetime(year, month, day, hour, minute, second, tzinfo=timezone(timedelta(minutes=offset)))
        return local.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None
