"""The FastAPI app: thin routes that hand the raw path and raw query string to the server.

Scene7 semantics depend on the order of the query and on per-element path decoding, so the
routes never use ``request.query_params`` or the decoded path (protocol.md §1.1-§1.2).
"""

from __future__ import annotations

import contextlib
import gc

from fastapi import FastAPI, Request, Response
from fastapi.responses import PlainTextResponse
from starlette.exceptions import HTTPException

from . import observe
from .protocol.preprocess import client_address
from .service import ImageServer
from .settings import Settings
from .storage import open_storage

_METHODS = ["GET", "HEAD"]


def create_app(settings: Settings | None = None, storage=None) -> FastAPI:
    settings = settings or Settings.from_env()
    server = ImageServer(settings, storage or open_storage(settings))
    app = FastAPI(title="imageserving", openapi_url=None, docs_url=None, redoc_url=None, lifespan=_lifespan)
    app.state.server = server

    @app.api_route("/is/image", methods=_METHODS)
    @app.api_route("/is/image/{rest:path}", methods=_METHODS)
    def image(request: Request) -> Response:
        return answer(request, "image")

    @app.api_route("/is/content", methods=_METHODS)
    @app.api_route("/is/content/{rest:path}", methods=_METHODS)
    def content(request: Request) -> Response:
        return answer(request, "content")

    def answer(request: Request, context: str) -> Response:
        path = _raw_path(request.scope)
        # Behind a named API Gateway stage the path starts with "/<stage>"; the object follows "/is/<context>".
        start = path.find(f"/is/{context}")
        raw_object = path[start + len(context) + 4 :].removeprefix("/") if start != -1 else ""
        query = request.scope.get("query_string", b"").decode("latin-1")
        headers = {k.lower(): v for k, v in request.headers.items()}
        reply = server.handle(
            request.method,
            raw_object,
            query,
            headers,
            client_address(request.scope),
            context,
            request_id=observe.request_id(request.scope, headers),
        )
        out = Response(content=reply.body, status_code=reply.status, media_type=reply.media_type, headers=reply.headers)
        if settings.cors_allow_origin:
            out.headers["Access-Control-Allow-Origin"] = settings.cors_allow_origin
        return out

    if settings.try_page:
        from . import trypage  # imported only when on: a Lambda that leaves the page off pays nothing

        trypage.add_routes(app)

    @app.exception_handler(HTTPException)
    def plain_http_error(request: Request, exc: HTTPException) -> Response:
        # Paths outside /is/image and methods other than GET/HEAD: plain text, never cached.
        headers = {**(exc.headers or {}), "Cache-Control": "no-store"}
        if exc.status_code == 405:
            headers["Allow"] = "GET, HEAD"
        return PlainTextResponse(f"{exc.detail}\n", status_code=exc.status_code, headers=headers)

    return app


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI):
    """A serving process's startup (uvicorn; Mangum runs with lifespan="off" and handler.py does the
    same at import): the image half is imported now rather than on the first image request
    (service.ImageServer.imaging), then what exists (modules, FastAPI's routing, the settings)
    lives as long as the process, so it is moved out of the garbage collector's reach. A full
    collection then scans the few objects requests create instead of ~54,000, a pause measured at
    10-38 ms that lands on whichever requests are running (issue 12.4)."""
    app.state.server.imaging  # noqa: B018 - the property imports the image half (service.py)
    gc.freeze()
    yield


def _raw_path(scope) -> str:
    """The path as sent: API Gateway's rawPath, else the ASGI raw_path, else the decoded path."""
    event = scope.get("aws.event")
    if isinstance(event, dict) and event.get("rawPath"):
        return event["rawPath"]
    raw = scope.get("raw_path")
    if raw:
        return raw.decode("latin-1").split("?", 1)[0]
    return scope.get("path", "")
