"""Command value parsers: numbers, flags, lists, colours (rendering.md §2)."""

from fractions import Fraction

import pytest
from PIL import Image

from imageserving.errors import ISError
from imageserving.protocol.values import (
    Color,
    parse_color,
    parse_flag,
    parse_int,
    parse_ints,
    parse_real,
    parse_reals,
    round_half_up,
    split_list,
)


def bad(call, *args, **kw) -> ISError:
    with pytest.raises(ISError) as e:
        call(*args, **kw)
    assert e.value.kind == "bad_request"
    return e.value


# ------------------------------------------------------------------------------------------ numbers


@pytest.mark.parametrize(
    "x, r",
    [
        (Fraction(1, 2), 1),
        (Fraction(3, 2), 2),
        (Fraction(5, 2), 3),
        (Fraction(-1, 2), 0),
        (Fraction(-3, 2), -1),
        (Fraction(333, 2), 167),
        (Fraction(4999, 10000), 0),
        (7, 7),
    ],
)
def test_round_half_up(x, r):
    assert round_half_up(x) == r


@pytest.mark.parametrize(
    "text, n",
    [("10", 10), ("+10", 10), ("-3", -3), ("0", 0), ("007", 7), ("200.0", 200), ("200.", 200), ("-4.000", -4)],
)
def test_parse_int_accepts(text, n):
    assert parse_int(text, cmd="wid") == n


@pytest.mark.parametrize(
    "text", ["200.5", "1e3", "0x10", " 10", "10 ", "", "abc", "1,2", "--1", ".", "+", "1_000", "∞", "nan", "1/2"]
)
def test_parse_int_rejects(text):
    err = bad(parse_int, text, cmd="wid")
    assert err.detail.startswith(f"wid={text}: ")


def test_overlong_numbers_are_bad_requests():
    assert parse_int("1" * 64, cmd="wid") == int("1" * 64)
    assert "too long" in bad(parse_int, "1" * 5000, cmd="wid").detail
    bad(parse_real, "0." + "3" * 100, cmd="scl")
    bad(parse_color, "1" * 5000, cmd="bgc")


@pytest.mark.parametrize("text, n", [("6.0", 6), ("1.5", 2), ("2.5", 3), ("1.49", 1), ("-1.5", -1), ("7", 7)])
def test_parse_int_round_real(text, n):
    assert parse_int(text, cmd="op_usm", round_real=True) == n


def test_parse_int_bounds_are_inclusive():
    assert parse_int("1", cmd="wid", lo=1) == 1
    assert parse_int("100", cmd="qlt", lo=1, hi=100) == 100
    assert "at least 1" in bad(parse_int, "0", cmd="wid", lo=1).detail
    assert "at most 100" in bad(parse_int, "101", cmd="qlt", lo=1, hi=100).detail


@pytest.mark.parametrize(
    "text, x",
    [
        (".5", Fraction(1, 2)),
        ("5.", Fraction(5)),
        ("0.5", Fraction(1, 2)),
        ("-2.25", Fraction(-9, 4)),
        ("+.1", Fraction(1, 10)),
        ("3", Fraction(3)),
    ],
)
def test_parse_real_is_exact(text, x):
    value = parse_real(text, cmd="scl")
    assert value == x and isinstance(value, Fraction)


@pytest.mark.parametrize("text", ["1e2", "1.2.3", "", "-", "0x1", "1,5", "inf", " 1"])
def test_parse_real_rejects(text):
    bad(parse_real, text, cmd="scl")


def test_parse_real_bounds():
    assert parse_real("-1", cmd="align", lo=-1, hi=1) == -1
    bad(parse_real, "-1.01", cmd="align", lo=-1, hi=1)
    bad(parse_real, "1.001", cmd="align", lo=-1, hi=1)
    assert "greater than 0" in bad(parse_real, "0", cmd="scl", positive=True).detail
    bad(parse_real, "-0.5", cmd="scl", positive=True)
    assert parse_real("0.001", cmd="scl", positive=True) == Fraction(1, 1000)


@pytest.mark.parametrize(
    "text, flag",
    [("0", False), ("1", True), ("true", True), ("FALSE", False), ("On", True), ("off", False), ("TRUE", True)],
)
def test_parse_flag(text, flag):
    assert parse_flag(text, cmd="iccembed") is flag


@pytest.mark.parametrize("text", ["2", "yes", "", "-1", "1.0", "o"])
def test_parse_flag_rejects(text):
    assert bad(parse_flag, text, cmd="op_sharpen").detail.startswith(f"op_sharpen={text}:")


def test_lists():
    assert parse_ints("1,-2", 2, cmd="pos") == (1, -2)
    assert parse_ints("0,0,10,10,3", (4, 5), cmd="x") == (0, 0, 10, 10, 3)
    assert parse_reals("0.5,-.5", 2, cmd="anchorn") == (Fraction(1, 2), Fraction(-1, 2))
    assert parse_reals("1,2", 2, cmd="x", positive=True) == (1, 2)
    assert split_list("a,b", (1, 2), cmd="fit") == ["a", "b"]
    assert "expected 2 comma-separated values, got 3" in bad(parse_ints, "1,2,3", 2, cmd="pos").detail
    assert "expected 4 or 5" in bad(parse_ints, "1,2,3", (4, 5), cmd="rect").detail
    bad(parse_ints, "1,,2", 3, cmd="x")
    bad(parse_ints, "1,2.5", 2, cmd="x")
    bad(parse_ints, "1,-2", 2, cmd="x", lo=0)
    bad(parse_reals, "1,0", 2, cmd="x", positive=True)
    bad(parse_reals, "1;2", 2, cmd="x")


# ------------------------------------------------------------------------------------------ colours


@pytest.mark.parametrize(
    "text, kind, comps, alpha, source",
    [
        # §2.3 table, one row per form
        ("50g", "gray", (128,), 255, False),
        ("50,75g", "gray", (128,), 191, False),
        ("100", "gray", (255,), 255, False),
        ("0x80", "gray", (128,), 255, False),
        ("0X70G", "gray", (0x70,), 255, False),
        ("0xddeeg", "gray", (0xDD,), 0xEE, False),
        ("214,245,130", "rgb", (214, 245, 130), 255, False),
        ("0,100,200,200r", "rgb", (0, 100, 200), 200, False),
        ("ffffff", "rgb", (255, 255, 255), 255, False),
        ("0x010203", "rgb", (1, 2, 3), 255, False),
        ("a0b1c2d3r", "rgb", (0xA0, 0xB1, 0xC2), 0xD3, False),
        ("94,11,50,33k", "cmyk", (240, 28, 128, 84), 255, False),
        ("38393A3bK", "cmyk", (0x38, 0x39, 0x3A, 0x3B), 255, False),
        ("0x0a0b0C0d0eks", "cmyk", (10, 11, 12, 13), 14, True),
        # more of the grammar
        ("94,11,50,33,50k", "cmyk", (240, 28, 128, 84), 128, False),
        ("0a0b0c0d0ek", "cmyk", (10, 11, 12, 13), 14, False),
        ("0x38393a3bk", "cmyk", (0x38, 0x39, 0x3A, 0x3B), 255, False),
        ("ffffffs", "rgb", (255, 255, 255), 255, True),
        ("0x80808080", "rgb", (128, 128, 128), 128, False),
        ("AbCdEfR", "rgb", (0xAB, 0xCD, 0xEF), 255, False),
        ("1,2,3rs", "rgb", (1, 2, 3), 255, True),
        ("50s", "gray", (128,), 255, True),
        ("50gs", "gray", (128,), 255, True),
        ("0x80gs", "gray", (128,), 255, True),
        ("50.5", "gray", (129,), 255, False),  # percentages may be reals
        ("0,0", "gray", (0,), 0, False),  # two decimals: gray + alpha
        ("1,2,3,4", "rgb", (1, 2, 3), 4, False),  # four decimals: RGBA
        ("0", "gray", (0,), 255, False),
        ("255.0,0,0", "rgb", (255, 0, 0), 255, False),  # integral real is one byte value
        # disambiguation: 6/8 hex digits are hex even when all decimal; hex gray needs 0x
        ("100000", "rgb", (0x10, 0, 0), 255, False),
        ("12345678", "rgb", (0x12, 0x34, 0x56), 0x78, False),
        ("80", "gray", (204,), 255, False),
        ("12345678k", "cmyk", (0x12, 0x34, 0x56, 0x78), 255, False),
    ],
)
def test_parse_color(text, kind, comps, alpha, source):
    assert parse_color(text, cmd="bgc") == Color(kind, comps, alpha, source)


@pytest.mark.parametrize(
    "text",
    [
        "ff",  # hex gray without 0x
        "8080",  # would be hex gray without 0x; as a percentage out of range
        "0x123",  # odd digit count
        "0x80r",  # r needs 6 or 8 digits
        "0x808080g",  # g needs 2 or 4 digits
        "0x38393a3b3c3d",
        "0a0b0c0d0e",  # 10 digits need k
        "1,2,3,4,5",  # five decimals need k
        "1,2,3g",
        "1,2r",
        "1,2,3k",
        "1,2,3,4,5,6k",
        "256,0,0",
        "-1,0,0",
        "1.5,2,3",
        "101",
        "-1",
        "50,101g",
        "100,0,0,101k",
        "",
        "s",
        "g",
        "0x",
        "0xs",
        "red",
        "#ffffff",
        "ff ff ff",
        "0x-1",
        "1e2",
        "ffffffsk",
        "12345678g",
    ],
)
def test_parse_color_rejects(text):
    assert bad(parse_color, text, cmd="bgc").detail.startswith(f"bgc={text}:")


# Naive conversions must equal Pillow's Image.convert on a 1x1 image.
_LEVELS = (0, 1, 64, 127, 128, 200, 254, 255)


@pytest.mark.parametrize("c", _LEVELS)
@pytest.mark.parametrize("k", _LEVELS)
def test_cmyk_conversions_match_pillow(c, k):
    color = Color("cmyk", (c, 255 - c, k // 2, k), 77)
    im = Image.new("CMYK", (1, 1), color.components)
    assert color.rgb() == im.convert("RGB").getpixel((0, 0))
    assert color.gray() == im.convert("L").getpixel((0, 0))
    assert color.rgba() == (*color.rgb(), 77)
    assert color.cmyk() == color.components


@pytest.mark.parametrize("r", _LEVELS)
@pytest.mark.parametrize("g", (0, 100, 255))
def test_rgb_and_gray_conversions_match_pillow(r, g):
    rgb = Color("rgb", (r, g, 255 - r))
    im = Image.new("RGB", (1, 1), rgb.components)
    assert rgb.rgb() == rgb.components
    assert rgb.gray() == im.convert("L").getpixel((0, 0))
    assert rgb.cmyk() == im.convert("CMYK").getpixel((0, 0))
    gray = Color("gray", (r,), 9)
    im = Image.new("L", (1, 1), r)
    assert gray.rgb() == im.convert("RGB").getpixel((0, 0))
    assert gray.rgba() == (r, r, r, 9)
    assert gray.gray() == r
    assert gray.cmyk() == im.convert("CMYK").getpixel((0, 0))
