"""The modifier grammar: tokens, comments, macros, variables, merging (protocol.md §3)."""

import pytest

from imageserving.errors import ISError
from imageserving.protocol.commands import Commands
from imageserving.protocol.query import (
    decode_path_element,
    decode_value,
    encode_value,
    expand_macros,
    split_modifiers,
    substitute,
    tokenize,
)


@pytest.mark.parametrize(
    "raw, pieces",
    [
        ("wid=1&hei=2", ["wid=1", "hei=2"]),
        ("&&wid=100&", ["wid=100"]),
        ("src=is{cat/img?wid=200&hei=100}&wid=5", ["src=is{cat/img?wid=200&hei=100}", "wid=5"]),
        ("src=is(a?b=(1)&c=2)&x=1", ["src=is(a?b=(1)&c=2)", "x=1"]),
        ("src=my(file&wid=3", ["src=my(file", "wid=3"]),  # a stray bracket has no grouping meaning
        (".note=a=b&wid=1", [".note=a=b", "wid=1"]),
        ("text={\\rtf1 a&b}&wid=1", ["text={\\rtf1 a&b}", "wid=1"]),
    ],
)
def test_split_modifiers(raw, pieces):
    assert split_modifiers(raw) == pieces


@pytest.mark.parametrize("raw", ["src=is{a&b", "src={a)", "src=is{a}}"])
def test_unbalanced_brackets_are_bad_requests(raw):
    if raw == "src=is{a}}":  # the extra '}' after the group is an ordinary character
        assert split_modifiers(raw) == ["src=is{a}}"]
        return
    with pytest.raises(ISError) as e:
        split_modifiers(raw)
    assert e.value.kind == "bad_request"


def test_tokenize_classifies_and_lowercases_names():
    toks = tokenize("WID=100&.comment&$Var=A&$Preset$&Op_Usm=1,2&bad name=1")
    assert [(t.kind, t.name, t.value) for t in toks] == [
        ("command", "wid", "100"),
        ("vardef", "var", "A"),
        ("macro", "preset", ""),
        ("command", "op_usm", "1,2"),
    ]


def test_a_preset_key_with_an_empty_value_is_the_macro_call():
    # media.screwfix.com/is/image/ae235/339PF_P?$fxSharpen$=&wid=257 (a query builder's empty value)
    assert tokenize("$fxSharpen$=&wid=257")[0] == tokenize("$fxSharpen$")[0]
    assert tokenize("$fxSharpen$=&wid=257")[0].kind == "macro"


@pytest.mark.parametrize("raw", ["$=1", "$a b$", "$$", "$x", "$$=", "$a$=1"])
def test_malformed_dollar_tokens(raw):
    with pytest.raises(ISError):
        tokenize(raw)


def test_macro_position_decides_override():
    macros = {"view": "wid=240&fmt=jpeg"}
    before = Commands()
    before.add(expand_macros(tokenize("wid=480&$view$"), macros.get))
    after = Commands()
    after.add(expand_macros(tokenize("$VIEW$&wid=480"), macros.get))
    assert before.value("wid") == "240"
    assert after.value("wid") == "480"


def test_unknown_and_recursive_macros():
    with pytest.raises(ISError, match="Invalid request") as e:
        expand_macros(tokenize("$nope$"), {}.get)
    assert "nope" in e.value.detail
    with pytest.raises(ISError):
        expand_macros(tokenize("$a$"), {"a": "$a$"}.get)


def test_modifier_url_postmodifier_precedence():
    cmds = Commands()
    cmds.add(tokenize("wid=100&qlt=50&bgc=ff0000"))  # catalog::Modifier
    cmds.add(tokenize("qlt=70&wid=300"))  # URL
    cmds.add(tokenize("qlt=90"))  # catalog::PostModifier
    assert (cmds.value("wid"), cmds.value("qlt"), cmds.value("bgc")) == ("300", "90", "ff0000")


def test_variables_merge_then_substitute_once():
    cmds = Commands()
    cmds.add(tokenize("$text=default&text=$text$"))
    cmds.add(tokenize("$TEXT=from+url"))
    assert cmds.decoded_layer("comp")["text"] == "from url"
    nested = Commands()
    nested.add(tokenize("$var2=apple&$var1=my$var2$tree&text=$var1$"))
    assert nested.decoded_layer("comp")["text"] == "my$var2$tree"


def test_substitution_rules():
    assert substitute("my$image$file.tif", {}) == "my$image$file.tif"
    assert substitute("$a$$b$", {"a": "1", "b": "2"}) == "12"
    assert substitute("$$a$", {"a": "1"}) == "$1"


def test_layers_and_request_commands():
    cmds = Commands()
    cmds.add(tokenize("wid=200&crop=0,0,10,10&layer=1&src=x&crop=1,1,2,2&fmt=png"))
    assert cmds.layers["comp"] == {"crop": "0,0,10,10"}
    assert cmds.layers["1"] == {"src": "x", "crop": "1,1,2,2"}
    assert cmds.request == {"wid": "200", "fmt": "png"}


@pytest.mark.parametrize(
    "raw, text",
    [
        ("a%20b+c", "a b c"),
        ("%C3%A9", "é"),
        ("%E9", "é"),
        ("100%", "100%"),
        ("%zz", "%zz"),
        ("rate%26weight%3D85%25%2027%23", "rate&weight=85% 27#"),
    ],
)
def test_decode_value(raw, text):
    assert decode_value(raw) == text


@pytest.mark.parametrize("text", ["Image not found: cat/a b+c&d=e%f", "naïve 日本 $x$", "line\nbreak"])
def test_encode_value_round_trips(text):
    assert decode_value(encode_value(text)) == text
    assert substitute(encode_value(text), {"x": "BAD"}) == encode_value(text)


def test_path_elements_decode_individually():
    assert decode_path_element("a%2Fb") == "a/b"
    assert decode_path_element("caf%E9") == "café"
    assert decode_path_element("a+b") == "a+b"
