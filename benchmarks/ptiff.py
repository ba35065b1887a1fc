"""Pyramid TIFF sources (issue 11.2): the same 24 MP picture as a JPEG and as PTIFFs, rendered to a
few reply widths through the render pipeline, taking turns run by run; medians in ms and the
ratio to the JPEG.

    .venv/bin/python benchmarks/ptiff.py [--runs 9] [--widths 200,500,1000]

Rows: the JPEG (DCT-scaled decode), PTIFFs with JPEG and Deflate compression (pages halved down
to 256 px, as Pillow writes them with ``save_all``: strips, not tiles), a tiled (256x256) Deflate
PTIFF with its reduced pages marked as such (NewSubfileType 1), as libvips and Scene7 write them,
through tifffile (a dev dependency; the row is left out without it; its JPEG tiles would need
imagecodecs), and the JPEG PTIFF with its levels ignored, which is how every PTIFF was decoded
before (page 0, full resolution).
Input: the 5640x3172 Elephants photograph of Debian's mate-backgrounds (bench_render.py puts it
in benchmarks/.cache) enlarged to 6532x3674 = 24 MP, else a generated picture.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time
from pathlib import Path

from PIL import Image

from imageserving.render import codec, pipeline

CACHE = Path(__file__).resolve().parent / ".cache"
MATE = CACHE / "deb/usr/share/backgrounds/mate/abstract/Elephants_5640x3172.jpg"
SIZE = (6532, 3674)


def picture() -> tuple[Image.Image, str]:
    if MATE.exists():
        return Image.open(MATE).convert("RGB").resize(SIZE, Image.Resampling.BICUBIC), "Elephants 24 MP"
    from bench_render import generated  # noqa: PLC0415 - only without the photograph

    return generated().resize(SIZE, Image.Resampling.BICUBIC), "GENERATED 24 MP"


def ptiff(img: Image.Image, compression: str) -> bytes:
    levels = [img]
    while min(levels[-1].size) > 256:
        levels.append(levels[-1].reduce(2))
    buf = io.BytesIO()
    extra = {"quality": 90} if compression == "jpeg" else {}
    img.save(buf, "TIFF", save_all=True, append_images=levels[1:], compression=compression, **extra)
    return buf.getvalue()


def tiled_ptiff(img: Image.Image) -> bytes | None:
    try:
        import numpy
        import tifffile
    except ImportError:
        return None
    levels = [img]
    while min(levels[-1].size) > 256:
        levels.append(levels[-1].reduce(2))
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as writer:
        for i, level in enumerate(levels):
            writer.write(
                numpy.asarray(level), tile=(256, 256), compression="zlib", subfiletype=1 if i else 0, photometric="rgb"
            )
    return buf.getvalue()


def once(data: bytes, wid: int, flat: bool) -> float:
    job = pipeline.RenderJob("img", data, {}, {"wid": str(wid), "fmt": "jpg", "qlt": "80"})
    levels = codec._pyramid_levels
    if flat:  # the decode before pyramids were read: page 0 only
        codec._pyramid_levels = lambda im: ()
    try:
        start = time.perf_counter()
        pipeline.render(job)
        return (time.perf_counter() - start) * 1000
    finally:
        codec._pyramid_levels = levels


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--widths", default="200,500,1000")
    args = ap.parse_args()
    img, name = picture()
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    contenders = {
        "JPEG q90": (buf.getvalue(), False),
        "PTIFF jpeg": (ptiff(img, "jpeg"), False),
        "PTIFF deflate": (ptiff(img, "tiff_adobe_deflate"), False),
        "PTIFF page 0 only": (ptiff(img, "jpeg"), True),
    }
    tiled = tiled_ptiff(img)
    if tiled is not None:
        contenders = {**dict(list(contenders.items())[:3]), "PTIFF tiled deflate": (tiled, False)} | {
            "PTIFF page 0 only": contenders["PTIFF page 0 only"]
        }
    print(f"{name}; load average {os.getloadavg()[0]:.2f} (2 cores shared); {args.runs} runs, medians")
    sizes = ", ".join(f"{n} {len(d) / 1e6:.1f} MB" for n, (d, _) in contenders.items())
    print(f"sources: {sizes}")
    print(f"{'wid':>5} | " + " | ".join(f"{n:>19}" for n in contenders))
    for wid in (int(w) for w in args.widths.split(",")):
        times: dict[str, list[float]] = {n: [] for n in contenders}
        for data, flat in contenders.values():
            once(data, wid, flat)  # warm-up
        for _ in range(args.runs):
            for n, (data, flat) in contenders.items():
                times[n].append(once(data, wid, flat))
        base = statistics.median(times["JPEG q90"])
        cells = [f"{statistics.median(t):8.1f} ms {statistics.median(t) / base:5.2f}x" for t in times.values()]
        print(f"{wid:>5} | " + " | ".join(cells))


if __name__ == "__main__":
    main()
