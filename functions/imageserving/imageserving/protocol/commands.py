"""Merging Modifier / URL / PostModifier into the effective command list (protocol.md §3.6-§3.7).

Parts are applied in precedence order, so "later wins" gives Modifier < URL < PostModifier
whatever the position in the URL, while macros (already expanded in place) keep their
position-dependent override. Request attributes (``req``, ``fmt``, ``wid`` …) are single-valued
for the whole request; everything else belongs to the layer selected by the last ``layer=``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import ISError
from .query import Token, decode_value, is_nested, substitute

# Commands that describe the request or the view rather than one layer.
REQUEST_COMMANDS = frozenset(
    """
    req id handler defaultimage cache locale template imageset labelkey message name timeout type
    fmt qlt quantize pscan jpegsize printres iccembed xmpembed icc network bfc effectmask
    wid hei scl fit align bgc rgn rect dpr resmode
""".split()
)
# Values never touched by variable substitution (protocol.md §3.6).
_NO_SUBSTITUTION = frozenset(("layer", "effect"))
# Commands whose bracketed values are nested requests, parsed (and decoded) by their own parser.
_NESTING = frozenset(("src", "mask", "imageset"))


@dataclass
class Commands:
    """The effective commands after merging, variables substituted, values still encoded."""

    request: dict[str, str] = field(default_factory=dict)
    layers: dict[str, dict[str, str]] = field(default_factory=dict)  # layer key -> name -> value
    # ``effect=n`` segments (rendering.md §13): parent layer key -> n -> name -> value. They
    # belong to their parent but never reach its commands.
    effects: dict[str, dict[int, dict[str, str]]] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)

    def add(self, tokens: list[Token]) -> None:
        """Apply one part (a Modifier, the URL, a PostModifier); each part starts on layer comp."""
        layer, effect = "comp", None
        for tok in tokens:
            if tok.kind == "vardef":
                self.variables[tok.name] = tok.value
            elif tok.name == "layer":
                layer, effect = _layer_key(tok.value), None
                self.layers.setdefault(layer, {})
            elif tok.name == "effect":
                # A new segment attached to the current layer, ended by the next layer=/effect=.
                effect = _effect_number(tok.value)
                self.effects.setdefault(layer, {}).setdefault(effect, {})
            elif tok.name in REQUEST_COMMANDS:
                self.request[tok.name] = tok.value
            elif effect is not None:
                self.effects[layer][effect][tok.name] = tok.value
            else:
                self.layers.setdefault(layer, {})[tok.name] = tok.value

    def raw(self, name: str) -> str | None:
        return self.request.get(name)

    def value(self, name: str) -> str | None:
        """A request command's decoded value with variables substituted (None when absent)."""
        raw = self.request.get(name)
        return None if raw is None else resolve_value(name, raw, self.variables)

    def decoded_request(self) -> dict[str, str]:
        return {n: resolve_value(n, v, self.variables) for n, v in self.request.items()}

    def decoded_layer(self, *keys: str) -> dict[str, str]:
        """Decoded commands of the given layers, later keys overriding earlier ones."""
        out: dict[str, str] = {}
        for key in keys:
            for n, v in self.layers.get(key, {}).items():
                out[n] = resolve_value(n, v, self.variables)
        return out

    def decoded_effects(self, *keys: str) -> dict[int, dict[str, str]]:
        """Decoded commands of the effect layers attached to the given layers, by effect number."""
        out: dict[int, dict[str, str]] = {}
        for key in keys:
            for number, cmds in self.effects.get(key, {}).items():
                mine = out.setdefault(number, {})
                mine.update((n, resolve_value(n, v, self.variables)) for n, v in cmds.items())
        return dict(sorted(out.items()))


def resolve_value(name: str, raw: str, variables: dict[str, str]) -> str:
    """Substitute variables, then decode once — nested requests stay encoded for their own parser."""
    value = raw if name in _NO_SUBSTITUTION else substitute(raw, variables)
    if name in _NESTING and is_nested(value):
        return value
    return decode_value(value)


# ASCII digits only: str.isdigit() also takes "²", which int() refuses.
_INTEGER = re.compile(r"-?[0-9]+")


def _layer_key(value: str) -> str:
    key = decode_value(value).split(",", 1)[0].strip().lower()
    if key == "comp" or (_INTEGER.fullmatch(key) and int(key) >= 0):
        return "comp" if key == "comp" else str(int(key))
    if key:
        return key  # a named layer reference, resolved by the compositor
    raise ISError("bad_request", f"layer={value}")


def _effect_number(value: str) -> int:
    text = decode_value(value).strip()
    if not _INTEGER.fullmatch(text) or int(text) == 0:
        raise ISError("bad_request", f"effect={value}: expected an integer other than 0")
    return int(text)
