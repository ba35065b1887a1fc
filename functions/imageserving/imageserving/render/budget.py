"""The decode-memory budget (issue 8 item 5): what decoding a source will cost, from headers alone.

A pixel limit alone let through sources that cost far more than a Lambda function has: at the
same 100 MP, a JPEG decoded at 1/8 scale costs ~10 MB and a lossless WebP ~1.5 GB. So before any
pixel is decoded, the codec asks :func:`check` with what the decoder will actually produce (the
size after JPEG DCT scaling or pyramid-level choice, in the mode Pillow will hold) and the budget
of the request; a decode that would not fit is a ``size_limit`` error, and nothing is allocated.

The estimate is the sum of what is alive at the decode's peak (measured with
benchmarks/hostile_memory.py, peak RSS of a fresh process per source, Pillow 13):

* the encoded source bytes, held by the request while it renders;
* Pillow's buffer of the decoded mode (:data:`MODE_BYTES`: three-band modes take 4 bytes a pixel);
* the decoder's own working memory (:data:`DECODER_BYTES`);
* the copies the pipeline makes before it can resample: normalising to L/LA/RGB/RGBA, the
  premultiplied copy of an image with alpha, the EXIF-orientation transpose.

The reply's own canvas is bounded separately (IS_MAX_RENDER_PIXELS); the budget leaves room for it.
"""

from __future__ import annotations

import os

from ..errors import ISError

MB = 1 << 20

# Bytes per pixel of Pillow's buffer for a mode. Pillow stores every multi-band 8-bit mode (LA,
# RGB, CMYK, YCbCr ...) in 32-bit pixels; I;16 in 16 bits; I and F in 32.
_ONE_BYTE = frozenset(("1", "L", "P"))


def mode_bytes(mode: str) -> int:
    if mode in _ONE_BYTE:
        return 1
    if mode.startswith("I;16"):
        return 2
    return 4


# Decoder working memory beyond Pillow's buffer, as (bytes per pixel, bytes per band sample),
# measured at 10000x10000 RGB with the budget off (peak above the process's RSS before the request,
# minus the source bytes and the pipeline's copies counted below):
# - WebP (lossless 1554 MB, i.e. 15.5 B/px; an all-black 34-byte lossless WebP 1528 MB): Pillow's
#   plugin decodes through libwebp's animation decoder, which keeps a current and a previous
#   canvas, then hands the frame over as a bytes object - three 4-byte RGBA canvases besides
#   Pillow's own buffer.
# - JPEG 2000 (1845 MB, 18.4 B/px): OpenJPEG decodes every component as 32-bit samples and keeps
#   its tile buffers besides; 14.4 B/px over Pillow's RGB buffer, 4.8 per component.
# - AVIF (877 MB, 9.2 B/px): libavif's YUV planes and its RGB conversion buffer before Pillow's
#   copy; 4.9 B/px over a PNG of the same size (8-bit sources; 10/12-bit ones hold 16-bit planes).
# - HEIF through pillow-heif (700 MB, 7.3 B/px): libheif's decoded planes; 3.0 B/px over PNG.
# PNG (413 MB), TIFF (495 MB with its 86 MB file) and JPEG decode rows straight into Pillow's
# buffer: nothing beyond it.
DECODER_BYTES: dict[str, tuple[float, float]] = {
    "WEBP": (12.0, 0.0),
    "JPEG2000": (0.0, 5.0),
    "AVIF": (5.0, 0.0),
    "HEIF": (3.5, 0.0),
}
# Every decode also holds the resampled piece, the reply and row buffers: 30-55 MB measured at
# 49-100 MP beyond the terms above (PNG 413 MB for a 381 MB buffer, 242 MB for 187 MB).
BASE_BYTES = 64 * MB
# Full-size work some requests add, bytes per decoded pixel (the caller passes it as ``work``):
# - an arbitrary rotate= draws layer 0 in memory from an RGBA copy and its crop (a 49 MP PNG:
#   +590 MB with rotate=30 against +242 MB without: 7.4 B/px);
# - operations that must see full-resolution pixels (op_noise, and those before it) run before
#   scaling; op_noise holds its noise planes besides (49 MP: +1249 MB, 21.5 B/px over the PNG);
# - a tagged layer brought to sRGB at full size (codec.decode(working=True)): one more buffer.
ROTATION_BYTES = 8.0
FULL_SIZE_OPS_BYTES = 22.0
COLOUR_BYTES = 4.0
_BANDS = {"1": 1, "L": 1, "P": 1, "I": 1, "F": 1, "LA": 2, "La": 2, "PA": 2, "RGB": 3, "YCbCr": 3, "LAB": 3, "HSV": 3}


def _bands(mode: str) -> int:
    return 1 if mode.startswith("I;16") else _BANDS.get(mode, 4)


def normalised_mode(mode: str, alpha: bool) -> str:
    """The mode codec._normalise brings ``mode`` to."""
    if mode in ("1", "L", "LA", "La") or mode.startswith("I") or mode == "F":
        return "LA" if alpha and mode in ("LA", "La") else "L"
    return "RGBA" if alpha else "RGB"


def _copies(mode: str, alpha: bool, turned: bool) -> float:
    """Bytes per pixel of the pipeline's copies alive next to the decoded buffer."""
    target = normalised_mode(mode, alpha)
    if mode.startswith("I;16") or mode == "I":
        extra = 8.0  # 16-bit gray: converted to I, scaled by point() (a second I), then to L
    elif mode == target:
        extra = 0.0
    else:
        extra = float(mode_bytes(target))  # P, CMYK, 1, ... converted once
    if alpha:
        extra += 4.0  # resampled premultiplied: an RGBa/La copy (png rgba: 795 MB = 8 B/px)
    if turned:
        extra += mode_bytes(target)  # the EXIF-orientation transpose
    return extra


def estimate(
    fmt: str,
    mode: str,
    size: tuple[int, int],
    *,
    alpha: bool,
    turned: bool = False,
    data_bytes: int = 0,
    work: float = 0.0,
) -> int:
    """Peak bytes of decoding ``size`` pixels of ``mode`` with ``fmt``'s decoder, up to resampling,
    plus ``work`` bytes per pixel of the caller's own full-size work."""
    pixels = size[0] * size[1]
    per_pixel, per_sample = DECODER_BYTES.get(fmt, (0.0, 0.0))
    decoder = per_pixel + per_sample * _bands(mode)
    return int(BASE_BYTES + data_bytes + pixels * (mode_bytes(mode) + decoder + _copies(mode, alpha, turned) + work))


def check(
    fmt: str,
    mode: str,
    size: tuple[int, int],
    *,
    budget: int | None,
    alpha: bool,
    turned: bool = False,
    data_bytes: int = 0,
    work: float = 0.0,
) -> None:
    """Refuse, before anything is decoded, a decode whose :func:`estimate` exceeds ``budget``
    bytes (None: no budget). Called by the codec with the size the decoder will produce."""
    if budget is None:
        return
    cost = estimate(fmt, mode, size, alpha=alpha, turned=turned, data_bytes=data_bytes, work=work)
    if cost > budget:
        w, h = size
        raise ISError(
            "size_limit",
            f"decoding this {fmt or 'image'} source at {w}x{h} ({mode}) needs about {cost // MB} MB, "
            f"over the decode budget of {budget // MB} MB (IS_DECODE_BUDGET_MB)",
        )


# ------------------------------------------------------------------------- budget and slots
# The runtime itself: Python, FastAPI, Pillow, boto3 and warm catalogs measured ~190 MB RSS after
# warm-up (issue 8's soak); 256 leaves some slack.
RUNTIME_MB = 256
# Of the rest, this share goes to one decode's peak. The other 40 % is for what the estimate does
# not count: the reply canvas and its encoder copy (IS_MAX_RENDER_PIXELS 25 MP: 100 MB each as
# RGBA), composite canvases (up to 64 MB), the arbitrary-rotation path's RGBA copy, heap that
# glibc keeps after earlier requests, and the estimate's own error (factors measured within 10 %).
DECODE_SHARE = 0.6
# Without AWS_LAMBDA_FUNCTION_MEMORY_SIZE (the local server): the template's FunctionMemorySize
# default, so that what serves locally also serves on the deployed function.
LOCAL_MEMORY_MB = 1769


def budget_for(memory_mb: float) -> int:
    """Decode budget in bytes for a process of ``memory_mb``."""
    return int(max(memory_mb - RUNTIME_MB, 64) * DECODE_SHARE * MB)


def render_slots(budget: int | None, memory_mb: float, cpus: int) -> int:
    """How many renders may run at once: two per core (one decodes while another fetches or
    encodes; more only adds memory), and no more than half of ``memory_mb`` in budgets."""
    by_cpu = 2 * max(cpus, 1)
    if budget is None:
        return by_cpu
    return max(1, min(by_cpu, int(memory_mb * MB / 2 // budget)))


def machine_memory_mb() -> float:
    """Physical memory, or the cgroup's limit when lower (containers)."""
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / MB
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text) / MB)
    return total


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
