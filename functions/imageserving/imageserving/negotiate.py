"""Smart Imaging's format decision (browser format conversion, ``bfc=``): one pure function.

:func:`negotiate` takes the effective ``fmt`` (a parsed :class:`~.render.formats.OutputFormat`),
whether it came from the URL itself, the ``bfc`` switch, the browser's ``Accept`` (raw, or the
CDN's normalised ``x-is-accept``: ``avif|webp|none``) and the JPEG quality, and says what to
encode. Nothing here reads a request or encodes an image.

What converts (Adobe's ``bfc``: "converting JPEG or PNG images"):

- ``jpeg``/``pjpeg`` (rgb) -> lossy AVIF when the browser takes it and qlt <= 90, else lossy WebP
  when it takes WebP and qlt <= 80, else unchanged. Measured (benchmarks/smart_imaging.py
  --calibrate, 13 photographs at 500 px, SSIM of luma): at the JPEG's SSIM, AVIF is a median 0.75x
  the JPEG's bytes at qlt 80, 0.85x at 90 and 1.04x at 95; WebP 0.95x at 80, 1.04x at 85 and
  1.24x at 90. Above those limits conversion would cost bytes, so it is not tried.
- ``png``/``png-alpha`` -> lossless WebP (``webp``/``webp-alpha``) when the browser takes WebP or
  AVIF: the same visible pixels (libwebp may change the colour under alpha 0), 37-59 % fewer
  bytes on every PNG measured. Never AVIF: Pillow's AVIF writer has no lossless mode, and a
  request for a lossless format must not get a lossy reply.
- Everything else is served as requested: gray/cmyk JPEG (print and masks), ``png8``/``gif``
  (a palette was asked for), the -alpha formats other than ``png-alpha``, and every explicit
  ``fmt=`` in the URL (``explicit=True``: "an explicit fmt=webp|avif|... is never changed", and
  an explicit ``fmt=jpg`` is a request for JPEG too). ``keep_requested=True`` is for requests
  that use something only the requested format carries (``jpegSize=``, ``iccEmbed``/``xmpEmbed``
  with data to embed, ``quantize=``): the caller knows, this module does not parse commands.

Quality. ``Choice.quality`` is what to pass as ``quality=`` to ``codec.encode``. For AVIF it is
qlt itself: since the encoder fix, codec maps qlt onto libavif's scale (``codec.AVIF_QUALITY``)
for every AVIF reply, explicit ones included. For lossy WebP it is :func:`webp_quality` (qlt=80 ->
90): libwebp's scale is not libjpeg's either; reaching a q80 JPEG's SSIM took WebP q90 on the
median photograph. Lossless WebP ignores it.

"The converted body must be smaller than the requested format's body would be": ``Choice.compare``
says how. For a JPEG request it is True: encode the JPEG as well and serve the smaller. Measured
at 500 px (smart_imaging.py): the JPEG encode takes 0.6-2.2 ms beside AVIF's 3-40 ms and WebP's
10-28 ms, so the second encode is a small part of the conversion (the rendered pixels are shared),
and it is needed: at qlt=80 the WebP came out larger than the JPEG on 5 of 15 photographs and the
AVIF on 2 (the most textured ones). Those two AVIFs were better pictures than their JPEGs: for
AVIF up to qlt 80, ``Choice.retry_quality`` (qlt - 10) is tried once before falling back; measured
on the two textured photos at qlt 60 and 80 it was smaller than the JPEG every time, at a higher
SSIM (Elephants at qlt 80: 51.8 KB, SSIM 0.968, vs the JPEG's 53.9 KB at 0.942). No WebP retry:
there a larger body happens on smooth photos too, and 10 lower lost SSIM on them.
:func:`encode_choice` runs a choice with the caller's encoder (at most three encodes).
For a PNG request ``compare`` is False: lossless WebP was smaller than
the PNG on all 10 PNGs measured, with and without alpha (0.41-0.63x), while a second PNG encode
costs 8-55 ms.

``Choice.vary`` is True whenever the Accept header decided (even when the answer was "as
requested"): such replies must carry ``Vary: Accept`` for browsers and caches, and behind the
CDN the cache key holds ``x-is-accept`` (edge/viewer-request.js).

:func:`client_hints` reduces a request's headers to those inputs (Accept class, DPR class, slow
network) with the edge function's rules; behind the CDN it reads only the ``x-is-*`` headers,
because the cache key holds nothing else. ``VARY_*`` name the raw headers for ``Vary``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from .render import formats

# Normalised classes, as the CloudFront function writes them into ``x-is-accept``.
AVIF, WEBP, NONE = "avif", "webp", "none"
ACCEPT_CLASSES = (AVIF, WEBP, NONE)

# Above these qlt values the converted reply is larger than the JPEG at equal SSIM (module doc).
AVIF_MAX_QLT = 90
WEBP_MAX_QLT = 80
# An AVIF not smaller than its JPEG marks a textured photo, whose AVIF at the mapped quality is a
# better picture than its JPEG; one more encode 10 qlt lower was smaller than the JPEG at a higher
# SSIM in every such case measured up to qlt 80 (module doc). Not for WebP: there a larger body
# also happens on smooth photos, where 10 lower loses SSIM.
AVIF_RETRY_STEP = 10
AVIF_RETRY_MAX_QLT = 80

# qlt -> libwebp quality: the median over 13 photographs of the lowest WebP quality whose SSIM
# reaches the JPEG's (smart_imaging.py --calibrate), linear in between; only used up to qlt 80.
WEBP_QUALITY = ((1, 1), (50, 67), (60, 77), (70, 83), (75, 87), (80, 90), (85, 93), (90, 97), (95, 100), (100, 100))

_LOSSY_SOURCES = ("jpeg", "pjpeg")
_LOSSLESS_SOURCES = {"png": "webp", "png-alpha": "webp-alpha"}


@cache
def _can(feature: str) -> bool:
    """Whether this Pillow encodes ``feature``: asked on the first negotiation, not at import
    (PIL.features costs the cold start ~9 ms)."""
    from PIL import features

    return bool(features.check(feature))


@dataclass(frozen=True)
class Choice:
    """What to encode. ``format`` is ``requested`` itself when nothing converts."""

    format: formats.OutputFormat
    quality: int  # the ``quality=`` for codec.encode
    converted: bool  # format differs from the requested one
    compare: bool  # also encode the requested format and serve the smaller body
    vary: bool  # the Accept header decided: reply with Vary: Accept
    requested: formats.OutputFormat
    requested_quality: int
    retry_quality: int | None = None  # when the first converted body is not smaller: try this once


@dataclass(frozen=True)
class Encoded:
    """The body to serve, from :func:`encode_choice`."""

    format: formats.OutputFormat
    body: bytes
    requested_bytes: int | None  # the requested format's body size, when it was encoded to compare
    vary: bool = False  # the Accept header decided (Choice.vary)
    requested_format: formats.OutputFormat | None = None

    @property
    def saved(self) -> int | None:
        """Bytes saved against the requested format, when a converted body was compared with it."""
        if self.format is self.requested_format or self.requested_bytes is None:
            return None
        return self.requested_bytes - len(self.body)


def accept_class(accept: str | None) -> str:
    """``avif``, ``webp`` or ``none`` from a raw Accept header or an ``x-is-accept`` value.

    The same rules as edge/viewer-request.js: a media range counts only when named exactly
    (``image/*`` and ``*/*`` promise nothing: curl and old browsers send them) and its q is > 0.
    """
    if not accept:
        return NONE
    value = accept.strip().lower()
    if value in ACCEPT_CLASSES:
        return value
    avif = webp = False
    for media_range in value.split(","):
        params = media_range.split(";")
        kind = params[0].strip()
        if kind not in ("image/avif", "image/webp"):
            continue
        q = 1.0
        for param in params[1:]:
            name, _, number = param.partition("=")
            if name.strip() == "q":
                try:
                    q = float(number)
                except ValueError:
                    q = 0.0
        if not q > 0:
            continue
        if kind == "image/avif":
            avif = True
        else:
            webp = True
    return AVIF if avif else WEBP if webp else NONE


def webp_quality(qlt: int) -> int:
    """The libwebp quality that matches a JPEG of ``qlt`` (``WEBP_QUALITY``, interpolated)."""
    qlt = max(1, min(100, qlt))
    for (q0, w0), (q1, w1) in zip(WEBP_QUALITY, WEBP_QUALITY[1:]):
        if qlt <= q1:
            return round(w0 + (w1 - w0) * (qlt - q0) / (q1 - q0))
    return 100


def negotiate(
    requested: formats.OutputFormat,
    *,
    explicit: bool,
    bfc: bool,
    accept: str | None,
    quality: int,
    keep_requested: bool = False,
) -> Choice:
    """The reply format for ``requested`` (module docstring for the rules and measurements).

    ``explicit``: fmt= was in the URL's own commands (not the default, a preset, a template or
    the catalog). ``bfc``: the effective switch (URL ``bfc=``, else catalog ``Bfc``, else the
    operator's default). ``quality``: the effective JPEG qlt (1-100).
    """
    same = {"requested": requested, "requested_quality": quality}
    unchanged = Choice(requested, quality, converted=False, compare=False, vary=False, **same)
    if not bfc or explicit or keep_requested or requested.pixel_type != "rgb":
        return unchanged
    lossy = requested.name in _LOSSY_SOURCES
    if not lossy and requested.name not in _LOSSLESS_SOURCES:
        return unchanged
    decided = Choice(requested, quality, converted=False, compare=False, vary=True, **same)
    kind = accept_class(accept)
    if kind == NONE:
        return decided
    if lossy:
        if kind == AVIF and _can("avif") and quality <= AVIF_MAX_QLT:
            retry = quality - AVIF_RETRY_STEP if quality <= AVIF_RETRY_MAX_QLT else None
            avif = formats.parse_fmt("avif")
            return Choice(avif, quality, converted=True, compare=True, vary=True, retry_quality=retry, **same)
        if _can("webp") and quality <= WEBP_MAX_QLT:  # an AVIF browser takes WebP too
            webp = formats.parse_fmt("webp")
            return Choice(webp, webp_quality(quality), converted=True, compare=True, vary=True, **same)
        return decided
    if not _can("webp"):
        return decided
    target = formats.parse_fmt(_LOSSLESS_SOURCES[requested.name] + ",,lossless")
    return Choice(target, quality, converted=True, compare=False, vary=True, **same)


def encode_choice(choice: Choice, encode) -> Encoded:
    """Run ``choice``: ``encode(fmt, quality) -> bytes`` is the caller's encoder (codec.encode with
    the request's other options). At most three encodes, only for textured JPEG photos (module doc).
    """
    same = {"vary": choice.vary, "requested_format": choice.requested}
    if not choice.converted:
        return Encoded(choice.format, encode(choice.format, choice.quality), None, **same)
    body = encode(choice.format, choice.quality)
    if not choice.compare:
        return Encoded(choice.format, body, None, **same)
    original = encode(choice.requested, choice.requested_quality)
    if len(body) >= len(original) and choice.retry_quality is not None:
        body = encode(choice.format, choice.retry_quality)
    if len(body) < len(original):
        return Encoded(choice.format, body, len(original), **same)
    return Encoded(choice.requested, original, len(original), **same)


# --------------------------------------------------------------------------------------------
# Client hints: what dpr=on and network=on read (the same rules as edge/viewer-request.js)

DPR_CLASSES = (1.0, 1.5, 2.0, 3.0)
_EDGE_DPR = {"1": 1.0, "1.5": 1.5, "2": 2.0, "3": 3.0}  # x-is-dpr exactly as the edge writes it
# Vary names for replies that used a hint (browsers see the raw headers, never x-is-*).
VARY_ACCEPT = ("Accept",)
VARY_DPR = ("Sec-CH-DPR", "DPR")
VARY_NETWORK = ("ECT", "Downlink", "Save-Data")


@dataclass(frozen=True)
class Hints:
    """The request's negotiation inputs, reduced to the CDN's classes."""

    accept: str  # avif | webp | none
    dpr: float  # one of DPR_CLASSES; 1 without a hint
    slow: bool  # Save-Data, a slow ECT or Downlink < 1 Mbit/s
    from_cdn: bool  # read from x-is-* (the cache key) rather than the raw headers


def _dpr_class(value: str | None) -> float | None:
    try:
        d = float(value or "")
    except ValueError:
        return None
    if not 0 < d <= 16:  # also rejects nan and inf
        return None
    return 1.0 if d < 1.25 else 1.5 if d < 1.75 else 2.0 if d < 2.5 else 3.0


def _slow(headers: dict[str, str]) -> bool:
    if headers.get("save-data", "").strip().lower() == "on":
        return True
    if headers.get("ect", "").strip().lower() in ("slow-2g", "2g", "3g"):
        return True
    try:
        downlink = float(headers.get("downlink", "") or "nan")
    except ValueError:
        return False
    return 0 <= downlink < 1


def client_hints(headers) -> Hints:
    """Hints from a request's headers (any mapping of name -> value, names in any case).

    Behind the CDN the three ``x-is-*`` headers are the whole truth: they are the cache key, and a
    reply must not depend on anything outside it, so the raw hints are then ignored. Without them
    (the API or a local server reached directly) the raw headers are reduced with the same rules;
    there is no device detection then, so a missing DPR hint means 1.
    """
    h = {str(k).lower(): str(v) for k, v in headers.items()}
    accept, dpr, net = h.get("x-is-accept", "").lower(), h.get("x-is-dpr", ""), h.get("x-is-net", "").lower()
    if accept in ACCEPT_CLASSES and dpr in _EDGE_DPR and net in ("slow", "fast"):
        return Hints(accept, _EDGE_DPR[dpr], net == "slow", from_cdn=True)
    raw_dpr = _dpr_class(h.get("sec-ch-dpr")) or _dpr_class(h.get("dpr")) or 1.0
    return Hints(accept_class(h.get("accept")), raw_dpr, _slow(h), from_cdn=False)
