"""Shrink-on-load for JPEG 2000 (issue 8 item 5): OpenJPEG can skip the finest wavelet levels.

A JPEG 2000 codestream holds its image as a pyramid of resolution levels; decoding with
``reduce = n`` stops 2^n short of full size, which is what a JPEG's DCT scaling is to a JPEG:
for a 500-pixel reply of a 100 MP source, 1/16 of the memory and a fraction of the time (the
full decode measured 1845 MB and 7-21 s here). The reduced image is the codestream's own low-pass
band, a proper downscale.

Two limits decide how far: the number of decomposition levels the encoder wrote (the COD marker
of the main header; COC markers may lower it per component), and Pillow 13's size arithmetic,
which rounds ``w / 2^n`` half up where OpenJPEG takes the ceiling: where they differ, Pillow
rejects the decoded data, so such levels are not used.
"""

from __future__ import annotations

import math

_SOC_SIZ = b"\xff\x4f\xff\x51"
_COD, _COC, _SOT = 0x52, 0x53, 0x90
_MAX_MARKERS = 64  # main-header segments looked at (a real header has a handful)


def decomposition_levels(data: bytes) -> int:
    """Wavelet decomposition levels every component has, from the main header; 0 when unknown."""
    pos = data.find(_SOC_SIZ, 0, 4096)  # JP2: after the signature, ftyp, jp2h boxes
    if pos < 0:
        return 0
    pos += 2
    if any(data[pos + 14 : pos + 22]):  # an image offset: reduced sizes round differently
        return 0
    components = int.from_bytes(data[pos + 38 : pos + 40], "big")  # Csiz in SIZ
    levels = None
    for _ in range(_MAX_MARKERS):
        if pos + 4 > len(data) or data[pos] != 0xFF:
            break
        marker, length = data[pos + 1], int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == _SOT or length < 2:
            break
        if marker == _COD and pos + 9 < len(data):
            levels = data[pos + 9] if levels is None else min(levels, data[pos + 9])
        elif marker == _COC:
            at = pos + 4 + (2 if components >= 257 else 1) + 1  # Ccoc, Scoc
            if at < len(data):
                levels = data[at] if levels is None else min(levels, data[at])
        pos += 2 + length
    return levels or 0


def reduced_size(size: tuple[int, int], n: int) -> tuple[int, int]:
    """The size Pillow gives an image decoded with ``reduce = n``."""
    power, adjust = 1 << n, (1 << n) >> 1
    return int((size[0] + adjust) / power), int((size[1] + adjust) / power)


def reduction(data: bytes, size: tuple[int, int], scale_hint: float | None) -> int:
    """The largest ``reduce`` that keeps twice ``scale_hint``'s resolution (as a JPEG draft does)
    and that both the codestream and Pillow can decode; 0 for a full decode."""
    if scale_hint is None or not 0 < scale_hint <= 0.25:
        return 0
    wanted = math.floor(math.log2(1 / (2 * scale_hint)))
    for n in range(min(wanted, decomposition_levels(data)), 0, -1):
        ceil = (-(-size[0] // (1 << n)), -(-size[1] // (1 << n)))
        if reduced_size(size, n) == ceil:
            return n
    return 0
