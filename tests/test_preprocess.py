"""Request preprocessing: rule sets, address filters, obfuscation, request locks (protocol.md §2 steps
4-7, §6; catalogs.md §12-§13) and object id translation for image requests (§5.6, catalogs.md §6.7)."""

from __future__ import annotations

import io
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import ROOT, local_client
from PIL import Image

from imageserving.catalog.model import Catalog, CatalogSet
from imageserving.catalog.rules import (
    Header,
    RuleSetError,
    address_allowed,
    compile_java_regex,
    parse_address_filter,
    parse_java_replacement,
    parse_rule_set,
)
from imageserving.errors import ISError
from imageserving.protocol.preprocess import (
    add_rule_headers,
    client_address,
    deobfuscate,
    lock_value,
    preprocess,
    unlock,
)
from imageserving.protocol.query import tokenize

DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'


def ruleset(body: str) -> bytes:
    return f"{DECL}<ruleset>{body}</ruleset>".encode()


def rules(body: str):
    return parse_rule_set(ruleset(body))


def catalog(root_id: str = "", attrs: dict[str, str] | None = None, body: str | None = None) -> Catalog:
    cat = Catalog(
        root_id,
        f"catalogs/{root_id or 'default'}.ini",
        "etag",
        datetime(2026, 1, 1, tzinfo=timezone.utc),
        {k.lower(): v for k, v in (attrs or {}).items()},
    )
    if body is not None:
        cat.rules = rules(body)
    return cat


def run(
    body: str,
    obj: str,
    query: str = "",
    client_ip: str = "192.0.2.1",
    *,
    context: str = "is",
    default_attrs: dict[str, str] | None = None,
):
    """Preprocess with ``body`` as the default catalog's rules (no specific catalog is named)."""
    default = catalog("", default_attrs, body)
    cats = CatalogSet(default, {"other": catalog("other")})
    return preprocess(cats, default, obj, query, client_ip, context=context)


def size(response) -> tuple[int, int]:
    return Image.open(io.BytesIO(response.content)).size


# ------------------------------------------------------------------------------ parsing the file


def test_a_rule_parses_into_plain_values():
    (rule,) = rules("""
      <rule Name="full" OnMatch="continue" Replace="all" RequestType="is, static" MaxPix="100,100"
            ErrorImage="" Expiration="2.5" RequestLock="1" RequestObfuscation="0" DefaultImageMode="1"
            RootUrl="http://x/" SavePath="s" WaterMark="wm">
        <expression>a(b)</expression>
        <substitution>[$1]</substitution>
        <addressfilter>10.0.0.0/8, 192.168.2.117</addressfilter>
        <header Name="X-One">1</header>
        <header Name="X-Two" Action="add"> two </header>
      </rule>""")
    assert (rule.name, rule.on_match, rule.replace_all, rule.request_types) == (
        "full",
        "continue",
        True,
        frozenset({"is", "static"}),
    )
    assert rule.overrides == {
        "maxpix": "100,100",
        "errorimage": "",
        "expiration": "2.5",
        "requestlock": "1",
        "requestobfuscation": "0",
        "defaultimagemode": "1",
        "rooturl": "http://x/",
        "savepath": "s",
        "watermark": "wm",
    }
    assert [str(n) for n in rule.address_filter] == ["10.0.0.0/8", "192.168.2.117/32"]
    assert rule.headers == (Header("X-One", "1", "set"), Header("X-Two", "two", "add"))
    assert rule.apply("abab") == "[b][b]"


def test_defaults_empty_files_and_synonyms():
    assert parse_rule_set(ruleset("")) == ()
    assert parse_rule_set(f"{DECL}<ruleset/>".encode()) == ()
    schema = (
        f'{DECL}<ruleset xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xsi:noNamespaceSchemaLocation="RuleSet.xsd"><!-- c --><pathrule/></ruleset>'
    )
    (rule,) = parse_rule_set(schema.encode())
    assert (
        rule.name,
        rule.on_match,
        rule.replace_all,
        rule.request_types,
        rule.expression,
        rule.substitution,
        rule.address_filter,
        rule.overrides,
        rule.headers,
    ) == ("#1", "break", False, frozenset(), None, None, (), {}, ())


def test_text_reaches_the_regex_as_written():
    (spaced, cdata) = rules(
        "<rule><expression> a&amp;b\n</expression></rule>"
        "<rule><expression><![CDATA[x<y&z]]></expression><substitution/></rule>"
    )
    assert spaced.expression.pattern == " a&b\n"  # white space is not stripped
    assert cdata.expression.pattern == "x<y&z" and cdata.apply("1x<y&z2") == "12"


@pytest.mark.parametrize(
    "data",
    [
        b"<ruleset/>",  # no XML declaration
        f"{DECL}<rules/>".encode(),  # wrong root
        f"{DECL}<ruleset><rule></ruleset>".encode(),  # not well-formed
        f'{DECL}<!DOCTYPE ruleset [<!ENTITY x "y">]><ruleset/>'.encode(),  # no DTDs, no entities
        f'{DECL}<ruleset version="1"/>'.encode(),
        ruleset("<rules/>"),
        ruleset("text"),
        ruleset('<rule Foo="1"/>'),
        ruleset('<rule OnMatch="stop"/>'),
        ruleset('<rule OnMatch="Break"/>'),  # content is case-sensitive
        ruleset('<rule onmatch="break"/>'),
        ruleset('<rule Replace="some"/>'),
        ruleset('<rule RequestType="is,http"/>'),
        ruleset('<rule RequestType=""/>'),
        ruleset('<rule MaxPix="big"/>'),
        ruleset('<rule DefaultImageMode="2"/>'),
        ruleset('<rule RequestLock="maybe"/>'),
        ruleset('<rule RequestObfuscation="yes"/>'),
        ruleset('<rule Expiration="soon"/>'),
        ruleset("<rule>words</rule>"),
        ruleset("<rule><regex>a</regex></rule>"),
        ruleset("<rule><expression>a</expression><expression>b</expression></rule>"),
        ruleset("<rule><substitution/><substitution/></rule>"),
        ruleset("<rule><expression>a<b/></expression></rule>"),
        ruleset('<rule><expression flags="i">a</expression></rule>'),
        ruleset("<rule><expression>(</expression></rule>"),
        ruleset(r"<rule><expression>\p{Alpha}</expression></rule>"),  # no Unicode classes in re
        ruleset("<rule><expression>[a-z&amp;&amp;[^b]]</expression></rule>"),  # Java class intersection
        ruleset("<rule><expression>a(?i)b</expression></rule>"),  # inline flag after the start
        ruleset("<rule><expression>a</expression><substitution>$1</substitution></rule>"),
        ruleset("<rule><substitution>$1</substitution></rule>"),
        ruleset("<rule><expression>(a)</expression><substitution>$x</substitution></rule>"),
        ruleset("<rule><expression>(a)</expression><substitution>${n}</substitution></rule>"),
        ruleset("<rule><expression>(a)</expression><substitution>a\\</substitution></rule>"),
        ruleset("<rule><header>v</header></rule>"),
        ruleset('<rule><header Name="X Y">v</header></rule>'),
        ruleset('<rule><header Name="X" Action="append">v</header></rule>'),
        ruleset('<rule><header Name="X" Value="v"/></rule>'),
        ruleset("<rule><addressfilter>10.0.0.300</addressfilter></rule>"),
        ruleset("<rule><addressfilter>example.com</addressfilter></rule>"),
    ],
)
def test_nonconforming_files_are_rejected(data):
    with pytest.raises(RuleSetError):
        parse_rule_set(data)


# ------------------------------------------------------------------------------ Java regex and replacement


@pytest.mark.parametrize(
    "java, text, matches",
    [
        ("(?i)_HG$", "cat/shirt_hg", True),
        (r"\Qa.b\E", "a.b", True),
        (r"\Qa.b\E", "axb", False),
        (r"\Qa.b", "xa.b", True),  # \Q runs to the end without \E
        (r"abc\z", "abc\n", False),
        (r"abc\Z", "abc\n", True),  # Java's \Z allows a final line break
        (r"^\w+$", "caf\u00e9", False),  # Java's \w is ASCII
        (r"(?<id>a)\k<id>", "aa", True),
        (r"(?<=a)b", "ab", True),  # look-behind is not a named group
        (r"[(?<]x", "<x", True),  # nor is '(?<' in a class
        (r"[]a]", "]", True),
        (r"a*+a", "aaa", False),  # possessive quantifier
    ],
)
def test_java_regex_dialect(java, text, matches):
    assert bool(compile_java_regex(java).search(text)) is matches


@pytest.mark.parametrize(
    "expression, substitution, text, expected",
    [
        ("(a)", "[$1]", "xay", "x[a]y"),
        ("(a)", "$12", "a", "a2"),  # $1, then a literal 2: there is no group 12
        ("(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)(l)", "$12", "abcdefghijkl", "l"),
        ("(a)?b", "[$1]", "b", "[]"),  # a group that did not take part is empty
        ("(?<n>a)", "${n}${n}", "a", "aa"),
        ("a", r"\$\\", "a", "$\\"),  # \x is a literal x
        ("wid=(\\d+)", "$0&hei=$1", "x?wid=5", "x?wid=5&hei=5"),
        ("_hg$", r"\?&qlt=95", "cat/shirt_hg", "cat/shirt?&qlt=95"),
    ],
)
def test_java_replacement(expression, substitution, text, expected):
    pattern = compile_java_regex(expression)
    repl = parse_java_replacement(substitution, pattern)
    assert pattern.sub(repl.expand, text, count=1) == expected


@pytest.mark.parametrize(
    "body, text, expected",
    [
        ("<expression>b(c)</expression><substitution>X$1</substitution>", "abcbc", "aXcbc"),  # first match
        ("<expression>b(c)</expression><substitution>X$1</substitution>", "xyz", None),  # no match
        ("<expression>&amp;qlt=[^&amp;]*</expression><substitution/>", "x?wid=1&qlt=9", "x?wid=1"),
        ("<expression>qlt</expression>", "x?qlt=9", "x?qlt=9"),  # no substitution: unchanged
        ("<substitution>&amp;qlt=95</substitution>", "x?wid=1", "x?wid=1&qlt=95"),  # no expression: appended
        ("<expression></expression><substitution>?wid=5</substitution>", "x", "x?wid=5"),
        ("<expression/>", "anything", "anything"),
    ],
)
def test_substitution_semantics(body, text, expected):
    (rule,) = rules(f"<rule>{body}</rule>")
    assert rule.apply(text) == expected


def test_replace_all():
    (rule,) = rules('<rule Replace="all"><expression>b(c)</expression><substitution>X$1</substitution></rule>')
    assert rule.apply("abcbc") == "aXcXc"


# ------------------------------------------------------------------------------ the reference examples (§12.6)

EXAMPLE_A = (
    r"<rule><expression>(?i)_hg$</expression><substitution>\?&amp;qlt=95,1&amp;resmode=bicub</substitution></rule>"
)
EXAMPLE_B = (
    "<rule><expression>([^/]+)/(small|medium|large)$</expression>"
    "<substitution>$2Template?src=sample/$1</substitution></rule>"
)
EXAMPLE_C = (
    r'<rule OnMatch="continue"><expression>\$Edge-Control=</expression>'
    '<header Name="Edge-Control">$Edge-Control$</header></rule>'
)


def test_reference_example_a_forces_quality():
    pre = run(EXAMPLE_A, "cat/shirt_hg")
    assert (pre.object, pre.query) == ("cat/shirt", "&qlt=95,1&resmode=bicub")
    assert run(EXAMPLE_A, "cat/shirt_HG").object == "cat/shirt"
    assert run(EXAMPLE_A, "cat/shirt_hg", "wid=5").query == "wid=5"  # '$' is the end of the string


def test_reference_example_b_maps_a_path_to_a_template():
    pre = run(EXAMPLE_B, "sample/myImage/small")
    assert (pre.object, pre.query) == ("sample/smallTemplate", "src=sample/myImage")


def test_reference_example_c_sets_a_header():
    pre = run(EXAMPLE_C, "cat/id", "$Edge-Control=no-store")
    assert (pre.object, pre.query) == ("cat/id", "$Edge-Control=no-store")
    reply_headers = {"Cache-Control": "public"}
    add_rule_headers(reply_headers, pre.headers, tokenize(pre.query))
    assert reply_headers == {"Cache-Control": "public", "Edge-Control": "no-store"}


def test_the_sample_catalog_rules(client):
    r = client.get("/is/image/sample/rose?wid=60&$Edge-Control=no-store")
    assert (r.status_code, r.headers["edge-control"]) == (200, "no-store")
    legacy = client.get("/is/image/sample/legacy/rose?wid=60")
    assert (legacy.status_code, legacy.headers["x-is-rule"], size(legacy)) == (200, "legacy-alias", (60, 45))
    assert legacy.content == client.get("/is/image/sample/rose?wid=60").content
    assert "x-is-rule" not in client.get("/is/image/sample/rose?wid=60").headers


def test_rule_headers_are_added_to_error_and_head_replies(client):
    r = client.get("/is/image/sample/legacy/rose?wid=abc")
    assert (r.status_code, r.headers["x-is-error"], r.headers["x-is-rule"]) == (403, "bad_request", "legacy-alias")
    head = client.head("/is/image/sample/legacy/rose?wid=60&$Edge-Control=max-age%3D60")
    assert (head.status_code, head.headers["x-is-rule"], head.headers["edge-control"]) == (
        200,
        "legacy-alias",
        "max-age=60",
    )


# ------------------------------------------------------------------------------ rule processing

CHAIN = """
  <rule OnMatch="continue"><expression>^x</expression><substitution>$0&amp;a=1</substitution></rule>
  <rule><expression>a=1</expression><substitution>$0&amp;b=2</substitution></rule>
  <rule><substitution>&amp;c=3</substitution></rule>
"""


def test_on_match_continue_and_break():
    assert run(CHAIN, "x").object == "x&a=1&b=2"  # the third rule is not reached
    assert run(CHAIN, "y").object == "y&c=3"  # unmatched rules are skipped


def test_on_match_error_refuses():
    body = '<rule OnMatch="error"><expression>(?i)[?&amp;]wid=\\d{4,}</expression></rule>'
    assert run(body, "cat/a", "wid=999").query == "wid=999"
    with pytest.raises(ISError) as e:
        run(body, "cat/a", "WID=1000")
    assert e.value.kind == "refused"


@pytest.mark.parametrize(
    "request_type, context, applied",
    [
        (None, "is", True),
        ("is", "is", True),
        ("is,ir", "is", True),
        ("static", "is", False),
        ("static", "static", True),
        ("ir", "static", False),
    ],
)
def test_request_type_selects_contexts(request_type, context, applied):
    attr = f' RequestType="{request_type}"' if request_type else ""
    pre = run(f"<rule{attr}><substitution>?wid=1</substitution></rule>", "a", context=context)
    assert (pre.query == "wid=1") is applied


def test_overrides_of_matched_rules_last_wins():
    body = """
      <rule OnMatch="continue" MaxPix="10,10" ErrorImage="e1"/>
      <rule OnMatch="continue" MaxPix="20,20"><expression>nomatch</expression></rule>
      <rule MaxPix="30,30"/>
      <rule MaxPix="40,40"/>
    """
    assert run(body, "a").overrides == {"maxpix": "30,30", "errorimage": "e1"}


def test_only_the_main_catalogs_rules_apply():
    default = catalog("", body="<rule><substitution>?from=default</substitution></rule>")
    named = catalog("cat", body="<rule><substitution>?from=cat</substitution></rule>")
    plain = catalog("plain")
    cats = CatalogSet(default, {"cat": named, "plain": plain})
    assert preprocess(cats, named, "cat/a", "", "").query == "from=cat"
    assert preprocess(cats, plain, "plain/a", "", "").query == ""  # no default rules (AMBIG-24)
    assert preprocess(cats, default, "a", "", "").query == "from=default"


def test_a_rewritten_path_identifies_the_main_catalog_again():
    default = catalog("", body="<rule><expression>^old/</expression><substitution>new/</substitution></rule>")
    new = catalog("new", {"RequestLock": "1"})
    cats = CatalogSet(default, {"new": new})
    with pytest.raises(ISError) as e:  # new's RequestLock now applies
        preprocess(cats, default, "old/a", "wid=200", "")
    assert e.value.kind == "refused"
    pre = preprocess(cats, default, "old/a", "wid=200&4a1f", "")
    assert (pre.main, pre.object, pre.query) == (new, "new/a", "wid=200")


# ------------------------------------------------------------------------------ headers


def test_header_actions_and_variables():
    (rule,) = rules("""<rule>
        <header Name="cache-control">private</header>
        <header Name="Vary" Action="add">Accept</header>
        <header Name="X-New" Action="add">$v$</header>
        <header Name="X-$name$">$v$ $unknown$</header>
      </rule>""")
    reply_headers = {"Cache-Control": "public, max-age=60", "vary": "Origin"}
    add_rule_headers(reply_headers, rule.headers, tokenize("wid=1&$v=a%20b&$name=Tag"))
    assert reply_headers == {
        "cache-control": "private",
        "vary": "Origin, Accept",
        "X-New": "a b",
        "X-Tag": "a b $unknown$",
    }


@pytest.mark.parametrize("query", ["$v=a%0D%0ASet-Cookie:%20x=1", "$v=%E2%82%AC", "$n=a%20b"])
def test_headers_that_would_be_invalid_are_dropped(query):
    (rule,) = rules('<rule><header Name="X-V">$v$</header><header Name="X-$n$">1</header></rule>')
    reply_headers: dict[str, str] = {}
    add_rule_headers(reply_headers, rule.headers, tokenize(query))
    assert all("\n" not in v and "\u20ac" not in v and " " not in k for k, v in reply_headers.items())
    assert len(reply_headers) == 1


# ------------------------------------------------------------------------------ address filters


@pytest.mark.parametrize(
    "entries, ip, allowed",
    [
        ("", "192.0.2.1", True),  # empty: no restriction
        ("0.0.0.0/0", "", True),  # anyone, even an unknown client
        ("0.0.0.0/0", "2001:db8::1", True),
        ("192.168.12.0/23", "192.168.13.255", True),
        ("192.168.12.0/23", "192.168.14.0", False),
        ("192.168.12.1/23", "192.168.12.200", True),  # host bits in the entry are ignored
        ("192.168.2.117", "192.168.2.117", True),
        ("192.168.2.117", "192.168.2.118", False),
        ("10.0.0.0/255.0.0.0", "10.9.8.7", True),  # a netmask instead of a prefix length
        ("10.0.0.0/8, 172.16.0.0/12", "172.20.1.1", True),
        ("10.0.0.0/8", "::ffff:10.1.1.1", True),  # an IPv4 client seen through IPv6
        ("10.0.0.0/8", "2001:db8::1", False),  # IPv6 never matches an IPv4 entry
        ("10.0.0.0/8", "", False),  # unknown client: refused
        ("10.0.0.0/8", "not-an-ip", False),
    ],
)
def test_address_allowed(entries, ip, allowed):
    assert address_allowed(parse_address_filter(entries), ip) is allowed


RULE_FILTER = """
  <rule OnMatch="continue"><expression>^internal/</expression><addressfilter>192.168.0.0/16</addressfilter></rule>
"""


@pytest.mark.parametrize(
    "obj, ip, refused",
    [
        ("internal/a", "192.168.1.1", False),  # the rule's filter replaces ClientAddressFilter
        ("internal/a", "10.1.1.1", True),
        ("public/a", "10.1.1.1", False),  # the rule did not match: ClientAddressFilter applies
        ("public/a", "192.168.1.1", True),
    ],
)
def test_rule_filter_overrides_client_address_filter(obj, ip, refused):
    call = lambda: run(RULE_FILTER, obj, "", ip, default_attrs={"ClientAddressFilter": "10.0.0.0/8"})  # noqa: E731
    if refused:
        with pytest.raises(ISError) as e:
            call()
        assert e.value.kind == "refused"
    else:
        assert call().object == obj


def test_a_broken_client_address_filter_fails_closed():
    with pytest.raises(ISError) as e:
        run("", "a", default_attrs={"ClientAddressFilter": "10.0.0.0/33"})
    assert e.value.kind == "server_error"


@pytest.mark.parametrize(
    "scope, ip",
    [
        (
            {"aws.event": {"requestContext": {"http": {"sourceIp": "203.0.113.9"}}}, "client": ("127.0.0.1", 1)},
            "203.0.113.9",
        ),
        ({"aws.event": {"rawPath": "/is/image"}, "client": ("127.0.0.1", 1)}, "127.0.0.1"),
        ({"client": ("198.51.100.2", 5000), "headers": [(b"x-forwarded-for", b"1.2.3.4")]}, "198.51.100.2"),
        ({"client": None}, ""),
    ],
)
def test_client_address(scope, ip):
    assert client_address(scope) == ip


def test_client_address_filter_through_the_server(bucket):
    root, write, make = bucket
    write({"catalogs/sample.ini": (root / "catalogs/sample.ini").read_text() + "ClientAddressFilter=10.0.0.0/8\n"})
    server = make().app.state.server
    assert server.handle("GET", "sample/rose", "wid=60", {}, client_ip="10.1.2.3").status == 200
    refused = server.handle("GET", "sample/rose", "wid=60", {}, client_ip="192.0.2.1")
    assert (refused.status, refused.headers["X-IS-Error"]) == (403, "refused")
    assert server.handle("GET", "Shop/SKU123", "wid=60", {}, client_ip="192.0.2.1").status == 200


# ------------------------------------------------------------------------------ request lock (§6.4)


@pytest.mark.parametrize(
    "modifiers, lock",
    [
        ("wid=200", "4a1f"),
        ("fmt=png&wid=120", "ed0f"),
        ("req=exists", "a5ef"),
        ("req=exists,json", "5dbd"),
        ("", "0000"),
    ],
)
def test_lock_values(modifiers, lock):
    assert f"{lock_value(modifiers):04x}" == lock
    assert unlock(f"{modifiers}&{lock}") == modifiers
    assert unlock(f"{modifiers}&{lock.upper()}") == modifiers


@pytest.mark.parametrize("query", ["wid=200", "wid=200&4a1e", "wid=200&4a1", "wid=201&4a1f", "", "wid=200&4a1f&"])
def test_wrong_or_missing_locks_are_refused(query):
    with pytest.raises(ISError) as e:
        unlock(query)
    assert e.value.kind == "refused"


@pytest.mark.parametrize(
    "url, status",
    [
        ("/is/image/locked/rose?wid=200&4a1f", 200),
        ("/is/image/locked/rose?wid=200&4A1F", 200),
        ("/is/image/locked/rose?&0000", 200),
        ("/is/image/locked/rose?wid=200", 403),
        ("/is/image/locked/rose?wid=201&4a1f", 403),
        ("/is/image/locked/rose", 403),
        ("/is/image/sample/rose?wid=200", 200),  # other catalogs are not locked
    ],
)
def test_locked_catalog(client, url, status):
    r = client.get(url)
    assert r.status_code == status
    if status == 403:
        assert r.headers["x-is-error"] == "refused"


def test_locked_property_requests(client):
    assert client.get("/is/image/locked/rose?wid=200&4a1f").headers["content-type"] == "image/jpeg"
    assert client.get("/is/image/locked/rose?req=exists&a5ef").text.endswith("catalogRecord.exists=0\n")
    assert client.get("/is/image/locked/rose?req=exists,json&5dbd").text.startswith("/*jsonp*/s7jsonResponse(")


# ------------------------------------------------------------------------------ obfuscation (§6.3)


@pytest.mark.parametrize(
    "query, decoded",
    [
        ("d2lkPTEwMA==", "wid=100"),
        ("d2lkPTEwMA", "wid=100"),  # padding may be left off
        ("d2lkPTEwMA%3D%3D", "wid=100"),  # percent-encoded once
        ("d2lkPTEwMCYkeD1-fn4", "wid=100&$x=~~~"),  # URL-safe alphabet
        ("d2lkPTEwMCYkeD1 fn4=", "wid=100&$x=~~~"),  # '+' that became a space
        ("d2lkPTEwMCYkeD1%2Bfn4=", "wid=100&$x=~~~"),
        ("d2lkPTIwMCY0YTFm", "wid=200&4a1f"),
        ("dHh0PW15IHRleHQgc3RyaW5nJiRpbWc9bXlJbWFnZQ==", "txt=my text string&$img=myImage"),  # the docs' example
        ("dHh0PWNhZsOp", "txt=caf\u00e9"),  # raw UTF-8 inside is fine
        ("", ""),
    ],
)
def test_deobfuscation(query, decoded):
    assert deobfuscate(query) == decoded


@pytest.mark.parametrize(
    "query",
    [
        "wid=100",  # a plain query is refused, not decoded into garbage
        "d2lk=PTEwMA==",  # padding in the middle
        "d2lkPTEwMA=x",
        "d2lkP",  # impossible length
        "/w==",  # not UTF-8
        "%FF%FE",
        "d2lk\u00e4PTEwMA==",
    ],
)
def test_strict_decoding_refuses(query):
    with pytest.raises(ISError) as e:
        deobfuscate(query)
    assert e.value.kind == "refused"


# ------------------------------------------------------------------------------ through the app

LAB_RULES = r"""<?xml version="1.0" encoding="UTF-8"?>
<ruleset>
  <rule OnMatch="continue" Expiration="1"><expression>[?&amp;]short=1</expression></rule>
  <rule OnMatch="continue" MaxPix="100,100"><expression>[?&amp;]small=1</expression></rule>
  <rule OnMatch="continue" ErrorImage="rose"><expression>[?&amp;]errimg=1</expression></rule>
  <rule OnMatch="continue" DefaultImageMode="1"><expression>[?&amp;]mode1=1</expression></rule>
  <rule RequestLock="1"><expression>^ruled/tulip</expression></rule>
  <rule RequestObfuscation="1" RequestLock="1"><expression>^ruled/shoe-blue\?</expression></rule>
</ruleset>
"""

INTL_RECORDS = "Id\tPath\nmyImg\trose.jpg\nmyImg_D\tshoe.jpg\nmyImg_E\ttulip.png\nother\ttulip.png\n"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("bucket")
    files = {
        "catalogs/ruled.ini": "RootId=ruled\nRootPath=sample/\nCatalogFile=sample/images.txt\nRuleSetFile=ruled.xml\n",
        "catalogs/ruled.xml": LAB_RULES,
        "catalogs/obf.ini": "RootId=obf\nRootPath=sample/\nRequestObfuscation=1\n",
        "catalogs/obflock.ini": "RootId=obflock\nRootPath=sample/\nRequestObfuscation=1\nRequestLock=1\n",
        "catalogs/intl.ini": "RootId=intl\nRootPath=sample/\nCatalogFile=intl.txt\nDefaultImage=myImg\n"
        "LocaleMap=en,_E,|en_us,_E,|en_uk,_E,|fr,_F,|de,_D,|de_at,_D,|de_de,_D,|,_E,\n",
        "catalogs/nod.ini": "RootId=nod\nRootPath=sample/\nCatalogFile=nod.txt\nLocaleMap=de_de,_D,|,_E,\n",
        "catalogs/nod.txt": "Id\tPath\nmyImg\trose.jpg\n",
        "catalogs/strict.ini": "RootId=strict\nRootPath=sample/\nCatalogFile=intl.txt\nLocaleMap=fr,_F|de,_D,\n",
        "catalogs/german.ini": "RootId=german\nRootPath=sample/\nCatalogFile=intl.txt\nDefaultLocale=de\n"
        "LocaleMap=de,_D,|,_E,\n",
        "catalogs/intl.txt": INTL_RECORDS,
    }
    for folder in ("catalogs", "images"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file():
                target = root / path.relative_to(ROOT)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(path.read_bytes())
    for key, text in files.items():
        (root / key).write_text(text, encoding="utf-8")
    return local_client(root)


def test_expiration_override_replaces_only_the_attribute(lab):
    assert lab.get("/is/image/ruled/rose?wid=60").headers["cache-control"] == "public, max-age=36000"
    assert lab.get("/is/image/ruled/rose?wid=60&short=1").headers["cache-control"] == "public, max-age=3600"
    # shoe has its own catalog::Expiration (2 hours), which the rule does not touch
    assert lab.get("/is/image/ruled/shoe?wid=60&short=1").headers["cache-control"] == "public, max-age=7200"


def test_max_pix_override(lab):
    assert lab.get("/is/image/ruled/rose?wid=200").status_code == 200
    r = lab.get("/is/image/ruled/rose?wid=200&small=1")
    assert (r.status_code, r.headers["x-is-error"]) == (403, "size_limit")
    assert size(lab.get("/is/image/ruled/rose?wid=100&small=1")) == (100, 75)


def test_error_image_override(lab):
    assert lab.get("/is/image/ruled/rose?wid=abc").status_code == 403
    r = lab.get("/is/image/ruled/rose?wid=abc&errimg=1")
    assert (r.status_code, r.headers["x-is-error"], r.headers["content-type"]) == (200, "bad_request", "image/jpeg")


def test_default_image_mode_override(lab):
    url = "/is/image/ruled/nothing?wid=100&crop=0,0,300,150&fmt=png"
    assert size(lab.get(url)) == (100, 100)  # mode 0: only wid/hei/fmt/qlt kept
    r = lab.get(url + "&mode1=1")
    assert (r.headers["x-is-default-image"], size(r)) == ("1", (100, 50))


def test_request_lock_override(lab):
    assert lab.get("/is/image/ruled/tulip?wid=60").headers["x-is-error"] == "refused"
    assert size(lab.get("/is/image/ruled/tulip?wid=60&3f31")) == (60, 90)
    assert lab.get("/is/image/ruled/rose?wid=60").status_code == 200


def test_request_obfuscation_override(lab):
    assert lab.get("/is/image/ruled/shoe-blue?wid=200&4a1f").headers["x-is-error"] == "refused"
    assert size(lab.get("/is/image/ruled/shoe-blue?d2lkPTIwMCY0YTFm")) == (200, 200)


@pytest.mark.parametrize(
    "url, expected",
    [
        ("/is/image/obf/rose?d2lkPTEwMA==", (100, 75)),
        ("/is/image/obf/rose?d2lkPTEwMA", (100, 75)),
        ("/is/image/obf/rose?wid=100", "refused"),
        ("/is/image/obf/rose?/w==", "refused"),
        ("/is/image/obflock/rose?d2lkPTIwMCY0YTFm", (200, 150)),
        ("/is/image/obflock/rose?d2lkPTIwMA==", "refused"),  # obfuscated, but no lock inside
        ("/is/image/obflock/rose?wid=200&4a1f", "refused"),  # locked, but not obfuscated
    ],
)
def test_obfuscated_catalogs(lab, url, expected):
    r = lab.get(url)
    assert (size(r) if r.status_code == 200 else r.headers["x-is-error"]) == expected


@pytest.mark.parametrize(
    "url, expected",
    [
        ("/is/image/intl/myImg?wid=60&locale=de_de", (60, 60)),  # myImg_D
        ("/is/image/intl/myImg?wid=60&locale=DE_AT", (60, 60)),  # locales match in any case
        ("/is/image/nod/myImg?wid=60&locale=de_de", (60, 45)),  # no myImg_D: myImg
        ("/is/image/intl/myImg?wid=60&locale=ja", (60, 90)),  # unknown: the default rule, myImg_E
        ("/is/image/intl/myImg?wid=60", (60, 90)),  # no locale: the default rule too
        ("/is/image/german/myImg?wid=60", (60, 60)),  # DefaultLocale=de
        ("/is/image/german/myImg?wid=60&locale=en", (60, 90)),
        ("/is/image/strict/myImg?wid=60", (60, 45)),  # no locale, no default rule: untranslated
        ("/is/image/strict/myImg?wid=60&locale=de", (60, 60)),
        ("/is/image/strict/myImg?wid=60&locale=ja", "bad_request"),  # unknown locale, no default rule
        ("/is/image/strict/rose.jpg?wid=60&locale=fr", (60, 45)),  # a plain file path is not translated
        ("/is/image/intl?src=myImg&wid=60&locale=de_de", (60, 60)),  # src= is translated
        ("/is/image/intl/nothing?defaultImage=myImg&wid=60&locale=de", (60, 60)),
        ("/is/image/intl/nothing?wid=60&locale=en", (60, 90)),  # attribute::DefaultImage, translated
    ],
)
def test_locale_translation_of_image_requests(lab, url, expected):
    r = lab.get(url)
    assert (size(r) if r.status_code == 200 else r.headers["x-is-error"]) == expected


def test_an_untranslatable_record_is_a_missing_source(lab):
    # no myImg_F, and myImg is a record: missing; a file path as default image is not translated
    r = lab.get("/is/image/strict/myImg?wid=60&locale=fr&defaultImage=rose.jpg")
    assert (r.status_code, r.headers["x-is-default-image"], size(r)) == (200, "1", (60, 45))
    # attribute::DefaultImage (noimage, a record) has no noimage_F either
    r = lab.get("/is/image/strict/myImg?wid=60&locale=fr")
    assert (r.status_code, r.headers["x-is-error"]) == (403, "not_found")
    assert lab.get("/is/image/strict/myImg?req=props&locale=fr").status_code == 403


def test_props_describe_the_translated_image(lab):
    text = lab.get("/is/image/intl/myImg?req=props&wid=60&locale=de").text
    assert "image.height=60\n" in text and "image.width=60\n" in text


# ------------------------------------------------------------------------------ broken rule sets (§15.4)


@pytest.mark.parametrize("rules_text", [None, "<ruleset/>", DECL + "<ruleset><rule OnMatch='later'/></ruleset>"])
def test_a_broken_rule_set_fails_only_its_catalog(bucket, rules_text):
    root, write, make = bucket
    if rules_text is None:
        (root / "catalogs/sample/rules.xml").unlink()  # a missing file fails closed too
    else:
        write({"catalogs/sample/rules.xml": rules_text})
    client = make()
    r = client.get("/is/image/sample/rose?wid=60")
    assert (r.status_code, r.headers["x-is-error"]) == (500, "server_error")
    assert "rules.xml" not in r.text
    assert client.get("/is/image/Shop/SKU123?wid=60").status_code == 200
    assert client.get("/is/image/locked/rose?wid=200&4a1f").status_code == 200


def test_a_broken_default_rule_set_fails_only_default_catalog_requests(bucket):
    root, write, make = bucket
    write(
        {
            "catalogs/default.ini": (root / "catalogs/default.ini").read_text() + "RuleSetFile=bad.xml\n",
            "catalogs/bad.xml": "<ruleset>",
        }
    )
    client = make()
    assert client.get("/is/image/sample/rose?wid=60").status_code == 200
    assert client.get("/is/image/sample/rose.jpg?wid=60").status_code == 200
    assert client.get("/is/image/nocatalog/rose.jpg?wid=60").status_code == 500


def test_validate_reports_a_broken_rule_set(bucket, capsys):
    from imageserving.cli import main

    root, write, _ = bucket
    write({"catalogs/sample/rules.xml": "<ruleset/>"})
    assert main(["validate", "--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert re.search(r"catalogs/sample\.ini: RootId=sample error: .*rules\.xml", out)
    assert "declaration is missing" in out


def test_the_sample_rule_set_file_is_valid():
    names = [r.name for r in parse_rule_set(Path(ROOT / "catalogs/sample/rules.xml").read_bytes())]
    assert names == ["legacy-alias", "edge-control"]
