"""What one request has learnt so far, shared by the flow (service), request assembly and the
error model (fallbacks): an error is formatted with whatever the context holds when it happens."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .catalog.model import Catalog, CatalogSet
from .catalog.resolve import PathObject
from .catalog.rules import Header
from .protocol.commands import Commands
from .protocol.query import Token
from .responses import properties as P
from .responses.headers import Reply, finish

IMAGE_TYPES = ("img", "tmb", "mask")


@dataclass
class Context:
    cats: CatalogSet | None = None
    main: Catalog | None = None
    path: PathObject | None = None
    url: list[Token] = field(default_factory=list)
    commands: Commands | None = None  # the URL's own commands (request attributes)
    req: P.ReqSpec | None = None
    req_id: str = ""
    handler: str = "s7jsonResponse"
    headers: dict[str, str] = field(default_factory=dict)
    deadline: float = float("inf")
    locale: str = ""  # the effective locale (§5.6)
    context: str = "image"  # "image" (/is/image) or "content" (/is/content)
    rule_headers: tuple[Header, ...] = ()  # from the matched rule-set rules, added last
    client_ip: str = ""
    explicit_fmt: bool = False  # fmt= written in the URL itself (not from a macro, record or catalog)
    nesting: int = 0  # how many ``src=is{…}`` levels deep this is
    nested_renders: list[int] = field(default_factory=lambda: [0])  # shared by all nesting levels
    # Dates of the records and files the image is made from, nested requests' too (shared list):
    # the reply's Last-Modified is the newest (catalogs.md §8.3).
    modified: list[datetime] = field(default_factory=list)

    @property
    def is_image(self) -> bool:
        return self.req is None or self.req.type in IMAGE_TYPES


@dataclass
class ImageResult:
    """A rendered image and what its reply's caching headers are made from."""

    body: bytes
    media_type: str
    ttl: float
    last_modified: datetime | None
    never_expires: bool = False
    headers: dict[str, str] = field(default_factory=dict)  # Vary, X-IS-Smart-Imaging

    def reply(self, request_headers: dict[str, str], headers: dict[str, str] | None = None) -> Reply:
        """The 200 reply with caching headers (TTL, ETag, Last-Modified; 304 when the client has it)."""
        reply = Reply(200, self.body, self.media_type, {**self.headers, **(headers or {})})
        return finish(
            reply, self.ttl, request_headers, last_modified=self.last_modified, never_expires=self.never_expires
        )
