"""Colour-management cost (issue 11.1): the standard workload (12 MP photographic JPEG →
``wid=500&hei=375&fmt=jpg&qlt=80``) through the render pipeline with the same pixels untagged,
sRGB-tagged and Adobe-RGB-tagged, taking turns run by run; medians of wall and CPU ms (all threads),
and the ratio of CPU time to the untagged source's.

    .venv/bin/python benchmarks/colour.py [--runs 15] [--sizes 500x375,200x150]

Untagged and sRGB-tagged sources must cost what they did before colour management (run it on the
previous commit for the "before" column: untagged is what every source was then); an Adobe RGB
one pays one transform at reply size. Input: benchmarks/.cache/photo12.jpg (bench_render.py
prepares it), else a generated 4000x3000 picture.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path

from PIL import Image, ImageCms

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import make_samples  # noqa: E402 - the Adobe RGB profile writer

from imageserving.render import pipeline  # noqa: E402

PHOTO = Path(__file__).resolve().parent / ".cache" / "photo12.jpg"


def sources() -> dict[str, bytes]:
    if PHOTO.exists():
        img = Image.open(PHOTO).convert("RGB")
    else:
        img = make_samples.rose().resize((4000, 3000))
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    out = {}
    for name, profile in (("untagged", None), ("sRGB", srgb), ("Adobe RGB", make_samples.adobe_rgb())):
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=92, **({"icc_profile": profile} if profile else {}))
        out[name] = buf.getvalue()
    return out


def once(source: bytes, wid: int, hei: int) -> float:
    job = pipeline.RenderJob("img", source, {}, {"wid": str(wid), "hei": str(hei), "fmt": "jpg", "qlt": "80"})
    start, cpu = time.perf_counter(), time.process_time()
    pipeline.render(job)
    # CPU time of every thread: on a shared machine it moves less with the neighbours' load.
    return (time.perf_counter() - start) * 1000, (time.process_time() - cpu) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--sizes", default="500x375,200x150")
    args = ap.parse_args()
    srcs = sources()
    print(f"load average {os.getloadavg()[0]:.2f} (2 cores shared); {args.runs} runs, medians")
    print(f"{'reply':>9} | " + " | ".join(f"{n + ' wall/cpu':>22}" for n in srcs))
    for size in args.sizes.split(","):
        wid, hei = (int(v) for v in size.split("x"))
        times: dict[str, list[tuple[float, float]]] = {n: [] for n in srcs}
        for data in srcs.values():  # warm-up: caches, transforms
            once(data, wid, hei)
        for _ in range(args.runs):
            for name, data in srcs.items():
                times[name].append(once(data, wid, hei))
        base = statistics.median(c for _, c in times["untagged"])
        cells = []
        for t in times.values():
            wall, cpu = statistics.median(w for w, _ in t), statistics.median(c for _, c in t)
            cells.append(f"{wall:5.1f}/{cpu:5.1f} ms {cpu / base:4.2f}x")
        print(f"{size:>9} | " + " | ".join(cells))


if __name__ == "__main__":
    main()
