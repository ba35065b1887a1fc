"""Reply geometry: layer-0 transforms, view transform, rect=, dpr, MaxPix, thumbnails, draft (rendering.md)."""

import io
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from imageserving.errors import ISError
from imageserving.render.geometry import (
    LayerRequest,
    ThumbRules,
    ViewRequest,
    draft_scale,
    draft_size,
    parse_flip,
    parse_layer,
    parse_view,
    pillow_rotated_size,
    plan_layer,
    plan_view,
)

BIG, SMALL = (2000, 1000), (100, 50)


def q(query: str) -> dict[str, str]:
    return {n.lower(): v for n, v in (part.split("=", 1) for part in query.split("&"))} if query else {}


def view(
    query: str,
    comp=BIG,
    *,
    default_pix=(300, 300),
    max_pix=(2000, 2000),
    req_type="img",
    thumb=None,
    upscale=True,
    client_dpr=None,
):
    v = parse_view(q(query), "tmb" if thumb else req_type, client_dpr=client_dpr)
    return plan_view(*comp, v, default_pix=default_pix, max_pix=max_pix, thumb=thumb, upscale=upscale)


def geometry(p):
    """(reply size, scaled ROI size, offset of the composite in the view)."""
    return (p.width, p.height), (p.scaled_width, p.scaled_height), p.offset


def raises(kind, call, *args, **kw) -> ISError:
    with pytest.raises(ISError) as e:
        call(*args, **kw)
    assert e.value.kind == kind
    return e.value


# ------------------------------------------------------------------------- §5.2 worked examples


@pytest.mark.parametrize(
    "request_, reply, scaled, offset, content",
    [
        # composite 2000x1000, DefaultPix 300,300
        ("", (300, 150), (300, 150), (0, 0), (0, 0, 300, 150)),
        ("wid=200", (200, 100), (200, 100), (0, 0), (0, 0, 200, 100)),
        ("hei=200", (400, 200), (400, 200), (0, 0), (0, 0, 400, 200)),
        ("wid=200&hei=200", (200, 200), (200, 100), (0, 50), (0, 50, 200, 150)),  # image rows 50-149
        ("wid=200&hei=200&align=0,-1", (200, 200), (200, 100), (0, 0), (0, 0, 200, 100)),  # image rows 0-99
        ("wid=200&hei=200&fit=crop", (200, 200), (400, 200), (-100, 0), (0, 0, 200, 200)),  # columns 100-299 kept
        ("wid=200&hei=200&fit=constrain", (200, 100), (200, 100), (0, 0), (0, 0, 200, 100)),
        ("wid=200&hei=200&fit=wrap", (400, 200), (400, 200), (0, 0), (0, 0, 400, 200)),
        ("scl=2&wid=600&hei=600", (600, 600), (1000, 500), (-200, 50), (0, 50, 600, 550)),  # cols 200-799, 50-px bands
        ("scl=1", (2000, 1000), (2000, 1000), (0, 0), (0, 0, 2000, 1000)),  # equals MaxPix: allowed
        ("wid=333", (333, 167), (333, 167), (0, 0), (0, 0, 333, 167)),  # 166.5 rounds up
        ("rgn=0,0,1000,500&wid=200&hei=200", (200, 200), (200, 100), (0, 50), (0, 50, 200, 200)),
    ],
)
def test_worked_examples(request_, reply, scaled, offset, content):
    p = view(request_)
    assert geometry(p) == (reply, scaled, offset)
    assert p.content_box == content


def test_worked_example_placements():
    # fit=crop: the kept columns 100-299 of the 400-px image are composite columns 500-1499.
    assert view("wid=200&hei=200&fit=crop").source_box((0, 0, 200, 200)) == (500.0, 0.0, 1500.0, 1000.0)
    # scl=2&wid=600&hei=600: scaled columns 200-799 are composite columns 400-1599.
    assert view("scl=2&wid=600&hei=600").source_box((0, 50, 600, 550)) == (400.0, 0.0, 1600.0, 1000.0)
    # rgn: rows 50-149 show the ROI, rows 150-199 composite rows 500-749, rows 0-49 are background.
    p = view("rgn=0,0,1000,500&wid=200&hei=200")
    assert p.source_box((0, 50, 200, 150)) == (0.0, 0.0, 1000.0, 500.0)
    assert p.source_box((0, 150, 200, 200)) == (0.0, 500.0, 1000.0, 750.0)


# ------------------------------------------------------------------------------------ fit= modes

_EXACT_PAD_SMALL = {"reply": (400, 400), "scaled": (100, 50), "offset": (150, 175)}

# mode -> {(composite, upscale): (reply, scaled, offset)} for wid=400&hei=400
FIT_BOTH = {
    "fit": {
        (BIG, 0): ((400, 400), (400, 200), (0, 100)),
        (SMALL, 1): ((400, 400), (400, 200), (0, 100)),
        (SMALL, 0): ((400, 400), (100, 50), (150, 175)),
    },
    "constrain": {
        (BIG, 0): ((400, 200), (400, 200), (0, 0)),
        (SMALL, 1): ((400, 200), (400, 200), (0, 0)),
        (SMALL, 0): ((100, 50), (100, 50), (0, 0)),
    },
    "crop": {
        (BIG, 0): ((400, 400), (800, 400), (-200, 0)),
        (SMALL, 1): ((400, 400), (800, 400), (-200, 0)),
        (SMALL, 0): ((400, 400), (100, 50), (150, 175)),
    },
    "wrap": {
        (BIG, 0): ((800, 400), (800, 400), (0, 0)),
        (SMALL, 1): ((800, 400), (800, 400), (0, 0)),
        (SMALL, 0): ((100, 50), (100, 50), (0, 0)),
    },
    "stretch": {
        (BIG, 0): ((400, 400), (400, 400), (0, 0)),
        (SMALL, 1): ((400, 400), (400, 400), (0, 0)),
        (SMALL, 0): ((400, 400), (100, 50), (150, 175)),
    },
    "hfit": {
        (BIG, 0): ((400, 400), (400, 200), (0, 100)),
        (SMALL, 1): ((400, 400), (400, 200), (0, 100)),
        (SMALL, 0): ((400, 400), (100, 50), (150, 175)),
    },
    "vfit": {
        (BIG, 0): ((400, 400), (800, 400), (-200, 0)),
        (SMALL, 1): ((400, 400), (800, 400), (-200, 0)),
        (SMALL, 0): ((400, 400), (100, 50), (150, 175)),
    },
}
# wid=400 only / hei=400 only: the given side decides; exact modes keep it, constrain/wrap return the image.
FIT_WID = {
    (BIG, 0): ((400, 200), (400, 200), (0, 0)),
    (SMALL, 1): ((400, 200), (400, 200), (0, 0)),
    (SMALL, 0): ((400, 200), (100, 50), (150, 75)),
}
FIT_HEI = {
    (BIG, 0): ((800, 400), (800, 400), (0, 0)),
    (SMALL, 1): ((800, 400), (800, 400), (0, 0)),
    (SMALL, 0): ((800, 400), (100, 50), (350, 175)),
}
UNSCALED_SMALL = ((100, 50), (100, 50), (0, 0))


@pytest.mark.parametrize("mode", sorted(FIT_BOTH))
@pytest.mark.parametrize("comp, up", [(BIG, 0), (BIG, 1), (SMALL, 0), (SMALL, 1)])
@pytest.mark.parametrize("dims", ["wid=400&hei=400", "wid=400", "hei=400"])
def test_fit_modes(mode, comp, up, dims):
    key = (BIG, 0) if comp == BIG else (comp, up)  # a big composite is never enlarged
    if dims == "wid=400&hei=400":
        expected = FIT_BOTH[mode][key]
    else:
        expected = (FIT_WID if dims == "wid=400" else FIT_HEI)[key]
        if key == (SMALL, 0) and mode in ("constrain", "wrap"):
            expected = UNSCALED_SMALL
    p = view(f"{dims}&fit={mode},{up}", comp)
    assert geometry(p) == expected


def test_fit_default_upscale_is_off():
    assert geometry(view("wid=400&hei=400&fit=crop", SMALL)) == FIT_BOTH["crop"][(SMALL, 0)]
    assert geometry(view("wid=400&hei=400&fit=Crop,TRUE", SMALL)) == FIT_BOTH["crop"][(SMALL, 1)]


@pytest.mark.parametrize(
    "query, offset",
    [
        ("wid=400&hei=400&fit=fit&align=-1,-1", (0, 0)),
        ("wid=400&hei=400&fit=fit&align=1,1", (300, 350)),
        ("wid=400&hei=400&fit=stretch&align=1,1", (150, 175)),  # stretch ignores align: centred
        ("wid=400&fit=crop&align=1,-1", (300, 0)),
        ("wid=400&hei=400&fit=constrain&align=1,1", (0, 0)),  # view == image: nothing to align
    ],
)
def test_fit_padding_alignment_small_composite(query, offset):
    assert view(query, SMALL).offset == offset


def test_fit_stretch_changes_aspect_and_upscale_clamps_each_axis():
    p = view("wid=400&hei=20&fit=stretch,0", SMALL)
    assert geometry(p) == ((400, 20), (100, 20), (150, 0))
    assert (p.sx, p.sy) == (1, Fraction(2, 5))


def test_fit_ignored_under_scl():
    assert geometry(view("scl=2&fit=crop")) == ((1000, 500), (1000, 500), (0, 0))
    assert geometry(view("scl=2&wid=600&hei=600&fit=wrap")) == geometry(view("scl=2&wid=600&hei=600"))


# ------------------------------------------------------------------------------ legacy wid/hei, align


def test_legacy_upscaling_and_catalog_switch():
    assert geometry(view("wid=400", SMALL)) == ((400, 200), (400, 200), (0, 0))
    # Switched off: not enlarged, centred whatever align= says (the view equals the image on one axis).
    assert geometry(view("wid=400&align=-1,-1", SMALL, upscale=False)) == ((400, 200), (100, 50), (150, 75))
    assert geometry(view("hei=400", SMALL, upscale=False)) == ((800, 400), (100, 50), (350, 175))
    assert geometry(view("wid=400&hei=400&align=-1,-1", SMALL, upscale=False)) == ((400, 400), (100, 50), (0, 0))


@pytest.mark.parametrize(
    "align, offset",
    [
        ("-1,-1", (0, 0)),
        ("0,0", (0, 50)),
        ("1,1", (0, 100)),
        ("0,1", (0, 100)),
        ("0,0.5", (0, 75)),
        ("0,-0.5", (0, 25)),
        ("1,-1", (0, 0)),
    ],
)
def test_align_sides(align, offset):
    assert view(f"wid=200&hei=200&align={align}").offset == offset


@pytest.mark.parametrize(
    "query, offset",
    [
        ("wid=200&hei=200&fit=crop&align=-1,0", (0, 0)),
        ("wid=200&hei=200&fit=crop&align=1,0", (-200, 0)),
        ("scl=2&wid=600", (-200, 0)),  # scl + wid only: horizontal align picks the crop
        ("scl=2&wid=600&align=-1,1", (0, 0)),
        ("scl=2&wid=600&align=1,1", (-400, 0)),
    ],
)
def test_align_chooses_the_crop(query, offset):
    assert view(query).offset == offset


def test_odd_surplus_goes_to_the_bottom():
    p = view("wid=200&hei=200", (2000, 990))
    assert (p.scaled_height, p.offset) == (99, (0, 50))  # 50 rows above, 51 below
    assert p.content_box == (0, 50, 200, 149)


def test_scl_enlarges_and_pads():
    assert geometry(view("scl=0.5", SMALL)) == ((200, 100), (200, 100), (0, 0))
    assert geometry(view("scl=1&wid=300&hei=300", SMALL)) == ((300, 300), (100, 50), (100, 125))


# ------------------------------------------------------------------------------ DefaultPix / MaxPix


@pytest.mark.parametrize(
    "comp, default_pix, reply",
    [
        (SMALL, (300, 300), (100, 50)),  # never upscales
        (BIG, (300, 300), (300, 150)),
        (BIG, (300, 0), (300, 150)),
        (BIG, (0, 100), (200, 100)),
        (BIG, (0, 0), (2000, 1000)),  # full size
        ((300, 300), (300, 300), (300, 300)),
        ((1001, 3), (500, 500), (500, 1)),  # 1.498 -> 1; dimensions never below 1
        ((3000, 1), (300, 300), (300, 1)),
    ],
)
def test_default_pix(comp, default_pix, reply):
    p = view("", comp, default_pix=default_pix)
    assert (p.width, p.height) == reply and p.offset == (0, 0)


@pytest.mark.parametrize(
    "query, comp, max_pix",
    [
        ("scl=1", BIG, (2000, 2000)),  # equality is allowed
        ("wid=2000&hei=2000", BIG, (2000, 2000)),
        ("hei=5000", (1, 1000), (0, 5000)),  # 0 leaves that axis unlimited
        ("scl=0.1", BIG, (0, 0)),  # 0,0 disables the check
        ("wid=500", (100000, 100000), (2000, 2000)),  # intermediate sizes are not limited
    ],
)
def test_max_pix_allows(query, comp, max_pix):
    view(query, comp, max_pix=max_pix)


@pytest.mark.parametrize(
    "query, comp, max_pix",
    [
        ("wid=2001", BIG, (2000, 2000)),
        ("hei=2001", (1, 1000), (2000, 2000)),  # width 2 but height over: axes checked independently
        ("wid=3000", (1, 1000), (5000, 2000)),
        ("", (3000, 1000), (2000, 2000)),  # DefaultPix 0,0 returns the composite, too big
        ("scl=0.5", BIG, (2000, 2000)),
    ],
)
def test_max_pix_rejects(query, comp, max_pix):
    err = raises("size_limit", view, query, comp, max_pix=max_pix, default_pix=(0, 0))
    assert "MaxPix" in err.detail


# ------------------------------------------------------------------------------ rgn=, rect=


def test_rgn_reaching_outside_the_composite():
    p = view("rgn=-500,0,1000,1000&wid=100&hei=100")
    assert geometry(p) == ((100, 100), (100, 100), (50, 0))
    assert p.content_box == (50, 0, 100, 100)  # columns 0-49 are background
    assert p.source_box((50, 0, 100, 100)) == (0.0, 0.0, 500.0, 1000.0)


def test_rgn_entirely_outside_shows_nothing():
    p = view("rgn=5000,0,100,100&wid=10")
    assert (p.width, p.height) == (10, 10) and p.content_box is None


def test_rgn_drives_default_pix_and_scl():
    assert geometry(view("rgn=100,100,600,600")) == ((300, 300), (300, 300), (-50, -50))
    assert view("rgn=100,100,600,600&scl=1").content_box == (0, 0, 600, 600)


@pytest.mark.parametrize(
    "query, strips, k, axis",
    [
        ("wid=500", [(0, y, 500, 100) for y in (0, 100, 200)], 1, 1),  # view 500x250, last strip overhangs
        ("wid=500", [(0, y, 1000, 128) for y in (0, 128, 256, 384)], 2, 1),  # rect-scaled view 1000x500
        ("wid=300&hei=300&fit=crop", [(x, 0, 64, 450) for x in range(0, 450, 64)], Fraction(3, 2), 0),
        ("wid=200&hei=200&rgn=-100,0,2000,1000", [(x, 0, 48, 200) for x in range(0, 200, 48)], 1, 0),
    ],
)
def test_rect_strips_tile_the_view_exactly(query, strips, k, axis):
    whole = view(f"{query}&rect=0,0,99999,99999,{float(k)}", max_pix=(0, 0))
    assert whole.view_box == (0, 0, *whole.rect_view_size)
    covered, sources = 0, []
    for x, y, w, h in strips:
        p = view(f"{query}&rect={x},{y},{w},{h},{float(k)}")
        assert (p.width, p.height) == (w, h)
        assert p.scale == whole.scale and p.origin == (whole.origin[0] - x, whole.origin[1] - y)
        vb = p.view_box
        covered += (vb[2] - vb[0], vb[3] - vb[1])[axis]
        # each strip shows exactly its slice of the whole view's content, mapped to the same source pixels
        box = p.content_box
        c = whole.content_box
        expected = _clip_box((c[0] - x, c[1] - y, c[2] - x, c[3] - y), w, h)
        assert box == expected
        if box is not None:
            sources.append(p.source_box(box))
            assert sources[-1] == whole.source_box((box[0] + x, box[1] + y, box[2] + x, box[3] + y))
    assert covered == whole.rect_view_size[axis]
    for a, b in zip(sources, sources[1:]):  # neighbours join without gap or overlap
        assert a[axis + 2] == b[axis]


def _clip_box(box, w, h):
    out = (max(box[0], 0), max(box[1], 0), min(box[2], w), min(box[3], h))
    return out if out[0] < out[2] and out[1] < out[3] else None


def test_rect_scaling_and_overhang():
    p = view("wid=200&hei=200&rect=-10,-10,50,50,2")
    assert p.rect_view_size == (400, 400) and p.rect_scale == (2, 2)
    assert p.view_box == (10, 10, 50, 50)  # the window's first 10 rows/columns are outside the view
    assert p.content_box is None  # image rows start at 2*50 = 100
    p = view("wid=200&hei=200&rect=0,90,10,20,2")
    assert p.content_box == (0, 10, 10, 20)


def test_rect_bypasses_max_pix_but_its_window_is_checked():
    assert (view("scl=0.25&rect=0,0,2000,2000").width, view("scl=0.25&rect=0,1024,16,16").height) == (2000, 16)
    raises("size_limit", view, "scl=0.25&rect=0,0,2001,16")
    raises("size_limit", view, "scl=0.25")


def test_rect_with_k_keeps_whole_pixel_view():
    p = view("wid=333&rect=0,0,10,10,0.5")
    assert p.rect_view_size == (167, 84) and p.rect_scale == (Fraction(167, 333), Fraction(84, 167))


# ------------------------------------------------------------------------------ dpr=


@pytest.mark.parametrize(
    "dpr, reply",
    [
        ("on,2", (1632, 1000)),
        ("on,3", (2448, 1500)),
        ("on,4", (3264, 2000)),
        ("ON,1", (816, 500)),
        ("off,3", (816, 500)),
        ("true,2", (1632, 1000)),
        ("on,0.5", (408, 250)),
    ],
)
def test_dpr_reference_table(dpr, reply):
    p = view(f"wid=816&hei=500&dpr={dpr}", (8160, 5000), max_pix=(0, 0))
    assert (p.width, p.height) == reply


@pytest.mark.parametrize("dpr", ["on,3", "on,4", "on,10"])
def test_dpr_overflow_is_clamped_not_rejected(dpr):
    p = view(f"wid=800&hei=500&dpr={dpr}", (8000, 5000))
    assert (p.width, p.height, p.dpr) == (2000, 1250, Fraction(5, 2))
    p = view(f"wid=816&hei=500&dpr={dpr}", (8160, 5000))
    # rendering.md §5: d shrinks uniformly onto the limit, d = 2000/816, and 500*d = 1225.49 rounds
    # to 1225 — the slack below 2000.5 is not used to make it 1226 (the aspect is the view's).
    assert (p.width, p.height, p.dpr) == (2000, 1225, Fraction(2000, 816))


def test_dpr_clamp_when_a_derived_side_rounds_over():
    # The first guess (shrink the overflowing side onto the limit) gives 6x7; the largest fit is 5x6.
    p = view("hei=5&fit=crop,1&dpr=on,1.89", (14, 17), max_pix=(5, 41))
    assert (p.width, p.height) == (5, 6)


@settings(max_examples=80, deadline=None)
@given(
    cw=st.integers(1, 60),
    ch=st.integers(1, 60),
    wid=st.one_of(st.none(), st.integers(1, 40)),
    hei=st.integers(1, 40),
    only_wid=st.booleans(),
    mode=st.sampled_from([None, "fit", "constrain", "crop", "wrap", "stretch", "hfit", "vfit"]),
    d=st.fractions(Fraction(101, 100), 5, max_denominator=100),
    mw=st.integers(1, 80),
    mh=st.integers(1, 80),
)
def test_dpr_clamp_is_the_largest_fit(cw, ch, wid, hei, only_wid, mode, d, mw, mh):
    v = ViewRequest(wid=wid, hei=None if only_wid and wid else hei, fit=mode, upscale=True, dpr=d)
    kw = dict(default_pix=(0, 0), max_pix=(mw, mh))
    try:
        p = plan_view(cw, ch, v, **kw)
    except ISError as e:
        assert e.kind == "size_limit"
        raises("size_limit", plan_view, cw, ch, ViewRequest(wid=v.wid, hei=v.hei, fit=mode, upscale=True), **kw)
        return
    assert p.width <= mw and p.height <= mh and 1 <= p.dpr <= d

    def unlimited(dpr):
        return plan_view(
            cw,
            ch,
            ViewRequest(wid=v.wid, hei=v.hei, fit=mode, upscale=True, dpr=dpr),
            default_pix=(0, 0),
            max_pix=(0, 0),
        )

    full = unlimited(d)
    if full.width <= mw and full.height <= mh:
        assert (p.width, p.height) == (full.width, full.height)
        return
    # d shrunk uniformly onto the limit (§5); below it, only the largest reply that fits
    ratios = [Fraction(m, s) for m, s in ((mw, full.width), (mh, full.height)) if m < s]
    uniform = max(Fraction(1), d * min(ratios))
    shrunk = unlimited(uniform)
    if shrunk.width <= mw and shrunk.height <= mh:
        assert (p.width, p.height) == (shrunk.width, shrunk.height)
        return
    for i in range(1, 41):  # no multiplier in [1, uniform] gives a bigger reply that still fits
        probe = unlimited(1 + (uniform - 1) * i / 40)
        if probe.width <= mw and probe.height <= mh:
            assert probe.width <= p.width and probe.height <= p.height


def test_dpr_details():
    assert (view("wid=816&hei=500&dpr=on", max_pix=(0, 0), client_dpr=2).width) == 1632
    assert (view("wid=816&hei=500&dpr=on", max_pix=(0, 0)).width) == 816
    assert (view("wid=816&hei=500&dpr=on,3", max_pix=(0, 0), client_dpr=2).width) == 2448
    assert (view("wid=816&hei=500&dpr=off", max_pix=(0, 0), client_dpr=2).width) == 816
    assert geometry(view("dpr=on,2")) == geometry(view(""))  # no wid/hei/scl: no effect
    assert (view("scl=4&dpr=on,2").width, view("scl=4&dpr=on,2").dpr) == (1000, 2)  # scl divided by d
    raises("size_limit", view, "wid=3000&dpr=on,2")  # too big without dpr
    assert view("wid=3000&dpr=on,0.5").width == 1500  # d < 1 shrinks
    raises("size_limit", view, "wid=6000&dpr=on,0.5")
    # rect= window does not depend on dpr
    p = view("wid=1000&dpr=on,3&rect=0,0,500,500")
    assert (p.width, p.height, p.view_width) == (500, 500, 3000)


# ------------------------------------------------------------------------------ thumbnails (§7)

TMB = ThumbRules()


@pytest.mark.parametrize(
    "rules, query, comp, geom",
    [
        (TMB, "", BIG, ((100, 100), (100, 50), (0, 25))),  # §7.2 example, fit
        (ThumbRules(thumb_type=1), "", BIG, ((100, 100), (200, 100), (-50, 0))),  # crop: columns 50-149
        (ThumbRules(thumb_type=1, halign=1), "", BIG, ((100, 100), (200, 100), (0, 0))),
        (ThumbRules(thumb_type=1, halign=3), "", BIG, ((100, 100), (200, 100), (-100, 0))),
        (ThumbRules(valign=1), "", BIG, ((100, 100), (100, 50), (0, 0))),
        (ThumbRules(valign=3), "", BIG, ((100, 100), (100, 50), (0, 50))),
        (TMB, "align=-1,-1", BIG, ((100, 100), (100, 50), (0, 25))),  # align= ignored
        (TMB, "wid=200", BIG, ((200, 100), (200, 100), (0, 0))),
        (TMB, "hei=300", BIG, ((100, 300), (100, 50), (0, 125))),
        (ThumbRules(thumb_type=1), "hei=300", BIG, ((100, 300), (600, 300), (-250, 0))),
        (TMB, "", (50, 25), ((100, 100), (100, 50), (0, 25))),  # may enlarge
        (ThumbRules(default_thumb_pix=(100, 0)), "", BIG, ((100, 50), (100, 50), (0, 0))),  # height derived
        (ThumbRules(default_thumb_pix=(0, 100)), "", BIG, ((200, 100), (200, 100), (0, 0))),
        (ThumbRules(default_thumb_pix=(0, 0)), "", (300, 200), ((300, 200), (300, 200), (0, 0))),
        (ThumbRules(thumb_type=3, texture_scale=Fraction(1, 2)), "", BIG, ((100, 100), (1000, 500), (-450, -200))),
        (ThumbRules(thumb_type=3, texture_scale=Fraction(1, 40), valign=1), "", BIG, ((100, 100), (50, 25), (25, 0))),
        (TMB, "scl=10", BIG, ((100, 100), (200, 100), (-50, 0))),
        (ThumbRules(halign=1), "scl=10", BIG, ((100, 100), (200, 100), (0, 0))),
    ],
)
def test_thumbnails(rules, query, comp, geom):
    assert geometry(view(query, comp, thumb=rules)) == geom


def test_thumbnail_errors():
    raises("bad_request", parse_view, q("wid=100&fit=crop"), "tmb")
    raises("size_limit", view, "wid=3000", thumb=TMB)
    for bad_rules in (
        dict(thumb_type=0),
        dict(halign=4),
        dict(valign=0),
        dict(default_thumb_pix=(-1, 0)),
        dict(texture_scale=Fraction(0)),
    ):
        with pytest.raises(ValueError):
            ThumbRules(**bad_rules)


# ------------------------------------------------------------------------------ parse_view


def test_parse_view_values():
    v = parse_view(
        q(
            "wid=200.0&hei=+100&scl=1.5&fit=Crop,on&align=-1,.5&bgc=ff0000&rgn=-5,0,10,20"
            "&rect=0,-16,16,16,2.5&dpr=ON,1.5&network=off"
        )
    )
    assert (v.wid, v.hei, v.scl, v.fit, v.upscale) == (200, 100, Fraction(3, 2), "crop", True)
    assert v.align == (-1, Fraction(1, 2)) and v.bgc.rgb() == (255, 0, 0)
    assert (v.rgn, v.rect, v.rect_scale, v.dpr) == ((-5, 0, 10, 20), (0, -16, 16, 16), Fraction(5, 2), Fraction(3, 2))
    assert parse_view({}) == ViewRequest()
    assert parse_view(q("scl=2&fit=wrap")).fit == "wrap"  # fit with scl only: accepted, ignored


@pytest.mark.parametrize(
    "query",
    [
        "wid=0",
        "wid=-5",
        "wid=abc",
        "wid=1.5",
        "wid=",
        "hei=0",
        "hei=1e3",
        "scl=0",
        "scl=-1",
        "scl=x",
        "wid=1&fit=bogus",
        "wid=1&fit=fit,2",
        "wid=1&fit=fit,1,0",
        "fit=fit",
        "fit=crop,1",
        "wid=1&fit=",
        "align=2,0",
        "align=0",
        "align=-1.5,0",
        "align=0,0,0",
        "align=a,b",
        "rgn=0,0,0,10",
        "rgn=1,2,3",
        "rgn=0,0,10,-1",
        "rgn=0.5,0,10,10",
        "rect=0,0,10,0",
        "rect=0,0,10,10,0",
        "rect=0,0,10,10,-1",
        "rect=0,0,10",
        "rect=0,0,10,10,1,1",
        "dpr=maybe",
        "dpr=on,0",
        "dpr=on,-1",
        "dpr=on,1,2",
        "dpr=2",
        "bgc=xyz",
        "network=maybe",
    ],
)
def test_parse_view_errors(query):
    cmd = query.split("=", 1)[0] if "fit" not in query else "fit"
    assert raises("bad_request", parse_view, q(query)).detail.startswith(cmd + "=")


# ------------------------------------------------------------------------------ layer 0 (§4.2-§4.3)


def layer(query: str, src=(300, 200), comp=False):
    return plan_layer(*src, parse_layer(q(query), comp=comp))


def test_crop_and_crop_n():
    p = layer("crop=10,20,100,50")
    assert (p.crop_box, p.width, p.height, p.overhang, p.transparent) == ((10, 20, 110, 70), 100, 50, False, False)
    assert layer("cropN=0.1,0,0.8,1", BIG).crop_box == (200, 0, 1800, 1000)  # 10 % off left and right
    assert layer("cropN=0,0,1,0.8", BIG).crop_box == (0, 0, 2000, 800)  # 20 % off the bottom
    assert layer("cropN=0.5,0.5,0.0001,0.0001").crop_box == (150, 100, 151, 101)  # never below 1 px
    assert layer("cropn=0.0025,0,0.5,1", (200, 10)).crop_box == (1, 0, 101, 10)  # 0.5 rounds up
    assert layer("").crop_box == (0, 0, 300, 200) and not layer("").transparent


def test_a_zero_crop_size_runs_to_the_edge():
    """crop=coord,size: a 0 in ``size`` is "not constrained" (rendering.md §2.2); storefronts send
    crop=0,0,0,0 for "no crop" (www.jcrew.com/s7-img-facade/…&crop=0,0,0,0&wid=540&hei=540)."""
    assert layer("crop=0,0,0,0").crop_box == layer("").crop_box == (0, 0, 300, 200)
    assert layer("crop=100,50,0,0").crop_box == (100, 50, 300, 200)
    assert layer("crop=-10,0,0,20").crop_box == (-10, 0, 300, 20)
    assert raises("bad_request", layer, "crop=300,0,0,10").kind == "bad_request"  # nothing left


def test_crop_overhang_is_transparent():
    p = layer("crop=-10,-20,100,100", (50, 50))
    assert (p.width, p.height, p.overhang, p.transparent) == (100, 100, True, True)
    assert p.mapping.content_box == (10, 20, 60, 70)
    assert p.mapping.source_box((0, 0, 100, 100)) == (0.0, 0.0, 50.0, 50.0)
    outside = layer("crop=500,500,10,10", (50, 50))
    assert (outside.width, outside.height, outside.mapping.content_box, outside.transparent) == (10, 10, None, True)


def test_later_of_crop_and_crop_n_wins():
    assert parse_layer({"crop": "0,0,5,5", "cropn": "0,0,1,1"}).crop is None
    assert parse_layer({"cropn": "0,0,1,1", "crop": "0,0,5,5"}).crop == (0, 0, 5, 5)
    assert parse_layer({"extendn": "0,0,1,1", "extend": "1,2,3,4"}).extend_n is None


@pytest.mark.parametrize(
    "rotate, size, orientation",
    [
        ("90", (200, 300), "ROTATE_270"),
        ("-90", (200, 300), "ROTATE_90"),
        ("270", (200, 300), "ROTATE_90"),
        ("450", (200, 300), "ROTATE_270"),
        ("180", (300, 200), "ROTATE_180"),
        ("-360", (300, 200), None),
        ("90.0", (200, 300), "ROTATE_270"),
    ],
)
def test_quarter_turns_swap_sizes(rotate, size, orientation):
    p = layer(f"rotate={rotate}")
    assert ((p.width, p.height), p.mapping.orientation, p.transparent) == (size, orientation, False)


def test_extend():
    p = layer("crop=0,0,50,50&extend=5,5,5,5")
    assert (p.width, p.height, p.mapping.content_box, p.transparent) == (60, 60, (5, 5, 55, 55), True)
    p = layer("rotate=90&extendN=0.1,0,0.1,0.05")  # relative to the rotated 200x300
    assert (p.extend, p.width, p.height) == ((20, 0, 20, 15), 240, 315)
    p = layer("extend=-10,0,-20,-1")
    assert (p.width, p.height, p.mapping.content_box, p.transparent) == (270, 199, (0, 0, 270, 199), False)
    assert p.mapping.source_box((0, 0, 270, 199)) == (10.0, 0.0, 280.0, 199.0)
    raises("bad_request", layer, "extend=-150,0,-150,0")
    raises("bad_request", layer, "crop=0,0,10,10&extend=0,-5,0,-5")


def test_comp_flip_acts_after_extend():
    # extend=200,0,0,0&flip=lr on comp: the margin ends up on the right (§3 notes).
    p = layer("extend=200,0,0,0&flip=lr", comp=True)
    assert (p.comp_flip, p.flip, p.mapping.content_box) == ("lr", None, (0, 0, 300, 200))
    p = layer("extend=200,0,0,0&flip=lr")
    assert (p.comp_flip, p.flip, p.mapping.content_box) == (None, "lr", (200, 0, 500, 200))


def test_arbitrary_rotation_plans_pillow_bounding_box():
    p = layer("rotate=30")
    assert p.mapping is None and p.transparent and p.pillow_rotate_angle == -30.0
    assert (p.width, p.height) == Image.new("L", (300, 200)).rotate(-30, expand=True).size
    p = layer("rotate=45&extend=1,1,1,1", (10, 10))
    assert p.rotated_size == Image.new("L", (10, 10)).rotate(-45, expand=True).size == (16, 16)
    assert (p.width, p.height) == (18, 18)


@pytest.mark.parametrize("size", [(300, 200), (17, 9), (1, 1), (2, 7), (640, 480), (1000, 3)])
def test_pillow_rotated_size_matches_pillow(size):
    im = Image.new("L", size)
    for angle in (1, 15, 30, 45, 60, 89.9, 90.5, 135, 200, 300, 359, -30, 33.3, 0.001, 179.99, 90, 270, 180):
        assert pillow_rotated_size(*size, angle) == im.rotate(angle, expand=True).size, angle


def _numbered(w, h):
    im = Image.new("RGBA", (w, h))
    im.putdata([(x * 30, y * 40, (x + y) % 256, 255) for y in range(h) for x in range(w)])
    return im


_TRANSPOSE = {
    "lr": Image.Transpose.FLIP_LEFT_RIGHT,
    "ud": Image.Transpose.FLIP_TOP_BOTTOM,
    "lrud": Image.Transpose.ROTATE_180,
}


def _explicit(src, p):
    """Reference renderer: each step of the layer plan with plain Pillow calls."""
    im = src.crop(p.crop_box)
    if p.flip:
        im = im.transpose(_TRANSPOSE[p.flip])
    im = im.rotate(p.pillow_rotate_angle, expand=True)
    canvas = Image.new("RGBA", (p.width, p.height))
    canvas.paste(im, p.extend[:2])
    return canvas.transpose(_TRANSPOSE[p.comp_flip]) if p.comp_flip else canvas


@pytest.mark.parametrize("crop", ["", "crop=1,1,4,3", "crop=-2,-1,6,4", "crop=3,2,8,8"])
@pytest.mark.parametrize("flip", ["", "flip=lr", "flip=ud", "flip=lrud"])
@pytest.mark.parametrize("rotate", ["", "rotate=90", "rotate=180", "rotate=270"])
@pytest.mark.parametrize(
    "extend, comp", [("", False), ("extend=2,0,1,3", False), ("extend=-1,1,0,-1", True), ("", True)]
)
def test_source_map_matches_step_by_step_rendering(crop, flip, rotate, extend, comp):
    src = _numbered(7, 5)
    p = layer("&".join(filter(None, [crop, flip, rotate, extend])), (7, 5), comp=comp)
    expected = _explicit(src, p)
    m = p.mapping
    fast = Image.new("RGBA", (p.width, p.height))
    if m.content_box is not None:
        x0, y0, x1, y1 = m.content_box
        size = (y1 - y0, x1 - x0) if m.swaps_axes else (x1 - x0, y1 - y0)
        piece = src.resize(size, Image.Resampling.NEAREST, box=m.source_box(m.content_box))
        if m.orientation:
            piece = piece.transpose(Image.Transpose[m.orientation])
        fast.paste(piece, (x0, y0))
    assert fast.tobytes() == expected.tobytes()
    assert p.transparent == (expected.getchannel("A").getextrema()[0] == 0)


def test_view_and_layer_maps_compose_for_the_fast_path():
    # rotate=90 + crop + downscale by exactly 2 with a BOX filter: one resize from the source equals
    # building the composite and then scaling it.
    src = _numbered(40, 24)
    p = layer("crop=4,2,32,20&rotate=90&flip=lr", (40, 24), comp=True)
    v = plan_view(p.width, p.height, parse_view(q("wid=10")), default_pix=(0, 0), max_pix=(0, 0))
    comp = _explicit(src, p)
    expected = Image.new("RGBA", (v.width, v.height))
    expected.paste(comp.resize((v.scaled_width, v.scaled_height), Image.Resampling.BOX), (0, 0))
    region = v.project(p.mapping.content_box)
    box = p.mapping.source_box(v.source_box(region))
    size = (
        (region[3] - region[1], region[2] - region[0])
        if p.mapping.swaps_axes
        else (region[2] - region[0], region[3] - region[1])
    )
    piece = src.resize(size, Image.Resampling.BOX, box=box).transpose(Image.Transpose[p.mapping.orientation])
    fast = Image.new("RGBA", (v.width, v.height))
    fast.paste(piece, region[:2])
    assert (v.width, v.height) == (10, 16) and region == (0, 0, 10, 16)
    assert fast.tobytes() == expected.tobytes()


@pytest.mark.parametrize(
    "cmds",
    [
        {"crop": "0,0,-1,10"},
        {"crop": "1,2,3"},
        {"crop": "a,b,c,d"},
        {"crop": "0,0,10.5,10"},
        {"cropn": "0,0,0,1"},
        {"cropn": "0,0,1,-1"},
        {"cropn": "0,0,1"},
        {"flip": "xy"},
        {"flip": ""},
        {"flip": "lr,ud"},
        {"rotate": "abc"},
        {"rotate": "1e2"},
        {"extend": "1,2,3"},
        {"extend": "1,2,3,4.5"},
        {"extendn": "a,0,0,0"},
    ],
)
def test_parse_layer_errors(cmds):
    name = next(iter(cmds))
    err = raises("bad_request", parse_layer, cmds)
    assert err.detail.lower().startswith(name + "=")


def test_parse_layer_accepts():
    assert parse_layer({"flip": "LRUD", "rotate": "-45.5"}) == LayerRequest(flip="lrud", rotate=Fraction(629, 2))
    assert parse_layer({"flip": "Ud"}, comp=True) == LayerRequest(comp_flip="ud")
    assert parse_layer({"crop": "-5.0,0,10,10", "wid": "x"}).crop == (-5, 0, 10, 10)  # other commands not read
    assert parse_flip("UD") == "ud"


# ------------------------------------------------------------------------------ draft (§16 item 2)


@pytest.mark.parametrize(
    "scale, k",
    [
        (1, 1),
        (2, 1),
        (Fraction(6, 10), 1),
        (0.5, 1),
        (0.26, 1),
        (0.25, 2),
        (0.2, 2),
        (Fraction(1, 8), 4),
        (0.1, 4),
        (0.0625, 8),
        (0.01, 8),
        (Fraction(1, 16), 8),
        (Fraction(1, 15), 4),
    ],
)
def test_draft_scale(scale, k):
    assert draft_scale(scale) == k


@pytest.mark.parametrize(
    "src, scale, size",
    [
        ((4000, 3000), 0.05, (500, 375)),
        ((1001, 601), 0.06, (125, 75)),
        ((10, 4), 0.01, (2, 1)),
        ((1, 1), 0.01, None),
        ((100, 100), 0.6, None),
        ((3, 100), 0.01, (1, 50)),
    ],
)
def test_draft_size(src, scale, size):
    assert draft_size(*src, scale) == size


@pytest.mark.parametrize(
    "src, scale, k", [((1001, 601), 0.06, 8), ((1001, 601), 0.2, 2), ((515, 300), 0.1, 4), ((64, 9), 0.01, 8)]
)
def test_draft_size_makes_pillow_pick_the_planned_factor(src, scale, k):
    buf = io.BytesIO()
    Image.new("RGB", src, (10, 20, 30)).save(buf, "JPEG")
    im = Image.open(io.BytesIO(buf.getvalue()))
    im.draft("RGB", draft_size(*src, scale))
    assert im.size == (-(-src[0] // k), -(-src[1] // k))


def test_view_scale_feeds_draft():
    p = view("wid=200")
    assert p.scale == (Fraction(1, 10), Fraction(1, 10)) and draft_scale(max(p.scale)) == 4
    assert draft_scale(max(view("scl=1").scale)) == 1
