"""Smart Imaging benchmark: what browser format conversion buys, image by image, at 500 px.

    .venv/bin/python benchmarks/smart_imaging.py               # the side-by-side table
    .venv/bin/python benchmarks/smart_imaging.py --calibrate   # how the quality mapping was found

For every image, the reference is the 500 px wide rendition the server would encode (DCT-scaled
decode + LANCZOS, through imageserving.render.codec), not encoded. Each contender is encoded from
those same pixels with the server's own encoder (codec.encode): the requested format at qlt=80
(JPEG for photos, PNG for images with alpha) beside the WebP and AVIF that
imageserving.negotiate would serve instead, run through negotiate.encode_choice (compare with
the requested body, AVIF retry, fallback). Columns: bytes, SSIM (luma, Gaussian 11x11 window,
sigma 1.5 - Wang et al. 2004) and PSNR (R, G, B) against the reference, and ms: the requested
format's encode time, and on a converted row every encode beyond that one (the extra time of a
negotiated cache miss). Images with alpha are compared over white and over black, the lower score kept.

Inputs: the 12 MP photo of bench_render.py (Debian's mate-backgrounds "Elephants", centre
4000x3000), the same package's nature/*.jpg photographs and abstract/*.png (RGBA) wallpapers, and
the sample bucket's images/sample/. Everything is prepared into benchmarks/.cache (gitignored) by
``apt-get download mate-backgrounds``; without it only the sample images are measured.

``--calibrate`` prints, for each JPEG qlt, the lowest WebP and AVIF quality whose SSIM reaches
the JPEG's on each photograph, and the percentiles over the set: the tables in negotiate.py and
codec.py come from it. Needs numpy (a dev/benchmark dependency only; the server never imports it).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from bench_render import CACHE, prepare_photo
from PIL import Image

from imageserving import negotiate
from imageserving.render import codec, formats

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 500
MATE = CACHE / "deb" / "usr" / "share" / "backgrounds" / "mate"


# ----------------------------------------------------------------------------------- metrics
def _gauss(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size) - size // 2
    k = np.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


_KERNEL = _gauss()


def _filter(a: np.ndarray) -> np.ndarray:
    """Separable 'valid' Gaussian filter of a 2-D array."""
    n = len(_KERNEL)
    rows = sum(_KERNEL[i] * a[:, i : a.shape[1] - n + 1 + i] for i in range(n))
    return sum(_KERNEL[i] * rows[i : rows.shape[0] - n + 1 + i, :] for i in range(n))


def _luma(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB").convert("L"), dtype=np.float64)


def ssim(a: Image.Image, b: Image.Image) -> float:
    """Mean SSIM of the luma planes (BT.601 luma as Pillow's L conversion computes it)."""
    x, y = _luma(a), _luma(b)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = _filter(x), _filter(y)
    sxx = _filter(x * x) - mx * mx
    syy = _filter(y * y) - my * my
    sxy = _filter(x * y) - mx * my
    m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(m.mean())


def psnr(a: Image.Image, b: Image.Image) -> float:
    x = np.asarray(a.convert("RGB"), dtype=np.float64)
    y = np.asarray(b.convert("RGB"), dtype=np.float64)
    mse = float(((x - y) ** 2).mean())
    return 10 * np.log10(255**2 / mse) if mse else float("inf")


def _over(img: Image.Image, colour: tuple[int, int, int]) -> Image.Image:
    rgba = img.convert("RGBA")
    base = Image.new("RGB", img.size, colour)
    base.paste(rgba, mask=rgba.getchannel("A"))
    return base


def scores(ref: Image.Image, data: bytes) -> tuple[float, float]:
    """(SSIM, PSNR) of an encoded reply against the reference; alpha: the worse of two mattes."""
    got = Image.open(io.BytesIO(data))
    got.load()
    if ref.mode in ("RGBA", "LA") and got.mode in ("RGBA", "LA", "P", "PA"):
        pairs = [(_over(ref, c), _over(got, c)) for c in ((255, 255, 255), (0, 0, 0))]
        return min(ssim(a, b) for a, b in pairs), min(psnr(a, b) for a, b in pairs)
    if ref.mode in ("RGBA", "LA"):  # a reply without alpha was flattened over white
        ref = _over(ref, (255, 255, 255))
    return ssim(ref, got), psnr(ref, got)


# ------------------------------------------------------------------------------------- inputs
def rendition(path: Path) -> Image.Image:
    """The 500 px wide pixels the server would encode for ``path`` (aspect kept)."""
    src = codec.open_source(path.read_bytes(), max_pixels=100_000_000)
    w, h = src.size
    size = (WIDTH, max(1, round(h * WIDTH / w)))
    dec = codec.decode(src, scale_hint=WIDTH / w)
    return dec.image.resize(size, Image.Resampling.LANCZOS)


def inputs(photos_only: bool = False) -> list[tuple[str, Path]]:
    note = prepare_photo()
    found = [("photo12 (Elephants 12 MP)", CACHE / "photo12.jpg")] if "GENERATED" not in note else []
    found += [(p.name, p) for p in sorted((MATE / "nature").glob("*.jpg"))]
    if not photos_only:
        found += [(p.name, p) for p in sorted((MATE / "abstract").glob("*.png"))]
        found += [(p.name, p) for p in sorted((ROOT / "images" / "sample").iterdir())]
    return found


def timed_encode(img: Image.Image, out: formats.OutputFormat, quality: int, runs: int = 3) -> tuple[bytes, float]:
    """Encoded bytes and the median encode time in ms."""
    times, data = [], b""
    for _ in range(runs):
        start = time.perf_counter()
        data = codec.encode(img, out, quality=quality)
        times.append((time.perf_counter() - start) * 1000)
    return data, statistics.median(times)


# ------------------------------------------------------------------------------------- report
def table(qlt: int) -> None:
    print(f"qlt={qlt}, {WIDTH} px wide; SSIM (luma) and PSNR (dB) against the unencoded rendition")
    print(f"AVIF {codec.AVIF_OPTIONS}, WebP method {codec.WEBP_METHOD}")
    head = f"{'image':26} {'encoded as':>20} {'bytes':>7} {'SSIM':>7} {'PSNR':>6} {'ms':>6}"
    print(head + f" {'saved':>6} {'':8}  served   (ms of a converted row: extra time; 'a->b': retried at b)")
    savings: dict[str, list[float]] = {"webp": [], "avif": []}
    extra: dict[str, list[float]] = {"webp": [], "avif": []}
    ssim_ok: dict[str, int] = {"webp": 0, "avif": 0}
    fallbacks: dict[str, int] = {"webp": 0, "avif": 0}
    count = 0
    for label, path in inputs():
        ref = rendition(path)
        requested = formats.parse_fmt("png-alpha" if ref.mode in ("RGBA", "LA") else "jpeg")
        base, base_ms = timed_encode(ref, requested, qlt)
        base_ssim, base_psnr = scores(ref, base)
        row = f"{label[:26]:26} {requested.name:>20} {len(base):7} {base_ssim:7.4f} {base_psnr:6.2f} {base_ms:6.1f}"
        print(row)
        count += 1
        for accept, key in (("image/webp,*/*", "webp"), ("image/avif,image/webp,*/*", "avif")):
            choice = negotiate.negotiate(requested, explicit=False, bfc=True, accept=accept, quality=qlt)
            if not choice.converted:
                print(f"{'':26} {'(not converted)':>20}  {key} browser gets {requested.name}")
                savings[key].append(0.0)
                extra[key].append(0.0)
                ssim_ok[key] += 1
                continue
            times: list[float] = []

            def enc(fmt: formats.OutputFormat, quality: int, ref=ref, times=times) -> bytes:
                data, ms = timed_encode(ref, fmt, quality)
                times.append(ms)
                return data

            got = negotiate.encode_choice(choice, enc)
            # The cost of the conversion: every encode beyond the requested format's own one.
            cost = sum(times) - base_ms
            s, p = scores(ref, got.body)
            served = got.format.name
            retried = len(times) == 3
            fallbacks[key] += served == requested.name
            saved = 100 * (1 - len(got.body) / len(base))
            savings[key].append(saved)
            extra[key].append(cost)
            ssim_ok[key] += served == requested.name or s >= base_ssim - 0.0005
            lossless = ",lossless" if choice.format.compression == "lossless" else ""
            name = f"{choice.format.name}{lossless}@{choice.quality}"
            if retried:
                name += f"->{choice.retry_quality}"
            print(f"{'':26} {name:>20} {len(got.body):7} {s:7.4f} {p:6.2f} {cost:6.1f} {saved:5.1f}% {'':8}  {served}")
    for key in ("webp", "avif"):
        v = savings[key]
        print(
            f"{key} browser: median saving {statistics.median(v):.1f} % (min {min(v):.1f}, max {max(v):.1f}), "
            f"median extra {statistics.median(extra[key]):.1f} ms; served SSIM >= requested's on "
            f"{ssim_ok[key]}/{count}; fell back to the requested format {fallbacks[key]} times"
        )


def _lowest_quality(ref: Image.Image, out: formats.OutputFormat, target: float, lo: int, hi: int) -> tuple[int, int]:
    """Lowest encoder quality in [lo, hi] whose SSIM reaches ``target`` (bisection: SSIM grows with
    quality), and its bytes. Encodes through Pillow directly with the codec's settings."""
    cache: dict[int, tuple[float, int]] = {}

    def probe(q: int) -> tuple[float, int]:
        if q not in cache:
            buf = io.BytesIO()
            options = {"quality": q, "method": codec.WEBP_METHOD} if out.name == "webp" else {"quality": q}
            if out.name == "avif":
                options |= codec.AVIF_OPTIONS
            ref.save(buf, out.pillow_format, **options)
            cache[q] = (scores(ref, buf.getvalue())[0], len(buf.getvalue()))
        return cache[q]

    while lo < hi:
        mid = (lo + hi) // 2
        if probe(mid)[0] >= target:
            hi = mid
        else:
            lo = mid + 1
    return lo, probe(lo)[1]


def calibrate() -> None:
    photos = inputs(photos_only=True)
    refs = [(label, rendition(p)) for label, p in photos]
    jpeg = formats.parse_fmt("jpeg")
    print(f"{len(refs)} photographs at {WIDTH} px; AVIF options {codec.AVIF_OPTIONS}")
    print("per qlt: lowest quality reaching the JPEG's SSIM on each photo -> median / p90 / max; bytes vs JPEG")
    for qlt in (50, 60, 70, 75, 80, 85, 90, 95):
        for name in ("webp", "avif"):
            out = formats.parse_fmt(name)
            qs, ratios = [], []
            for _, ref in refs:
                jpg = codec.encode(ref, jpeg, quality=qlt)
                target = scores(ref, jpg)[0]
                q, size = _lowest_quality(ref, out, target, 1, 100)
                qs.append(q)
                ratios.append(size / len(jpg))
            qs.sort()
            p90 = qs[min(len(qs) - 1, int(round(0.9 * (len(qs) - 1))))]
            print(
                f"qlt {qlt:3} {name:5} quality median {statistics.median(qs):5.1f} p90 {p90:3} max {qs[-1]:3}"
                f"  bytes/JPEG median {statistics.median(ratios):.2f}  all: {qs}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calibrate", action="store_true", help="derive the quality mapping")
    parser.add_argument("--qlt", type=int, default=80)
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    if args.calibrate:
        calibrate()
    else:
        table(args.qlt)


if __name__ == "__main__":
    main()
