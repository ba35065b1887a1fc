"""Command line: ``python -m imageserving serve`` runs the server locally; ``validate`` checks catalogs;
``sign`` signs a URL; ``publish`` uploads a folder to a bucket (logic in publish.py)."""

from __future__ import annotations

import argparse
import logging
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m imageserving",
        description="Open-source Scene7 / Dynamic Media Image Serving. A plain `pip install -e .` is enough "
        "for every command; `pip install -e '.[dev]'` adds what the tests need.",
        epilog="example: python -m imageserving serve --root .   (the repository's sample bucket on port 8080)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser(
        "serve",
        help="serve /is/image from a local folder or an S3 bucket",
        description="Serve /is/image and /is/content locally with uvicorn (installed with the package). "
        "The folder (or bucket) holds catalogs/default.ini, catalogs/<name>.ini with their data files, "
        "images/... and static/...",
        epilog="example: python -m imageserving serve --root . --port 8080, then open "
        "http://127.0.0.1:8080/is/image/sample/rose?wid=300",
    )
    where = serve.add_mutually_exclusive_group()
    where.add_argument("--root", help="folder laid out like the bucket (default: current directory)")
    where.add_argument("--bucket", help="S3 bucket to serve from (AWS_ENDPOINT_URL_S3 selects another endpoint)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")

    check = sub.add_parser(
        "validate",
        help="load every catalog of a folder and report problems",
        description="Parse every catalog like the server does and print warnings and errors.",
    )
    check.add_argument("--root", default=".", help="folder laid out like the bucket (default: current directory)")

    signer = sub.add_parser(
        "sign",
        help="sign an /is/image or /is/content URL (HMAC-SHA256, see README 'Signed URLs')",
        description="Print URL signed with the first key of IS_SIGNING_KEYS (or --key). The signature "
        "covers the path from /is/ on and the raw query, as sent.",
    )
    signer.add_argument("url", help="URL or path, e.g. https://host/is/image/Shop/SKU?wid=500 or /is/image/Shop/SKU")
    signer.add_argument("--expires", type=int, metavar="SECONDS", help="valid for SECONDS from now (isExp=)")
    signer.add_argument("--key", help="signing key (default: the first of IS_SIGNING_KEYS)")

    pub = sub.add_parser(
        "publish",
        help="validate a folder's catalogs and upload what changed to an S3 bucket",
        description="Validate every catalog of DIR (a broken one is refused, with file:line messages), compare "
        "DIR's catalogs/, images/ and static/ with the bucket by content (ETag = MD5, else the object's "
        "x-amz-meta-sha256), then upload data files and images before the .ini files that reference them. "
        "A progress bar needs the 'publish' extra (pip install -e '.[publish]'); without it, one line per file.",
        epilog="example: python -m imageserving publish . --bucket my-images --dry-run",
    )
    pub.add_argument("dir", metavar="DIR", help="folder laid out like the bucket (catalogs/default.ini, ...)")
    pub.add_argument("--bucket", required=True, help="S3 bucket (AWS_ENDPOINT_URL_S3 selects another endpoint)")
    pub.add_argument("--prefix", default="", help="key prefix in the bucket (default: none)")
    pub.add_argument("--dry-run", action="store_true", help="print what would be uploaded and deleted; write nothing")
    pub.add_argument("--delete", action="store_true", help="also delete objects under the roots that DIR does not have")

    args = parser.parse_args(argv)
    if args.command == "sign":
        return _sign(args)
    if args.command == "publish":
        return _publish(args)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "serve":
        return _serve(args)
    return _validate(args)


def _settings(args):
    from .settings import Settings

    if getattr(args, "bucket", None):
        return Settings.from_env(storage="s3", bucket=args.bucket)
    root = os.path.abspath(args.root or ".")
    if not os.path.isfile(os.path.join(root, "catalogs", "default.ini")):
        raise SystemExit(f"error: {root}/catalogs/default.ini not found; --root must be laid out like the bucket")
    return Settings.from_env(storage="local", local_root=root)


def _serve(args) -> int:
    try:
        import uvicorn
    except ImportError:
        # uvicorn is a dependency of the package; only an install that left it out (e.g. the Lambda layer's
        # packages alone) gets here.
        print("error: uvicorn is not installed; run: pip install -e . (or pip install uvicorn)", file=sys.stderr)
        return 2
    from .app import create_app

    settings = _settings(args)
    app = create_app(settings)
    print(
        f"Serving {settings.local_root or 's3://' + settings.bucket} at http://{args.host}:{args.port}/is/image",
        flush=True,
    )
    # No uvicorn access log: every request already writes its line (observe.py), with isSig= and
    # request locks blanked; uvicorn's would repeat the raw URL, secrets included.
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", access_log=False)
    return 0


def _sign(args) -> int:
    import time

    from .signing import sign

    key = args.key or next((k.strip() for k in os.environ.get("IS_SIGNING_KEYS", "").split(",") if k.strip()), "")
    if not key:
        print("error: no key: set IS_SIGNING_KEYS or pass --key", file=sys.stderr)
        return 2
    start = args.url.find("/is/")
    if start == -1:
        print(f"error: {args.url!r} has no /is/image or /is/content path", file=sys.stderr)
        return 2
    path, _, query = args.url[start:].partition("?")
    expires_at = int(time.time()) + args.expires if args.expires is not None else None
    print(args.url[:start] + sign(path, query, key.encode("utf-8"), expires_at))
    return 0


def _publish(args) -> int:
    from .publish import PublishError, publish

    try:
        result = publish(args.dir, args.bucket, prefix=args.prefix, dry_run=args.dry_run, delete=args.delete)
    except PublishError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    plan = result.plan
    where = f"s3://{args.bucket}/{_key_prefix(args.prefix)}"
    verb = "would upload" if args.dry_run else "uploaded"
    print(
        f"{where}: {verb} {len(plan.uploads)} file(s) ({result.uploaded_bytes} bytes), "
        f"{len(plan.unchanged)} unchanged, {'would delete' if args.dry_run else 'deleted'} {len(plan.deletes)}"
    )
    return 0


def _key_prefix(prefix: str) -> str:
    return prefix.strip("/") + "/" if prefix.strip("/") else ""


def _validate(args) -> int:
    from .catalog.check import check_catalogs
    from .storage import open_storage

    settings = _settings(args)
    report = check_catalogs(open_storage(settings), settings)
    for line in report.catalogs:
        print(line)
    for problem in report.problems:
        print(problem)
    return 0 if report.ok else 1
