"""Render benchmark: every workload through the whole app, beside baselines measured in the same run.

    .venv/bin/python benchmarks/bench_render.py            # 25 timed runs per figure
    .venv/bin/python benchmarks/bench_render.py --quick    # 5 runs: a smoke test
    .venv/bin/python benchmarks/bench_render.py --cpus 0   # pinned to one core (taskset), sharp too

Standard workload: a real 12-megapixel photographic JPEG (Debian's mate-backgrounds
"Elephants" wallpaper cropped to 4000x3000, q92) → ``wid=500&hei=375&fmt=jpg&qlt=80``; also
resMode=bilin, WebP, AVIF and PNG replies of it, the same photograph as a PNG source, a 2000x1500
reply and a 1 MP JPEG → 200x150 thumbnail. "Ours" is the whole request: an API Gateway HTTP
API event through ``Mangum(create_app())`` (routing, catalog, storage read from a local bucket,
render, encode, base64 body) — what Lambda runs. Baselines: naive Pillow (open, full decode,
resize with the same filter, save, timed in this process) and sharp 0.35 (npm; libvips with
shrink-on-load, timed inside a node process that stays up; its default concurrency, which is 1
on glibc Linux without jemalloc), both from the same bytes in memory. The contenders take turns
run by run so that machine noise hits all alike; figures are medians. Targets are issue 12's, as
ratios of sharp's time.

``--cpus 0`` re-executes the benchmark under ``taskset -c 0`` before the package is imported
(resample.CORES comes from ``os.sched_getaffinity``: one core, no banded threads, no overlapped
decode) and starts sharp pinned to the same core with ``sharp.concurrency(1)``: Lambda at 1769 MB
has about one vCPU.

Quality. Reference = full decode + resize of the whole image with the resMode's filter, not
encoded. "PSNR enc" compares each contender's decoded reply with it: ours must stay within
0.2 dB of naive Pillow's (both pay the same q80 JPEG loss). "budget" compares our pixels before
encoding (the same request with fmt=png) with it (benchmarks/budget.py checks the §16 budget on
more photographs). JPEG, WebP and AVIF at qlt 80 beside sharp at quality 80: bytes and SSIM (luma,
Gaussian window) against the reference, and our SSIM at sharp's byte count, read off our own
rate curve (qlt 60-95): "equal or better SSIM per byte" when that is at least sharp's.

Memory: peak RSS (VmHWM, the process's own high-water mark) of a fresh process rendering a 50 MP
JPEG (the photo enlarged to 8200x6150) once through the app, beside a fresh process doing the naive
Pillow path.

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
from imageserving.render import resample
from imageserving.settings import Settings

# The request log line (observe.py) would interleave with the tables; the app still writes it
# (it is part of a request's cost), to nowhere.
os.environ.setdefault("IS_LOG_FORMAT", "off")
ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(__file__).resolve().parent / ".cache"
PHOTO = CACHE / "photo12.jpg"
BIG = CACHE / "photo50.jpg"
PNG_SOURCE = CACHE / "photo12png.png"  # the same photograph as a PNG upload (no DCT scaling there)
SMALL = CACHE / "photo1.jpg"  # about 1 MP, for thumbnails
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
    "png": ("PNG", {"compress_level": 6}),
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
    if not PNG_SOURCE.exists():
        Image.open(PHOTO).save(PNG_SOURCE, compress_level=6)
    if not SMALL.exists():
        Image.open(PHOTO).resize((1160, 870), LANCZOS).save(SMALL, quality=92)


def prepare_bucket() -> None:
    (BUCKET / "catalogs").mkdir(parents=True, exist_ok=True)
    (BUCKET / "images").mkdir(exist_ok=True)
    (BUCKET / "catalogs" / "default.ini").write_text(CATALOG)
    for src in (PHOTO, BIG, PNG_SOURCE, SMALL):
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
    # curl's Accept: the recorded event carries Chrome's, and Smart Imaging would then answer the
    # JPEG and PNG workloads in AVIF / lossless WebP (and encode the JPEG too, to compare), which
    # is not what sharp is asked for. benchmarks/smart_imaging.py measures the negotiated replies.
    ev["headers"]["accept"] = "*/*"
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


def naive(data: bytes, fmt: str, resample, size=SIZE):
    writer, options = NAIVE_SAVE[fmt]

    def run() -> bytes:
        img = Image.open(io.BytesIO(data)).convert("RGB").resize(size, resample)
        buf = io.BytesIO()
        img.save(buf, writer, **options)
        return buf.getvalue()

    return run


# Serves one job per stdin line and answers its time in ms, so that sharp runs interleaved with
# the other contenders. First it writes its pixels and encodings for the quality tables.
# argv: module, inputs (JSON name -> path), output folder, "1" for sharp.concurrency(1).
SHARP_SCRIPT = r"""
const sharp = require(process.argv[2]);
const fs = require('fs');
const readline = require('readline');
const paths = JSON.parse(process.argv[3]);
const out = process.argv[4];
if (process.argv[5] === '1') sharp.concurrency(1);
const input = fs.readFileSync(paths.photo12);
const png = fs.readFileSync(paths.photo12png), small = fs.readFileSync(paths.photo1);
const jobs = {
  jpg: () => sharp(input).resize(500, 375).jpeg({quality: 80}),
  bilin: () => sharp(input).resize(500, 375, {kernel: 'linear'}).jpeg({quality: 80}),
  webp: () => sharp(input).resize(500, 375).webp({quality: 80, effort: 4}),
  avif: () => sharp(input).resize(500, 375).avif({quality: 80, effort: 0}),
  png: () => sharp(input).resize(500, 375).png({compressionLevel: 6}),
  pngsrc: () => sharp(png).resize(500, 375).jpeg({quality: 80}),
  big: () => sharp(input).resize(2000, 1500).jpeg({quality: 80}),
  thumb: () => sharp(small).resize(200, 150).jpeg({quality: 80}),
};
(async () => {
  await sharp(input).resize(500, 375).png({compressionLevel: 1}).toFile(out + '/sharp-lanczos.png');
  await sharp(input).resize(500, 375, {kernel: 'linear'}).png({compressionLevel: 1}).toFile(out + '/sharp-linear.png');
  await jobs.jpg().toFile(out + '/sharp-q80.jpg');
  await jobs.webp().toFile(out + '/sharp-q80.webp');
  await jobs.avif().toFile(out + '/sharp-q80.avif');
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
    def start(cls, cpus: str | None = None) -> Sharp | None:
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
        inputs = json.dumps({"photo12": str(PHOTO), "photo12png": str(PNG_SOURCE), "photo1": str(SMALL)})
        command = ["node", str(script), str(module), inputs, str(CACHE), "1" if cpus else "0"]
        proc = subprocess.Popen(
            ["taskset", "-c", cpus, *command] if cpus else command,
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


def ssim(a: Image.Image, b: Image.Image) -> float:
    """smart_imaging.py's SSIM (luma, Gaussian window), the one the AVIF quality mapping was chosen by."""
    from smart_imaging import ssim as luma_ssim  # it imports this module: not at the top

    return luma_ssim(a.convert("RGB"), b.convert("RGB"))


def decoded(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


# ------------------------------------------------------------------------------------- memory
RSS_PEAK = r"""
import resource

def peak():
    # VmHWM is this process's own high-water mark; ru_maxrss would start from the parent's peak at
    # fork (Linux keeps it across exec), so a parent that prepared the 50 MP input would show.
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
"""
RSS_OURS = (
    RSS_PEAK
    + r"""
import json, sys
from mangum import Mangum
from imageserving.app import create_app
from imageserving.settings import Settings
handler = Mangum(create_app(Settings.from_env({}, storage="local", local_root=sys.argv[1], catalog_settle_seconds=0)),
                 lifespan="off")
ev = json.loads(sys.argv[2])
if sys.argv[3] == "render":
    reply = handler(ev, type("C", (), {"function_name": "bench", "aws_request_id": "bench"})())
    assert reply["statusCode"] == 200, reply
print(peak())
"""
)
RSS_NAIVE = (
    RSS_PEAK
    + r"""
import io, sys
from PIL import Image
Image.MAX_IMAGE_PIXELS = None
img = Image.open(sys.argv[1]).resize((500, 375), Image.Resampling.LANCZOS)
img.save(io.BytesIO(), "JPEG", quality=80, optimize=True)
print(peak())
"""
)


def peak_rss_mb(code: str, *args: str) -> float:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1]) / 1024  # KiB


# --------------------------------------------------------------------------------------- main
# label, object, query, naive (format, filter, size), sharp job, target (ratio of sharp's time)
JPG = QUERY + "&fmt=jpg"
WORKLOADS = [
    ("default (sharp2) jpg", "photo12", JPG, ("jpg", LANCZOS, SIZE), "jpg", 1.0),
    ("resMode=bilin jpg", "photo12", JPG + "&resMode=bilin", ("jpg", BILINEAR, SIZE), "bilin", 0.9),
    ("webp", "photo12", QUERY + "&fmt=webp", ("webp", LANCZOS, SIZE), "webp", 1.0),
    ("avif", "photo12", QUERY + "&fmt=avif", ("avif", LANCZOS, SIZE), "avif", 1.0),
    ("png reply", "photo12", QUERY + "&fmt=png", ("png", LANCZOS, SIZE), "png", 1.0),
    ("png source → jpg", "photo12png.png", JPG, ("jpg", LANCZOS, SIZE), "pngsrc", 1.0),
    ("2000 px reply jpg", "photo12", "wid=2000&hei=1500&qlt=80&fmt=jpg", ("jpg", LANCZOS, (2000, 1500)), "big", 1.0),
    ("1 MP → 200 px jpg", "photo1", "wid=200&hei=150&qlt=80&fmt=jpg", ("jpg", LANCZOS, (200, 150)), "thumb", 1.0),
]
SOURCES = {"photo12": PHOTO, "photo12png.png": PNG_SOURCE, "photo1": SMALL}


def timings(handler, sharp: Sharp | None, runs: int) -> list[dict]:
    """Every workload, ours / naive / sharp interleaved."""
    data = {name: path.read_bytes() for name, path in SOURCES.items()}
    rows = []
    for label, name, query, (fmt, flt, size), job, target in WORKLOADS:
        contenders = {"ours": timed(ours(handler, name, query)), "naive": timed(naive(data[name], fmt, flt, size))}
        if sharp:
            contenders["sharp"] = sharp.job(job)
        ms = medians(contenders, runs)
        rows.append({"label": label, "target": target, **ms})
    return rows


def quality(handler, sharp: Sharp | None) -> tuple[list, list]:
    """(JPEG rows: PSNR of ours/naive/budget; WebP/AVIF rows: bytes and SSIM of ours and sharp's)."""
    data = PHOTO.read_bytes()
    full = Image.open(io.BytesIO(data)).convert("RGB")
    references = {LANCZOS: full.resize(SIZE, LANCZOS), BILINEAR: full.resize(SIZE, BILINEAR)}
    jpeg_rows = []
    for label, _, query, (fmt, flt, _size), _, _ in WORKLOADS[:2]:
        ref = references[flt]
        mine = ours(handler, "photo12", query)()
        pixels = ours(handler, "photo12", query.replace("fmt=jpg", "fmt=png"))()
        jpeg_rows.append(
            (
                label,
                compare(decoded(mine), ref)[0],
                compare(decoded(naive(data, fmt, flt)()), ref)[0],
                compare(decoded(pixels), ref),
            )
        )
    codec_rows = []
    for fmt in ("jpg", "webp", "avif"):
        # Our rate curve around qlt 80, so that SSIM can be read at sharp's byte count (matched bytes).
        curve = []
        for qlt in MATCH_QUALITIES:
            body = ours(handler, "photo12", f"wid=500&hei=375&qlt={qlt}&fmt={fmt}")()
            curve.append((len(body), ssim(decoded(body), references[LANCZOS])))
        size, value = curve[MATCH_QUALITIES.index(80)]
        row = [fmt, size, value]
        theirs = CACHE / f"sharp-q80.{fmt}"
        if sharp and theirs.exists():
            their_size = theirs.stat().st_size
            row += [their_size, ssim(decoded(theirs.read_bytes()), references[LANCZOS]), at_bytes(curve, their_size)]
        codec_rows.append(row)
    return jpeg_rows, codec_rows


MATCH_QUALITIES = (60, 70, 80, 90, 95)


def at_bytes(curve: list[tuple[int, float]], size: int) -> float:
    """SSIM of our rate curve [(bytes, SSIM)] at ``size`` bytes, linear between its points."""
    points = sorted(curve)
    for (b0, s0), (b1, s1) in zip(points, points[1:]):
        if b0 <= size <= b1:
            return s0 + (s1 - s0) * (size - b0) / (b1 - b0) if b1 > b0 else s1
    return points[0][1] if size < points[0][0] else points[-1][1]


def print_timings(rows: list[dict], title: str) -> None:
    print(f"\n{title:34} {'ours ms':>8} {'naive ms':>9} {'ratio':>6} {'sharp ms':>9} {'ratio':>6}  {'target':>9}  met")
    for r in rows:
        peer = r.get("sharp")
        peer_text = f"{peer:9.1f} {r['ours'] / peer:5.2f}x" if peer else f"{'n/a':>9} {'':>6}"
        met = "n/a" if not peer else ("yes" if r["ours"] <= r["target"] * peer else "NO")
        print(
            f"{r['label']:34} {r['ours']:8.1f} {r['naive']:9.1f} {r['ours'] / r['naive']:5.2f}x {peer_text}  "
            f"{'≤ ' + format(r['target'], '.1f') + 'x':>9}  {met}"
        )


def print_quality(jpeg_rows: list, codec_rows: list, sharp: Sharp | None) -> None:
    print(
        f"\n{'quality vs reference (full decode)':34} {'PSNR enc ours':>14} {'naive':>7} {'Δ dB':>6} {'≥ -0.2':>7}"
        f"   {'budget: PSNR':>12} {'max|Δ|':>7}"
    )
    for label, enc_ours, enc_naive, (psnr, worst) in jpeg_rows:
        delta = enc_ours - enc_naive
        print(
            f"{label:34} {enc_ours:14.2f} {enc_naive:7.2f} {delta:+6.2f} {'yes' if delta >= -0.2 else 'NO':>7}   "
            f"{psnr:12.2f} {worst:7d}"
        )
    if sharp:
        lanczos = compare(
            Image.open(CACHE / "sharp-lanczos.png"), Image.open(PHOTO).convert("RGB").resize(SIZE, LANCZOS)
        )
        print(
            f"{'sharp (lanczos3), for comparison':34} {'':>14} {'':>7} {'':>6} {'':>7}   "
            f"{lanczos[0]:12.2f} {lanczos[1]:7d}"
        )
    print(
        f"\n{'500x375, qlt 80 / sharp quality 80':34} {'ours KB':>8} {'SSIM':>7} {'sharp KB':>9} {'SSIM':>7}  "
        f"{'ours at sharp KB':>16}  equal or better SSIM per byte"
    )
    for fmt, size, value, *peer in codec_rows:
        if peer:
            theirs, their_ssim, matched = peer
            met = "yes" if matched >= their_ssim else "NO"
            print(
                f"{fmt:34} {size / 1000:8.1f} {value:7.4f} {theirs / 1000:9.1f} {their_ssim:7.4f}  "
                f"{matched:16.4f}  {met}"
            )
        else:
            print(f"{fmt:34} {size / 1000:8.1f} {value:7.4f} {'n/a':>9}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 runs per figure instead of 25")
    parser.add_argument("--runs", type=int, help="timed runs per figure")
    parser.add_argument(
        "--cpus", help="run pinned (taskset -c CPUS), sharp too with sharp.concurrency(1); e.g. --cpus 0 for one core"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here (benchmarks/all.py reads them)")
    args = parser.parse_args()
    runs = args.runs or (5 if args.quick else 25)
    if args.cpus and os.environ.get("BENCH_PINNED") != args.cpus:
        # Pinned before anything is imported that sizes a thread pool from the CPUs it may use.
        os.environ["BENCH_PINNED"] = args.cpus
        os.execvp("taskset", ["taskset", "-c", args.cpus, sys.executable, *sys.argv])

    origin = prepare_photo()
    prepare_big()
    prepare_bucket()
    rss = None
    if not args.cpus:
        # Memory first (each child reads its own VmHWM, but a small parent keeps ru_maxrss honest too).
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

    handler = make_handler()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    pinned = f", pinned to CPU {args.cpus} (taskset; resample.CORES = {resample.CORES})" if args.cpus else ""
    print(
        f"imageserving render benchmark: {cores} cores{pinned}, Python {platform.python_version()}, "
        f"Pillow {Image.__version__}, {runs} runs per figure (medians, contenders interleaved)"
    )
    print(f"source: {origin}; {PHOTO.stat().st_size / 1e6:.1f} MB")
    print(
        f"uptime: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (load average): "
        "absolute figures are under that load, compare the ratios"
    )
    sharp = Sharp.start(args.cpus)
    if sharp:
        print(
            f"peer: sharp {sharp.info['version']} (libvips {sharp.info['vips']}, "
            f"concurrency {sharp.info['threads']}), timed inside node"
        )
    rows = timings(handler, sharp, runs)
    jpeg_rows, codec_rows = quality(handler, sharp)
    if sharp:
        sharp.stop()
    print_timings(rows, "whole request" + (f", CPU {args.cpus}" if args.cpus else ""))
    print_quality(jpeg_rows, codec_rows, sharp)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "jpeg": jpeg_rows, "codec": codec_rows, "rss": rss}))
    if rss:
        print(
            f"\npeak RSS (VmHWM), {megapixels:.0f} MP JPEG → 500x375 jpg in a fresh process: "
            f"ours {rss['ours']:.0f} MB "
            f"(app imported, no request: {rss['idle']:.0f} MB), naive Pillow {rss['naive']:.0f} MB; "
            f"target ≤ 120 MB: {'yes' if rss['ours'] <= 120 else 'NO'}"
        )


if __name__ == "__main__":
    main()
