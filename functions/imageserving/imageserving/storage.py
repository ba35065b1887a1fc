"""Where catalogs and images come from: S3 (through botocore) or a local folder with the same key layout.

Both answer ``fetch(key)`` with a :class:`Blob` or ``None`` when the object does not exist; every
other failure is raised as an :class:`ISError` whose kind tells the client the truth (throttling,
5xx, timeouts and unreachable endpoints are ``overload``, 503; anything else ``server_error``)
without echoing keys or bucket names in the public title.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

from .errors import ISError

MAX_KEY_BYTES = 1024  # S3's limit on key length


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    etag: str
    last_modified: datetime
    size: int


@dataclass(frozen=True)
class Blob:
    key: str
    data: bytes
    etag: str
    last_modified: datetime


def check_key(key: str) -> str:
    """Reject keys that could escape the configured prefixes: ``..`` segments, NUL, backslashes."""
    if (
        not key
        or len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES
        or "\x00" in key
        or "\\" in key
        or key.startswith("/")
    ):
        raise ISError("bad_request", f"invalid storage key {key!r}")
    if any(part in ("..", ".") for part in key.split("/")):
        raise ISError("bad_request", f"invalid storage key {key!r}")
    return key


class LocalStorage:
    """A folder laid out exactly like the bucket (``ROOT/catalogs/...``, ``ROOT/images/...``)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise FileNotFoundError(f"storage root {self.root} is not a directory")

    def describe(self) -> str:
        return f"folder {self.root}"

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    @staticmethod
    def _info(key: str, st: os.stat_result) -> ObjectInfo:
        # mtime+size is the validator nginx uses; hashing every image on each request would cost more.
        etag = f'"{st.st_mtime_ns:x}-{st.st_size:x}"'
        when = datetime.fromtimestamp(st.st_mtime, timezone.utc).replace(microsecond=0)
        return ObjectInfo(key, etag, when, st.st_size)

    def head(self, key: str) -> ObjectInfo | None:
        try:
            st = self._path(key).stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise ISError("server_error", f"cannot stat {key}") from exc
        return self._info(key, st) if not _is_dir(st) else None

    def fetch(self, key: str) -> Blob | None:
        path = self._path(key)
        try:
            with open(path, "rb") as fh:
                st = os.fstat(fh.fileno())
                if _is_dir(st):
                    return None
                data = fh.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as exc:
            if exc.errno in (errno.ENAMETOOLONG, errno.EINVAL, errno.ELOOP):
                return None  # a name no file can have
            raise ISError("server_error", f"cannot read {key}") from exc
        info = self._info(key, st)
        return Blob(key, data, info.etag, info.last_modified)

    def list(self, prefix: str) -> list[ObjectInfo]:
        base = self.root / prefix if prefix else self.root
        if not base.is_dir():
            return []
        out = []
        for path in sorted(base.rglob("*")):
            if path.is_file():
                key = path.relative_to(self.root).as_posix()
                out.append(self._info(key, path.stat()))
        return out


def _is_dir(st: os.stat_result) -> bool:
    import stat

    return stat.S_ISDIR(st.st_mode)


# S3 error codes that mean "try again later" (503 overload) rather than "broken" (500); any 5xx
# status counts too.
_THROTTLE_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "ServiceUnavailable",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "InternalError",
    "503",
}
_MISSING_CODES = {"NoSuchKey", "404", "NotFound", "AccessDenied", "403"}


@lru_cache(maxsize=1)
def sdk_session():
    """The process's botocore session, which makes the S3 client (boto3's clients are botocore's;
    boto3 itself adds ~30 ms of import for nothing here). Imported on first use: ~130 ms of cold
    start that a local folder never needs."""
    import botocore.session

    return botocore.session.get_session()


def load_s3_sdk() -> None:
    """Import the SDK and read S3's API description into the session (service model, endpoint
    rules, partitions): code and AWS's published data, which a SnapStart snapshot may keep
    (handler.prime). Creating the client after restore then takes ~50 ms instead of ~240 (import
    and model, measured on this machine). No client here: a client resolves credentials, which
    must be read after restore."""
    session = sdk_session()
    session.get_service_model("s3")
    loader = session.get_component("data_loader")
    loader.load_service_model("s3", "endpoint-rule-set-1")
    loader.load_data("partitions")


class S3Storage:
    """A bucket read through botocore; ``AWS_ENDPOINT_URL_S3`` points it at moto or any S3 clone."""

    def __init__(self, bucket: str, client=None):
        if not bucket:
            raise ValueError("IS_BUCKET is not set")
        self.bucket = bucket
        self._client = client

    def describe(self) -> str:
        return f"bucket {self.bucket}"

    @property
    def client(self):
        if self._client is None:
            from botocore.config import Config

            self._client = sdk_session().create_client(
                "s3",
                config=Config(
                    signature_version="s3v4",  # presigned rendition URLs: SigV2 is refused by newer regions
                    retries={"max_attempts": 3, "mode": "standard"},
                    connect_timeout=3,
                    read_timeout=10,
                    max_pool_connections=16,
                ),
            )
        return self._client

    def _fault(self, exc: Exception, key: str, action: str) -> ISError | None:
        """None when the failure means "no such object"; else the ISError to raise."""
        from botocore.exceptions import ClientError, HTTPClientError
        from botocore.exceptions import ConnectionError as BotoConnectionError

        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            # Without s3:ListBucket a missing key answers 403 AccessDenied: it is still "missing".
            if code in _MISSING_CODES or status in (403, 404):
                return None
            # Throttling and every 5xx are S3's own trouble: retryable, 503 (issue 8.2).
            if code in _THROTTLE_CODES or status == 429 or (isinstance(status, int) and status >= 500):
                return ISError("overload", f"S3 {code or status} on {action} {key}")
            return ISError("server_error", f"S3 {code or status} on {action} {key}")
        # Timeouts, refused or dropped connections (EndpointConnectionError, ReadTimeoutError,
        # ConnectionClosedError …): the endpoint is unreachable for now, not broken for good.
        if isinstance(exc, (BotoConnectionError, HTTPClientError, TimeoutError, ConnectionError)):
            return ISError("overload", f"S3 {type(exc).__name__} on {action} {key}")
        return ISError("server_error", f"S3 {type(exc).__name__} on {action} {key}")

    def head(self, key: str) -> ObjectInfo | None:
        check_key(key)
        try:
            r = self.client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:  # noqa: BLE001 - every boto failure is mapped below
            err = self._fault(exc, key, "HEAD")
            if err is None:
                return None
            raise err from exc
        return ObjectInfo(key, r.get("ETag", ""), r["LastModified"], r.get("ContentLength", 0))

    def fetch(self, key: str) -> Blob | None:
        check_key(key)
        try:
            r = self.client.get_object(Bucket=self.bucket, Key=key)
            data = r["Body"].read()
        except Exception as exc:  # noqa: BLE001
            err = self._fault(exc, key, "GET")
            if err is None:
                return None
            raise err from exc
        return Blob(key, data, r.get("ETag", ""), r["LastModified"])

    def list(self, prefix: str) -> list[ObjectInfo]:
        out: list[ObjectInfo] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            for page in pages:
                for o in page.get("Contents", ()):
                    out.append(ObjectInfo(o["Key"], o.get("ETag", ""), o["LastModified"], o.get("Size", 0)))
        except Exception as exc:  # noqa: BLE001
            err = self._fault(exc, prefix, "LIST") or ISError("server_error", f"S3 LIST {prefix} denied")
            raise err from exc
        return out

    def put(self, key: str, data: bytes, content_type: str, cache_control: str) -> None:
        """Write one object (renditions of large replies, the only writes the server makes)."""
        check_key(key)
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, CacheControl=cache_control
            )
        except Exception as exc:  # noqa: BLE001
            raise (self._fault(exc, key, "PUT") or ISError("server_error", f"S3 PUT {key} denied")) from exc

    def presign(self, key: str, seconds: int) -> str:
        """A GET URL for ``key`` valid ``seconds``, signed locally with the function's credentials."""
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=seconds
        )


def open_storage(settings) -> "LocalStorage | S3Storage":
    if settings.storage == "local":
        return LocalStorage(settings.local_root)
    if settings.storage == "s3":
        return S3Storage(settings.bucket)
    raise ValueError(f"IS_STORAGE must be 's3' or 'local', not {settings.storage!r}")
