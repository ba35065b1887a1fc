"""Shrink-on-load headroom against the rendering.md §16 budget, on real photographs.

    .venv/bin/python benchmarks/budget.py

§16: against the reference path (full decode → exact-box resample with the resMode's filter) a
shortcut may cost no more than PSNR 40 dB and a 99.9th percentile |Δ| of 8 per channel. The
pipeline decodes a JPEG at the smallest DCT scale (1/8, 1/4, 1/2) that keeps
``pipeline.DRAFT_HEADROOM`` times the reply's resolution. This prints, for each candidate
headroom, the worst PSNR, 99.9th percentile and max |Δ| over every photograph, reply size and
filter below, through the whole app (``fmt=png``: the pixels before encoding), and which is the
smallest headroom inside the budget.

Photographs (all re-saved as q92 JPEG, like an upload): the 12 MP Debian mate-backgrounds
"Elephants" of bench_render.py (landscape, fine texture), scikit-image's ``astronaut`` (a portrait,
512x512) and ``coffee`` and ``motorcycle_left`` (objects; no product-on-white photograph was found
in a Debian or PyPI package: the cup on its saucer is the nearest), taken from the scikit-image
wheel (``pip download --no-deps scikit-image``, data files read from the wheel, nothing
installed). Widths give reductions from 2.4x to 12x. Generated hard edges on white (flat shapes,
a checkerboard, line art) are measured by the budget tests of tests/test_render.py.
"""

from __future__ import annotations

import argparse
import glob
import io
import math
import subprocess
import sys
import zipfile

import bench_render as bench
from mangum import Mangum
from PIL import Image, ImageChops

from imageserving.app import create_app
from imageserving.render import pipeline
from imageserving.settings import Settings

SKIMAGE = bench.CACHE / "skimage"
SKIMAGE_PHOTOS = {"astronaut": "portrait", "coffee": "object (cup)", "motorcycle_left": "object (motorcycle)"}
# Every photograph is cut to multiples of 120 pixels so that each reduction gives whole reply
# pixels on both axes: the reply then maps exactly onto the whole source (a fractional last row
# would be background in the reply and not in the reference, and measure geometry, not decoding).
GRID = 120
REDUCTIONS = (2.4, 3.0, 4.0, 4.8, 6.0, 8.0, 12.0)
CANDIDATES = (1.0, 1.5, 2.0, 2.5)
FILTERS = {"sharp2": bench.LANCZOS, "bicub": Image.Resampling.BICUBIC, "bilin": bench.BILINEAR}
PSNR_MIN, P999_MAX = 40.0, 8


def prepare_photos() -> dict[str, str]:
    """name in the bucket -> what it is; the scikit-image ones when the wheel downloads."""
    bench.prepare_photo()
    bench.prepare_bucket()
    photos = {"budget-photo12": "landscape (Debian mate-backgrounds)"}
    _cut(Image.open(bench.PHOTO), "budget-photo12")
    SKIMAGE.mkdir(parents=True, exist_ok=True)
    wheels = glob.glob(str(SKIMAGE / "scikit_image-*.whl"))
    if not wheels:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "scikit-image", "-d", str(SKIMAGE)],
            capture_output=True,
            text=True,
        )
        wheels = glob.glob(str(SKIMAGE / "scikit_image-*.whl"))
        if not wheels:
            print(f"scikit-image photographs unavailable: {done.stderr.strip()[-200:]}")
            return photos
    with zipfile.ZipFile(wheels[0]) as wheel:
        for name, what in SKIMAGE_PHOTOS.items():
            _cut(Image.open(io.BytesIO(wheel.read(f"skimage/data/{name}.png"))), f"budget-{name}")
            photos[f"budget-{name}"] = f"{what} (scikit-image)"
    for name in photos:
        with Image.open(bench.BUCKET / "images" / f"{name}.jpg") as img:
            photos[name] += f" {img.width}x{img.height}"
    return photos


def _cut(img: Image.Image, name: str) -> None:
    """``img`` centred on a multiple of GRID pixels, as a q92 JPEG in the bucket (once)."""
    dst = bench.BUCKET / "images" / f"{name}.jpg"
    if dst.exists():
        return
    w, h = img.width // GRID * GRID, img.height // GRID * GRID
    left, top = (img.width - w) // 2, (img.height - h) // 2
    img.convert("RGB").crop((left, top, left + w, top + h)).save(dst, quality=92)


def difference(a: Image.Image, b: Image.Image) -> tuple[float, int, int]:
    """(PSNR dB, 99.9th percentile |Δ|, max |Δ|) over R, G and B."""
    hist = ImageChops.difference(a.convert("RGB"), b.convert("RGB")).histogram()
    per_level = [sum(hist[c * 256 + i] for c in range(3)) for i in range(256)]
    total = sum(per_level)
    se = sum(n * i * i for i, n in enumerate(per_level))
    psnr = 10 * math.log10(255**2 * total / se) if se else math.inf
    seen, p999 = 0, 0
    for i, n in enumerate(per_level):
        seen += n
        if seen >= 0.999 * total:
            p999 = i
            break
    return psnr, p999, max(i for i, n in enumerate(per_level) if n)


def _headroom(draft: float, quarter: float) -> None:
    pipeline.DRAFT_HEADROOM, pipeline.QUARTER_SCALE_HEADROOM = draft, quarter


def measure(handler, photos: dict[str, str], candidates=CANDIDATES) -> dict[float | str, list[tuple]]:
    """headroom (one for every DCT scale), then "pipeline" (its own: DRAFT_HEADROOM with
    QUARTER_SCALE_HEADROOM for LANCZOS at 1/4) -> [(photo, width, resMode, psnr, p99.9, max)]."""
    saved = pipeline.DRAFT_HEADROOM, pipeline.QUARTER_SCALE_HEADROOM
    settings = {h: (h, h) for h in candidates} | {"pipeline": saved}
    results: dict[float | str, list[tuple]] = {h: [] for h in settings}
    try:
        for name in photos:
            full = Image.open(bench.BUCKET / "images" / f"{name}.jpg").convert("RGB")
            for reduction in REDUCTIONS:
                width = round(full.width / reduction)
                for mode, flt in FILTERS.items():
                    reference = None
                    for h, pair in settings.items():
                        _headroom(*pair)
                        pixels = bench.decoded(bench.ours(handler, name, f"wid={width}&fmt=png&resMode={mode}")())
                        if reference is None:
                            reference = full.resize(pixels.size, flt)
                        results[h].append((name, width, mode, *difference(pixels, reference)))
    finally:
        _headroom(*saved)
    return results


# Reductions where 2x headroom lands on each DCT scale and 2.5x would not (remaining 2x and 2.4x).
SCALE_REDUCTIONS = {"1/2": (4.0, 4.8), "1/4": (8.0, 9.6), "1/8": (16.0, 19.2)}


def per_scale(handler, photos: dict[str, str]) -> None:
    """At 2x headroom, the worst case of each DCT scale and filter, photographs beside the
    generated hard edges of the budget tests (tests/test_render.py): where QUARTER_SCALE_HEADROOM
    comes from."""
    sys.path.insert(0, str(bench.ROOT / "tests"))
    from test_render import hard_edges

    kinds = dict.fromkeys(photos, "photographs")
    for line_art in (False, True):
        name = f"budget-shapes{'-line-art' if line_art else ''}"
        path = bench.BUCKET / "images" / f"{name}.jpg"
        if not path.exists():
            hard_edges(line_art=line_art).save(path, quality=92)
        kinds[name] = "line art" if line_art else "shapes"
    saved = pipeline.DRAFT_HEADROOM, pipeline.QUARTER_SCALE_HEADROOM
    worst: dict[tuple, tuple] = {}
    try:
        _headroom(2.0, 2.0)
        for name, kind in kinds.items():
            full = Image.open(bench.BUCKET / "images" / f"{name}.jpg").convert("RGB")
            for scale, reductions in SCALE_REDUCTIONS.items():
                for reduction in reductions:
                    width = round(full.width / reduction)
                    for mode, flt in FILTERS.items():
                        pixels = bench.decoded(bench.ours(handler, name, f"wid={width}&fmt=png&resMode={mode}")())
                        psnr, p999, _ = difference(pixels, full.resize(pixels.size, flt))
                        key = (mode, scale, kind)
                        w = worst.get(key, (math.inf, -1, ""))
                        worst[key] = (min(w[0], psnr), max(w[1], p999), w[2] if w[1] >= p999 else f"{name} w={width}")
    finally:
        _headroom(*saved)
    print(f"\nat 2x headroom, per DCT scale (reductions {SCALE_REDUCTIONS}): worst PSNR / 99.9th percentile")
    print(f"{'resMode':8} {'scale':>5} {'photographs':>16} {'shapes':>16} {'line art':>16}")
    for mode in FILTERS:
        for scale in SCALE_REDUCTIONS:
            cells = [worst.get((mode, scale, kind)) for kind in ("photographs", "shapes", "line art")]
            text = [f"{c[0]:6.1f} dB {c[1]:3d}{'' if c[1] <= P999_MAX else '!'}" if c else "-" for c in cells]
            print(f"{mode:8} {scale:>5} {text[0]:>16} {text[1]:>16} {text[2]:>16}")
    print("! = over the percentile; LANCZOS on line art is outside the budget at any headroom under 4x")


def inside(rows) -> bool:
    return all(r[3] >= PSNR_MIN and r[4] <= P999_MAX for r in rows)


def smallest_inside(results: dict[float | str, list[tuple]], mode: str) -> float | None:
    for h in sorted(h for h in results if h != "pipeline"):
        if inside([r for r in results[h] if r[2] == mode]):
            return h
    return None


def print_table(results: dict[float | str, list[tuple]]) -> dict[str, float | None]:
    """The table; returns resMode -> the smallest uniform headroom inside."""
    print(f"{'resMode':8} {'headroom':>8} {'worst PSNR':>10} {'at':>28} {'worst p99.9':>11} {'max|Δ|':>7}  inside §16")
    chosen = {}
    for mode in FILTERS:
        for h, all_rows in results.items():
            rows = [r for r in all_rows if r[2] == mode]
            worst = min(rows, key=lambda r: r[3])
            at = f"{worst[0].removeprefix('budget-')} w={worst[1]}"
            print(
                f"{mode:8} {h if isinstance(h, str) else f'{h:.1f}':>8} {worst[3]:10.2f} {at:>28} "
                f"{max(r[4] for r in rows):11d} {max(r[5] for r in rows):7d}  {'yes' if inside(rows) else 'NO'}"
            )
        chosen[mode] = smallest_inside(results, mode)
    return chosen


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    photos = prepare_photos()
    for name, what in photos.items():
        print(f"{name}: {what}", flush=True)
    # fmt=png replies of the largest sizes are over the default 4.4 MB reply limit.
    settings = Settings.from_env(
        {}, storage="local", local_root=str(bench.BUCKET), catalog_settle_seconds=0, max_response_bytes=100_000_000
    )
    handler = Mangum(create_app(settings), lifespan="off")
    results = measure(handler, photos)
    print(f"\nreductions {', '.join(f'{r:g}x' for r in REDUCTIONS)}; filters {', '.join(FILTERS)}")
    for mode, best in print_table(results).items():
        print(f"{mode}: smallest uniform headroom inside the budget on these photographs {best}")
    print(
        f"the pipeline keeps {pipeline.DRAFT_HEADROOM} (generated hard edges need it at the 1/2 scale, "
        f"tests/test_render.py), {pipeline.QUARTER_SCALE_HEADROOM} for LANCZOS at the 1/4 scale:"
    )
    per_scale(handler, photos)


if __name__ == "__main__":
    main()
