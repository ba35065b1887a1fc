"""Command line: ``python -m imageserving serve`` runs the server locally; ``validate`` checks catalogs."""

from __future__ import annotations

import argparse
import logging
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m imageserving", description="Open-source Scene7 / Dynamic Media Image Serving."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser(
        "serve",
        help="serve /is/image from a local folder or an S3 bucket",
        description="Serve /is/image locally. The folder (or bucket) holds catalogs/default.ini, "
        "catalogs/<name>.ini with their data files, and images/...",
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

    args = parser.parse_args(argv)
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
        print("error: uvicorn is not installed; run: pip install -e '.[dev]'", file=sys.stderr)
        return 2
    from .app import create_app

    settings = _settings(args)
    app = create_app(settings)
    print(
        f"Serving {settings.local_root or 's3://' + settings.bucket} at http://{args.host}:{args.port}/is/image",
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def _validate(args) -> int:
    from .catalog.store import CatalogStore
    from .errors import ISError
    from .storage import open_storage

    settings = _settings(args)
    problems = []

    class Collect(logging.Handler):
        def emit(self, record):
            if record.levelno >= logging.WARNING:
                problems.append(f"{record.levelname}: {record.getMessage()}")

    logging.getLogger("imageserving.catalog").addHandler(Collect())
    try:
        cats = CatalogStore(open_storage(settings), settings).current()
    except ISError as exc:
        print(f"ERROR: {exc}")
        return 1
    for cat in cats.all_catalogs():
        state = f"error: {cat.error.detail}" if cat.error else f"{len(cat.records)} records, {len(cat.macros)} macros"
        print(f"{cat.key}: RootId={cat.root_id or '(default)'} {state}")
    for line in problems:
        print(line)
    return 1 if any(p.startswith("ERROR") for p in problems) else 0
