"""The modifier grammar: raw query string → tokens → macro expansion (protocol.md §3.1-§3.6).

Everything here works on the raw, still percent-encoded text, because Scene7 decodes a value only
after variables were substituted into it, and splits nested requests (``src=is{...}``) by brackets.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Callable
from urllib.parse import unquote, unquote_plus

from ..errors import ISError

NAME_RE = re.compile(r"[A-Za-z0-9_]+\Z")
VAR_NAME_RE = re.compile(r"[A-Za-z0-9_.\-]+\Z")
# Values that open a bracketed nested/embedded request; inside them '&' does not split tokens.
_BRACKET_OPENERS = ("{", "(", "is{", "is(", "ir{", "ir(", "fxg{", "fxg(")
_CLOSE = {"{": "}", "(": ")"}
MACRO_DEPTH_LIMIT = 16


@dataclass(frozen=True)
class Token:
    """One modifier: a command (``name=value``), a macro call (``$name$``) or a variable definition."""

    kind: str  # "command" | "macro" | "vardef"
    name: str  # lower-cased: names are case-insensitive
    value: str  # raw, still percent-encoded

    def text(self) -> str:
        if self.kind == "macro":
            return f"${self.name}$"
        prefix = "$" if self.kind == "vardef" else ""
        return f"{prefix}{self.name}={self.value}"


def split_modifiers(raw: str) -> list[str]:
    """Split at unencoded ``&``, keeping bracketed values (``src=is{a?b&c}``) whole."""
    pieces: list[str] = []
    i, n, start = 0, len(raw), 0
    while i < n:
        ch = raw[i]
        if ch == "&":
            pieces.append(raw[start:i])
            start = i + 1
            i += 1
            continue
        if ch == "=" and raw.rfind("=", start, i) == -1 and not raw.startswith(".", start):
            # First '=' of a token: a bracketed value runs to its matching close bracket.
            rest = raw[i + 1 : i + 5].lower()
            opener = next((o for o in _BRACKET_OPENERS if rest.startswith(o)), None)
            if opener is not None:
                i = skip_brackets(raw, i + len(opener))
                continue
        i += 1
    pieces.append(raw[start:])
    return [p for p in pieces if p]


def skip_brackets(raw: str, open_index: int) -> int:
    """Index just after the bracket matching the one at ``open_index`` (nesting counted)."""
    stack = [_CLOSE[raw[open_index]]]
    i = open_index + 1
    while i < len(raw):
        ch = raw[i]
        if ch in _CLOSE:
            stack.append(_CLOSE[ch])
        elif ch in ")}":
            if ch != stack[-1]:
                raise ISError("bad_request", f"mismatched bracket at offset {i}")
            stack.pop()
            if not stack:
                return i + 1
        i += 1
    raise ISError("bad_request", "unbalanced bracket in request")


def tokenize(raw: str) -> list[Token]:
    """Classify the pieces of a modifier string; comments and empty tokens are dropped."""
    tokens: list[Token] = []
    for piece in split_modifiers(raw):
        if piece.startswith("."):
            continue
        if piece.startswith("$"):
            tokens.append(_dollar_token(piece))
            continue
        name, _, value = piece.partition("=")
        if not NAME_RE.match(name):
            # Unknown or malformed names are ignored like unknown commands (cache-busters, '%20' junk).
            continue
        tokens.append(Token("command", name.lower(), value))
    return tokens


def _dollar_token(piece: str) -> Token:
    if piece.endswith("$=") and len(piece) > 3 and VAR_NAME_RE.match(piece[1:-2]):
        # ``$preset$=``: a macro call that a query-string builder wrote as a key with an empty
        # value (``{"$fxSharpen$": ""}``). Storefronts serve such URLs (media.screwfix.com
        # ``?$fxSharpen$=&wid=257``), so the server must read them; a variable name cannot end
        # in ``$``, so the one reading is the call.
        return Token("macro", piece[1:-2].lower(), "")
    if "=" in piece:
        name, _, value = piece[1:].partition("=")
        if VAR_NAME_RE.match(name):
            return Token("vardef", name.lower(), value)
    elif piece.endswith("$") and len(piece) > 2 and VAR_NAME_RE.match(piece[1:-1]):
        return Token("macro", piece[1:-1].lower(), "")
    raise ISError("bad_request", f"malformed token {piece[:64]!r}")


MacroLookup = Callable[[str], "str | None"]


# Tokens that macro bodies may contribute to one request, all expansions together (the URL's, every
# record Modifier's, nested requests'). Real presets add tens; a macro file whose macros each call
# the next one several times grows exponentially (16 levels of 10 calls: 10^16 tokens) and must be
# stopped while expanding, not after (issue 8.6).
MAX_EXPANDED_TOKENS = 10_000
_BUDGET: ContextVar[list[int] | None] = ContextVar("imageserving_macro_budget", default=None)


@contextmanager
def expansion_budget(limit: int = MAX_EXPANDED_TOKENS) -> Iterator[None]:
    """Share one :data:`MAX_EXPANDED_TOKENS` budget among every expansion inside the block (one request)."""
    reset = _BUDGET.set([limit])
    try:
        yield
    finally:
        _BUDGET.reset(reset)


def expand_macros(tokens: list[Token], lookup: MacroLookup) -> list[Token]:
    """Replace each ``$name$`` token in place by the tokens of its body (recursively); the tokens
    bodies contribute are counted against the request's :func:`expansion_budget` (or, outside
    one, against a budget of this call alone)."""
    if not any(t.kind == "macro" for t in tokens):
        return tokens
    budget = _BUDGET.get()
    return _expand(tokens, lookup, 0, budget if budget is not None else [MAX_EXPANDED_TOKENS], {})


def _expand(
    tokens: list[Token], lookup: MacroLookup, depth: int, budget: list[int], bodies: dict[str, list[Token]]
) -> list[Token]:
    out: list[Token] = []
    for tok in tokens:
        if depth:  # every token a body contributes counts, macro references too (an empty body is no way out)
            budget[0] -= 1
            if budget[0] < 0:
                raise ISError("bad_request", f"macros expand to more than {MAX_EXPANDED_TOKENS} tokens")
        if tok.kind != "macro":
            out.append(tok)
            continue
        if depth >= MACRO_DEPTH_LIMIT:
            raise ISError("bad_request", "macros nest too deeply")
        body = bodies.get(tok.name)
        if body is None:  # a macro called many times is tokenized once (tokens are immutable)
            text = lookup(tok.name)
            if text is None:
                raise ISError("bad_request", f"unknown macro ${tok.name}$")
            body = bodies[tok.name] = tokenize(text)
        out.extend(_expand(body, lookup, depth + 1, budget, bodies))
    return out


def substitute(value: str, variables: dict[str, str]) -> str:
    """Replace ``$name$`` references to defined variables, left to right, without rescanning."""
    if "$" not in value or not variables:
        return value
    out: list[str] = []
    i, n = 0, len(value)
    while i < n:
        if value[i] == "$":
            end = value.find("$", i + 1)
            if end != -1:
                name = value[i + 1 : end].lower()
                if name in variables:
                    out.append(variables[name])
                    i = end + 1
                    continue
        out.append(value[i])
        i += 1
    return "".join(out)


def is_nested(value: str) -> bool:
    low = value[:4].lower()
    return any(low.startswith(o) for o in _BRACKET_OPENERS)


def decode_value(value: str) -> str:
    """Percent-decode a command value once, ``+`` meaning space (protocol.md §3.4 step 3)."""
    if "%" not in value and "+" not in value:
        return value
    try:
        return unquote_plus(value, errors="strict")
    except UnicodeDecodeError:
        return unquote_plus(value, encoding="latin-1")


def encode_value(text: str) -> str:
    """Encode generated text (``$object$``, ``$error.message$``) so that decode_value returns it exactly."""
    out = []
    for ch in text:
        if ch in "%&=+#$" or ord(ch) < 0x20 or ord(ch) >= 0x7F or ch == " ":
            out.append("".join(f"%{b:02X}" for b in ch.encode("utf-8")))
        else:
            out.append(ch)
    return "".join(out)


def decode_path_element(element: str) -> str:
    """Percent-decode one object path element: UTF-8 if valid, else ISO-8859-1; ``+`` stays literal."""
    if "%" not in element:
        return element
    try:
        return unquote(element, errors="strict")
    except UnicodeDecodeError:
        return unquote(element, encoding="latin-1")
