"""Generate the sample bucket's images (deterministic, small): `python tests/make_samples.py [ROOT]`.

The images are committed under images/; tests/test_samples.py checks they still match this script.
"""

from __future__ import annotations

import io
import struct
import sys
from pathlib import Path

from PIL import Image, ImageCms, ImageDraw


def rose() -> Image.Image:
    """1600×1200 'photo': smooth gradients plus concentric petals, so resampling quality shows."""
    w, h = 1600, 1200
    base = Image.merge(
        "RGB",
        (
            Image.linear_gradient("L").resize((w, h)),
            Image.radial_gradient("L").resize((w, h)),
            Image.linear_gradient("L").rotate(90).resize((w, h)),
        ),
    )
    draw = ImageDraw.Draw(base)
    for i, r in enumerate(range(500, 40, -40)):
        shade = 120 + (i * 11) % 135
        draw.ellipse((w // 2 - r, h // 2 - r, w // 2 + r, h // 2 + r), fill=(shade, 20 + i * 6, 60 + i * 4))
    draw.rectangle((0, 0, 15, 15), fill=(255, 0, 0))  # markers in the corners, for geometry tests
    draw.rectangle((w - 16, h - 16, w - 1, h - 1), fill=(0, 0, 255))
    return base


def shoe() -> Image.Image:
    img = Image.new("RGB", (800, 800), (250, 250, 245))
    draw = ImageDraw.Draw(img)
    draw.polygon([(120, 520), (620, 520), (700, 600), (120, 600)], fill=(40, 40, 40))
    draw.polygon([(120, 520), (160, 300), (420, 330), (620, 520)], fill=(180, 60, 40))
    return img


def tulip() -> Image.Image:
    img = Image.new("RGBA", (400, 600), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.rectangle((190, 250, 210, 600), fill=(30, 140, 40, 255))
    draw.ellipse((110, 80, 290, 300), fill=(220, 30, 90, 255))
    return img


def noimage() -> Image.Image:
    img = Image.new("RGB", (300, 300), (238, 238, 238))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, 299, 299), outline=(200, 200, 200), width=4)
    draw.line((60, 60, 240, 240), fill=(200, 200, 200), width=6)
    draw.line((60, 240, 240, 60), fill=(200, 200, 200), width=6)
    return img


def watermark() -> Image.Image:
    """200×100 mark: opaque white with a black bar through the middle, transparent 10-px border
    (placement tests look for its edges)."""
    img = Image.new("RGBA", (200, 100), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.rectangle((10, 10, 189, 89), fill=(255, 255, 255, 255))
    draw.rectangle((10, 45, 189, 54), fill=(0, 0, 0, 255))
    return img


# --- ICC profiles: Pillow can build sRGB but not Adobe RGB, and no free Adobe RGB profile ships in
# Debian or the Pillow wheel; a matrix/TRC profile is 9 tags, written here from the published
# colour space (primaries, D65 white, gamma 563/256), colorants D50-adapted by Bradford as ICC wants.

_D50 = (0.9642, 1.0, 0.8249)
_BRADFORD = ((0.8951, 0.2664, -0.1614), (-0.7502, 1.7135, 0.0367), (0.0389, -0.0685, 1.0296))


def _inverse(m):
    (a, b, c), (d, e, f), (g, h, i) = m
    det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)
    return (
        ((e * i - f * h) / det, (c * h - b * i) / det, (b * f - c * e) / det),
        ((f * g - d * i) / det, (a * i - c * g) / det, (c * d - a * f) / det),
        ((d * h - e * g) / det, (b * g - a * h) / det, (a * e - b * d) / det),
    )


def _times(m, n):
    return tuple(tuple(sum(m[r][k] * n[k][c] for k in range(3)) for c in range(3)) for r in range(3))


def _apply(m, v):
    return tuple(sum(m[r][k] * v[k] for k in range(3)) for r in range(3))


def colorants(primaries, white) -> list[tuple[float, float, float]]:
    """D50 XYZ of an RGB space's red, green and blue (the rXYZ, gXYZ, bXYZ tags)."""
    xyz = [(x / y, 1.0, (1 - x - y) / y) for x, y in primaries]
    w = (white[0] / white[1], 1.0, (1 - white[0] - white[1]) / white[1])
    columns = tuple(tuple(xyz[c][r] for c in range(3)) for r in range(3))
    s = _apply(_inverse(columns), w)
    to_xyz = tuple(tuple(columns[r][c] * s[c] for c in range(3)) for r in range(3))
    src, dst = _apply(_BRADFORD, w), _apply(_BRADFORD, _D50)
    scale = tuple(tuple(dst[i] / src[i] if i == j else 0.0 for j in range(3)) for i in range(3))
    m = _times(_times(_inverse(_BRADFORD), _times(scale, _BRADFORD)), to_xyz)
    return [tuple(m[r][c] for r in range(3)) for c in range(3)]


def s15(v: float) -> bytes:
    """ICC s15Fixed16Number."""
    return struct.pack(">i", round(v * 65536))


def icc_xyz(v) -> bytes:
    """An ICC XYZType tag."""
    return b"XYZ " + bytes(4) + b"".join(s15(c) for c in v)


def icc_desc(description: str) -> bytes:
    """An ICC v2 textDescriptionType tag (ASCII only, empty Unicode and ScriptCode parts)."""
    text = description.encode("ascii") + b"\0"
    return b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(78)


def icc_gamma(gamma: float) -> bytes:
    """An ICC curveType tag with one gamma value."""
    return b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256)) + bytes(2)


def icc_profile(device_class: bytes, space: bytes, pcs: bytes, tags, date=(0, 0, 0, 0, 0, 0)) -> bytes:
    """An ICC v2.1 profile from its class (``mntr``/``prtr``), colour space and PCS (4-byte
    signatures) and (signature, data) tags: the 128-byte header, the tag table, the tag data
    (each padded to 4 bytes); rendering intent perceptual, illuminant D50."""
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags:
        data += bytes(-len(data) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    header = (
        struct.pack(">I", offset + len(body))
        + bytes(4)
        + struct.pack(">I", 0x02100000)
        + device_class
        + space
        + pcs
        + struct.pack(">6H", *date)
        + b"acsp"
        + bytes(24)
        + bytes(4)  # rendering intent: perceptual
        + b"".join(s15(c) for c in _D50)
        + bytes(48)
    )
    return header + struct.pack(">I", len(tags)) + table + body


def matrix_profile(description: str, primaries, white, gamma: float) -> bytes:
    """An ICC v2.1 RGB display profile: desc, cprt, wtpt, r/g/bXYZ and one gamma curve per channel."""
    curve = icc_gamma(gamma)
    red, green, blue = colorants(primaries, white)
    tags = [
        (b"desc", icc_desc(description)),
        (b"cprt", b"text" + bytes(4) + b"No copyright, use freely\0"),
        (b"wtpt", icc_xyz(_D50)),
        (b"rXYZ", icc_xyz(red)),
        (b"gXYZ", icc_xyz(green)),
        (b"bXYZ", icc_xyz(blue)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    return icc_profile(b"mntr", b"RGB ", b"XYZ ", tags, date=(1998, 12, 31, 0, 0, 0))


def adobe_rgb() -> bytes:
    """An Adobe RGB (1998)-compatible profile (its published primaries, white and gamma)."""
    return matrix_profile(
        "Adobe RGB (1998) compatible", ((0.64, 0.33), (0.21, 0.71), (0.15, 0.06)), (0.3127, 0.3290), 563 / 256
    )


def to_adobe_rgb(img: Image.Image) -> Image.Image:
    """``img``'s sRGB colours expressed in Adobe RGB (relative colorimetric), tagged with the profile."""
    srgb = ImageCms.createProfile("sRGB")
    adobe = ImageCms.ImageCmsProfile(io.BytesIO(adobe_rgb()))
    out = ImageCms.profileToProfile(img, srgb, adobe, renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)
    out.info["icc_profile"] = adobe_rgb()
    return out


def rose_adobe() -> Image.Image:
    """The rose as an Adobe-RGB-tagged master: served, it must look like rose.jpg."""
    return to_adobe_rgb(rose())


def encode(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    icc = {"icc_profile": img.info["icc_profile"]} if img.info.get("icc_profile") else {}
    if fmt == "JPEG":
        img.save(buf, fmt, quality=88, optimize=True, **icc)
    else:
        img.save(buf, fmt, optimize=True, **icc)
    return buf.getvalue()


SAMPLES = {
    "images/sample/rose.jpg": (rose, "JPEG"),
    "images/sample/shoe.jpg": (shoe, "JPEG"),
    "images/sample/tulip.png": (tulip, "PNG"),
    "images/sample/rose-adobe.jpg": (rose_adobe, "JPEG"),
    "images/defaults/noimage.png": (noimage, "PNG"),
    "images/defaults/watermark.png": (watermark, "PNG"),
}


# Files that are not images: the sample catalog's ICC profile map points here.
PROFILES = {"images/sample/profiles/AdobeRGB1998.icc": adobe_rgb}


def main(root: str = ".") -> None:
    files = {key: encode(make(), fmt) for key, (make, fmt) in SAMPLES.items()}
    files |= {key: make() for key, make in PROFILES.items()}
    for key, data in files.items():
        path = Path(root) / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        print(f"{key}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main(*sys.argv[1:])
