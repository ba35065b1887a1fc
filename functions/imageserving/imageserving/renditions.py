"""Replies too large to answer inline (a 4000 px PNG zoom image): stored once in the bucket's
rendition prefix and answered with ``302`` to a presigned URL (or ``IS_RENDITION_BASE_URL`` + key,
e.g. a CDN path in front of the bucket).

Lambda cannot return more than 6 MB (base64 included), so without this such a request is the
documented ``size_limit`` error, which stays the default: set ``IS_RENDITION_PREFIX`` (and grant
``s3:PutObject``/``s3:GetObject`` on that prefix only; template parameter ``RenditionPrefix``) to
turn it on. The key is the reply's ETag, so the same image is stored once however often it is
asked for; a lifecycle rule expires renditions (template parameter ``RenditionDays``).
"""

from __future__ import annotations

import logging

from .errors import ISError
from .responses.headers import Reply

log = logging.getLogger("imageserving")

_EXT = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/avif": ".avif",
    "image/gif": ".gif",
    "image/tiff": ".tif",
}
# Headers of the inline reply that describe the body; the 302 has none of it.
_BODY_HEADERS = ("ETag", "Last-Modified", "Content-Length")


def redirect(storage, settings, reply: Reply) -> Reply:
    """The 302 that replaces a 200 ``reply`` whose body is over the inline limit."""
    put, presign = getattr(storage, "put", None), getattr(storage, "presign", None)
    if put is None or presign is None:  # a local folder has no URL to send a browser to
        raise ISError("size_limit", f"reply of {len(reply.body)} bytes; renditions need S3 storage")
    etag = reply.headers.get("ETag", "").strip('"')
    key = f"{settings.rendition_prefix}{etag}{_EXT.get(reply.media_type or '', '')}"
    cache_control = reply.headers.get("Cache-Control", "no-store")
    if storage.head(key) is None:  # content-addressed: an existing rendition is this body
        put(key, reply.body, reply.media_type or "application/octet-stream", cache_control)
    headers = {k: v for k, v in reply.headers.items() if k not in _BODY_HEADERS}
    if settings.rendition_base_url:
        headers["Location"] = settings.rendition_base_url + key
    else:
        headers["Location"] = presign(key, settings.rendition_url_seconds)
        # A cache may keep the redirect only while the presigned URL it points to is still valid.
        headers["Cache-Control"] = _shorter(cache_control, settings.rendition_url_seconds // 2)
        headers.pop("Expires", None)
    log.info("reply of %d bytes stored as rendition %s", len(reply.body), key)
    return Reply(302, b"", None, headers)


def _shorter(cache_control: str, seconds: int) -> str:
    if "no-store" in cache_control or "no-cache" in cache_control:
        return cache_control
    ages = [int(p.split("=", 1)[1]) for p in cache_control.split(",") if p.strip().startswith("max-age=")]
    age = min([seconds, *ages])
    return f"public, max-age={age}"
