"""Object id translation (``attribute::LocaleMap``) and text string localization
(``attribute::LocaleStrMap``, ``^loc=…^`` tokens) — protocol.md §5.6, catalogs.md §6.7, §14.

Both maps are ``|``-separated items ``locale,value[,value…]``; an item with an empty locale is the
default rule for empty or unknown locales. White space around items and values is trimmed.
"""

from __future__ import annotations

import re

from ..catalog.model import Catalog, CatalogSet

# Object id translation lives with object resolution; the handlers reach it through this module.
from ..catalog.resolve import (
    id_suffixes,  # noqa: F401
    locale_map_values,
    parse_locale_map,
)


def all_suffixes(cats: CatalogSet, main: Catalog) -> list[str]:
    """Every non-empty LocaleMap suffix in map order, without duplicates (for ``req=xlate``)."""
    seen: list[str] = []
    for _, suffixes in parse_locale_map(cats.raw_attr(main, "LocaleMap") or ""):
        seen.extend(s for s in suffixes if s and s not in seen)
    return seen


def string_ids(cats: CatalogSet, main: Catalog, locale: str) -> list[str] | None:
    """The LocaleStrMap locIds for ``locale`` (None: no string localization).

    PROPOSED: a locale without an item and without a default rule selects the default string.
    """
    str_map = (cats.raw_attr(main, "LocaleStrMap") or "").strip()
    if not str_map:
        return None
    ids = locale_map_values(str_map, locale)
    return ids if ids is not None else [""]


_TOKEN = re.compile(r"\^loc=([^^]*)\^")


def localize(text: str, loc_ids: list[str] | None) -> str:
    """One localizable element ``[default]{^loc=id^string}``: the string of the first listed id
    that has one (the empty id is the default string); none → empty. Untagged text is kept."""
    if loc_ids is None or "^loc=" not in text:
        return text
    pieces = _TOKEN.split(text)
    strings = {"": pieces[0]}
    for i in range(1, len(pieces), 2):
        strings.setdefault(pieces[i], pieces[i + 1])
    for loc_id in loc_ids:
        if loc_id in strings:
            return strings[loc_id]
    return ""


_PROPERTY_SEPARATORS = re.compile(r"(\?\?|\r\n|\r|\n)")
_LINE_SEPARATORS = re.compile(r"(\r\n|\r|\n)")


def localize_properties(
    text: str, loc_ids: list[str] | None, quoted: bool, names: tuple[str, ...] | None = None
) -> str:
    """Property data with each value localized (only names ending in one of ``names`` when
    given: Targets localize ``.label`` and ``.userdata``); separators are kept as written."""
    if loc_ids is None or "^loc=" not in text:
        return text
    parts = (_LINE_SEPARATORS if quoted else _PROPERTY_SEPARATORS).split(text)
    for i in range(0, len(parts), 2):
        name, eq, value = parts[i].partition("=")
        if not eq:
            if names is None:
                parts[i] = localize(parts[i], loc_ids)
        elif names is None or name.strip().lower().endswith(names):
            parts[i] = name + eq + localize(value, loc_ids)
    return "".join(parts)


_SET_DELIMITERS = re.compile(r"([,;:{}()])")
_COLOR_PREFIX = re.compile(r"\s*0x[0-9A-Fa-f]{6}\s*")


def localize_set(text: str, loc_ids: list[str] | None) -> str:
    """``catalog::ImageSet``: every delimited element; a leading ``0xrrggbb`` stays as is."""
    if loc_ids is None or "^loc=" not in text:
        return text
    parts = _SET_DELIMITERS.split(text)
    for i in range(0, len(parts), 2):
        color = _COLOR_PREFIX.match(parts[i])
        keep = color.group() if color else ""
        parts[i] = keep + localize(parts[i][len(keep) :], loc_ids)
    return "".join(parts)


_MAP_ATTRIBUTE = re.compile(r"""([A-Za-z][\w-]*)(\s*=\s*)("[^"]*"|'[^']*')""")


def localize_map(text: str, loc_ids: list[str] | None) -> str:
    """``catalog::Map``: quoted attribute values other than ``coords`` and ``shape``."""
    if loc_ids is None or "^loc=" not in text:
        return text

    def one(m: re.Match) -> str:
        if m.group(1).lower() in ("coords", "shape"):
            return m.group()
        quote = m.group(3)[0]
        return f"{m.group(1)}{m.group(2)}{quote}{localize(m.group(3)[1:-1], loc_ids)}{quote}"

    return _MAP_ATTRIBUTE.sub(one, text)
