"""The decode-memory budget and the render slots (issue 8 item 5).

Hostile sources are generated here, small: the budget is set low through the override
(``decode_budget_bytes``, what IS_DECODE_BUDGET_MB sets) instead of decoding giant images.
Refusals must happen before any pixel is decoded: every source plugin's ``load`` is watched.
"""

from __future__ import annotations

import io
import struct
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import local_client
from PIL import Image

from imageserving.render import budget, codec, pipeline
from imageserving.settings import Settings

MB = 1 << 20
BASE = budget.BASE_BYTES / MB
# Budgets for the 1000x1000 sources (4-19 MB of pixels above BASE): the small one refuses WebP
# and JPEG 2000 and serves a PNG; the large one serves everything.
SMALL, LARGE = BASE + 10, BASE + 30
CATALOG = "RootId=hostile\nRootPath=hostile/\nErrorDetail={detail}\nDefaultImage=\nErrorImage={error_image}\n"


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **options)
    return buf.getvalue()


def _gradient(size: int, mode: str = "RGB") -> Image.Image:
    g = Image.linear_gradient("L").resize((size, size))
    if mode == "L":
        return g
    bands = [g, g.transpose(Image.Transpose.ROTATE_90), g.transpose(Image.Transpose.FLIP_TOP_BOTTOM)]
    if mode == "RGBA":
        bands.append(g.transpose(Image.Transpose.ROTATE_180))
    return Image.merge(mode, bands)


def _png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def sources() -> dict[str, bytes]:
    """Hostile sources, 1000-2000 pixels a side (each under 30 ms to make)."""
    rgb = _gradient(1000)
    gray16 = _gradient(1000, "L").convert("I").point(lambda v: v * 257).convert("I;16")
    return {
        "webp": _save(rgb, "WEBP", lossless=True, method=0),
        "black.webp": _save(Image.new("RGB", (2000, 2000)), "WEBP", lossless=True, method=0),  # ~40 bytes
        "jp2": _save(rgb, "JPEG2000"),
        "avif": _save(rgb, "AVIF", quality=50, speed=10),
        "png": _save(rgb, "PNG", compress_level=1),
        "rgba.png": _save(_gradient(1000, "RGBA"), "PNG", compress_level=1),
        "gray16.png": _save(gray16, "PNG"),
        "tif": _save(rgb, "TIFF"),
        "jpg": _save(_gradient(2000), "JPEG", quality=80),
        "claims60k.png": _png_claiming(60000, 60000),
        "small.png": _save(_gradient(64), "PNG"),
    }


@pytest.fixture
def serve(tmp_path: Path, sources):
    """``serve(budget_mb, **settings)`` -> a client of a bucket holding ``sources`` under hostile/."""

    def make(budget_mb: float | None, *, detail: int = 2, error_image: str = "", **overrides):
        (tmp_path / "catalogs").mkdir(exist_ok=True)
        (tmp_path / "catalogs" / "default.ini").write_text("RootId=\nDefaultImage=\nErrorDetail=0\n")
        (tmp_path / "catalogs" / "hostile.ini").write_text(CATALOG.format(detail=detail, error_image=error_image))
        images = tmp_path / "images" / "hostile"
        images.mkdir(parents=True, exist_ok=True)
        for name, data in sources.items():
            (images / name).write_bytes(data)
        limit = None if budget_mb is None else int(budget_mb * MB)
        return local_client(tmp_path, decode_budget_bytes=limit, **overrides)

    return make


@pytest.fixture
def loads(monkeypatch) -> list[str]:
    """Classes of the source images whose pixels were decoded (every plugin's load() watched)."""
    from PIL import (
        BmpImagePlugin,
        GifImagePlugin,
        ImageFile,
        Jpeg2KImagePlugin,
        JpegImagePlugin,
        MpoImagePlugin,
        PngImagePlugin,
        PsdImagePlugin,
        TiffImagePlugin,
        WebPImagePlugin,
    )

    seen: list[str] = []
    classes = [
        ImageFile.ImageFile,
        BmpImagePlugin.BmpImageFile,
        GifImagePlugin.GifImageFile,
        Jpeg2KImagePlugin.Jpeg2KImageFile,
        JpegImagePlugin.JpegImageFile,
        MpoImagePlugin.MpoImageFile,
        PngImagePlugin.PngImageFile,
        PsdImagePlugin.PsdImageFile,
        TiffImagePlugin.TiffImageFile,
        WebPImagePlugin.WebPImageFile,
    ]
    for cls in classes:
        if "load" not in cls.__dict__:
            continue
        original = cls.__dict__["load"]

        def load(self, _original=original):
            seen.append(type(self).__name__)
            return _original(self)

        monkeypatch.setattr(cls, "load", load)
    return seen


def _estimate_mb(data: bytes, size: tuple[int, int] | None = None) -> float:
    src = codec.open_source(data, max_pixels=10**9)
    return budget.estimate(src.format, src.mode, size or src.size, alpha=src.has_alpha, data_bytes=len(data)) / MB


# ---------------------------------------------------------------------------- the estimate
def test_estimates_follow_the_measured_decoder_costs(sources):
    px = 1000 * 1000 / MB
    base = budget.BASE_BYTES / MB
    # PNG and TIFF decode into Pillow's 4-byte RGB buffer; the TIFF's own bytes count too.
    assert _estimate_mb(sources["png"]) == pytest.approx(base + 4 * px, abs=0.1 + len(sources["png"]) / MB)
    assert _estimate_mb(sources["tif"]) == pytest.approx(base + 4 * px + len(sources["tif"]) / MB, abs=0.01)
    # Alpha adds the premultiplied copy; 16-bit gray its I/I/L conversion chain; WebP libwebp's
    # canvases; JPEG 2000 OpenJPEG's 32-bit samples.
    assert _estimate_mb(sources["rgba.png"]) == pytest.approx(base + 8 * px, abs=0.1)
    assert _estimate_mb(sources["gray16.png"]) == pytest.approx(base + 10 * px, abs=0.1)
    assert _estimate_mb(sources["webp"]) == pytest.approx(base + 16 * px, abs=0.1)
    assert _estimate_mb(sources["jp2"]) == pytest.approx(base + 19 * px, abs=0.1)
    assert _estimate_mb(sources["avif"]) == pytest.approx(base + 9 * px, abs=0.1)


def test_budget_derives_from_the_function_memory_with_an_override():
    lam = Settings.from_env({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769"})
    assert lam.decode_budget_bytes == budget.budget_for(1769) == int((1769 - 256) * 0.6 * MB)
    assert lam.render_slots == 1  # Lambda: one request per process anyway
    assert Settings.from_env({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "3008"}).decode_budget_bytes > lam.decode_budget_bytes
    assert Settings.from_env({}).decode_budget_bytes == lam.decode_budget_bytes  # local: the template's 1769
    override = Settings.from_env({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769", "IS_DECODE_BUDGET_MB": "300"})
    assert override.decode_budget_bytes == 300 * MB
    assert Settings.from_env({"IS_DECODE_BUDGET_MB": "off"}).decode_budget_bytes is None
    with pytest.raises(ValueError):
        Settings.from_env({"IS_DECODE_BUDGET_MB": "-5"})
    assert Settings.from_env({"IS_RENDER_SLOTS": "3"}).render_slots == 3
    assert Settings.from_env({"IS_RENDER_SLOTS": "off"}).render_slots == 0


def test_render_slots_are_sized_from_cores_and_memory():
    assert budget.render_slots(900 * MB, memory_mb=24000, cpus=2) == 4  # cores decide
    assert budget.render_slots(900 * MB, memory_mb=4000, cpus=8) == 2  # half the memory in budgets
    assert budget.render_slots(900 * MB, memory_mb=1769, cpus=1) == 1
    assert budget.render_slots(None, memory_mb=1000, cpus=3) == 6


# ---------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("name", ["webp", "jp2", "avif", "png", "rgba.png", "gray16.png", "tif"])
def test_what_would_not_fit_is_refused_before_decoding(serve, loads, sources, name):
    """Just under its estimate a source is refused unread; just over, served (at full size: no
    shrink-on-load)."""
    need = _estimate_mb(sources[name])
    r = serve(need - 0.5).get(f"/is/image/hostile/{name}?wid=1000")
    assert r.status_code == 403, r.text
    assert r.headers["X-IS-Error"] == "size_limit"
    assert "over the decode budget" in r.text
    assert loads == [], f"{name} was decoded before being refused"
    assert serve(need + 0.5).get(f"/is/image/hostile/{name}?wid=1000").status_code == 200
    assert loads


def test_a_tiny_webp_bomb_is_refused_in_no_time(serve, loads, sources):
    assert len(sources["black.webp"]) < 200  # 2000x2000 pixels
    client = serve(SMALL)
    start = time.perf_counter()
    r = client.get("/is/image/hostile/black.webp?wid=100")
    assert time.perf_counter() - start < 0.5
    assert r.status_code == 403 and r.headers["X-IS-Error"] == "size_limit"
    assert loads == []


def test_a_header_claiming_billions_of_pixels_is_refused_unread(serve, loads):
    r = serve(SMALL).get("/is/image/hostile/claims60k.png?wid=100")
    assert r.status_code == 403 and r.headers["X-IS-Error"] == "size_limit"
    assert loads == []


def test_jpeg_shrink_on_load_is_what_counts(serve, loads, sources):
    """A 2000x2000 JPEG needs 15 MB of pixels in full; drafted to 1/8 for a small reply, 0.25 MB."""
    assert _estimate_mb(sources["jpg"]) > SMALL > _estimate_mb(sources["jpg"], (250, 250))
    client = serve(SMALL)
    assert client.get("/is/image/hostile/jpg?wid=100").status_code == 200
    assert "JpegImageFile" in loads
    loads.clear()
    r = client.get("/is/image/hostile/jpg?wid=1500")  # no DCT scaling: the full 2000x2000
    assert r.status_code == 403 and r.headers["X-IS-Error"] == "size_limit"
    assert loads == []


def test_layers_and_nested_sources_count_too(serve, loads, sources):
    assert _estimate_mb(sources["webp"]) > SMALL and _estimate_mb(sources["jp2"]) > SMALL
    client = serve(SMALL)
    layered = "/is/image/hostile/small.png?wid=100&layer=1&src=webp&size=50,50"
    r = client.get(layered)
    assert r.status_code == 403 and "decode budget" in r.text, r.text
    assert "WebPImageFile" not in loads  # layer 0 was drawn, layer 1 refused unread
    loads.clear()
    nested = "/is/image/hostile/small.png?wid=100&layer=1&src=is{hostile/jp2?wid=900}&size=50,50"
    r = client.get(nested)
    assert r.status_code == 403 and "decode budget" in r.text, r.text
    assert loads == []  # the nested request renders first
    assert serve(LARGE).get(layered).status_code == 200
    assert serve(LARGE).get(nested).status_code == 200


def test_the_refusal_says_nothing_at_error_detail_0(serve):
    r = serve(SMALL, detail=0).get("/is/image/hostile/webp?wid=100")
    assert r.status_code == 403
    assert "Image size limit exceeded" in r.text
    assert "MB" not in r.text and "WEBP" not in r.text and "hostile" not in r.text


def test_budget_off_decodes_as_before(serve):
    assert serve(None).get("/is/image/hostile/jp2?wid=100").status_code == 200


# ---------------------------------------------------------------------------- the burst
def _burst(client, n: int) -> list:
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: client.get("/is/image/hostile/png?wid=100"), range(n)))


def _slow_renders(monkeypatch, seconds: float) -> dict:
    """Make every render take ``seconds`` and record how many ran at once."""
    state = {"now": 0, "max": 0}
    lock = threading.Lock()
    render = pipeline.render

    def slow(job, options=None):
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        try:
            time.sleep(seconds)
            return render(job, options)
        finally:
            with lock:
                state["now"] -= 1

    monkeypatch.setattr(pipeline, "render", slow)
    return state


def test_a_burst_waits_for_its_slots(serve, monkeypatch):
    state = _slow_renders(monkeypatch, 0.15)
    client = serve(LARGE, render_slots=2, render_wait_s=10)
    replies = _burst(client, 8)
    assert [r.status_code for r in replies] == [200] * 8
    assert state["max"] == 2


def test_a_burst_over_the_wait_gets_a_clean_503(serve, monkeypatch):
    state = _slow_renders(monkeypatch, 0.5)
    client = serve(LARGE, render_slots=1, render_wait_s=0.1, error_image="hostile/small.png")
    replies = _burst(client, 4)
    codes = sorted(r.status_code for r in replies)
    assert codes[0] == 200 and codes[-1] == 503, codes
    busy = [r for r in replies if r.status_code == 503]
    for r in busy:
        assert r.headers["X-IS-Error"] == "overload"
        assert r.headers["Retry-After"] == "1"
        assert r.headers["content-type"].startswith("text/plain")  # never the error image
        assert "no-cache" in r.headers["Cache-Control"] or "no-store" in r.headers["Cache-Control"]
        assert "slot" not in r.text  # ErrorDetail of the default catalog: 0
    assert state["max"] == 1


def test_static_content_is_not_held_by_renders(serve, monkeypatch):
    release = threading.Event()
    render = pipeline.render

    def held(job, options=None):
        release.wait(5)  # the one slot stays taken until the static request has been answered
        return render(job, options)

    monkeypatch.setattr(pipeline, "render", held)
    client = serve(LARGE, render_slots=1, render_wait_s=5)
    with ThreadPoolExecutor(2) as pool:
        images = [pool.submit(client.get, "/is/image/hostile/png?wid=100") for _ in range(2)]
        start = time.perf_counter()
        static = client.get("/is/content/hostile/none.txt")
        # Held by the slot, it would have waited for the 5 s the render holds it.
        answered_while_held = time.perf_counter() - start < 4
        release.set()
        assert [f.result().status_code for f in images] == [200, 200]
    assert static.status_code in (403, 404) and answered_while_held


def test_heif_sources_are_budgeted_too(serve, tmp_path):
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    data = _save(_gradient(1000), "HEIF", quality=50)
    need = _estimate_mb(data)
    assert need == pytest.approx(budget.BASE_BYTES / MB + 7.5 * 1000 * 1000 / MB, abs=0.2)
    client = serve(need - 0.5)
    (tmp_path / "images" / "hostile" / "x.heic").write_bytes(data)
    r = client.get("/is/image/hostile/x.heic?wid=100")
    assert r.status_code == 403 and "over the decode budget" in r.text, r.text
    assert serve(need + 0.5).get("/is/image/hostile/x.heic?wid=100").status_code == 200


@pytest.mark.parametrize("work", ["rotate=30", "op_noise=20"])
def test_full_size_work_of_the_request_counts(serve, loads, sources, work):
    """An arbitrary rotation draws layer 0 in memory, op_noise runs before scaling: both at the
    decoded size, both over a budget the plain request fits."""
    client = serve(_estimate_mb(sources["png"]) + 2)
    assert client.get("/is/image/hostile/png?wid=100").status_code == 200
    loads.clear()
    r = client.get(f"/is/image/hostile/png?wid=100&{work}")
    assert r.status_code == 403 and "over the decode budget" in r.text, r.text
    assert loads == []
    assert serve(LARGE).get(f"/is/image/hostile/png?wid=100&{work}").status_code == 200


def test_jpeg2000_shrinks_on_load(serve, loads, sources):
    """OpenJPEG skips the finest wavelet levels for a small reply (render/j2k.py): a 1000x1000
    JPEG 2000 that cannot be decoded in full under SMALL is served at wid=50 from 1/4 of its side."""
    from imageserving.render import j2k

    data = sources["jp2"]
    assert j2k.decomposition_levels(data) == 5  # OpenJPEG's default: 6 resolutions
    src = codec.open_source(data, max_pixels=10**7)
    decoded = codec.decode(src, scale_hint=0.05)
    assert decoded.image.size == (250, 250) and decoded.reduction == 4
    assert codec.decode(src, scale_hint=None).image.size == (1000, 1000)
    client = serve(SMALL)
    assert client.get("/is/image/hostile/jp2?wid=50").status_code == 200
    r = client.get("/is/image/hostile/jp2?wid=600")
    assert r.status_code == 403 and "over the decode budget" in r.text


def test_jpeg2000_levels_come_from_the_codestream():
    from imageserving.render import j2k

    image = _gradient(600)
    few = _save(image, "JPEG2000", num_resolutions=2)  # one decomposition level
    assert j2k.decomposition_levels(few) == 1
    assert j2k.reduction(few, (600, 600), 0.01) == 1
    assert codec.decode(codec.open_source(few, max_pixels=10**7), scale_hint=0.01).image.size == (300, 300)
    assert j2k.decomposition_levels(b"not a codestream") == 0
    # Where Pillow 13 rounds the reduced size unlike OpenJPEG (1000/32: 31 vs 32), a level less.
    assert j2k.reduced_size((1000, 1000), 5) == (31, 31)
    assert j2k.reduction(_save(_gradient(1000), "JPEG2000"), (1000, 1000), 0.001) == 4
