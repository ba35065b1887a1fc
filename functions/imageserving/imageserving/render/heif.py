"""pillow-heif (libheif with its codecs), registered with Pillow on first need: a HEIF/HEIC source
(codec.py) or an ``fmt=heic`` reply (formats.py). Importing it costs about as much as Pillow
itself, which no other request should pay.
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def register() -> bool:
    """Register pillow-heif's opener (the writer comes with it) once; False when it is not installed."""
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True
