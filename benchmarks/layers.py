"""What layer effects, blend modes, masks and clip paths cost, beside baselines in the same run.

    .venv/bin/python benchmarks/layers.py [--runs 15]

Every figure is a whole request of the sample bucket through ImageServer.handle (catalog, storage,
render, encode; no HTTP), median of ``--runs``; the workloads take turns run by run so machine noise
hits all alike. Baselines: the single-image fast path (``rose?wid=500``) and the same reply through
the compositor (``&opac=100``, which changes no pixel), since every command measured here needs the
compositor. Ratios are against the compositor baseline.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "functions" / "imageserving"))

from imageserving.service import ImageServer  # noqa: E402
from imageserving.settings import Settings  # noqa: E402
from imageserving.storage import open_storage  # noqa: E402

BASE = "sample/rose", "wid=500"
WORKLOADS = {
    "fast path (no compositor)": BASE,
    "compositor baseline (opac=100)": ("sample/rose", "wid=500&opac=100"),
    "drop shadow effect=-1&$shadow$": ("sample/rose", "wid=500&extend=0,0,40,40&effect=-1&$shadow$"),
    "inner glow effect=1&$glow$": ("sample/rose", "wid=500&effect=1&$glow$"),
    "outline effect=-1&op_grow=3": ("sample/rose", "wid=500&extend=5,5,5,5&effect=-1&op_grow=3&color=ff0000"),
    "layer norm": ("sample/rose", "wid=500&layer=1&src=shoe&size=800,800"),
    "layer blendMode=mult": ("sample/rose", "wid=500&layer=1&src=shoe&size=800,800&blendMode=mult"),
    "maskUse=invert": ("sample/tulip", "wid=500&maskUse=invert&fmt=png-alpha"),
    "clipPath= (a triangle)": ("sample/rose", "wid=500&clipPath=M0,0,L1600,0,L0,1200,Z&fmt=png-alpha"),
    "template=shadowed (tulip, PNG)": ("sample/tulip", "template=shadowed&wid=240&fmt=png"),
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    settings = Settings.from_env(storage="local", local_root=str(ROOT))
    server = ImageServer(settings, open_storage(settings))
    times: dict[str, list[float]] = {name: [] for name in WORKLOADS}
    for obj, query in WORKLOADS.values():  # warm: catalogs, Pillow plugins
        reply = server.handle("GET", obj, query, {}, "127.0.0.1", "image")
        assert reply.status == 200, (obj, query, reply.body[:200])
    for _ in range(args.runs):
        for name, (obj, query) in WORKLOADS.items():
            t = time.perf_counter()
            server.handle("GET", obj, query, {}, "127.0.0.1", "image")
            times[name].append((time.perf_counter() - t) * 1000)
    base = statistics.median(times["compositor baseline (opac=100)"])
    print(f"load average {os.getloadavg()[0]:.2f}; {args.runs} runs each, medians")
    print(f"{'workload':40} {'ms':>8} {'x compositor':>13}")
    for name, ts in times.items():
        m = statistics.median(ts)
        print(f"{name:40} {m:8.1f} {m / base:13.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
