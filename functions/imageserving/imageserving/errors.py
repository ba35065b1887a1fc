"""The one error type of the server (protocol.md §12.1-§12.2).

Every failure anywhere — grammar, catalog, storage, decoder, renderer, encoder, limits — is raised
as an :class:`ISError`. Its ``title`` is generic and public; its ``detail`` may name ids, keys and
values and is shown only when the main catalog's ``ErrorDetail`` is 2 or more.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass

# kind -> (HTTP status, public title, access-log category)
KINDS: dict[str, tuple[int, str, int]] = {
    "not_found": (403, "Image not found", 1),
    "bad_request": (403, "Invalid request", 2),
    "refused": (403, "Request refused", 2),
    "size_limit": (403, "Image size limit exceeded", 2),
    "content_error": (403, "Unable to process image", 2),
    "server_error": (500, "Internal server error", 3),
    "overload": (503, "Server busy", 4),
}


class ISError(Exception):
    """An Image Serving error: a kind, a public title and a private detail."""

    def __init__(self, kind: str, detail: str = "", *, title: str | None = None, missing_source: bool = False):
        if kind not in KINDS:
            raise ValueError(f"unknown error kind {kind!r}")
        status, default_title, _ = KINDS[kind]
        self.kind = kind
        self.status = status
        self.title = title or default_title
        self.detail = detail
        # True only when a layer source image is missing: the one case the default image covers.
        self.missing_source = missing_source
        super().__init__(f"{self.title}: {detail}" if detail else self.title)

    def message(self, level: int) -> str:
        """``error.message`` for ErrorDetail ``level`` (0/1 title only, 2 detail, 3 + the traceback
        of an unexpected exception — expected failures have a detail that says it all)."""
        if level < 2 or not self.detail:
            return self.title
        text = f"{self.title}: {self.detail}"
        if level >= 3 and self.kind == "server_error" and self.__cause__ is not None:
            text += "\n" + "".join(traceback.format_exception(self.__cause__)).rstrip()
        return text


def wrap_unexpected(exc: BaseException) -> ISError:
    """Turn any exception that escaped the pipeline into a ``server_error`` (cause kept for level 3)."""
    if isinstance(exc, ISError):
        return exc
    if isinstance(exc, MemoryError):
        err = ISError("overload", "out of memory")
    elif isinstance(exc, RecursionError):
        err = ISError("bad_request", "request nests too deeply")
    else:
        err = ISError("server_error", f"unexpected {type(exc).__name__}")
    err.__cause__ = exc
    return err


@dataclass(frozen=True)
class ErrorPolicy:
    """Operator choices beyond Scene7 (issue 3 item 8): status of not_found, kinds allowed an error image."""

    not_found_status: int = 403
    # A refused request must not get a 200 (protocol.md §12.4).
    error_image_kinds: frozenset[str] = frozenset(KINDS) - {"refused"}

    def status(self, err: ISError) -> int:
        return self.not_found_status if err.kind == "not_found" else err.status
