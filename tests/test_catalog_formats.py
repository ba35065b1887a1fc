"""Catalog file parsers and value types (catalogs.md §3, §5.2, §9-§11, §17)."""

from datetime import datetime, timedelta, timezone

import pytest

from imageserving.catalog.formats import (
    ATTRIBUTES,
    BUILTIN_ATTRIBUTES,
    EMPTY_IS_VALUE,
    ENUM_VALUES,
    NOT_INHERITED,
    RES_MODE_NAMES,
    CatalogFormatError,
    Row,
    decode_text,
    parse_color_attr,
    parse_enum_attr,
    parse_flag_attr,
    parse_ini,
    parse_int_attr,
    parse_macros,
    parse_real_attr,
    parse_size_attr,
    parse_table,
    parse_timestamp,
)

UTC = timezone.utc
BOM = b"\xef\xbb\xbf"


# --- decode_text --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, text",
    [
        (b"caf\xe9", "café"),  # Latin-1
        (b"caf\xc3\xa9", "cafÃ©"),  # UTF-8 without BOM is not sniffed
        (BOM + b"caf\xc3\xa9", "café"),  # BOM: UTF-8, BOM dropped
        (BOM, ""),
        (b"", ""),
        (b"a\x85b", "a\x85b"),  # every byte is a Latin-1 character
    ],
)
def test_decode_text(data, text):
    assert decode_text(data) == text


def test_decode_text_bad_utf8_after_bom_fails():
    with pytest.raises(CatalogFormatError, match="UTF-8"):
        decode_text(BOM + b"caf\xe9")


# --- parse_ini ----------------------------------------------------------------------------------


def ini_attrs(text: str | bytes) -> dict[str, str]:
    return parse_ini(text.encode("iso-8859-1") if isinstance(text, str) else text).attrs


def test_ini_reference_example():
    ini = parse_ini(
        b"# shop catalog\n"
        b"RootId = shop\n"
        b"RootPath=shop/\n"
        b"CatalogFile=shop/images.txt,shop/images-delta.txt\n"
        b"MacroFile=shop/macros.txt\n"
        b"Expiration=24\n"
        b"DefaultImage=\n"
    )
    assert ini.attrs == {
        "rootid": "shop",
        "rootpath": "shop/",
        "catalogfile": "shop/images.txt,shop/images-delta.txt",
        "macrofile": "shop/macros.txt",
        "expiration": "24",
        "defaultimage": "",
    }
    assert ini.names["rootid"] == "RootId"
    assert ini.warnings == []


@pytest.mark.parametrize(
    "text, expected",
    [
        # line ends: CR, LF, CR LF, mixed in one file, no final line end
        ("A=1\rB=2\nC=3\r\nD=4", {"a": "1", "b": "2", "c": "3", "d": "4"}),
        ("A=1\r\n\r\n\rB=2\n\n", {"a": "1", "b": "2"}),
        # comments: '#' first, or after white space only; '#' later in a value is text
        ("#A=1\n  #B=2\n\t# C=3\nD=4 # not a comment", {"d": "4 # not a comment"}),
        # blank and white-space-only lines
        ("\n   \n\t\nA=1", {"a": "1"}),
        # white space around name, '=' and value dropped; inner white space kept; first '=' splits
        ("  Root Path \t=\t a  b \t", {}),  # invalid name: line ignored
        (" RootPath \t=\t a  b=c \t", {"rootpath": "a  b=c"}),
        # names are case-insensitive; last duplicate wins
        ("ROOTID=a\nrootid=b\nRootId=c", {"rootid": "c"}),
        # defined-empty stays, distinct from absent
        ("DefaultImage=\nErrorImage=   ", {"defaultimage": "", "errorimage": ""}),
        # continuation: backslash right before a line break joins the next line, both dropped
        ("A=one,\\\ntwo\nB=x", {"a": "one,two", "b": "x"}),
        ("A=one \\\r\n  two\\\rthree\\\r\nB=x", {"a": "one   twothreeB=x"}),
        ("A=x\\\n", {"a": "x"}),  # continued into the empty end of the file
        ("A=x\\", {"a": "x\\"}),  # no line break after it: literal
        ("A=x\\ \nB=y", {"a": "x\\", "b": "y"}),  # white space after it: not a continuation
        ("# note \\\nA=1", {"a": "1"}),  # comments are not continued
        ("A=c:\\dir\\file", {"a": "c:\\dir\\file"}),
        # quotes: one matching outer pair removed, doubled inner quotes collapsed
        ('A="x ""y"" z"', {"a": 'x "y" z'}),
        ("A='This month''s Special'", {"a": "This month's Special"}),
        ('A=""', {"a": ""}),
        ("A=  ' padded '  ", {"a": " padded "}),
        ('A="it\'s"', {"a": "it's"}),  # the other quote kind is plain text inside
        ('A="x"y"', {"a": '"x"y"'}),  # lone inner quote: literal
        ("A=\"x'", {"a": "\"x'"}),  # unmatched pair: literal
        ('A="', {"a": '"'}),
        ('A=a "b" c', {"a": 'a "b" c'}),
        # Latin-1 0x85 (NEL) is a character, not a line break
        (b"PublishInfo=caf\xe9\x85x\nA=1", {"publishinfo": "café\x85x", "a": "1"}),
    ],
)
def test_ini_syntax(text, expected):
    ini = parse_ini(text.encode("iso-8859-1") if isinstance(text, str) else text)
    assert ini.attrs == expected


def test_ini_bom_file():
    assert ini_attrs(BOM + "PublishInfo=Café ☕\n".encode()) == {"publishinfo": "Café ☕"}


def test_ini_bad_utf8_after_bom_fails():
    with pytest.raises(CatalogFormatError):
        parse_ini(BOM + b"PublishInfo=caf\xe9")


@pytest.mark.parametrize(
    "text, attrs, warning",
    [
        ("RootId=a\njust text\n", {"rootid": "a"}, "line 2: no '='"),
        ("=value\n", {}, "invalid attribute name ''"),
        ("Root Id=value\n", {}, "invalid attribute name 'Root Id'"),
        ("A=1\\\nno equals\nB\n", {"a": "1no equals"}, "line 3: no '='"),  # numbered by first line
        (
            "RootId=a\nMyOwnSetting=1\n",
            {"rootid": "a", "myownsetting": "1"},
            "unknown attributes (kept, not used): MyOwnSetting",
        ),
    ],
)
def test_ini_warnings(text, attrs, warning):
    ini = parse_ini(text.encode())
    assert ini.attrs == attrs
    assert any(warning in w for w in ini.warnings), ini.warnings


@pytest.mark.parametrize(
    "text, attrs, spelling",
    [
        ("LastModified=123", {"timestamp": "123"}, "LastModified"),
        ("addressfilter=10.0.0.0/8", {"clientaddressfilter": "10.0.0.0/8"}, "addressfilter"),
        ("StaticContentsRootPath=s/", {"staticcontentrootpath": "s/"}, "StaticContentsRootPath"),
        ("LastModified=1\nLastModified=2", {"timestamp": "2"}, "LastModified"),
        # the canonical name wins over an alias, whatever the order
        ("TimeStamp=1\nLastModified=2", {"timestamp": "1"}, "TimeStamp"),
        ("LastModified=2\nTimeStamp=1", {"timestamp": "1"}, "TimeStamp"),
        ("AddressFilter=1.2.3.4\nClientAddressFilter=", {"clientaddressfilter": ""}, "ClientAddressFilter"),
    ],
)
def test_ini_aliases(text, attrs, spelling):
    ini = parse_ini(text.encode())
    assert ini.attrs == attrs
    assert ini.names[next(iter(attrs))] == spelling
    assert not any("unknown" in w for w in ini.warnings)


def test_ini_alias_overridden_is_reported():
    ini = parse_ini(b"LastModified=2\nTimeStamp=1\n")
    assert ini.warnings == ["line 1: LastModified ignored because TimeStamp is also defined"]


# --- parse_table --------------------------------------------------------------------------------


def table(text: str, key="id"):
    return parse_table(text.encode("iso-8859-1"), key)


def fields(tbl) -> dict:
    return {k: r.fields for k, r in tbl.rows.items()}


def test_table_reference_example():
    tbl = table(
        "Id\tPath\tModifier\tPostModifier\tExpiration\t.notes\n"
        "1345\tproducts/1345\twid=500&qlt=70\tqlt=90\t\tprivate remark\n"
        "shoe\tproducts/shoe.tif\thei=400\t\t2\t\n"
    )
    assert tbl.columns == ("id", "path", "modifier", "postmodifier", "expiration")
    assert tbl.rows == {
        "1345": Row(
            {
                "id": "1345",
                "path": "products/1345",
                "modifier": "wid=500&qlt=70",
                "postmodifier": "qlt=90",
                "expiration": "",
            }
        ),
        "shoe": Row(
            {"id": "shoe", "path": "products/shoe.tif", "modifier": "hei=400", "postmodifier": "", "expiration": "2"}
        ),
    }
    assert tbl.warnings == []


Q, A = '"', "'"


@pytest.mark.parametrize(
    "field, value, quoted",
    [
        ("plain", "plain", False),
        ("  spaced  ", "  spaced  ", False),  # never trimmed
        ("a%20b", "a%20b", False),  # never URL-decoded
        ("caf\xe9", "café", False),  # Latin-1 file
        ('5" screen', '5" screen', False),  # quote not at the start: text
        ("men's", "men's", False),
        # double quotes
        ('"a\tb"', "a\tb", True),
        ('"line1\r\nline2\nline3\rend"', "line1\r\nline2\nline3\rend", True),
        ('"say ""hi"""', 'say "hi"', True),
        ('""', "", True),
        ('""""', '"', True),
        ('"it\'s"', "it's", True),
        # single quotes, same rules (AMBIG-3)
        ("'a\tb'", "a\tb", True),
        ("'x\r\ny'", "x\r\ny", True),
        ("'This month''s Special'", "This month's Special", True),
        ("''", "", True),
        ("'say \"hi\"'", 'say "hi"', True),
        # a quote that does not close right before TAB / line end is literal text up to the TAB
        ("'til dawn", "'til dawn", False),
        ('"abc"def', '"abc"def', False),
        ('"a"b"', '"a"b"', False),
        ("'unclosed", "'unclosed", False),
    ],
)
def test_table_field_quoting(field, value, quoted):
    for data in (f"Id\tText\tNext\nk\t{field}\tafter\n", f"Id\tText\tNext\r\nk\t{field}\tafter"):
        row = table(data).rows["k"]
        assert row.fields == {"id": "k", "text": value, "next": "after"}
        assert row.quoted == ({"text"} if quoted else set())


@pytest.mark.parametrize(
    "data, rows",
    [
        # a quoted field at the very end of the file, and one that swallows a line break and a TAB
        ('Id\tText\nk\t"v"', {"k": "v"}),
        ('Id\tText\nk\t"a\n\tb"\nm\tz\n', {"k": "a\n\tb", "m": "z"}),
        # an unclosed single quote does not swallow the following records
        ("Id\tText\nk\t'til dawn\tx\nm\tcan't\tstop'\nn\tz\n", {"k": "'til dawn", "m": "can't", "n": "z"}),
        # quoted key
        ('Id\tText\n"k 1"\tv\n', {"k 1": "v"}),
    ],
)
def test_table_quoted_records(data, rows):
    tbl = table(data)
    assert {k: r.fields["text"] for k, r in tbl.rows.items()} == rows


def test_table_line_ends_and_blank_lines():
    tbl = table("\r\nId\tPath\r\n\r\na\tpa\rb\tpb\n\n\nc\tpc\r\n\r\n")
    assert fields(tbl) == {
        "a": {"id": "a", "path": "pa"},
        "b": {"id": "b", "path": "pb"},
        "c": {"id": "c", "path": "pc"},
    }
    assert tbl.warnings == []


def test_table_short_rows_padded_and_extra_fields_dropped():
    tbl = table("Id\tPath\tModifier\na\nb\tpb\nc\tpc\tm\tEXTRA\tMORE\nd\tpd\tm\t\t\n")
    assert fields(tbl) == {
        "a": {"id": "a", "path": "", "modifier": ""},
        "b": {"id": "b", "path": "pb", "modifier": ""},
        "c": {"id": "c", "path": "pc", "modifier": "m"},
        "d": {"id": "d", "path": "pd", "modifier": "m"},
    }
    # trailing empty fields (stray TABs) lose nothing, so only line 4 is reported
    assert tbl.warnings == ["line 4: 2 field(s) beyond the header dropped"]


@pytest.mark.parametrize(
    "data, keys, warning",
    [
        ("Id\tPath\n\tp\nb\tq\n", ["b"], "line 2: empty id; record skipped"),
        ("Id\tPath\n\t\t\nb\tq\n", ["b"], "line 2: empty id; record skipped"),
        ("Id\tPath\na,b\tp\nc\tq\n", ["c"], "line 2: id 'a,b' contains ','; record skipped"),
        # line numbers count the line breaks inside quoted fields
        ('Id\tPath\n"a\nb"\tp\n\t\nc\tq\n', ["a\nb", "c"], "line 4: empty id; record skipped"),
    ],
)
def test_table_skipped_records(data, keys, warning):
    tbl = table(data)
    assert list(tbl.rows) == keys
    assert tbl.warnings == [warning]


def test_table_duplicate_key_replaces_whole_record_in_first_position():
    tbl = table("Id\tPath\tModifier\na\tp1\tm1\nb\tp2\tm2\na\t\tm3\n")
    assert list(tbl.rows) == ["a", "b"]
    assert tbl.rows["a"].fields == {"id": "a", "path": "", "modifier": "m3"}  # no merge
    assert tbl.warnings == ["line 4: 'a' again; this record replaces the earlier one"]


def test_table_keys_are_case_sensitive():
    assert list(table("Id\nShoe\nshoe\n").rows) == ["Shoe", "shoe"]


def test_table_header_rules():
    tbl = table("ID\t.Private\tPATH \tMy Col\t\t.x\tuserData\na\tsecret\tp\tm\tlost\thidden\tu\n")
    assert tbl.columns == ("id", "path", "my col", "userdata")
    assert tbl.rows["a"].fields == {"id": "a", "path": "p", "my col": "m", "userdata": "u"}
    assert tbl.warnings == [
        "line 1: header column 'My Col' has characters outside A-Z 0-9 - _",
        "line 1: header column 5 has no name; column ignored",
    ]


def test_table_quoted_flags_only_kept_columns():
    tbl = table('Id\t.note\tText\na\t"x"\t\'y\'\t"extra"\n')
    assert tbl.rows["a"].quoted == {"text"}


@pytest.mark.parametrize(
    "data, message",
    [
        ("Id\tPath\tid\n", "twice"),
        ("Name\tPath\n", "key column"),
        (".Id\tPath\n", "key column"),
    ],
)
def test_table_bad_header(data, message):
    with pytest.raises(CatalogFormatError, match=message):
        table(data)


def test_table_empty_file():
    for data in ("", "\n\r\n"):
        tbl = table(data)
        assert (tbl.columns, tbl.rows, tbl.warnings) == ((), {}, [])


def test_table_header_only():
    tbl = table("Id\tPath")
    assert (tbl.columns, tbl.rows) == (("id", "path"), {})


def test_table_bom_utf8():
    tbl = parse_table(BOM + 'Id\tUserData\nbüro\t"名前=x"\n'.encode())
    assert tbl.rows["büro"].fields["userdata"] == "名前=x"
    assert tbl.rows["büro"].quoted == {"userdata"}


def test_table_latin1_bytes():
    tbl = parse_table(b"Id\tUserData\ncaf\xe9\tna\xefve\n")
    assert tbl.rows["café"].fields["userdata"] == "naïve"


def test_table_composite_key():
    tbl = parse_table(
        b"Name\tBold\tItalic\tFontPath\n"
        b"Arial\t0\t0\tfonts/arial.ttf\n"
        b"Arial\t1\t0\tfonts/arialbd.ttf\n"
        b"Arial\t1\t0\tfonts/arialbd2.ttf\n"
        b"Arial\t\t\tfonts/plain.ttf\n"
        b"\t1\t1\tfonts/none.ttf\n",
        key=("Name", "Bold", "Italic"),
    )
    assert {k: r.fields["fontpath"] for k, r in tbl.rows.items()} == {
        ("Arial", "0", "0"): "fonts/arial.ttf",
        ("Arial", "1", "0"): "fonts/arialbd2.ttf",
        ("Arial", "", ""): "fonts/plain.ttf",  # empty flags are the loader's business (= 0)
    }
    assert tbl.warnings[-1] == "line 6: empty name; record skipped"


def test_table_key_name_case_insensitive():
    assert list(parse_table(b"NAME\tProfilePath\nsRGB\tp.icc\n", key="Name").rows) == ["sRGB"]


def test_table_large_file_is_fast_enough():
    import time

    lines = ["Id\tPath\tModifier\tUserData"]
    lines += [f'id{i}\tp/{i}.tif\twid=500\t"a\tb"' if i % 2 else f"id{i}\tp/{i}.tif\twid=500\tx" for i in range(20000)]
    start = time.perf_counter()
    tbl = table("\n".join(lines))
    assert len(tbl.rows) == 20000 and tbl.rows["id1"].fields["userdata"] == "a\tb"
    assert time.perf_counter() - start < 2.0


# --- parse_macros -------------------------------------------------------------------------------


def test_macros_reference_example():
    tbl = parse_table(
        b"Name\tDefinition\n"
        b"view\twid=240&fmt=jpeg&qlt=85&op_usm=5,2&bgc=200,200,200&align=-1,-1\n"
        b"Thumb\t$view$&wid=100\n",
        key="name",
    )
    assert parse_macros(tbl) == {
        "view": "wid=240&fmt=jpeg&qlt=85&op_usm=5,2&bgc=200,200,200&align=-1,-1",
        "thumb": "$view$&wid=100",
    }


def test_macros_names_fold_case_later_wins():
    tbl = parse_table(b"name\tdefinition\nZoom\twid=1\nzoom\twid=2\n", key="name")
    assert parse_macros(tbl) == {"zoom": "wid=2"}


def test_macros_need_definition_column():
    with pytest.raises(CatalogFormatError, match="Definition"):
        parse_macros(parse_table(b"Name\tValue\nview\twid=1\n", key="name"))


# --- value types --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        ("80ff00", (128, 255, 0)),
        ("0x80FF00", (128, 255, 0)),
        ("0X80ff00", (128, 255, 0)),
        (" FFFFFF ", (255, 255, 255)),
        ("000000", (0, 0, 0)),
        ("fff", None),
        ("80ff001", None),
        ("#80ff00", None),
        ("0x", None),
        ("gg0000", None),
        ("", None),
        (None, None),
    ],
)
def test_color(value, expected):
    assert parse_color_attr(value) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        ("1", True),
        ("0", False),
        ("true", True),
        ("FALSE", False),
        ("On", True),
        ("off", False),
        (" 1 ", True),
        ("2", None),
        ("yes", None),
        ("", None),
        (None, None),
        ("01", None),
    ],
)
def test_flag(value, expected):
    assert parse_flag_attr(value) is expected


@pytest.mark.parametrize(
    "value, expected",
    [
        ("0", 0),
        ("-12", -12),
        ("+34", 34),
        (" 72 ", 72),
        ("72.0", 72),
        ("1e3", 1000),
        ("72.5", None),
        ("", None),
        (None, None),
        ("1_000", None),
        ("١٢", None),
        ("abc", None),
        ("1e400", None),
    ],
)
def test_int(value, expected):
    assert parse_int_attr(value) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        ("12.5", 12.5),
        ("-2.34e4", -23400.0),
        ("24", 24.0),
        (".5", 0.5),
        ("5.", 5.0),
        ("1E-2", 0.01),
        ("-1", -1.0),
        ("", None),
        (None, None),
        ("nan", None),
        ("inf", None),
        ("1e999", None),
        ("1,5", None),
        (".", None),
        ("e5", None),
    ],
)
def test_real(value, expected):
    assert parse_real_attr(value) == expected


@pytest.mark.parametrize(
    "value, allowed, names, expected",
    [
        ("2", ENUM_VALUES["thumbtype"], None, 2),
        ("0", ENUM_VALUES["thumbtype"], None, None),  # 0 is unspecified where not listed
        ("0", ENUM_VALUES["errordetail"], None, 0),  # ... and a value where listed
        ("4", ENUM_VALUES["errordetail"], None, None),
        ("bicub", ENUM_VALUES["resmode"], RES_MODE_NAMES, 3),
        ("SHARP2", ENUM_VALUES["resmode"], RES_MODE_NAMES, 4),
        ("bicub", ENUM_VALUES["resmode"], None, None),
        ("5", ENUM_VALUES["resmode"], RES_MODE_NAMES, None),
        ("x", {1, 2}, None, None),
        ("", {1, 2}, None, None),
        (None, {1, 2}, None, None),
    ],
)
def test_enum(value, allowed, names, expected):
    assert parse_enum_attr(value, allowed, names) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        ("300,300", (300, 300)),
        ("0,0", (0, 0)),
        (" 2000 , 1000 ", (2000, 1000)),
        ("10,0", (10, 0)),
        ("300", None),
        ("1,2,3", None),
        ("-1,5", None),
        ("a,b", None),
        (",", None),
        ("", None),
        (None, None),
    ],
)
def test_size(value, expected):
    assert parse_size_attr(value) == expected


def at(*args, offset_minutes: int = 0) -> datetime:
    return (datetime(*args, tzinfo=timezone(timedelta(minutes=offset_minutes)))).astimezone(UTC)


@pytest.mark.parametrize(
    "value, expected",
    [
        # milliseconds since the epoch
        ("0", at(1970, 1, 1)),
        ("1700000000123", datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)),
        # zone abbreviations (DST encoded in the code)
        ("07/04/2024 10:30:00 PDT", at(2024, 7, 4, 17, 30)),
        ("01/15/2024 10:30:00 PST", at(2024, 1, 15, 18, 30)),
        ("01/15/2024 10:30:00 EST", at(2024, 1, 15, 15, 30)),
        ("07/04/2024 10:30:00 EDT", at(2024, 7, 4, 14, 30)),
        ("07/04/2024 10:30:00 CEST", at(2024, 7, 4, 8, 30)),
        ("07/04/2024 10:30:00 AKDT", at(2024, 7, 4, 18, 30)),
        ("07/04/2024 10:30:00 GMT", at(2024, 7, 4, 10, 30)),
        ("07/04/2024 10:30:00 utc", at(2024, 7, 4, 10, 30)),
        ("12/31/1999 23:59:59 HST", at(2000, 1, 1, 9, 59, 59)),
        # GMT offsets
        ("07/04/2024 10:30:00 GMT+05:30", at(2024, 7, 4, 5, 0)),
        ("07/04/2024 10:30:00 GMT -7", at(2024, 7, 4, 17, 30)),
        ("07/04/2024 10:30:00 GMT+2", at(2024, 7, 4, 8, 30)),
        ("07/04/2024 10:30:00 GMT-03:30", at(2024, 7, 4, 14, 0)),
        ("07/04/2024 10:30:00 GMT - 7", at(2024, 7, 4, 17, 30)),  # catalogs.md §3.4: spaces between parts
        ("07/04/2024 10:30:00 GMT-0700", at(2024, 7, 4, 17, 30)),  # as Java's formatters write it
        # one or more spaces between parts; single-digit fields; outer white space
        ("  7/4/2024   0:05:09    PDT ", at(2024, 7, 4, 7, 5, 9)),
    ],
)
def test_timestamp(value, expected):
    assert parse_timestamp(value) == expected
    assert parse_timestamp(value).tzinfo == UTC


@pytest.mark.parametrize(
    "value",
    [
        "",
        None,
        "abc",
        "12.5",
        "2024-07-04T10:30:00Z",
        "07/04/2024 10:30:00",  # zone is mandatory
        "07/04/2024 10:30 PDT",  # seconds are mandatory
        "07/04/24 10:30:00 PDT",  # four-digit year
        "07/04/2024 10:30:00 XYZ",  # unknown zone
        "07/04/2024 10:30:00 GMT+5:75",  # bad offset minutes
        "07/04/2024 10:30:00 GMT+24",  # offset out of range
        "07/04/2024 10:30:00 GMT 5",  # offset needs a sign
        "07/04/2024 10:30:00 GMT -123",  # hhmm needs four digits
        "07/04/2024 10:30:00 +0200",
        "02/30/2024 10:30:00 PST",  # no such day
        "13/01/2024 10:30:00 PST",
        "07/04/2024 24:00:00 PST",  # hh is 0-23
        "07/04/2024 10:60:00 PST",
        "07/04/202410:30:00 PST",  # parts need a space
        "99999999999999999999",  # beyond datetime's range
    ],
)
def test_timestamp_malformed(value):
    assert parse_timestamp(value) is None


# --- attribute tables ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, value",
    [
        ("expiration", "10"),
        ("defaultexpiration", "1"),
        ("nonimgexpiration", "0.1"),
        ("maxpix", "2000,2000"),
        ("defaultpix", "300,300"),
        ("defaultthumbpix", "100,100"),
        ("bkgcolor", "FFFFFF"),
        ("jpegquality", "80,0"),
        ("resmode", "4"),
        ("errordetail", "0"),
        ("allowdirectaccess", "exclude:"),
        ("clientaddressfilter", "0.0.0.0/0"),
        ("bfc", "false"),
        ("defaultimage", ""),
        ("defaultext", ""),
        ("uselastmodified", "0"),
        ("fullmatch", "0"),
    ],
)
def test_builtin_values(name, value):
    assert BUILTIN_ATTRIBUTES[name] == value


def test_attribute_sets_are_consistent():
    for names in (set(BUILTIN_ATTRIBUTES), EMPTY_IS_VALUE, NOT_INHERITED, set(ENUM_VALUES)):
        assert names <= ATTRIBUTES
        assert all(name == name.lower() for name in names)
    assert not NOT_INHERITED & set(BUILTIN_ATTRIBUTES)  # structural attributes have no built-in
    assert EMPTY_IS_VALUE <= set(BUILTIN_ATTRIBUTES)
    assert {
        "defaultimage",
        "errorimage",
        "watermark",
        "rootpath",
        "defaultext",
        "trusteddomains",
        "allowdirectaccess",
    } <= EMPTY_IS_VALUE
    assert {"rootid", "catalogfile", "macrofile", "rulesetfile", "timestamp"} <= NOT_INHERITED
    assert "expiration" not in EMPTY_IS_VALUE | NOT_INHERITED
    assert len(ATTRIBUTES) == 69  # every row of §9
