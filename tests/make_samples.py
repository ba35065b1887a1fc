"""Generate the sample bucket's images (deterministic, small): `python tests/make_samples.py [ROOT]`.

The images are committed under images/; tests/test_samples.py checks they still match this script.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from PIL import Image, ImageDraw


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


def encode(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    if fmt == "JPEG":
        img.save(buf, fmt, quality=88, optimize=True)
    else:
        img.save(buf, fmt, optimize=True)
    return buf.getvalue()


SAMPLES = {
    "images/sample/rose.jpg": (rose, "JPEG"),
    "images/sample/shoe.jpg": (shoe, "JPEG"),
    "images/sample/tulip.png": (tulip, "PNG"),
    "images/defaults/noimage.png": (noimage, "PNG"),
    "images/defaults/watermark.png": (watermark, "PNG"),
}


def main(root: str = ".") -> None:
    for key, (make, fmt) in SAMPLES.items():
        path = Path(root) / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode(make(), fmt))
        print(f"{key}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main(*sys.argv[1:])
