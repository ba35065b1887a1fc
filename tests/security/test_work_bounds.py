"""Work bounds checked before the work (issue 8.6): macro expansion, text-layer area, printRes.

Each hostile request must answer a clear error (its kind; the detail at ErrorDetail 2) in well
under a second; the timings are asserted with a margin for a loaded test machine.
"""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image

from imageserving.protocol.query import MAX_EXPANDED_TOKENS

LEVELS, FANOUT = 16, 10  # 10^16 tokens if expanded: the macro bomb


def _macro_bomb() -> str:
    rows = ["Name\tDefinition"]
    for level in range(LEVELS - 1):
        rows.append(f"m{level}\t" + "&".join([f"$m{level + 1}$"] * FANOUT))
    rows.append(f"m{LEVELS - 1}\twid=100")
    rows.append("big\t" + "&".join(["op_brightness=0"] * 150))  # 150 tokens: a large but honest preset
    return "\n".join(rows) + "\n"


@pytest.fixture
def bounded(bucket):
    root, write, make = bucket
    write(
        {
            "catalogs/bomb.ini": "RootId=bomb\nRootPath=sample/\nCatalogFile=bomb/images.txt\n"
            "MacroFile=bomb/macros.txt\nDefaultImage=\nErrorImage=\nErrorDetail=2\n",
            "catalogs/bomb/macros.txt": _macro_bomb(),
            "catalogs/bomb/images.txt": "Id\tPath\tModifier\tPrintResolution\n"
            "boom\trose.jpg\t$m0$\t\n"
            "big\trose.jpg\t$big$\t\n"
            "dpi\trose.jpg\t\t99999999999\n",
            "catalogs/wild.ini": "RootId=wild\nRootPath=sample/\nPrintResolution=99999999999\nErrorDetail=2\n",
        }
    )
    client = make()
    assert client.get("/is/image/sample/rose?wid=10").status_code == 200  # warm: catalogs, Pillow
    assert client.get("/is/image/bomb/big?req=exists").status_code == 200  # ... and bomb's data files
    return client


def _timed(client, url):
    start = time.perf_counter()
    r = client.get(url)
    return r, time.perf_counter() - start


def _refused(r, kind: str, words: str):
    assert r.status_code == 403, (r.status_code, r.text[:300])
    assert r.headers["x-is-error"] == kind
    assert words in r.text  # ErrorDetail 2 says which bound


@pytest.mark.parametrize(
    "url",
    [
        "/is/image/bomb/rose?$m0$",  # in the URL
        "/is/image/bomb/boom",  # in a record's Modifier
        "/is/image/bomb/rose?wid=50&layer=1&src=bomb/boom",  # in a layer's source record
        "/is/image/bomb/rose?wid=50&layer=1&src=is{bomb/rose?$m0$}",  # in a nested request
    ],
)
def test_an_exponential_macro_file_is_stopped_while_expanding(bounded, url):
    r, took = _timed(bounded, url)
    _refused(r, "bad_request", f"macros expand to more than {MAX_EXPANDED_TOKENS} tokens")
    assert took < 1.0, took  # ~10-40 ms measured; the margin is for a loaded test machine


def test_the_token_budget_is_shared_by_every_expansion_of_a_request(bounded):
    """One 150-token preset is fine, and so are a few layers of it; 70 layers of it are 10,500
    tokens, each expansion alone under the bound: the request as a whole is refused."""
    assert bounded.get("/is/image/bomb/big?wid=50").status_code == 200
    few = "".join(f"&layer={i}&src=bomb/big" for i in range(1, 4))
    assert bounded.get("/is/image/bomb/rose?wid=50" + few).status_code == 200
    many = "".join(f"&layer={i}&src=bomb/big" for i in range(1, 71))
    r, took = _timed(bounded, "/is/image/bomb/rose?wid=50" + many)
    _refused(r, "bad_request", "macros expand to more than")
    assert took < 1.0, took


def test_a_deep_but_narrow_macro_chain_still_works(bounded):
    r = bounded.get("/is/image/bomb/rose?$m15$&fmt=png")
    assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).width == 100


def _text_layers(n: int, size: str = "4000,4000") -> str:
    return "size=4000,4000&color=ffffff" + "".join(f"&layer={i}&size={size}&text=Layer+{i}" for i in range(1, n + 1))


def test_sixty_text_layers_of_4000x4000_are_refused_before_any_work(bounded):
    r, took = _timed(bounded, "/is/image/bomb?" + _text_layers(60) + "&wid=200&fmt=png")
    _refused(r, "size_limit", "text layers cover 960000000 pixels")
    assert took < 1.0, took  # was 13-25 s (100 layers: the 25 s deadline, 503)


def test_text_layers_within_the_budget_render(bounded):
    r = bounded.get("/is/image/bomb?" + _text_layers(4, "1000,500") + "&wid=200&fmt=png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"


def test_self_sized_text_counts_as_it_is_laid_out(bounded):
    """No size= to sum in advance: each layer's laid-out area joins the budget before the next one."""
    text = "{\\rtf1\\fs1800 WWWWWWWWWWWW}"  # 900 pt: ~ 8,900 x 1,125 pixels, 10 MP each
    layers = "".join(f"&layer={i}&text={text}" for i in range(1, 4))
    r = bounded.get("/is/image/bomb?size=2000,2000&color=ffffff" + layers + "&wid=100&fmt=png")
    _refused(r, "size_limit", "text layers cover")


@pytest.mark.parametrize("value", ["99999999999", "65536", "0", "-72", "1e308"])
def test_print_res_out_of_range_is_refused(bounded, value):
    r, took = _timed(bounded, f"/is/image/bomb/rose?wid=50&fmt=png&printRes={value}")
    _refused(r, "bad_request", "printRes")
    assert took < 1.0, took


@pytest.mark.parametrize("fmt", ["jpeg", "png", "tif"])
def test_print_res_at_the_top_of_the_range_is_written(bounded, fmt):
    r = bounded.get(f"/is/image/bomb/rose?wid=50&fmt={fmt}&printRes=65535")
    assert r.status_code == 200, r.text[:200]
    assert round(Image.open(io.BytesIO(r.content)).info["dpi"][0]) == 65535


@pytest.mark.parametrize("url", ["/is/image/bomb/dpi?wid=50&fmt=png", "/is/image/wild/rose?wid=50&fmt=png"])
def test_an_out_of_range_catalog_print_resolution_falls_back(bounded, url):
    """catalog::PrintResolution / attribute::PrintResolution beyond the headers' range counts as
    not set (was a 500: PNG's pHYs overflowed)."""
    r = bounded.get(url)
    assert r.status_code == 200, r.text[:200]
    assert round(Image.open(io.BytesIO(r.content)).info["dpi"][0]) == 72
