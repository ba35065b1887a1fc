"""Render benchmark: the standard workload through the whole app, beside baselines measured in the
same run.

    .venv/bin/python benchmarks/bench_render.py            # 25 timed runs per figure
    .venv/bin/python benchmarks/bench_render.py --quick    # 5 runs: a smoke test

Standard workload: a real 12-megapixel photographic JPEG (Debian's mate-backgrounds
"Elephants" wallpaper cropped to 4000x3000, q92) → ``wid=500&hei=375&fmt=jpg&qlt=80``. "Ours" is
the whole request: an API Gateway HTTP API event through ``Mangum(create_app())`` (routing,
catalog, storage read from a local bucket, render, encode, base64 body) — what Lambda runs.
Baselines: naive Pillow (open, full decode, resize to 500x375 with the same filter, save, timed
in this process) and sharp 0.35 (npm; libvips with shrink-on-load and its default threads, timed
inside a node process that stays up), both from the same bytes in memory. The contenders take
turns run by run so that machine noise hits all alike; figures are medians.

Quality. Reference = full decode + resize of the whole image with the resMode's filter, not
encoded. "PSNR enc" compares each contender's decoded reply with it: ours must stay within
0.2 dB of naive Pillow's (both pay the same q80 JPEG loss). "budget" compares our pixels before
encoding (the same request with fmt=png) with it: rendering.md §16 allows PSNR ≥ 40 dB and
max |Δ| ≤ 8.

Memory: peak RSS (ru_maxrss) of a fresh process rendering a 50 MP JPEG (the photo enlarged to
8200x6150) once through the app, beside a fresh process doing the naive Pillow path.

Inputs are prepared once into benchmarks/.cache (gitignored): ``apt-get download
mate-backgrounds`` and ``dpkg -x``; sharp via ``npm install --prefix benchmarks/.cache/node``.
Without apt a generated photo-like picture is used, without npm sharp is reported unavailable.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from mangum import Mangum
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from imageserving.app import create_app
from imageserving.render import pipeline
from imageserving.settings import Settings

# The request log line (observe.py) would interleave with the tables; the app still writes it
# (it is part of a request's cost), to nowhere.
os.environ.setdefault("IS_LOG_FORMAT", "off")
ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(__file__).resolve().parent / ".cache"
PHOTO = CACHE / "photo12.jpg"
BIG = CACHE / "photo50.jpg"
BUCKET = CACHE / "bucket"
NODE = CACHE / "node"
MATE_PHOTO = "usr/share/backgrounds/mate/abstract/Elephants_5640x3172.jpg"
SHARP = "sharp@0.35"
SIZE = (500, 375)
QUERY = "wid=500&hei=375&qlt=80"
LANCZOS, BILINEAR = Image.Resampling.LANCZOS, Image.Resampling.BILINEAR
# The encoder settings of imageserving.render.codec, so that naive Pillow writes the same bytes' worth.
NAIVE_SAVE = {
    "jpg": ("JPEG", {"quality": 80, "optimize": True}),
    "webp": ("WEBP", {"quality": 80, "method": 4}),
    "avif": ("AVIF", {"quality": 80, "speed": 9}),
}
CATALOG = "RootId=\nRootPath=\nDefaultExt=.jpg\nMaxPix=2000,2000\nJpegQuality=80,0\nResMode=4\n"


# ------------------------------------------------------------------------------------ inputs
def prepare_photo() -> str:
    """The 12 MP photograph (cached); returns where it came from."""
    note = CACHE / "photo12.txt"
    if PHOTO.exists() and note.exists():
        return note.read_text()
    CACHE.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(
            ["apt-get", "download", "mate-backgrounds"], cwd=CACHE, check=True, capture_output=True, timeout=300
        )
        deb = sorted(CACHE.glob("mate-backgrounds_*.deb"))[-1]
        subprocess.run(["dpkg", "-x", str(deb), str(CACHE / "deb")], check=True, capture_output=True)
        src = Image.open(CACHE / "deb" / MATE_PHOTO).convert("RGB")
        left, top = (src.width - 4000) // 2, (src.height - 3000) // 2
        src.crop((left, top, left + 4000, top + 3000)).save(PHOTO, quality=92)
        text = f"{deb.name}: Elephants_5640x3172.jpg, centre 4000x3000, q92"
    except (OSError, subprocess.SubprocessError, IndexError) as exc:
        generated().save(PHOTO, quality=92)
        text = f"GENERATED photo-like picture 4000x3000 q92 (mate-backgrounds unavailable: {exc})"
    note.write_text(text)
    return text


def generated() -> Image.Image:
    """Gradients, rings and fine slanted lines, softened like a lens would: a stand-in photo."""
    w, h = 4000, 3000
    img = Image.merge(
        "RGB",
        (
            Image.linear_gradient("L").resize((w, h)),
            Image.radial_gradient("L").resize((w, h)),
            Image.linear_gradient("L").rotate(90).resize((w, h)),
        ),
    )
    draw = ImageDraw.Draw(img)
    for i in range(60):
        r = 40 + 23 * i
        draw.ellipse((w // 2 - r, h // 2 - r, w // 2 + r, h // 2 + r), outline=(37 * i % 256, 90, 200 - 3 * i), width=5)
    for x in range(0, w, 9):
        draw.line((x, 0, x + 300, h), fill=(255 - x % 256, x % 256, 128), width=2)
    return img.filter(ImageFilter.GaussianBlur(1))


def prepare_big() -> None:
    if not BIG.exists():
        Image.open(PHOTO).resize((8200, 6150), Image.Resampling.BICUBIC).save(BIG, quality=90)


def prepare_bucket() -> None:
    (BUCKET / "catalogs").mkdir(parents=True, exist_ok=True)
    (BUCKET / "images").mkdir(exist_ok=True)
    (BUCKET / "catalogs" / "default.ini").write_text(CATALOG)
    for src in (PHOTO, BIG):
        dst = BUCKET / "images" / src.name
        if not dst.exists() or dst.stat().st_mtime < src.stat().st_mtime:
            shutil.copyfile(src, dst)


# ----------------------------------------------------------------------------- contenders
def make_handler():
    settings = Settings.from_env({}, storage="local", local_root=str(BUCKET), catalog_settle_seconds=0)
    return Mangum(create_app(settings), lifespan="off")


def event(name: str, query: str) -> dict:
    ev = json.loads((ROOT / "events" / "image.json").read_text())
    ev["rawPath"] = ev["requestContext"]["http"]["path"] = f"/is/image/{name}"
    ev["rawQueryString"] = query
    ev.pop("queryStringParameters", None)
    ev.pop("pathParameters", None)
    return ev


class _LambdaContext:
    function_name = "bench"
    aws_request_id = "bench"


def ours(handler, name: str, query: str):
    ev = event(name, query)

    def run() -> bytes:
        reply = handler(ev, _LambdaContext())
        if reply["statusCode"] != 200:
            raise SystemExit(f"{query}: HTTP {reply['statusCode']}: {reply.get('body', '')[:200]}")
        return base64.b64decode(reply["body"])

    return run


def naive(data: bytes, fmt: str, resample):
    writer, options = NAIVE_SAVE[fmt]

    def run() -> bytes:
        img = Image.open(io.BytesIO(data)).resize(SIZE, resample)
        buf = io.BytesIO()
        img.save(buf, writer, **options)
        return buf.getvalue()

    return run


# Serves one job per stdin line (jpg, bilin, webp, avif) and answers its time in ms, so that sharp
# runs interleaved with the other contenders. First it writes its pixels for the quality table.
SHARP_SCRIPT = r"""
const sharp = require(process.argv[2]);
const fs = require('fs');
const readline = require('readline');
const input = fs.readFileSync(process.argv[3]);
const out = process.argv[4];
const jobs = {
  jpg: () => sharp(input).resize(500, 375).jpeg({quality: 80}),
  bilin: () => sharp(input).resize(500, 375, {kernel: 'linear'}).jpeg({quality: 80}),
  webp: () => sharp(input).resize(500, 375).webp({quality: 80, effort: 4}),
  avif: () => sharp(input).resize(500, 375).avif({quality: 80, effort: 0}),
};
(async () => {
  await sharp(input).resize(500, 375).png({compressionLevel: 1}).toFile(out + '/sharp-lanczos.png');
  await sharp(input).resize(500, 375, {kernel: 'linear'}).png({compressionLevel: 1}).toFile(out + '/sharp-linear.png');
  await sharp(input).resize(500, 375).jpeg({quality: 80}).toFile(out + '/sharp-q80.jpg');
  console.log(JSON.stringify({version: sharp.versions.sharp, vips: sharp.versions.vips, threads: sharp.concurrency()}));
  for await (const line of readline.createInterface({input: process.stdin})) {
    const t = process.hrtime.bigint();
    await jobs[line.trim()]().toBuffer();
    console.log(Number(process.hrtime.bigint() - t) / 1e6);
  }
})().catch(e => { console.error(e); process.exit(1); });
"""


class Sharp:
    """sharp in one node process for the whole run; jobs are timed inside node."""

    def __init__(self, proc: subprocess.Popen, info: dict):
        self.proc, self.info = proc, info

    @classmethod
    def start(cls) -> Sharp | None:
        """Install sharp on demand and start it; None (the reason printed) when unavailable."""
        if not shutil.which("node") or not shutil.which("npm"):
            print("sharp: unavailable (no node/npm)")
            return None
        module = NODE / "node_modules" / "sharp"
        if not module.exists():
            done = subprocess.run(["npm", "install", "--prefix", str(NODE), SHARP], capture_output=True, text=True)
            if done.returncode != 0:
                print(f"sharp: unavailable (npm install failed: {done.stderr.strip()[-200:]})")
                return None
        script = NODE / "bench_sharp.js"
        script.write_text(SHARP_SCRIPT)
        proc = subprocess.Popen(
            ["node", str(script), str(module), str(PHOTO), str(CACHE)],
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        line = proc.stdout.readline()
        if not line:
            print(f"sharp: unavailable (node failed: {proc.stderr.read().strip()[-200:]})")
            return None
        return cls(proc, json.loads(line))

    def job(self, name: str):
        def run() -> float:
            self.proc.stdin.write(name + "\n")
            self.proc.stdin.flush()
            return float(self.proc.stdout.readline())

        return run

    def stop(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def timed(fn):
    """``fn`` as a contender for :func:`medians`, timed from here."""

    def run() -> float:
        start = time.perf_counter()
        fn()
        return (time.perf_counter() - start) * 1000

    return run


def medians(contenders: dict, runs: int) -> dict[str, float]:
    """Median ms of each contender (a callable returning its own time), runs interleaved after
    two warm-up rounds."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for i in range(runs + 2):
        for name, fn in contenders.items():
            ms = fn()
            if i >= 2:
                times[name].append(ms)
    return {name: statistics.median(v) for name, v in times.items()}


# ------------------------------------------------------------------------------------ quality
def compare(a: Image.Image, b: Image.Image) -> tuple[float, int]:
    """(PSNR dB, max |Δ|) over R, G and B."""
    hist = ImageChops.difference(a.convert("RGB"), b.convert("RGB")).histogram()
    se = sum(n * (i % 256) ** 2 for i, n in enumerate(hist))
    mse = se / (a.width * a.height * 3)
    return (10 * math.log10(255**2 / mse) if mse else math.inf), max(i % 256 for i, n in enumerate(hist) if n)


def decoded(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


# ------------------------------------------------------------------------------------- memory
RSS_OURS = r"""
import json, resource, sys
from mangum import Mangum
from imageserving.app import create_app
from imageserving.settings import Settings
handler = Mangum(create_app(Settings.from_env({}, storage="local", local_root=sys.argv[1], catalog_settle_seconds=0)),
                 lifespan="off")
ev = json.loads(sys.argv[2])
if sys.argv[3] == "render":
    reply = handler(ev, type("C", (), {"function_name": "bench", "aws_request_id": "bench"})())
    assert reply["statusCode"] == 200, reply
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
RSS_NAIVE = r"""
import io, resource, sys
from PIL import Image
Image.MAX_IMAGE_PIXELS = None
img = Image.open(sys.argv[1]).resize((500, 375), Image.Resampling.LANCZOS)
img.save(io.BytesIO(), "JPEG", quality=80, optimize=True)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_rss_mb(code: str, *args: str) -> float:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1]) / 1024  # Linux reports KiB


# --------------------------------------------------------------------------------------- main
WORKLOADS = [  # label, query, naive format, filter, sharp job, target ms (None: sharp's time)
    ("default (sharp2) jpg", QUERY + "&fmt=jpg", "jpg", LANCZOS, "jpg", None),
    ("resMode=bilin jpg", QUERY + "&fmt=jpg&resMode=bilin", "jpg", BILINEAR, "bilin", 33.0),
    ("webp", QUERY + "&fmt=webp", "webp", LANCZOS, "webp", 25.0),
    ("avif", QUERY + "&fmt=avif", "avif", LANCZOS, "avif", 60.0),
]
# §16.2 read literally: shrink-on-load keeping 2x the reply's resolution (like sharp), for the record.
LITERAL = ("sharp2, DRAFT_HEADROOM=2 (§16.2)", QUERY + "&fmt=jpg", "jpg", LANCZOS, "jpg", None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 runs per figure instead of 25")
    parser.add_argument("--runs", type=int, help="timed runs per figure")
    args = parser.parse_args()
    runs = args.runs or (5 if args.quick else 25)

    origin = prepare_photo()
    prepare_big()
    prepare_bucket()
    # Memory first: a child's ru_maxrss starts from its parent's peak at fork, so the parent must
    # still be small.
    ev = json.dumps(event("photo50", QUERY + "&fmt=jpg"))
    rss = {
        name: peak_rss_mb(*probe)
        for name, probe in {
            "ours": (RSS_OURS, str(BUCKET), ev, "render"),
            "idle": (RSS_OURS, str(BUCKET), ev, "idle"),
            "naive": (RSS_NAIVE, str(BIG)),
        }.items()
    }
    with Image.open(BIG) as big:
        megapixels = big.width * big.height / 1e6

    data = PHOTO.read_bytes()
    handler = make_handler()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"imageserving render benchmark: {cores} cores, Python {platform.python_version()}, "
        f"Pillow {Image.__version__}, {runs} runs per figure (medians, contenders interleaved)"
    )
    print(f"source: {origin}; {len(data) / 1e6:.1f} MB")
    if os.getloadavg()[0] > 0.5:
        print(f"WARNING: load average {os.getloadavg()[0]:.2f}: other processes share the cores")
    sharp = Sharp.start()
    if sharp:
        print(
            f"peer: sharp {sharp.info['version']} (libvips {sharp.info['vips']}, "
            f"concurrency {sharp.info['threads']}), timed inside node"
        )

    full = Image.open(io.BytesIO(data)).convert("RGB")
    references = {LANCZOS: full.resize(SIZE, LANCZOS), BILINEAR: full.resize(SIZE, BILINEAR)}
    headroom = pipeline.DRAFT_HEADROOM
    rows = []
    for label, query, fmt, flt, job, target in WORKLOADS + [LITERAL]:
        pipeline.DRAFT_HEADROOM = 2.0 if label == LITERAL[0] else headroom
        mine, theirs = ours(handler, "photo12", query), naive(data, fmt, flt)
        contenders = {"ours": timed(mine), "naive": timed(theirs)}
        if sharp:
            contenders["sharp"] = sharp.job(job)
        ms = medians(contenders, runs)
        peer = ms.get("sharp")
        row = [label, ms["ours"], ms["naive"], peer, target if target is not None else peer, target is None]
        if fmt == "jpg":
            ref = references[flt]
            pixels = ours(handler, "photo12", query.replace("fmt=jpg", "fmt=png"))
            row += [
                compare(decoded(mine()), ref)[0],
                compare(decoded(theirs()), ref)[0],
                compare(decoded(pixels()), ref),
            ]
        rows.append(row)
    pipeline.DRAFT_HEADROOM = headroom
    if sharp:
        sharp.stop()

    print()
    print(
        f"{'whole request, 12 MP → 500x375':34} {'ours ms':>8} {'naive ms':>9} {'ratio':>6} {'sharp ms':>9} "
        f"{'ratio':>6}  {'target':>12}  met"
    )
    for label, mine, base, peer, goal, vs_sharp, *_ in rows:
        peer_text = f"{peer:9.1f} {mine / peer:5.2f}x" if peer else f"{'n/a':>9} {'':>6}"
        goal_text = ("≤ sharp" if vs_sharp else f"≤ {goal:.0f} ms") if goal else "n/a"
        met = "n/a" if goal is None else ("yes" if mine <= goal else "NO")
        print(f"{label:34} {mine:8.1f} {base:9.1f} {mine / base:5.2f}x {peer_text}  {goal_text:>12}  {met}")

    print()
    print(
        f"{'quality vs reference (full decode)':34} {'PSNR enc ours':>14} {'naive':>7} {'Δ dB':>6} {'≥ -0.2':>7}"
        f"   {'budget: PSNR':>12} {'max|Δ|':>7} {'≥40 dB, ≤8':>11}"
    )
    for label, *_, enc_ours, enc_naive, (psnr, worst) in (r for r in rows if len(r) > 6):
        delta = enc_ours - enc_naive
        print(
            f"{label:34} {enc_ours:14.2f} {enc_naive:7.2f} {delta:+6.2f} {'yes' if delta >= -0.2 else 'NO':>7}   "
            f"{psnr:12.2f} {worst:7d} {'yes' if psnr >= 40 and worst <= 8 else 'NO':>11}"
        )
    if sharp:
        lanczos = compare(Image.open(CACHE / "sharp-lanczos.png"), references[LANCZOS])
        encoded = compare(Image.open(CACHE / "sharp-q80.jpg"), references[LANCZOS])[0]
        linear = compare(Image.open(CACHE / "sharp-linear.png"), references[BILINEAR])
        print(
            f"{'sharp (lanczos3), for comparison':34} {encoded:14.2f} {'':>7} {'':>6} {'':>7}   "
            f"{lanczos[0]:12.2f} {lanczos[1]:7d}"
        )
        print(
            f"{'sharp (linear), for comparison':34} {'':>14} {'':>7} {'':>6} {'':>7}   {linear[0]:12.2f} {linear[1]:7d}"
        )

    print()
    print(
        f"peak RSS (ru_maxrss), {megapixels:.0f} MP JPEG → 500x375 jpg in a fresh process: "
        f"ours {rss['ours']:.0f} MB "
        f"(app imported, no request: {rss['idle']:.0f} MB), naive Pillow {rss['naive']:.0f} MB; "
        f"target ≤ 120 MB: {'yes' if rss['ours'] <= 120 else 'NO'}"
    )


if __name__ == "__main__":
    main()
