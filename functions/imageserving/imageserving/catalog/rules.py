"""Request preprocessing rule sets: the XML file named by ``attribute::RuleSetFile`` (catalogs.md §12).

The file is validated strictly (Adobe checks it against an unpublished ``RuleSet.xsd``): a file that
does not conform is not loaded and its catalog fails closed, because a rule set may carry IP
filters. Expressions are written in Java's regex dialect; they are translated to Python ``re`` where
the two differ in syntax (named groups, ``\\Q…\\E``, ``\\z``/``\\Z``) and compiled with ``re.ASCII``,
because Java's ``\\w``, ``\\d``, ``\\b`` and ``(?i)`` are ASCII-only by default. Constructs ``re``
cannot express (``\\p{…}``, class intersections ``[a-z&&[^b]]``, inline flags after the start)
fail to compile, which makes the file invalid rather than silently different.
"""

from __future__ import annotations

import ipaddress
import re
import warnings
from dataclasses import dataclass, field
from typing import Callable
from xml.parsers import expat

from . import formats as F

CONTEXTS = frozenset(("is", "ir", "static"))  # /is/image, /ir/render, /is/content
ON_MATCH = ("break", "continue", "error")

# Rule attribute -> the catalog attribute it overrides (lower-cased) and the check of its value.
OVERRIDES: dict[str, tuple[str, Callable[[str], object] | None]] = {
    "DefaultImageMode": ("defaultimagemode", lambda v: F.parse_enum_attr(v, (0, 1))),
    "ErrorImage": ("errorimage", None),
    "Expiration": ("expiration", F.parse_real_attr),
    "MaxPix": ("maxpix", F.parse_size_attr),
    "RequestLock": ("requestlock", F.parse_flag_attr),
    "RequestObfuscation": ("requestobfuscation", lambda v: F.parse_enum_attr(v, (0, 1))),
    "RootUrl": ("rooturl", None),
    "SavePath": ("savepath", None),
    "WaterMark": ("watermark", None),
}
_RULE_ATTRIBUTES = frozenset(("OnMatch", "Replace", "RequestType", "Name", *OVERRIDES))
_RULE_CHILDREN = ("expression", "substitution", "addressfilter", "header")
# An HTTP header name (RFC 9110 token); '$' also allows the $var$ references it may contain.
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class RuleSetError(ValueError):
    """A rule set file that does not conform; the message names the problem and its line."""


@dataclass(frozen=True)
class Header:
    """``<header Name="…" Action="set|add">value</header>``; name and value may hold ``$var$``."""

    name: str
    value: str
    action: str = "set"


@dataclass(frozen=True)
class Replacement:
    """A Java replacement string, parsed: literal text and capture-group numbers, in order."""

    parts: tuple[str | int, ...]

    def expand(self, match: re.Match | None) -> str:
        if match is None:  # no expression: the text is appended, there are no groups
            return "".join(p for p in self.parts if isinstance(p, str))
        return "".join(p if isinstance(p, str) else (match.group(p) or "") for p in self.parts)


@dataclass(frozen=True)
class Rule:
    name: str
    on_match: str = "break"
    replace_all: bool = False
    request_types: frozenset[str] = frozenset()  # empty: every context (AMBIG-23)
    expression: re.Pattern | None = None  # None: matches every request
    substitution: Replacement | None = None  # None: the request string stays as it is
    address_filter: tuple[Network, ...] = ()  # empty: no restriction
    overrides: dict[str, str] = field(default_factory=dict)  # lower-cased attribute -> value
    headers: tuple[Header, ...] = ()

    def applies_to(self, context: str) -> bool:
        return not self.request_types or context in self.request_types

    def apply(self, text: str) -> str | None:
        """None when the rule does not match ``text``; else ``text`` after the substitution (Java
        ``replaceFirst``/``replaceAll`` of the whole match; without expression it is appended)."""
        if self.expression is None:
            return text + self.substitution.expand(None) if self.substitution is not None else text
        match = self.expression.search(text)
        if match is None or self.substitution is None:
            return None if match is None else text
        if self.replace_all:
            return self.expression.sub(self.substitution.expand, text)
        return text[: match.start()] + self.substitution.expand(match) + text[match.end() :]


# --- addresses (ClientAddressFilter and <addressfilter>) ---------------------------------------------


def parse_address_filter(text: str) -> tuple[Network, ...]:
    """Comma list of addresses with optional ``/bits`` or ``/netmask``; empty means no restriction."""
    networks = []
    for item in (part.strip() for part in text.split(",")):
        if item:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise RuleSetError(f"address filter entry {item!r} is not an address or network") from None
    return tuple(networks)


def address_allowed(networks: tuple[Network, ...], client_ip: str) -> bool:
    """Whether the client may pass; ``0.0.0.0/0`` admits anyone, even a client of unknown address."""
    if not networks or any(n.prefixlen == 0 for n in networks):
        return True
    try:
        ip = ipaddress.ip_address(client_ip.strip())
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in n for n in networks)


# --- Java regex and replacement syntax -----------------------------------------------------------------


def compile_java_regex(text: str) -> re.Pattern:
    """Compile a ``java.util.regex`` expression with Python ``re`` (see the module notes)."""
    out: list[str] = []
    i, n, in_class = 0, len(text), False
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n:
            nxt = text[i + 1]
            if nxt == "Q":  # \Q…\E quotes literally
                end = text.find("\\E", i + 2)
                end = n if end == -1 else end
                out.append(re.escape(text[i + 2 : end]))
                i = end + 2
                continue
            if not in_class and nxt == "z":
                out.append(r"\Z")
            elif not in_class and nxt == "Z":  # Java: end, or before a final line break
                out.append(r"(?=\n?\Z)")
            elif nxt == "k" and text.startswith("<", i + 2) and ">" in text[i + 3 :]:
                end = text.index(">", i + 3)
                out.append(f"(?P={text[i + 3 : end]})")
                i = end + 1
                continue
            else:
                out.append(text[i : i + 2])
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
        elif ch == "[":
            in_class = True
            # A ']' first in the class (after an optional '^') is literal.
            j = i + 1 + (text.startswith("^", i + 1))
            if text.startswith("]", j):
                out.append(text[i : j + 1])
                i = j + 1
                continue
        elif text.startswith("(?<", i) and not text.startswith(("(?<=", "(?<!"), i):
            out.append("(?P<")
            i += 3
            continue
        out.append(ch)
        i += 1
    with warnings.catch_warnings():
        # Python warns about '[[' and '&&' in classes, which Java reads as nesting/intersection.
        warnings.simplefilter("error", FutureWarning)
        try:
            return re.compile("".join(out), re.ASCII)
        except (re.error, FutureWarning) as exc:
            raise RuleSetError(f"expression {text!r} cannot be compiled: {exc}") from None


def parse_java_replacement(text: str, pattern: re.Pattern | None) -> Replacement:
    """Java replacement syntax: ``$n`` / ``${name}`` insert a group, ``\\x`` is a literal ``x``.

    As in Java, the first digit after ``$`` always belongs to the reference and further digits
    only while they still name an existing group (``$12`` with one group is group 1, then ``2``).
    """
    groups = pattern.groups if pattern is not None else 0
    names = pattern.groupindex if pattern is not None else {}
    parts: list[str | int] = []
    literal: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            if i + 1 == n:
                raise RuleSetError("substitution ends with a lone backslash")
            literal.append(text[i + 1])
            i += 2
            continue
        if ch != "$":
            literal.append(ch)
            i += 1
            continue
        i += 1
        if text.startswith("{", i):
            end = text.find("}", i)
            name = text[i + 1 : end] if end != -1 else ""
            if name not in names:
                raise RuleSetError(f"substitution refers to unknown group ${{{name}}}")
            group = names[name]
            i = end + 1
        elif i < n and text[i] in "0123456789":
            group = int(text[i])
            i += 1
            while i < n and text[i] in "0123456789" and group * 10 + int(text[i]) <= groups:
                group = group * 10 + int(text[i])
                i += 1
            if group > groups:
                raise RuleSetError(f"substitution refers to group ${group}, the expression has {groups}")
        else:
            raise RuleSetError("'$' in a substitution must name a group (write \\$ for a literal '$')")
        if literal:
            parts.append("".join(literal))
            literal = []
        parts.append(group)
    if literal:
        parts.append("".join(literal))
    return Replacement(tuple(parts))


# --- the XML file --------------------------------------------------------------------------------------


@dataclass
class _Element:
    tag: str
    attrs: dict[str, str]
    line: int
    children: list["_Element"] = field(default_factory=list)
    text: list[str] = field(default_factory=list)

    def content(self) -> str:
        if self.children:
            raise RuleSetError(f"line {self.line}: <{self.tag}> holds text only, not <{self.children[0].tag}>")
        return "".join(self.text)

    def only_space(self) -> None:
        if "".join(self.text).strip():
            raise RuleSetError(f"line {self.line}: text directly inside <{self.tag}>")


def _parse_xml(data: bytes) -> _Element:
    parser = expat.ParserCreate()
    parser.buffer_text = True
    stack: list[_Element] = []
    roots: list[_Element] = []
    declared = []

    def start(tag, attrs):
        element = _Element(tag, attrs, parser.CurrentLineNumber)
        (stack[-1].children if stack else roots).append(element)
        stack.append(element)

    def end(tag):
        stack.pop()

    def text(chars):
        if stack:
            stack[-1].text.append(chars)

    def doctype(*args):
        raise RuleSetError("a rule set may not carry a DOCTYPE")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    parser.XmlDeclHandler = lambda *args: declared.append(True)
    parser.StartDoctypeDeclHandler = doctype
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise RuleSetError(f"not well-formed XML: {exc}") from None
    if not declared:
        raise RuleSetError("the <?xml …?> declaration is missing")
    if roots[0].tag != "ruleset":
        raise RuleSetError(f"the root element is <{roots[0].tag}>, not <ruleset>")
    return roots[0]


def parse_rule_set(data: bytes) -> tuple[Rule, ...]:
    """The rules of a rule set file, in order; raises :class:`RuleSetError` when it does not conform."""
    root = _parse_xml(data)
    for name in root.attrs:
        # Schema references are allowed; the root has no attributes of its own.
        if not (name.startswith(("xmlns", "xsi:"))):
            raise RuleSetError(f"<ruleset> has no attribute {name!r}")
    root.only_space()
    rules = []
    for element in root.children:
        if element.tag not in ("rule", "pathrule"):  # <pathrule>: a synonym (AMBIG-22)
            raise RuleSetError(f"line {element.line}: <ruleset> holds <rule> elements, not <{element.tag}>")
        rules.append(_rule(element, len(rules) + 1))
    return tuple(rules)


def _rule(element: _Element, number: int) -> Rule:
    attrs = element.attrs
    where = f"line {element.line}"
    for name in attrs:
        if name not in _RULE_ATTRIBUTES:
            raise RuleSetError(f"{where}: <{element.tag}> has no attribute {name!r}")
    on_match = attrs.get("OnMatch", "break")
    if on_match not in ON_MATCH:
        raise RuleSetError(f"{where}: OnMatch={on_match!r} (break, continue or error)")
    replace = attrs.get("Replace", "first")
    if replace not in ("first", "all"):
        raise RuleSetError(f"{where}: Replace={replace!r} (first or all)")
    request_types = frozenset()
    if "RequestType" in attrs:
        request_types = frozenset(t.strip() for t in attrs["RequestType"].split(","))
        if not request_types or not request_types <= CONTEXTS:
            raise RuleSetError(f"{where}: RequestType={attrs['RequestType']!r} (a list of is, ir, static)")
    overrides = {}
    for name, (attribute, check) in OVERRIDES.items():
        if name in attrs:
            if check is not None and check(attrs[name]) is None:
                raise RuleSetError(f"{where}: {name}={attrs[name]!r} is not a valid value")
            overrides[attribute] = attrs[name]

    element.only_space()
    children: dict[str, _Element] = {}
    headers = []
    for child in element.children:
        if child.tag not in _RULE_CHILDREN:
            raise RuleSetError(f"line {child.line}: <{element.tag}> has no child <{child.tag}>")
        if child.tag == "header":
            headers.append(_header(child))
        elif child.tag in children:
            raise RuleSetError(f"line {child.line}: more than one <{child.tag}> in a rule")
        else:
            if child.attrs:
                raise RuleSetError(f"line {child.line}: <{child.tag}> takes no attributes")
            children[child.tag] = child

    expression = children["expression"].content() if "expression" in children else ""
    pattern = compile_java_regex(expression) if expression else None
    substitution = None
    if "substitution" in children:
        substitution = parse_java_replacement(children["substitution"].content(), pattern)
    networks: tuple[Network, ...] = ()
    if "addressfilter" in children:
        try:
            networks = parse_address_filter(children["addressfilter"].content())
        except RuleSetError as exc:
            raise RuleSetError(f"line {children['addressfilter'].line}: {exc}") from None
    return Rule(
        name=attrs.get("Name") or f"#{number}",
        on_match=on_match,
        replace_all=replace == "all",
        request_types=request_types,
        expression=pattern,
        substitution=substitution,
        address_filter=networks,
        overrides=overrides,
        headers=tuple(headers),
    )


def _header(element: _Element) -> Header:
    where = f"line {element.line}"
    for name in element.attrs:
        if name not in ("Name", "Action"):
            raise RuleSetError(f"{where}: <header> has no attribute {name!r}")
    name = element.attrs.get("Name", "")
    if not HEADER_NAME.match(name):
        raise RuleSetError(f"{where}: <header Name={name!r}> is not a header name")
    action = element.attrs.get("Action", "set")
    if action not in ("set", "add"):
        raise RuleSetError(f"{where}: <header Action={action!r}> (set or add)")
    return Header(name, element.content().strip(), action)
