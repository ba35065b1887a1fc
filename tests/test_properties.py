"""Property responses, error bodies and the req= grammar (protocol.md §8.1-§8.2, §8.9-§8.12, §12.3)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

import pytest

from imageserving.errors import ISError
from imageserving.responses.properties import (
    Body,
    ReqSpec,
    flag,
    hex_color,
    java_date,
    java_double,
    parse_req,
    property_data_to_pairs,
    render_error,
    render_imageset,
    render_properties,
    render_raw_text,
    userdata_text,
    validate_handler,
)

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
TEXT_TYPE = "text/plain; charset=UTF-8"
SCRIPT_TYPE = "text/javascript; charset=UTF-8"
XML_DECL = b'<?xml version="1.0" encoding="UTF-8"?>\n'
WORKED = [("image.width", "100"), ("image.height", "50"), ("image.type", "image/png")]


def props(pairs, fmt, **kw):
    kw.setdefault("now", NOW)
    return render_properties(pairs, fmt, **kw)


# --- §8.2.1 worked example, all four formats ----------------------------------------------------


@pytest.mark.parametrize(
    "fmt, kw, content, media_type",
    [
        (
            "text",
            {},
            b"#S7Z OK\n#Thu Jan 01 00:00:00 UTC 2026\nimage.width=100\nimage.height=50\nimage.type=image/png\n",
            TEXT_TYPE,
        ),
        ("javascript", {}, b"image.width='100'\nimage.height='50'\nimage.type='image/png'\n", SCRIPT_TYPE),
        (
            "xml",
            {},
            XML_DECL + b'<prop-group><prop-group name="image"><property name="width" value="100"/>'
            b'<property name="height" value="50"/><property name="type" value="image/png"/>'
            b"</prop-group></prop-group>",
            "text/xml; charset=UTF-8",
        ),
        (
            "json",
            {"req_id": "r7", "handler": "cb1"},
            b'/*jsonp*/cb1({"image.width":"100","image.height":"50","image.type":"image/png"},"r7");',
            SCRIPT_TYPE,
        ),
    ],
)
def test_worked_example(fmt, kw, content, media_type):
    assert props(WORKED, fmt, **kw) == Body(content, media_type)


def test_worked_example_missing_image_json():
    body = render_error("Image not found", "Image not found", "json", req_id="r7")
    assert body == Body(
        b'/*jsonp*/s7jsonError({"message":"Image not found","title":"Image not found"},"r7");', SCRIPT_TYPE
    )


# --- §8.9 req=exists shapes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "fmt, content",
    [
        ("text", b"#S7Z OK\n#Thu Jan 01 00:00:00 UTC 2026\ncatalogRecord.exists=1\n"),
        ("javascript", b"catalogRecord.exists='1'\n"),
        (
            "xml",
            XML_DECL + b'<prop-group><prop-group name="catalogRecord"><property name="exists" value="1"/>'
            b"</prop-group></prop-group>",
        ),
        ("json", b'/*jsonp*/s7jsonResponse({"catalogRecord.exists":"1"},"");'),
    ],
)
def test_exists_shapes(fmt, content):
    assert props([("catalogRecord.exists", "1")], fmt).content == content


# --- text: Java properties escaping -------------------------------------------------------------


@pytest.mark.parametrize(
    "name, value, line",
    [
        ("image.modifier", "wid=100", "image.modifier=wid\\=100"),
        ("a", "x:y#z!w", "a=x\\:y\\#z\\!w"),
        ("a", "back\\slash", "a=back\\\\slash"),
        ("a", " lead  inner", "a=\\ lead  inner"),
        ("a", "tab\tlf\ncr\rff\f", "a=tab\\tlf\\ncr\\rff\\f"),
        ("a", "é日本", "a=é日本"),
        ("a", 'it\'s "q"', 'a=it\'s "q"'),
        ("a", "", "a="),
        ("key with space", "v", "key\\ with\\ space=v"),
        ("k=:#!", "v", "k\\=\\:\\#\\!=v"),
    ],
)
def test_text_escaping(name, value, line):
    body = props([(name, value)], "text")
    assert body.content == ("#S7Z OK\n#Thu Jan 01 00:00:00 UTC 2026\n" + line + "\n").encode("utf-8")


def test_text_header_defaults_to_current_time():
    before = datetime.now(timezone.utc).replace(microsecond=0)
    lines = render_properties([], "text").content.decode().split("\n")
    after = datetime.now(timezone.utc)
    assert lines[0] == "#S7Z OK" and lines[2] == ""
    stamp = datetime.strptime(lines[1], "#%a %b %d %H:%M:%S UTC %Y").replace(tzinfo=timezone.utc)
    assert before <= stamp <= after


# --- javascript ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, literal",
    [
        ("it's", "it\\'s"),
        ("back\\slash", "back\\\\slash"),
        ("two\r\nlines", "two\\r\\nlines"),
        ("</script><b>", "<\\/script><b>"),
        ("a\u2028b\u2029c", "a\\u2028b\\u2029c"),
        ("tab\tstays", "tab\tstays"),
        ('"double" & é日本', '"double" & é日本'),
    ],
)
def test_javascript_escaping(value, literal):
    assert props([("image.x", value)], "javascript") == Body(f"image.x='{literal}'\n".encode(), SCRIPT_TYPE)


# --- xml ----------------------------------------------------------------------------------------


def test_xml_groups_in_order_of_first_appearance():
    pairs = [("image.a", "1"), ("bare", "2"), ("other.b", "3"), ("image.c.d", "4")]
    assert props(pairs, "xml").content == XML_DECL + (
        b'<prop-group><prop-group name="image"><property name="a" value="1"/>'
        b'<property name="c.d" value="4"/></prop-group><property name="bare" value="2"/>'
        b'<prop-group name="other"><property name="b" value="3"/></prop-group></prop-group>'
    )


def test_xml_empty_root():
    assert props([], "xml").content == XML_DECL + b"<prop-group></prop-group>"


def test_xml_escaping_round_trips():
    value = "a<b>&\"c\"'d' \ttab\nlf\rcr é日本 </script>"
    body = props([("g.n&m", value), ("x", "bell\x07")], "xml")
    assert (
        body.content
        == XML_DECL
        + (
            '<prop-group><prop-group name="g"><property name="n&amp;m" value="a&lt;b&gt;&amp;&quot;c&quot;\'d\' '
            '&#9;tab&#10;lf&#13;cr é日本 &lt;/script&gt;"/></prop-group>'
            '<property name="x" value="bell\ufffd"/></prop-group>'
        ).encode()
    )
    root = ET.fromstring(body.content)
    assert root.find("prop-group/property").get("value") == value


@pytest.mark.parametrize(
    "encoding, prefix, codec",
    [
        ("UTF-16", b"\xfe\xff", "utf-16-be"),
        ("utf-16", b"\xfe\xff", "utf-16-be"),
        ("UTF-16LE", b"", "utf-16-le"),
        ("UTF-16BE", b"", "utf-16-be"),
    ],
)
def test_xml_utf16(encoding, prefix, codec):
    body = props([("image.t", "é日本")], "xml", encoding=encoding)
    name = encoding.upper()
    text = (
        f'<?xml version="1.0" encoding="{name}"?>\n<prop-group><prop-group name="image">'
        '<property name="t" value="é日本"/></prop-group></prop-group>'
    )
    assert body == Body(prefix + text.encode(codec), f"text/xml; charset={name}")
    assert ET.fromstring(body.content).find("prop-group/property").get("value") == "é日本"


def test_xml_latin1_uses_character_references():
    body = props([("t", "é日本")], "xml", encoding="ISO-8859-1")
    assert body == Body(
        b'<?xml version="1.0" encoding="ISO-8859-1"?>\n<prop-group>'
        b'<property name="t" value="\xe9&#26085;&#26412;"/></prop-group>',
        "text/xml; charset=ISO-8859-1",
    )
    assert ET.fromstring(body.content).find("property").get("value") == "é日本"


# --- json ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, literal",
    [
        ("</script>", "\\u003c/script\\u003e"),
        ("a&b", "a\\u0026b"),
        ("a\u2028b\u2029", "a\\u2028b\\u2029"),
        ('q"b\\', 'q\\"b\\\\'),
        ("lf\ntab\t", "lf\\ntab\\t"),
        ("é日本", "é日本"),
    ],
)
def test_json_value_escaping(value, literal):
    body = props([("image.x", value)], "json")
    assert body == Body(f'/*jsonp*/s7jsonResponse({{"image.x":"{literal}"}},"");'.encode(), SCRIPT_TYPE)


def test_json_id_is_escaped_and_keys_too():
    body = props([("a<b", "1")], "json", handler="viewer.cb_1$", req_id='</script>"\u2028é')
    assert body.content == ('/*jsonp*/viewer.cb_1$({"a\\u003cb":"1"},"\\u003c/script\\u003e\\"\\u2028é");'.encode())


def test_json_empty_and_duplicate_names():
    assert props([], "json").content == b'/*jsonp*/s7jsonResponse({},"");'
    assert (
        props([("a", "1"), ("b", "2"), ("a", "3")], "json").content == b'/*jsonp*/s7jsonResponse({"a":"3","b":"2"},"");'
    )


def test_json_rejects_bad_handler():
    with pytest.raises(ISError) as exc:
        props([("a", "1")], "json", handler="alert(1);x")
    assert exc.value.kind == "bad_request"


def test_unknown_format_is_a_programming_error():
    with pytest.raises(ValueError):
        props([("a", "1")], "html")
    with pytest.raises(ValueError):
        render_error("t", "m", "html")


# --- §12.3 error bodies -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fmt, body",
    [
        ("text", Body(b"error.title=Image not found\nerror.message=Image not found\n", TEXT_TYPE)),
        (None, Body(b"error.title=Image not found\nerror.message=Image not found\n", TEXT_TYPE)),
        ("javascript", Body(b"error.title='Image not found'\nerror.message='Image not found'\n", SCRIPT_TYPE)),
        (
            "xml",
            Body(
                XML_DECL + b'<prop-group><prop-group name="error">'
                b'<property name="title" value="Image not found"/>'
                b'<property name="message" value="Image not found"/></prop-group></prop-group>',
                "text/xml; charset=UTF-8",
            ),
        ),
        (
            "json",
            Body(b'/*jsonp*/s7jsonError({"message":"Image not found","title":"Image not found"},"");', SCRIPT_TYPE),
        ),
    ],
)
def test_error_bodies(fmt, body):
    assert render_error("Image not found", "Image not found", fmt) == body


def test_error_message_is_escaped_per_format():
    message = "Invalid request: wid=abc: </script>"
    assert (
        render_error("Invalid request", message, "text").content
        == b"error.title=Invalid request\nerror.message=Invalid request\\: wid\\=abc\\: </script>\n"
    )
    assert (
        render_error("Invalid request", message, "javascript").content
        == b"error.title='Invalid request'\nerror.message='Invalid request: wid=abc: <\\/script>'\n"
    )
    assert render_error("Invalid request", message, "json", req_id="<x>").content == (
        b'/*jsonp*/s7jsonError({"message":"Invalid request: wid=abc: \\u003c/script\\u003e",'
        b'"title":"Invalid request"},"\\u003cx\\u003e");'
    )


# --- value formatting ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "x, text",
    [
        (10.0, "10.0"),
        (0.1, "0.1"),
        (2.5, "2.5"),
        (24.0, "24.0"),
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        (-2.5, "-2.5"),
        (1e7, "1.0E7"),
        (9999999.0, "9999999.0"),
        (12345678.9, "1.23456789E7"),
        (0.001, "0.001"),
        (0.0001, "1.0E-4"),
        (1.5e-5, "1.5E-5"),
        (1e22, "1.0E22"),
        (100.0, "100.0"),
        (1 / 3, "0.3333333333333333"),
        (72, "72.0"),
        (float("nan"), "NaN"),
        (float("-inf"), "-Infinity"),
    ],
)
def test_java_double(x, text):
    assert java_double(x) == text


@pytest.mark.parametrize(
    "dt, text",
    [
        (NOW, "Thu Jan 01 00:00:00 UTC 2026"),
        (datetime(2025, 7, 4, 9, 5, 3), "Fri Jul 04 09:05:03 UTC 2025"),
        (datetime(2024, 2, 29, 1, 30, tzinfo=timezone(timedelta(hours=2))), "Wed Feb 28 23:30:00 UTC 2024"),
        (datetime(2025, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc), "Wed Dec 31 23:59:59 UTC 2025"),
    ],
)
def test_java_date(dt, text):
    assert java_date(dt) == text


def test_hex_color_and_flag():
    assert hex_color((255, 0, 171)) == "0xFF00AB"
    assert hex_color((1, 2, 3, 4)) == "0x010203"
    assert (flag(True), flag(False)) == ("1", "0")


# --- req= grammar and handler -------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, spec",
    [
        ("", ReqSpec("img", None, "UTF-8")),
        ("img", ReqSpec("img", None)),
        ("TMB", ReqSpec("tmb", None)),
        ("mask,", ReqSpec("mask", None)),
        ("props", ReqSpec("props", "text")),
        ("Props,JSON", ReqSpec("props", "json")),
        ("imageprops,javascript", ReqSpec("imageprops", "javascript")),
        ("exists,xml", ReqSpec("exists", "xml")),
        ("userdata,xml,utf-16", ReqSpec("userdata", "xml", "UTF-16")),
        ("targets,xml,ISO-8859-1", ReqSpec("targets", "xml", "ISO-8859-1")),
        ("imageset,,", ReqSpec("imageset", "text")),
        ("set", ReqSpec("set", "xml")),
        ("map,json", ReqSpec("map", "json")),
        ("xmp", ReqSpec("xmp", "xml")),
        ("xmp,xml,UTF-8", ReqSpec("xmp", "xml", "UTF-8")),
        ("saveToFile", ReqSpec("savetofile", "text")),
        ("mbrSet,xml,UTF-16BE", ReqSpec("mbrset", "xml", "UTF-16BE")),
        ("message", ReqSpec("message", "text")),
    ],
)
def test_parse_req(value, spec):
    assert parse_req(value) == spec


@pytest.mark.parametrize(
    "value",
    [
        "image",  # unknown type
        "img,text",  # image types take no format
        "img,,UTF-8",
        "props,html",  # unknown format
        "userdata,javascript",  # format not allowed for the type
        "set,text",
        "resolve,json",
        "userdata,xml,UTF-32",  # unknown encoding
        "props,xml,UTF-16",  # type without the encoding option
        "userdata,json,UTF-16",  # only xml can be written in another encoding
        "xmp,xml,UTF-16",  # xmp is UTF-8 only
        "props,xml,UTF-8,x",  # too many parts
    ],
)
def test_parse_req_rejects(value):
    with pytest.raises(ISError) as exc:
        parse_req(value)
    assert exc.value.kind == "bad_request"
    assert exc.value.title == "Invalid request" and value not in exc.value.title


@pytest.mark.parametrize("name", ["s7jsonResponse", "s7R_1", "viewer.cb", "$", "_a.$b.c9", "a" * 128])
def test_validate_handler_accepts(name):
    assert validate_handler(name) == name


@pytest.mark.parametrize(
    "name", ["", "1cb", "a..b", "a.", ".a", "cb()", "a b", "a-b", "cb\n", "a" * 129, "x</script>", "é"]
)
def test_validate_handler_rejects(name):
    with pytest.raises(ISError) as exc:
        validate_handler(name)
    assert exc.value.kind == "bad_request"


# --- §8.10-§8.12 userdata, targets, imageset ----------------------------------------------------


@pytest.mark.parametrize(
    "text, quoted, pairs",
    [
        ("val1=111??str1=hello", False, [("val1", "111"), ("str1", "hello")]),
        ("val1=111??str1=hello", True, [("val1", "111??str1=hello")]),
        ("a=1\r\nb=2\nc=3\rd=4", True, [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]),
        (
            "Target.1.rect=10,10,50,50??Target.1.label=a=b c",
            False,
            [("Target.1.rect", "10,10,50,50"), ("Target.1.label", "a=b c")],
        ),
        ("bad:key=1??good-key_.9=2", False, [("good-key_.9", "2")]),
        ("Val=1??noeq??val=2??=x?? sp = v ", False, [("Val", "2"), ("sp", " v ")]),
        ("just some text", False, [("userdata", "just some text")]),
        ("a??b", False, [("userdata", "a??b")]),
        ("", False, []),
    ],
)
def test_property_data_to_pairs(text, quoted, pairs):
    assert property_data_to_pairs(text, quoted) == pairs


def test_userdata_json_and_xml():
    pairs = property_data_to_pairs("val1=111??str1=hello", False)
    assert props(pairs, "json").content == b'/*jsonp*/s7jsonResponse({"val1":"111","str1":"hello"},"");'
    assert props(pairs, "xml").content == XML_DECL + (
        b'<prop-group><property name="val1" value="111"/><property name="str1" value="hello"/></prop-group>'
    )


@pytest.mark.parametrize(
    "text, quoted, out",
    [
        ("val1=111??str1=hello", False, "val1=111\r\nstr1=hello\r\n"),
        ("val1=111??str1=hello", True, "val1=111??str1=hello\r\n"),
        ("", False, "\r\n"),
    ],
)
def test_userdata_text(text, quoted, out):
    assert userdata_text(text, quoted) == out


def test_render_raw_text():
    assert render_raw_text("a=é\r\n") == Body("a=é\r\n".encode(), TEXT_TYPE)


@pytest.mark.parametrize(
    "value, fmt, kw, body",
    [
        ("cat/a;cat/a_sw,cat/b", "text", {}, Body(b"cat/a;cat/a_sw,cat/b\r\n", TEXT_TYPE)),
        ("", "text", {}, Body(b"\r\n", TEXT_TYPE)),
        (
            "cat/a;cat/a_sw,cat/b",
            "json",
            {},
            Body(b'/*jsonp*/s7jsonResponse({"IMAGE_SET":"cat/a;cat/a_sw,cat/b"},"");', SCRIPT_TYPE),
        ),
        ("", "json", {"handler": "cb", "req_id": "7"}, Body(b'/*jsonp*/cb({"IMAGE_SET":""},"7");', SCRIPT_TYPE)),
        ("cat/a,cat/b", "javascript", {}, Body(b"IMAGE_SET='cat/a,cat/b'\n", SCRIPT_TYPE)),
        (
            "a&b<c",
            "xml",
            {},
            Body(
                b'<?xml version="1.0" encoding="UTF-8"?><IMAGE_SET>a&amp;b&lt;c</IMAGE_SET>', "text/xml; charset=UTF-8"
            ),
        ),
        (
            "a",
            "xml",
            {"encoding": "UTF-16"},
            Body(
                b"\xfe\xff" + '<?xml version="1.0" encoding="UTF-16"?><IMAGE_SET>a</IMAGE_SET>'.encode("utf-16-be"),
                "text/xml; charset=UTF-16",
            ),
        ),
    ],
)
def test_render_imageset(value, fmt, kw, body):
    assert render_imageset(value, fmt, **kw) == body


def test_identification_shape():
    body = props([("copyright", "Copyright 2026 imageserving: a=b")], "text")
    assert re.fullmatch(rb"#S7Z OK\n#[^\n]+\ncopyright=Copyright 2026 imageserving\\: a\\=b\n", body.content)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("set,json,UTF-8", ReqSpec("set", "json", "UTF-8")),  # Adobe's viewer SDK sends exactly this
        ("userdata,json,utf-8", ReqSpec("userdata", "json", "UTF-8")),
        ("props,text,UTF-8", ReqSpec("props", "text", "UTF-8")),
    ],
)
def test_parse_req_accepts_utf8_with_any_format(value, expected):
    assert parse_req(value) == expected
