"""Caching headers, validators and conditional requests (protocol.md §11.2-§11.4)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import formatdate, parsedate_to_datetime

ONE_YEAR = 31_536_000
NOT_CACHEABLE = {
    "Cache-Control": "no-cache, no-store, must-revalidate",
    "Pragma": "no-cache",
    "Expires": "Thu, 01 Jan 1970 00:00:00 GMT",
}


@dataclass
class Reply:
    """What the web layer sends: status, body, headers. ``ttl`` None means not cacheable."""

    status: int
    body: bytes = b""
    media_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def min_ttl(*ttls: float) -> float:
    """Smallest TTL in hours, where -1 (never expires) counts as infinity (AMBIG-13)."""
    finite = [t for t in ttls if t != -1]
    return min(finite) if finite else -1


def cache_headers(ttl: float | None, now: float | None = None) -> dict[str, str]:
    if ttl is None:
        return dict(NOT_CACHEABLE)
    now = time.time() if now is None else now
    if ttl == -1:
        seconds = ONE_YEAR
    elif not ttl > 0:  # 0, negative or NaN from a catalog: expire at once
        return {"Cache-Control": "no-cache, max-age=0", "Expires": formatdate(now, usegmt=True)}
    else:
        seconds = int(min(ttl * 3600 + 0.5, ONE_YEAR))  # HTTP caches cap max-age at a year anyway
    return {"Cache-Control": f"public, max-age={seconds}", "Expires": formatdate(now + seconds, usegmt=True)}


def http_date(dt: datetime) -> str:
    return formatdate(dt.timestamp(), usegmt=True)


def finish(
    reply: Reply,
    ttl: float | None,
    request_headers,
    *,
    last_modified: datetime | None = None,
    never_expires: bool = False,
) -> Reply:
    """Add caching headers and validators to a successful reply; answer 304 when the client is current."""
    reply.headers.update(cache_headers(ttl))
    if ttl is None:
        return reply
    etag = f'"{hashlib.md5(_etag_basis(reply.body), usedforsecurity=False).hexdigest()}"'
    reply.headers["ETag"] = etag
    if last_modified is not None:
        reply.headers["Last-Modified"] = http_date(last_modified)
    inm = request_headers.get("if-none-match")
    ims = request_headers.get("if-modified-since")
    if never_expires and (inm or ims):
        return _not_modified(reply)
    if inm is not None:
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        if "*" in tags or etag in tags:
            return _not_modified(reply)
    elif ims and last_modified is not None:
        try:
            since = parsedate_to_datetime(ims)
        except (TypeError, ValueError, IndexError):
            since = None
        if since is not None:
            if since.tzinfo is None:
                since = since.replace(tzinfo=timezone.utc)
            if last_modified.replace(microsecond=0) <= since:
                return _not_modified(reply)
    return reply


def _etag_basis(body: bytes) -> bytes:
    """The body without the generation date of a text properties reply (``#S7Z OK`` + ``#<date>``),
    so an unchanged answer keeps its ETag and can be revalidated with 304."""
    if body.startswith(b"#S7Z OK\n#"):
        end = body.find(b"\n", 9)
        return body[:8] + (body[end + 1 :] if end != -1 else b"")
    return body


def _not_modified(reply: Reply) -> Reply:
    keep = ("ETag", "Last-Modified", "Cache-Control", "Expires")
    return Reply(304, b"", None, {k: v for k, v in reply.headers.items() if k in keep})
