"""Signed URLs, beyond Scene7: an HMAC-SHA256 over the path and the raw query, so that only a
storefront's backend can mint URLs for the catalogs that require it.

Scene7's own ``RequestLock`` (protocol.md §6.4) is an unkeyed checksum: anyone can compute it.
A signed URL ends with ``isSig=``, optionally preceded by ``isExp=`` (expiry, Unix seconds)::

    /is/image/Shop/SKU123?wid=500&fmt=webp&isExp=1767225600&isSig=3q2-7w…

The signature is ``base64url(HMAC-SHA256(key, "/is/image/Shop/SKU123?wid=500&fmt=webp&isExp=1767225600"))``
without padding: the path from ``/is/`` on exactly as sent (percent-encoding kept) and the raw
query up to, not including, ``&isSig=``. Both parameters are removed before the request is parsed,
so a signed URL renders like the unsigned one (a ``RequestLock`` lock goes before ``isExp``).

Keys: ``IS_SIGNING_KEYS`` (comma-separated; the first signs, all verify — add the new key first,
deploy, retire the old one later) or ``IS_SIGNING_KEYS_SSM_PARAMETER`` (an SSM Parameter Store
SecureString holding the same list), fetched once per container on first use, never per
request. ``IS_SIGNATURE_REQUIRED`` lists the RootIds whose requests must be signed (``*``: all);
a signature that is present is checked on every request, required or not. Keys are never logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import threading
import time

from .errors import ISError

SIG = "isSig"
EXP = "isExp"
# The signature is the last parameter; the expiry, when present, comes right before it.
_TAIL = re.compile(r"(?:^|&)(?:isExp=(?P<exp>[^&]*)&)?isSig=(?P<sig>[^&]*)\Z", re.IGNORECASE)


def signature(key: bytes, message: str) -> str:
    digest = hmac.new(key, message.encode("utf-8", "surrogateescape"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def sign(path: str, query: str, key: bytes, expires_at: int | None = None) -> str:
    """The signed ``path?query`` for ``path`` (from ``/is/`` on) and ``query`` (raw, may be empty)."""
    if expires_at is not None:
        query = f"{query}&{EXP}={int(expires_at)}" if query else f"{EXP}={int(expires_at)}"
    message = f"{path}?{query}"
    sep = "&" if query else ""
    return f"{message}{sep}{SIG}={signature(key, message)}"


def split(query: str) -> tuple[str, str, str | None, str | None]:
    """(the query without the signature parameters, the part the signature covers, the expiry
    value, the signature) — the last two None when the query carries no signature."""
    match = _TAIL.search(query)
    if match is None:
        return query, query, None, None
    covered = query[: match.start("sig") - len(SIG) - 1]
    return query[: match.start()], covered.removesuffix("&"), match.group("exp"), match.group("sig")


class Signer:
    """Verifies signed URLs; keys are loaded lazily, once (environment or SSM)."""

    def __init__(self, keys: tuple[str, ...] = (), ssm_parameter: str = "", required: tuple[str, ...] = ()):
        self._keys = tuple(k.encode("utf-8") for k in keys) or None
        self._ssm_parameter = ssm_parameter
        self._required = frozenset(r.lower() for r in required)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self._keys or self._ssm_parameter)

    def keys(self) -> tuple[bytes, ...]:
        if self._keys is None:
            with self._lock:
                if self._keys is None:
                    self._keys = _ssm_keys(self._ssm_parameter) if self._ssm_parameter else ()
        return self._keys

    def required(self, root_id: str) -> bool:
        return "*" in self._required or (root_id or "").lower() in self._required

    def verify(self, path: str, query: str, root_id: str, now: float | None = None) -> str:
        """The query with the signature removed; raises ``refused`` when a required signature is
        missing, or any signature is wrong or expired."""
        if not self.enabled and not self._required:
            return query  # signing is off: isSig= is an unknown command like any other
        unsigned, covered, exp, sig = split(query)
        if sig is None:
            if self.required(root_id):
                raise ISError("refused", "this catalog requires signed URLs (isSig=)")
            return query
        keys = self.keys()
        if not keys:
            raise ISError("refused", "signed URL: no signing keys are configured")
        message = f"{path}?{covered}"
        # Every key is compared, in constant time, so the timing tells nothing of which one matched.
        matched = False
        for key in keys:
            matched |= hmac.compare_digest(signature(key, message), sig)
        if not matched:
            raise ISError("refused", "signed URL: the signature does not match")
        if exp is not None:
            if not exp.isdigit():
                raise ISError("refused", f"signed URL: {EXP}={exp[:32]} is not a time")
            if int(exp) < (time.time() if now is None else now):
                raise ISError("refused", "signed URL: expired")
        return unsigned


def _ssm_keys(name: str) -> tuple[bytes, ...]:
    import boto3  # lazy: only deployments that keep keys in SSM pay for the client

    try:
        value = boto3.client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    except Exception as exc:  # noqa: BLE001 - retried on the next request; never a 500 with details
        raise ISError("overload", f"signing keys could not be read from SSM: {type(exc).__name__}") from None
    return tuple(k.strip().encode("utf-8") for k in value.split(",") if k.strip())
