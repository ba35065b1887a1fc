"""Parsers for command values: numbers, flags, lists and colours (rendering.md §2).

Every parser takes the decoded value and the command name and raises
``ISError("bad_request", "<cmd>=<value>: why")`` for anything it cannot read. Reals come back as
exact :class:`~fractions.Fraction` values so that sizes derived from them can be rounded exactly
(rendering.md §0); ``float(x)`` is always available to callers that need a float.

Leniency, following "accept what real clients send" (spec README):

* an integer command accepts a real with no fractional part (``wid=200.0``, ``wid=200.``) — it has
  one sensible reading; ``wid=200.5`` has not and is rejected (rendering.md D19). Callers whose
  command is documented to round reals (the ``op_usm`` threshold) pass ``round_real=True``.
* flags accept ``0/1``, ``false/true`` and ``off/on`` in any case.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from fractions import Fraction
from math import floor

from ..errors import ISError

# Optional sign, digits, optional fraction; no exponent, no whitespace, no hex (§2.1).
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)")
# Longer numbers mean nothing for an image and would reach Python's int-parsing limit.
_MAX_NUMBER_CHARS = 64
_FLAGS = {"0": False, "1": True, "false": False, "true": True, "off": False, "on": True}
_HEX = re.compile(r"[0-9a-f]+")


def _bad(cmd: str, value: str, why: str) -> ISError:
    return ISError("bad_request", f"{cmd}={value}: {why}")


def round_half_up(x: Fraction | int) -> int:
    """``R(x) = floor(x + 1/2)`` (rendering.md §0) — never Python's banker's ``round``."""
    return floor(x + Fraction(1, 2))


def _number(text: str, cmd: str, value: str) -> Fraction:
    if not _NUMBER.fullmatch(text):
        raise _bad(cmd, value, f"{text!r} is not a number" if text else "empty number")
    if len(text) > _MAX_NUMBER_CHARS:
        raise _bad(cmd, value, "number too long")
    return Fraction(text)


def _check_range(
    x: Fraction | int, cmd: str, value: str, lo: Fraction | int | None, hi: Fraction | int | None, positive: bool
) -> None:
    if positive and x <= 0:
        raise _bad(cmd, value, "must be greater than 0")
    if lo is not None and x < lo:
        raise _bad(cmd, value, f"must be at least {lo}")
    if hi is not None and x > hi:
        raise _bad(cmd, value, f"must be at most {hi}")


def _to_int(x: Fraction, cmd: str, value: str, round_real: bool) -> int:
    if x.denominator == 1:
        return x.numerator
    if round_real:
        return round_half_up(x)
    raise _bad(cmd, value, "an integer is required")


def parse_int(value: str, *, cmd: str, lo: int | None = None, hi: int | None = None, round_real: bool = False) -> int:
    """One integer in ``[lo, hi]`` (inclusive bounds; ``None`` = unbounded)."""
    n = _to_int(_number(value, cmd, value), cmd, value, round_real)
    _check_range(n, cmd, value, lo, hi, False)
    return n


def parse_real(
    value: str, *, cmd: str, lo: Fraction | int | None = None, hi: Fraction | int | None = None, positive: bool = False
) -> Fraction:
    """One real in ``[lo, hi]``; ``positive=True`` additionally requires ``> 0``."""
    x = _number(value, cmd, value)
    _check_range(x, cmd, value, lo, hi, positive)
    return x


def parse_flag(value: str, *, cmd: str) -> bool:
    """``0``/``1``, ``false``/``true``, ``off``/``on`` (any case)."""
    flag = _FLAGS.get(value.lower())
    if flag is None:
        raise _bad(cmd, value, "expected 0 or 1")
    return flag


def command_flag(cmds: Mapping[str, str], name: str) -> bool:
    """The flag command ``name`` of merged commands (lower-case names): off when absent or empty."""
    return parse_flag(cmds[name], cmd=name) if cmds.get(name) else False


def split_list(value: str, n: int | Collection[int], *, cmd: str) -> list[str]:
    """Split a comma-separated value, requiring ``n`` items (or one of the counts in ``n``)."""
    parts = value.split(",")
    counts = (n,) if isinstance(n, int) else tuple(n)
    if len(parts) not in counts:
        expected = " or ".join(str(c) for c in sorted(counts))
        raise _bad(cmd, value, f"expected {expected} comma-separated values, got {len(parts)}")
    return parts


def parse_ints(
    value: str,
    n: int | Collection[int],
    *,
    cmd: str,
    lo: int | None = None,
    hi: int | None = None,
    round_real: bool = False,
) -> tuple[int, ...]:
    """``n`` comma-separated integers (pairs, rects), each in ``[lo, hi]``."""
    out = []
    for part in split_list(value, n, cmd=cmd):
        x = _to_int(_number(part, cmd, value), cmd, value, round_real)
        _check_range(x, cmd, value, lo, hi, False)
        out.append(x)
    return tuple(out)


def parse_reals(
    value: str,
    n: int | Collection[int],
    *,
    cmd: str,
    lo: Fraction | int | None = None,
    hi: Fraction | int | None = None,
    positive: bool = False,
) -> tuple[Fraction, ...]:
    """``n`` comma-separated reals, each in ``[lo, hi]`` (and ``> 0`` with ``positive``)."""
    out = []
    for part in split_list(value, n, cmd=cmd):
        x = _number(part, cmd, value)
        _check_range(x, cmd, value, lo, hi, positive)
        out.append(x)
    return tuple(out)


# ------------------------------------------------------------------------------------------ colours


@dataclass(frozen=True)
class Color:
    """A colour value (§2.3): pixel type, 0-255 components, 0-255 alpha, ``s`` suffix seen.

    ``kind`` is ``"gray"`` (1 component), ``"rgb"`` (3) or ``"cmyk"`` (4). The conversions are the
    naïve ones of Pillow's ``Image.convert`` (bit-identical), used for ``bgc=`` and whenever no ICC
    profiles are known.
    """

    kind: str
    components: tuple[int, ...]
    alpha: int = 255
    source_space: bool = False

    def rgb(self) -> tuple[int, int, int]:
        if self.kind == "gray":
            v = self.components[0]
            return v, v, v
        if self.kind == "rgb":
            r, g, b = self.components
            return r, g, b
        c, m, y, k = self.components
        nk = 255 - k
        return _cmyk_channel(c, nk), _cmyk_channel(m, nk), _cmyk_channel(y, nk)

    def rgba(self) -> tuple[int, int, int, int]:
        return (*self.rgb(), self.alpha)

    def gray(self) -> int:
        """Luma as Pillow's RGB→L (ITU-R 601-2, 16-bit fixed point)."""
        if self.kind == "gray":
            return self.components[0]
        r, g, b = self.rgb()
        return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16

    def cmyk(self) -> tuple[int, int, int, int]:
        if self.kind == "cmyk":
            c, m, y, k = self.components
            return c, m, y, k
        if self.kind == "gray":
            return 0, 0, 0, 255 - self.components[0]
        r, g, b = self.components
        return 255 - r, 255 - g, 255 - b, 0


def _cmyk_channel(ink: int, nk: int) -> int:
    # Pillow's cmyk2rgb: nk - MULDIV255(ink, nk), MULDIV255 being a rounded division by 255.
    tmp = ink * nk + 128
    return nk - (((tmp >> 8) + tmp) >> 8)


_SUFFIX_KIND = {"g": "gray", "r": "rgb", "k": "cmyk"}
# Hex digit counts allowed per explicit suffix; no suffix allows gray (0x only) and RGB(A).
_HEX_DIGITS = {"g": (2, 4), "r": (6, 8), "k": (8, 10), "": (2, 4, 6, 8)}
# Component counts of the decimal forms per suffix.
_DECIMAL_COUNTS = {"g": (1, 2), "r": (3, 4), "k": (4, 5), "": (1, 2, 3, 4)}


def parse_color(value: str, *, cmd: str) -> Color:
    """A colour in any form of rendering.md §2.3, with its disambiguation rules (D11)."""
    text = value.lower()
    source_space = text.endswith("s")
    if source_space:
        text = text[:-1]
    suffix = text[-1:] if text[-1:] in _SUFFIX_KIND else ""
    if suffix:
        text = text[:-1]
    prefixed = text.startswith("0x")
    digits = text[2:] if prefixed else text
    # A single token of 6 or 8 hex digits is hex even when it happens to be all decimal digits.
    if prefixed or ("," not in text and _HEX.fullmatch(digits) and len(digits) in (6, 8, 10)):
        return _hex_color(digits, suffix, source_space, cmd, value)
    return _decimal_color(text, suffix, source_space, cmd, value)


def _hex_color(digits: str, suffix: str, source_space: bool, cmd: str, value: str) -> Color:
    if not _HEX.fullmatch(digits) or len(digits) not in _HEX_DIGITS[suffix]:
        raise _bad(cmd, value, "not a valid hex colour")
    data = bytes.fromhex(digits)
    if suffix == "k":
        kind, n = "cmyk", 4
    elif len(data) <= 2:
        kind, n = "gray", 1
    else:
        kind, n = "rgb", 3
    alpha = data[n] if len(data) > n else 255
    return Color(kind, tuple(data[:n]), alpha, source_space)


def _decimal_color(text: str, suffix: str, source_space: bool, cmd: str, value: str) -> Color:
    parts = text.split(",")
    if len(parts) not in _DECIMAL_COUNTS[suffix]:
        raise _bad(cmd, value, "not a valid colour")
    numbers = [_number(p, cmd, value) for p in parts]
    kind = _SUFFIX_KIND[suffix] if suffix else ("gray" if len(parts) <= 2 else "rgb")
    if kind == "rgb":
        # Decimal RGB(A) components are bytes, given as integers.
        levels = [_to_int(x, cmd, value, False) for x in numbers]
        for x in levels:
            _check_range(x, cmd, value, 0, 255, False)
    else:
        # Gray and CMYK components, and their alpha, are percentages.
        for x in numbers:
            _check_range(x, cmd, value, 0, 100, False)
        levels = [round_half_up(x * 255 / 100) for x in numbers]
    n = {"gray": 1, "rgb": 3, "cmyk": 4}[kind]
    alpha = levels[n] if len(levels) > n else 255
    return Color(kind, tuple(levels[:n]), alpha, source_space)
