"""imageserving.negotiate: the format decision matrix (formats x Accept x bfc x alpha x explicit fmt),
the quality mapping, and real encodes of what it chooses."""

from __future__ import annotations

import io

import pytest
from browser_accept import BROWSERS
from PIL import Image

from imageserving import negotiate
from imageserving.negotiate import accept_class, webp_quality
from imageserving.render.codec import encode
from imageserving.render.formats import parse_fmt

CHROME = BROWSERS[0][1]
SAFARI_WEBP_ONLY = next(h for name, h, _ in BROWSERS if name.startswith("Safari 16 (macOS 12)"))
CURL = "*/*"


@pytest.mark.parametrize("browser, header, expected", BROWSERS, ids=[b[0] for b in BROWSERS])
def test_accept_class_of_real_browsers(browser, header, expected):
    assert accept_class(header) == expected


@pytest.mark.parametrize("value", ["avif", "webp", "none", " AVIF "])
def test_accept_class_takes_the_normalised_header_as_is(value):
    assert accept_class(value) == value.strip().lower()


def test_accept_class_of_none():
    assert accept_class(None) == "none"


def choose(fmt: str, accept: str | None, *, explicit=False, bfc=True, quality=80, keep=False):
    return negotiate.negotiate(
        parse_fmt(fmt), explicit=explicit, bfc=bfc, accept=accept, quality=quality, keep_requested=keep
    )


# (requested fmt, accept class) -> (served fmt name, compression, compare)
EXPECTED = {
    ("jpeg", "avif"): ("avif", "lossy", True),
    ("jpeg", "webp"): ("webp", "lossy", True),
    ("pjpeg", "avif"): ("avif", "lossy", True),
    ("pjpeg", "webp"): ("webp", "lossy", True),
    ("png", "avif"): ("webp", "lossless", False),
    ("png", "webp"): ("webp", "lossless", False),
    ("png-alpha", "avif"): ("webp-alpha", "lossless", False),
    ("png-alpha", "webp"): ("webp-alpha", "lossless", False),
}
CONVERTIBLE = ("jpeg", "pjpeg", "png", "png-alpha")
NEVER = ("png8", "png8-alpha", "gif", "gif-alpha", "webp", "webp-alpha", "avif", "avif-alpha", "tif", "tif-alpha")
ACCEPTS = {"avif": CHROME, "webp": SAFARI_WEBP_ONLY, "none": CURL}


@pytest.mark.parametrize("fmt", CONVERTIBLE + NEVER)
@pytest.mark.parametrize("kind", ["avif", "webp", "none"])
@pytest.mark.parametrize("bfc", [True, False])
@pytest.mark.parametrize("explicit", [False, True])
def test_matrix(fmt, kind, bfc, explicit):
    requested = parse_fmt(fmt)
    choice = negotiate.negotiate(requested, explicit=explicit, bfc=bfc, accept=ACCEPTS[kind], quality=80)
    eligible = bfc and not explicit and fmt in CONVERTIBLE
    assert choice.vary is eligible  # Accept decided, whatever the answer
    if eligible and (fmt, kind) in EXPECTED:
        name, compression, compare = EXPECTED[(fmt, kind)]
        assert (choice.format.name, choice.format.compression, choice.compare) == (name, compression, compare)
        assert choice.converted
        assert choice.format.alpha is requested.alpha  # alpha formats map to alpha variants
    else:
        assert choice.format is requested
        assert not choice.converted and not choice.compare


@pytest.mark.parametrize("kind", ["avif", "webp"])
def test_normalised_header_decides_like_the_raw_one(kind):
    for fmt in CONVERTIBLE:
        assert choose(fmt, kind) == choose(fmt, ACCEPTS[kind])


@pytest.mark.parametrize("fmt", ["jpeg,gray", "jpeg,cmyk", "png,gray"])
def test_gray_and_cmyk_are_never_converted(fmt):
    choice = choose(fmt, CHROME)
    assert not choice.converted and not choice.vary


def test_keep_requested_wins():
    choice = choose("jpeg", CHROME, keep=True)
    assert not choice.converted and not choice.vary


@pytest.mark.parametrize(
    "quality, avif, webp",
    [(50, "avif", "webp"), (80, "avif", "webp"), (81, "avif", "jpeg"), (90, "avif", "jpeg"), (91, "jpeg", "jpeg")],
)
def test_quality_limits(quality, avif, webp):
    # Above qlt 90 AVIF, above 80 WebP is larger than the JPEG at equal SSIM (negotiate's docstring).
    assert choose("jpeg", CHROME, quality=quality).format.name == avif
    assert choose("jpeg", SAFARI_WEBP_ONLY, quality=quality).format.name == webp
    # An AVIF browser over the AVIF limit is not sent WebP either (WebP's limit is lower).
    if quality > 90:
        assert choose("jpeg", CHROME, quality=quality).vary


def test_png_converts_at_any_quality():
    assert choose("png-alpha", CHROME, quality=100).format.name == "webp-alpha"


def test_quality_passed_to_the_encoder():
    assert choose("jpeg", CHROME, quality=80).quality == 80  # codec maps qlt for AVIF itself
    assert choose("jpeg", SAFARI_WEBP_ONLY, quality=80).quality == webp_quality(80) == 90
    assert choose("jpeg", CURL, quality=72).quality == 72


def test_webp_quality_mapping():
    values = [webp_quality(q) for q in range(1, 101)]
    assert values == sorted(values)
    assert webp_quality(1) == 1 and webp_quality(100) == 100
    assert webp_quality(50) == 67 and webp_quality(75) == 87
    assert webp_quality(-5) == 1 and webp_quality(400) == 100


# --- real encodes of the choices


def _photo() -> Image.Image:
    from pathlib import Path

    src = Image.open(Path(__file__).resolve().parents[1] / "images" / "sample" / "rose.jpg").convert("RGB")
    return src.resize((400, 300), Image.Resampling.LANCZOS)


@pytest.mark.parametrize(
    "accept, mime", [(CHROME, "image/avif"), (SAFARI_WEBP_ONLY, "image/webp"), (CURL, "image/jpeg")]
)
def test_jpeg_choice_encodes_and_beats_the_jpeg(accept, mime):
    img = _photo()
    choice = choose("jpeg", accept)
    assert choice.format.mime == mime
    data = encode(img, choice.format, quality=choice.quality)
    assert Image.open(io.BytesIO(data)).format == choice.format.pillow_format
    if choice.converted:
        assert len(data) < len(encode(img, parse_fmt("jpeg"), quality=80))


@pytest.mark.parametrize("accept", [CHROME, SAFARI_WEBP_ONLY])
def test_png_alpha_becomes_lossless_webp_alpha_with_the_same_visible_pixels(accept):
    img = _photo().convert("RGBA")
    img.putalpha(Image.linear_gradient("L").resize(img.size))
    choice = choose("png-alpha", accept)
    data = encode(img, choice.format, quality=choice.quality)
    back = Image.open(io.BytesIO(data))
    assert back.format == "WEBP" and back.mode == "RGBA"
    png = Image.open(io.BytesIO(encode(img, parse_fmt("png-alpha")))).convert("RGBA")
    # libwebp keeps alpha and every visible pixel; only the colour under alpha 0 may change.
    assert back.getchannel("A").tobytes() == png.getchannel("A").tobytes()
    for matte in ((255, 255, 255), (0, 0, 0)):
        over = [Image.alpha_composite(Image.new("RGBA", img.size, matte + (255,)), im) for im in (back, png)]
        assert over[0].tobytes() == over[1].tobytes()
    assert len(data) < len(encode(img, parse_fmt("png-alpha")))


# --- client hints (the edge-equivalence cases are in test_edge.py)


def test_client_hints_behind_the_cdn_ignore_the_raw_headers():
    from imageserving.negotiate import client_hints

    hints = client_hints({"X-IS-Accept": "webp", "x-is-dpr": "1.5", "x-is-net": "slow", "Accept": "image/avif"})
    assert (hints.accept, hints.dpr, hints.slow, hints.from_cdn) == ("webp", 1.5, True, True)
    hints = client_hints({"x-is-accept": "webp", "x-is-dpr": "1.5", "x-is-net": "slow", "Sec-CH-DPR": "3"})
    assert hints.dpr == 1.5


def test_client_hints_reject_forged_or_partial_cdn_headers():
    from imageserving.negotiate import client_hints

    # A value the edge never writes means the request did not come through it: raw rules apply.
    hints = client_hints({"x-is-accept": "avif", "x-is-dpr": "7", "x-is-net": "fast", "Accept": "*/*"})
    assert (hints.accept, hints.dpr, hints.from_cdn) == ("none", 1.0, False)
    assert not client_hints({"x-is-accept": "avif"}).from_cdn


def test_client_hints_without_any_header():
    from imageserving.negotiate import client_hints

    assert client_hints({}) == negotiate.Hints("none", 1.0, False, from_cdn=False)


# --- encode_choice: compare with the requested format, one AVIF retry, fall back


class FakeEncoder:
    """encode(fmt, quality) with scripted body sizes, recording the calls."""

    def __init__(self, sizes: dict):
        self.sizes, self.calls = sizes, []

    def __call__(self, fmt, quality):
        self.calls.append((fmt.name, quality))
        return b"x" * self.sizes[(fmt.name, quality)]


def test_encode_choice_serves_the_smaller_converted_body():
    choice = choose("jpeg", CHROME, quality=80)
    enc = FakeEncoder({("avif", 80): 700, ("jpeg", 80): 1000})
    got = negotiate.encode_choice(choice, enc)
    assert (got.format.name, len(got.body), got.requested_bytes) == ("avif", 700, 1000)
    assert enc.calls == [("avif", 80), ("jpeg", 80)]


def test_encode_choice_retries_avif_once_then_falls_back():
    choice = choose("jpeg", CHROME, quality=80)
    assert choice.retry_quality == 70
    enc = FakeEncoder({("avif", 80): 1200, ("jpeg", 80): 1000, ("avif", 70): 900})
    got = negotiate.encode_choice(choice, enc)
    assert (got.format.name, len(got.body)) == ("avif", 900)
    enc = FakeEncoder({("avif", 80): 1200, ("jpeg", 80): 1000, ("avif", 70): 1000})
    got = negotiate.encode_choice(choice, enc)
    assert (got.format.name, len(got.body), got.requested_bytes) == ("jpeg", 1000, 1000)
    assert len(enc.calls) == 3


def test_encode_choice_no_retry_for_webp_or_above_qlt_80():
    assert choose("jpeg", SAFARI_WEBP_ONLY, quality=80).retry_quality is None
    assert choose("jpeg", CHROME, quality=85).retry_quality is None
    choice = choose("jpeg", SAFARI_WEBP_ONLY, quality=80)
    enc = FakeEncoder({("webp", 90): 1100, ("jpeg", 80): 1000})
    got = negotiate.encode_choice(choice, enc)
    assert got.format.name == "jpeg" and len(enc.calls) == 2


def test_encode_choice_without_conversion_or_compare_encodes_once():
    enc = FakeEncoder({("jpeg", 80): 1000})
    got = negotiate.encode_choice(choose("jpeg", CURL), enc)
    assert (got.format.name, got.requested_bytes, enc.calls) == ("jpeg", None, [("jpeg", 80)])
    enc = FakeEncoder({("webp-alpha", 80): 400})
    got = negotiate.encode_choice(choose("png-alpha", CHROME), enc)
    assert (got.format.name, got.requested_bytes, len(enc.calls)) == ("webp-alpha", None, 1)


def test_encode_choice_with_the_real_encoder():
    img = _photo()
    choice = choose("jpeg", CHROME)
    got = negotiate.encode_choice(choice, lambda fmt, q: encode(img, fmt, quality=q))
    assert got.format.name in ("avif", "jpeg") and got.requested_bytes is not None
    assert len(got.body) <= got.requested_bytes
