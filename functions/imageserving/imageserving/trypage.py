"""``/is/try``: a static page where storefront developers try URLs (README "Try it in a browser").

The page is files packaged with the function (``try/``: HTML, vanilla JS, CSS, the examples), read
on first request and kept; nothing here runs unless ``IS_TRY_PAGE`` is on, and the app imports this
module only then, so a Lambda that leaves it off pays nothing at cold start.
"""

from __future__ import annotations

import functools
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException

_DIR = Path(__file__).resolve().parent / "try"
# The only files served: a fixed map, so no request path ever reaches the file system.
_FILES = {
    "": ("index.html", "text/html; charset=utf-8"),
    "try.js": ("try.js", "text/javascript; charset=utf-8"),
    "try.css": ("try.css", "text/css; charset=utf-8"),
    "examples.json": ("examples.json", "application/json"),
}
_HEADERS = {
    # Defence in depth behind the page's textContent-only rendering: no inline script, no other
    # origin, images only from this server or the blob: URLs the page makes of replies.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Small, and changes with each deployment: always revalidated.
    "Cache-Control": "no-cache",
}


@functools.cache
def _read(name: str) -> bytes:
    return (_DIR / name).read_bytes()


def add_routes(app: FastAPI) -> None:
    def page(name: str) -> Response:
        found = _FILES.get(name)
        if found is None:
            raise HTTPException(404)  # the app's plain 404
        file, media_type = found
        return Response(_read(file), media_type=media_type, headers=_HEADERS)

    @app.get("/is/try")
    def index() -> Response:
        return page("")

    @app.get("/is/try/")
    def slash() -> Response:
        # The page's links are relative to /is/try (so that a stage prefix keeps working).
        return Response(status_code=308, headers={"Location": "../try", "Cache-Control": "no-store"})

    @app.get("/is/try/{name}")
    def asset(request: Request) -> Response:
        # Read from the request, not as a typed parameter: FastAPI would build a pydantic model for
        # it when the app is created (measured ~90 ms the first time).
        return page(request.path_params["name"])
