"""Peak memory of hostile sources, with the decode-memory budget off and on (issue 8 item 5).

    PYTHONPATH=functions/imageserving .venv/bin/python benchmarks/hostile_memory.py [--size 10000] [--only png,webp]

Every source is generated at run time into a temporary bucket folder (a gradient, so that
files stay small; generation takes about two minutes at 10000x10000): lossless WebP, JPEG 2000,
PNG, PNG RGBA, TIFF, JPEG, AVIF, HEIF (when pillow-heif is installed), 16-bit PNG,
decompression bombs (a tiny PNG and JPEG whose headers claim huge sizes, an all-black lossless
WebP of a few KB, an all-black RGBA PNG) and a burst of 8 concurrent 100 MP PNGs. Each case is
measured in a fresh child process that serves
``/is/image/hostile/<file>?wid=500`` through ImageServer.handle (the code path of the local server
and of Lambda), after one small warm-up request; the figure is the child's own ``ru_maxrss``
after the request minus its RSS just before it, so the parent's generation never counts.

"off" runs with ``IS_DECODE_BUDGET_MB=off`` and ``IS_RENDER_SLOTS=64`` (the pixel limit alone
decides, no bound on concurrency: the behaviour before the budget); "on" runs single sources as a
1769 MB Lambda (``AWS_LAMBDA_FUNCTION_MEMORY_SIZE=1769``: the budget derived from it) and the burst
with the local server's defaults (the same budget, render slots sized from this machine's cores
and memory). Both columns come from the same run; the load average is printed next to them
because the machine's cores are shared.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BURST = 8
CATALOG = "RootId=\nRootPath=\nDefaultExt=\nErrorDetail=2\nDefaultImage=\nMaxPix=2000,2000\n"


# ------------------------------------------------------------------------------ generation
def _gradient(size: int, mode: str):
    from PIL import Image

    g = Image.linear_gradient("L").resize((size, size))
    bands = (g, g.transpose(Image.Transpose.ROTATE_90), g.transpose(Image.Transpose.FLIP_TOP_BOTTOM))
    if mode == "L":
        return g
    if mode == "RGBA":
        return Image.merge("RGBA", (*bands, g.transpose(Image.Transpose.ROTATE_180)))
    return Image.merge("RGB", bands)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` RGB, with one tiny IDAT: a bomb's header."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _jpeg_header_only(width: int, height: int) -> bytes:
    """A small real JPEG with its SOF0 size rewritten to ``width`` x ``height``."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def generate(folder: Path, size: int, only: set[str] | None) -> dict[str, str]:
    """Write every case's source under ``folder/images/hostile``; returns case -> file name."""
    from PIL import Image

    images = folder / "images" / "hostile"
    images.mkdir(parents=True, exist_ok=True)
    (folder / "catalogs").mkdir(exist_ok=True)
    (folder / "catalogs" / "default.ini").write_text(CATALOG)
    _gradient(64, "RGB").save(images / "warm.png")
    rgb, cases = None, {}

    def want(case: str) -> bool:
        return only is None or case in only or (case == "burst png x8" and "burst" in only)

    def save(case: str, name: str, image, **options) -> None:
        if want(case):
            t = time.perf_counter()
            image.save(images / name, **options)
            took = time.perf_counter() - t
            print(f"  generated {case:<22} {(images / name).stat().st_size:>12,} bytes in {took:5.1f} s")
            cases[case] = name

    own_sources = {"png rgba", "png 16-bit gray", "bomb webp black", "bomb png rgba black"}
    own_sources |= {"bomb png header 60k", "bomb jpeg header 65k"}
    need_rgb = only is None or bool(only - own_sources)
    rgb = _gradient(size, "RGB") if need_rgb else None
    if rgb is not None:
        save("webp lossless", "x.webp", rgb, format="WEBP", lossless=True, method=0, quality=0)
        save("jpeg2000", "x.jp2", rgb, format="JPEG2000", irreversible=True, quality_mode="rates", quality_layers=[40])
        if want("jpeg2000 wid=2000"):  # a reply that needs every wavelet level: no shrink-on-load
            if "jpeg2000" not in cases:
                rgb.save(
                    images / "x.jp2", format="JPEG2000", irreversible=True, quality_mode="rates", quality_layers=[40]
                )
            cases["jpeg2000 wid=2000"] = "x.jp2?wid=2000"
        save("png", "x.png", rgb, format="PNG", compress_level=1)
        save("tiff", "x.tif", rgb, format="TIFF", compression="tiff_lzw")
        save("tiff jpeg", "xj.tif", rgb, format="TIFF", compression="jpeg", quality=80)
        save("jpeg", "x.jpg", rgb, format="JPEG", quality=80)
        save("avif", "x.avif", rgb, format="AVIF", quality=50, speed=10)
        if want("heif"):
            try:
                from pillow_heif import register_heif_opener

                register_heif_opener()
                save("heif", "x.heic", rgb, format="HEIF", quality=50)
            except ImportError:
                print("  heif: skipped, pillow-heif is not installed")
        # What the request adds: an arbitrary rotation (drawn in memory) and an operation that
        # must see full-resolution pixels (op_noise does not commute with resampling).
        for case, query in (
            ("png rotate=30", "rotate=30"),
            ("png op_noise=20", "op_noise=20"),
            ("png op_noise wid=2000", "wid=2000&op_noise=20"),  # no box reduce before the operation
        ):
            if want(case):
                if not (images / "x.png").exists():
                    rgb.save(images / "x.png", compress_level=1)
                cases[case] = f"x.png?{query}"
        if want("burst png x8"):
            cases["burst png x8"] = "x.png"
            if not (images / "x.png").exists():
                rgb.save(images / "x.png", compress_level=1)
        del rgb
    if want("png rgba"):
        save("png rgba", "rgba.png", _gradient(size, "RGBA"), format="PNG", compress_level=1)
    if want("png 16-bit gray"):
        gray16 = _gradient(size, "L").convert("I").point(lambda v: v * 257).convert("I;16")
        save("png 16-bit gray", "gray16.png", gray16, format="PNG", compress_level=1)
    if want("bomb webp black"):
        save("bomb webp black", "black.webp", Image.new("RGB", (size, size)), format="WEBP", lossless=True, method=0)
    if want("bomb png rgba black"):
        save("bomb png rgba black", "black.png", Image.new("RGBA", (size, size)), format="PNG", compress_level=9)
    for case, name, data in (
        ("bomb png header 60k", "claims60k.png", lambda: _png_header_only(60000, 60000)),
        ("bomb jpeg header 65k", "claims65k.jpg", lambda: _jpeg_header_only(65000, 65000)),
    ):
        if want(case):
            (images / name).write_bytes(data())
            cases[case] = name
    return cases


# ------------------------------------------------------------------------------ measuring
def _rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def child(root: str, name: str, count: int) -> None:
    """One measurement: warm up, then ``count`` concurrent requests for ``name``; prints JSON."""
    import gc
    from concurrent.futures import ThreadPoolExecutor

    from imageserving.render import budget
    from imageserving.service import ImageServer
    from imageserving.settings import Settings
    from imageserving.storage import open_storage

    estimates = []  # what the budget's estimate said, recorded in both modes
    check = budget.check

    def recording_check(fmt, mode, size, **kw):
        estimates.append(budget.estimate(fmt, mode, size, **{k: v for k, v in kw.items() if k != "budget"}))
        return check(fmt, mode, size, **kw)

    budget.check = recording_check
    settings = Settings.from_env(storage="local", local_root=root)
    server = ImageServer(settings, open_storage(settings))
    warm = server.handle("GET", "hostile/warm.png", "wid=50", {})
    assert warm.status == 200, warm.body
    gc.collect()
    estimates.clear()
    before_kb = _rss_kb()

    path, _, extra = name.partition("?")
    query = extra if extra.startswith("wid=") else "wid=500" + (f"&{extra}" if extra else "")

    def one(_):
        start = time.perf_counter()
        reply = server.handle("GET", f"hostile/{path}", query, {})
        return reply.status, reply.headers.get("X-IS-Error", ""), time.perf_counter() - start, reply.body[:120]

    start = time.perf_counter()
    with ThreadPoolExecutor(count) as pool:
        results = list(pool.map(one, range(count)))
    wall = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    statuses = sorted({f"{s}{' ' + k if k else ''}" for s, k, _, _ in results})
    print(
        json.dumps(
            {
                "peak_mb": (peak_kb - before_kb) / 1024,
                "seconds": wall,
                "max_answer_s": max(r[2] for r in results),
                "statuses": statuses,
                "detail": next((r[3].decode("latin-1") for r in results if r[0] != 200), ""),
                "slots": server.slots.slots if hasattr(server, "slots") else None,
                "budget_mb": None if settings.decode_budget_bytes is None else settings.decode_budget_bytes / 2**20,
                "estimate_mb": max(estimates) / 2**20 if estimates else None,
                "baseline_mb": before_kb / 1024,
            }
        )
    )


def run_child(root: Path, name: str, count: int, mode: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IS_", "AWS_LAMBDA"))}
    env["PYTHONPATH"] = str(ROOT / "functions" / "imageserving") + os.pathsep + env.get("PYTHONPATH", "")
    if mode == "off":
        env.update(IS_DECODE_BUDGET_MB="off", IS_RENDER_SLOTS="64")
    elif mode == "lambda":
        env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = "1769"
    # "local": the local server's defaults (budget of the template's 1769 MB, slots from this machine)
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(root), name, str(count)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if out.returncode != 0:
        return {
            "peak_mb": float("nan"),
            "seconds": float("nan"),
            "statuses": [f"child failed {out.returncode}"],
            "detail": out.stderr.strip().splitlines()[-1:] or "",
        }
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=10000, help="side of the generated sources (default 10000)")
    parser.add_argument("--only", help="comma-separated case names (e.g. png,jpeg,burst)")
    parser.add_argument("--child", nargs=3, metavar=("ROOT", "NAME", "COUNT"), help=argparse.SUPPRESS)
    parser.add_argument("--generate", metavar="ROOT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    only = {c.strip() for c in args.only.split(",")} if args.only else None
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return
    if args.generate:
        print(json.dumps(generate(Path(args.generate), args.size, only)))
        return
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        root = Path(tmp)
        print(f"generating {args.size}x{args.size} sources", flush=True)
        # In a process of its own: Linux keeps ru_maxrss across fork and exec, so a parent that had
        # held the generated images would lend its peak to every measuring child.
        gen = [sys.executable, __file__, "--generate", tmp, "--size", str(args.size)]
        out = subprocess.run(gen + (["--only", args.only] if args.only else []), capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(out.stderr)
        *lines, last = out.stdout.strip().splitlines()
        print("\n".join(lines))
        cases = json.loads(last)
        parent_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"parent ru_maxrss {parent_mb:.0f} MB (inherited by each child; below its warm-up RSS, so it never shows)"
        )
        print(f"\nload {_load()} before measuring")
        head = (
            f"{'case':<21} {'estimate':>8} | {'off: peak':>9} {'s':>5} {'status':<14} | "
            f"{'on: peak':>8} {'s':>5} {'status':<16} | {'on/off':>6}"
        )
        print(head + "\n" + "-" * len(head))
        details, seen = [], {}
        for case, name in cases.items():
            count = BURST if case.startswith("burst") else 1
            off = run_child(root, name, count, "off")
            on = run_child(root, name, count, "local" if count > 1 else "lambda")
            seen["lambda" if count == 1 else "local"] = on
            ratio = on["peak_mb"] / off["peak_mb"] if off["peak_mb"] > 1 else float("nan")
            est = off.get("estimate_mb")
            print(
                f"{case:<21} {'' if est is None else f'{est:.0f}':>8} | "
                f"{off['peak_mb']:>+9.0f} {off['seconds']:>5.2f} {','.join(off['statuses']):<14} | "
                f"{on['peak_mb']:>+8.0f} {on['seconds']:>5.2f} {','.join(on['statuses']):<16} | {ratio:>6.2f}",
                flush=True,
            )
            if on.get("detail"):
                details.append(f"  {case}: {' '.join(on['detail'].split())}"[:230])
        print(f"\nload {_load()} after")
        print("MB: MiB of peak RSS above the child's RSS before the request (estimate: render/budget.py, per decode)")
        for mode, r in seen.items():
            print(
                f"on ({mode}): budget {r.get('budget_mb') or 0:.0f} MB, render slots {r.get('slots')}, "
                f"RSS before the request {r.get('baseline_mb', 0):.0f} MB"
            )
        if details:
            print("first refusal of each case, budget on (ErrorDetail=2):\n" + "\n".join(details))


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} / {five:.2f} (uptime 1 / 5 min)"


if __name__ == "__main__":
    main()
