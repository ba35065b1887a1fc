"""Request preprocessing before the modifiers are parsed (protocol.md §2 steps 4-7, §6).

In this order: the main catalog's rule set rewrites the raw request string and records attribute
overrides and response headers; the client address filter; de-obfuscation; lock verification.
Every refusal is ``ISError("refused")``.
"""

from __future__ import annotations

import base64
import logging
import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from ..catalog.model import Catalog, CatalogSet
from ..catalog.resolve import main_catalog
from ..catalog.rules import HEADER_NAME, Header, RuleSetError, address_allowed, parse_address_filter
from ..errors import ISError
from .query import Token, decode_path_element, decode_value, substitute

log = logging.getLogger("imageserving")

_LOCK = re.compile(r"&([0-9A-Fa-f]{4})\Z")
# What an HTTP header value may carry after $var$ substitution: no controls, Latin-1 only.
# Printable ASCII only: Mangum decodes header values as UTF-8, Starlette encodes them as Latin-1.
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*\Z")


@dataclass(frozen=True)
class Preprocessed:
    object: str  # raw object after the rules
    query: str  # raw modifiers after the rules, de-obfuscated, lock removed
    main: Catalog  # identified again when a rule rewrote the object
    overrides: dict[str, str] = field(default_factory=dict)  # lower-cased attribute -> value
    headers: tuple[Header, ...] = ()


def object_elements(raw_object: str) -> list[str]:
    """The decoded path elements of the object; one trailing ``/`` is ignored."""
    elements = [decode_path_element(e) for e in raw_object.split("/")]
    if elements and elements[-1] == "" and len(elements) > 1:
        elements.pop()
    return elements


def preprocess(
    cats: CatalogSet, main: Catalog, raw_object: str, raw_query: str, client_ip: str, *, context: str = "is"
) -> Preprocessed:
    """Steps 4-7 for a request whose main catalog (by RootId) is ``main``; ``context`` is the rule
    set RequestType of the URL (``is`` for /is/image)."""
    text = raw_object + ("?" + raw_query if raw_query else "")
    overrides: dict[str, str] = {}
    headers: list[Header] = []
    filtered = False
    # main is the default catalog when no specific catalog was named: its rules apply then (AMBIG-24).
    for rule in main.rules:
        if not rule.applies_to(context):
            continue
        rewritten = rule.apply(text)
        if rewritten is None:
            continue
        if rule.address_filter:
            filtered = True
            if not address_allowed(rule.address_filter, client_ip):
                raise ISError(
                    "refused", f"client {client_ip or '(unknown)'} is not in the address filter of rule {rule.name}"
                )
        if rule.on_match == "error":
            raise ISError("refused", f"rule {rule.name} refuses the request")
        text = rewritten
        overrides.update(rule.overrides)
        headers.extend(rule.headers)
        if rule.on_match == "break":
            break
    obj, _, query = text.partition("?")
    if obj != raw_object:
        main = main_catalog(cats, object_elements(obj))  # once; the rules are not applied again
    view = cats.with_overrides(overrides)
    if not filtered:
        _check_client(view, main, client_ip)
    if view.attr(main, "RequestObfuscation") == 1:
        query = deobfuscate(query)
    if view.attr(main, "RequestLock"):
        query = unlock(query)
    return Preprocessed(obj, query, main, overrides, tuple(headers))


def _check_client(cats: CatalogSet, main: Catalog, client_ip: str) -> None:
    """``attribute::ClientAddressFilter`` (§6.2), unless a matched rule had its own filter."""
    try:
        networks = parse_address_filter(cats.raw_attr(main, "ClientAddressFilter") or "")
    except RuleSetError as exc:
        raise ISError("server_error", f"ClientAddressFilter of catalog {main.label()}: {exc}") from None
    if not address_allowed(networks, client_ip):
        raise ISError(
            "refused", f"client {client_ip or '(unknown)'} is not in the ClientAddressFilter of catalog {main.label()}"
        )


def deobfuscate(query: str) -> str:
    """``RequestObfuscation=1``: the modifiers are base64 (§6.3). Tolerated first: one round of
    percent-encoding, spaces for ``+``, missing padding, the URL-safe alphabet; then decoded
    strictly, as UTF-8 — a plain query must be refused, not turned into garbage."""
    if not query:
        return query
    text = unquote(query) if "%" in query else query
    text = text.replace(" ", "+").replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True).decode("utf-8")
    except ValueError:  # binascii.Error, non-ASCII input and UnicodeDecodeError alike
        raise ISError("refused", "RequestObfuscation=1: the modifiers are not base64 of UTF-8 text") from None


def lock_value(modifiers: str) -> int:
    """The request lock hash over the modifiers as sent, unsigned UTF-8 bytes (§6.4)."""
    value = 0
    for byte in modifiers.encode("utf-8"):
        value = (value * 131 + byte) & 0xFFFF
    return value


def unlock(query: str) -> str:
    """``RequestLock=1``: the modifiers must end with ``&xxxx``, the lock of what precedes it;
    returns them without the suffix."""
    match = _LOCK.search(query)
    if match is None:
        raise ISError("refused", "RequestLock=1: the modifiers do not end with a &xxxx lock")
    body = query[: match.start()]
    if lock_value(body) != int(match.group(1), 16):
        raise ISError("refused", "RequestLock=1: the lock does not match the modifiers")
    return body


def add_rule_headers(reply_headers: dict[str, str], headers: tuple[Header, ...], url: list[Token]) -> None:
    """Rule set ``<header>`` elements, last, on any reply: ``$var$`` references take the request's
    variable values (decoded); ``set`` replaces a header, ``add`` appends with a comma. A header
    that would not be a valid HTTP header after substitution is dropped."""
    if not headers:
        return
    variables = {t.name: decode_value(t.value) for t in url if t.kind == "vardef"}
    for header in headers:
        name = substitute(header.name, variables)
        value = substitute(header.value, variables)
        if not HEADER_NAME.match(name) or not _HEADER_VALUE.match(value):
            log.warning("rule set header %r dropped: not a valid HTTP header after substitution", header.name)
            continue
        existing = next((k for k in reply_headers if k.lower() == name.lower()), None)
        if existing is not None and header.action == "add":
            reply_headers[existing] = f"{reply_headers[existing]}, {value}"
            continue
        if existing is not None:
            del reply_headers[existing]
        reply_headers[name] = value


def client_address(scope: dict) -> str:
    """The client IP: API Gateway's ``requestContext.http.sourceIp`` (Mangum keeps the event in
    the scope), else the ASGI client; a client-supplied ``X-Forwarded-For`` is not trusted."""
    event = scope.get("aws.event")
    if isinstance(event, dict):
        source = (event.get("requestContext") or {}).get("http", {}).get("sourceIp")
        if source:
            return source
    client = scope.get("client")
    return client[0] if client else ""
