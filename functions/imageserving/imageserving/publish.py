"""``python -m imageserving publish DIR --bucket NAME``: put a folder laid out like the bucket into S3.

1. **Validate** every catalog of DIR with the server's own loader (:mod:`.catalog.check`); a catalog
   with an error is refused, with ``file:line`` messages, before anything is written.
2. **Diff by content**: one listing per root (``catalogs/``, ``images/``, ``static/`` or the
   ``IS_*_PREFIX`` settings). A remote object is unchanged when its ETag is the MD5 of the local
   file — true for every object a single ``PutObject`` wrote to a bucket with SSE-S3 (the template's)
   or no encryption, and what publish itself writes. An ETag that is not the MD5 (multipart uploads
   by other tools, SSE-KMS) costs one ``HeadObject``: the object is unchanged when its
   ``x-amz-meta-sha256`` (written by every publish upload) is the file's SHA-256. Anything else is
   uploaded. So a second run lists and uploads nothing.
3. **Upload in order**: data files, images and static files first (8 at a time), then the catalog
   ``.ini`` files (one by one): the server reloads a catalog when its ``.ini`` changes, so what the
   ``.ini`` references is in place by then. Every upload carries ``Content-MD5`` (S3 checks it).
4. **Delete** (``--delete`` only): objects under the managed roots that DIR no longer has, ``.ini``
   first, after every upload. Keys outside the roots (other prefixes of the bucket) are never touched.

Progress: a ``tqdm`` bar (the optional ``publish`` extra; never in the Lambda layer) on a terminal,
else one plain line per file.
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

UPLOAD_WORKERS = 8
_CONTENT_TYPES = {".ini": "text/plain; charset=utf-8", ".txt": "text/plain; charset=utf-8", ".xml": "application/xml"}


class PublishError(Exception):
    """Publishing stopped: a broken catalog, a missing folder or an S3 failure (message for the operator)."""


@dataclass(frozen=True)
class LocalFile:
    key: str  # bucket key without --prefix, e.g. catalogs/sample.ini
    path: Path
    size: int
    md5: str
    sha256: str


@dataclass
class Plan:
    uploads: list[LocalFile] = field(default_factory=list)  # in upload order: data/images, then .ini
    unchanged: list[str] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)  # remote keys (with prefix), in delete order


@dataclass
class Result:
    plan: Plan
    uploaded: list[str] = field(default_factory=list)  # remote keys: data files and images, then .ini
    deleted: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def uploaded_bytes(self) -> int:
        return sum(f.size for f in self.plan.uploads)


def roots(settings) -> list[str]:
    """The key prefixes publish manages: the catalog prefix, the image roots and the static roots."""
    out: list[str] = []
    for prefix in (settings.catalog_prefix, *settings.image_prefixes, *settings.static_prefixes):
        if prefix and prefix not in out:
            out.append(prefix)
    # A root inside another (images/ and images/extra/) is covered by the outer one.
    return [p for p in out if not any(p != q and p.startswith(q) for q in out)]


def _hashes(path: Path) -> tuple[str, str]:
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            md5.update(chunk)
            sha.update(chunk)
    return md5.hexdigest(), sha.hexdigest()


def local_files(root: Path, settings) -> list[LocalFile]:
    """Files of ``root`` under the managed roots; names starting with '.' (.DS_Store, .git) are skipped."""
    from .storage import check_key

    files: list[LocalFile] = []
    for prefix in roots(settings):
        base = root / prefix
        if not base.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(base, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                path = Path(dirpath) / name
                key = path.relative_to(root).as_posix()
                try:
                    check_key(key)
                except Exception as exc:
                    raise PublishError(f"{key}: not a valid bucket key") from exc
                md5, sha = _hashes(path)
                files.append(LocalFile(key, path, path.stat().st_size, md5, sha))
    return files


def is_catalog_ini(key: str, settings) -> bool:
    return key.startswith(settings.catalog_prefix) and key.lower().endswith(".ini")


class _S3:
    """The few S3 calls publish makes, with failures turned into PublishError."""

    def __init__(self, client, bucket: str):
        self.client = client
        self.bucket = bucket

    def _fail(self, exc: Exception, action: str, key: str) -> PublishError:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        return PublishError(f"S3 {code} on {action} s3://{self.bucket}/{key}")

    def list(self, prefix: str) -> dict[str, str]:
        out: dict[str, str] = {}
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for obj in page.get("Contents", ()):
                    out[obj["Key"]] = obj.get("ETag", "").strip('"')
        except Exception as exc:
            raise self._fail(exc, "LIST", prefix) from exc
        return out

    def sha256(self, key: str) -> str:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            raise self._fail(exc, "HEAD", key) from exc
        return head.get("Metadata", {}).get("sha256", "")

    def put(self, key: str, f: LocalFile) -> None:
        content_type = _CONTENT_TYPES.get(f.path.suffix.lower()) or (
            mimetypes.guess_type(f.path.name)[0] or "application/octet-stream"
        )
        try:
            with f.path.open("rb") as body:
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=body,
                    ContentType=content_type,
                    ContentMD5=base64.b64encode(bytes.fromhex(f.md5)).decode(),
                    Metadata={"sha256": f.sha256},
                )
        except Exception as exc:
            raise self._fail(exc, "PUT", key) from exc

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            raise self._fail(exc, "DELETE", key) from exc


def make_plan(files: list[LocalFile], s3: _S3, settings, prefix: str, delete: bool) -> Plan:
    plan = Plan()
    remote: dict[str, str] = {}
    for root in roots(settings):
        remote.update(s3.list(prefix + root))
    later: list[LocalFile] = []
    for f in files:
        key = prefix + f.key
        etag = remote.get(key)
        same = etag is not None and (etag == f.md5 or s3.sha256(key) == f.sha256)
        if same:
            plan.unchanged.append(key)
        elif is_catalog_ini(f.key, settings):
            later.append(f)
        else:
            plan.uploads.append(f)
    plan.uploads += later
    if delete:
        present = {prefix + f.key for f in files}
        stale = sorted(k for k in remote if k not in present)
        inis = [k for k in stale if is_catalog_ini(k[len(prefix) :], settings)]
        plan.deletes = inis + [k for k in stale if k not in inis]
    return plan


class _Progress:
    """A tqdm bar over the bytes to upload when tqdm is installed and ``stream`` is a terminal
    (or ``mode="bar"``); else one line per file on ``out``."""

    def __init__(self, total: int, mode: str, out: TextIO, stream: TextIO):
        self.out = out
        self.bar = None
        if mode != "plain":
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None and (mode == "bar" or stream.isatty()):
                self.bar = tqdm(total=total, unit="B", unit_scale=True, desc="publish", file=stream, leave=True)

    def step(self, verb: str, key: str, size: int = 0) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(key, refresh=False)
            self.bar.update(size)
        else:
            print(f"{verb} {key}" + (f" ({size} bytes)" if size else ""), file=self.out, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def publish(
    root: str | os.PathLike,
    bucket: str,
    *,
    prefix: str = "",
    dry_run: bool = False,
    delete: bool = False,
    settings=None,
    client=None,
    progress: str = "auto",
    out: TextIO | None = None,
    stream: TextIO | None = None,
) -> Result:
    """Validate, diff and upload ``root`` to ``s3://bucket/prefix``. Raises PublishError when refused."""
    from .catalog.check import check_catalogs
    from .settings import Settings
    from .storage import LocalStorage

    out = out or sys.stdout
    stream = stream or sys.stderr
    root = Path(root).resolve()
    prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
    settings = settings or Settings.from_env(storage="local", local_root=str(root))
    if not (root / settings.catalog_prefix / "default.ini").is_file():
        raise PublishError(
            f"{root}/{settings.catalog_prefix}default.ini not found: DIR must be laid out like the bucket"
        )

    report = check_catalogs(LocalStorage(root), settings)
    if not report.ok:
        lines = "\n".join(str(p) for p in report.problems)
        raise PublishError(f"{lines}\nrefusing to publish: {len(report.errors)} catalog error(s)")
    result = Result(Plan(), warnings=[str(p) for p in report.problems])
    for line in result.warnings:
        print(line, file=out)

    if client is None:
        import boto3  # AWS_ENDPOINT_URL_S3 selects another endpoint (moto, MinIO)

        client = boto3.client("s3")
    s3 = _S3(client, bucket)
    files = local_files(root, settings)
    plan = result.plan = make_plan(files, s3, settings, prefix, delete)
    if dry_run:
        for f in plan.uploads:
            print(f"would upload {prefix + f.key} ({f.size} bytes)", file=out)
        for key in plan.deletes:
            print(f"would delete {key}", file=out)
        return result

    bar = _Progress(result.uploaded_bytes, progress, out, stream)
    try:
        first = [f for f in plan.uploads if not is_catalog_ini(f.key, settings)]
        inis = plan.uploads[len(first) :]

        def put(f: LocalFile) -> str:
            s3.put(prefix + f.key, f)
            return prefix + f.key

        with ThreadPoolExecutor(UPLOAD_WORKERS) as pool:
            for key, f in zip(pool.map(put, first), first):
                result.uploaded.append(key)
                bar.step("uploaded", key, f.size)
        for f in inis:  # every data file and image is in place: now the catalogs that reference them
            result.uploaded.append(put(f))
            bar.step("uploaded", prefix + f.key, f.size)
        for key in plan.deletes:
            s3.delete(key)
            result.deleted.append(key)
            bar.step("deleted", key)
    finally:
        bar.close()
    return result
