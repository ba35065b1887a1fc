"""Server-level settings from environment variables (catalogs.md §16.4, protocol.md §1.4, §12).

Built once per process; every value has a documented default (README, "Configuration").
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .errors import KINDS, ErrorPolicy
from .render import budget as B


def _list(value: str, sep: str = ";") -> tuple[str, ...]:
    return tuple(p.strip() for p in value.split(sep) if p.strip())


def _prefix(value: str) -> str:
    value = value.strip().strip("/")
    return value + "/" if value else ""


def _bool(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "on", "yes")


def _memory_mb(e) -> float | None:
    """The function's memory on Lambda, else None."""
    text = e.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "").strip()
    return float(text) if text else None


def _decode_budget(e) -> int | None:
    """IS_DECODE_BUDGET_MB: MB per decode, ``off`` for none; unset, derived from the function's
    memory (a local server: from the template's default FunctionMemorySize)."""
    text = e.get("IS_DECODE_BUDGET_MB", "").strip().lower()
    if text in ("off", "none"):
        return None
    if text:
        mb = float(text)
        if mb <= 0:
            raise ValueError("IS_DECODE_BUDGET_MB must be a positive number of MB or 'off'")
        return int(mb * B.MB)
    return B.budget_for(_memory_mb(e) or B.LOCAL_MEMORY_MB)


def _render_slots(e, budget: int | None) -> int:
    """IS_RENDER_SLOTS: renders at once, ``off`` for no bound; unset, from the budget and the cores."""
    text = e.get("IS_RENDER_SLOTS", "").strip().lower()
    if text in ("off", "0"):
        return 0
    if text:
        return int(text)
    return B.render_slots(budget, _memory_mb(e) or B.machine_memory_mb(), B.cpu_count())


@dataclass(frozen=True)
class Settings:
    storage: str = "s3"  # "s3" or "local"
    bucket: str = ""
    local_root: str = ""
    catalog_prefix: str = "catalogs/"
    image_prefixes: tuple[str, ...] = ("images/",)
    static_prefixes: tuple[str, ...] = ("static/",)
    catalog_refresh_seconds: float = 10.0
    catalog_refresh_wait_s: float = 0.25  # how long a request waits for a due refresh (issue 8.3)
    catalog_settle_seconds: float = 5.0
    catalog_watch_data_files: bool = False
    allow_default_catalog_requests: bool = True
    path_rewrites: tuple[tuple[str, str], ...] = ()
    max_response_bytes: int = 4_400_000
    request_timeout_s: float = 25.0
    max_source_pixels: int = 100_000_000
    decode_budget_bytes: int | None = B.budget_for(B.LOCAL_MEMORY_MB)  # IS_DECODE_BUDGET_MB; None: off
    render_slots: int = 4  # IS_RENDER_SLOTS; 0: no bound (from_env sizes it from budget and cores)
    render_wait_s: float = 10.0
    max_render_pixels: int = 25_000_000
    jsonp_error_status: int | None = None
    cors_allow_origin: str = ""
    try_page: bool = True  # /is/try, the page for storefront developers (IS_TRY_PAGE; off on Lambda by default)
    bfc: bool = True  # Smart Imaging's format conversion where neither URL nor catalog says (IS_BFC)
    rendition_prefix: str = ""  # "" - large replies are a size_limit error (the default)
    rendition_url_seconds: int = 3600
    rendition_base_url: str = ""
    max_rendition_bytes: int = 200_000_000
    signing_keys: tuple[str, ...] = field(default=(), repr=False)  # secrets: never logged, never in a repr
    signing_keys_ssm_parameter: str = ""
    signature_required: tuple[str, ...] = ()  # RootIds, "*" for all
    errors: ErrorPolicy = field(default_factory=ErrorPolicy)

    @classmethod
    def from_env(cls, env: os._Environ | dict | None = None, **overrides) -> "Settings":
        e = os.environ if env is None else env
        get = e.get
        rewrites = []
        for pair in _list(get("IS_PATH_REWRITES", "")):
            old, _, new = pair.partition("=")
            if old:
                rewrites.append((old, new))
        kinds = _list(get("IS_ERROR_IMAGE_KINDS", ""), ",")
        unknown = [k for k in kinds if k not in KINDS]
        if unknown:
            raise ValueError(f"IS_ERROR_IMAGE_KINDS: unknown kinds {unknown}")
        jsonp = get("IS_JSONP_ERROR_STATUS", "").strip()
        decode_budget = _decode_budget(e)
        values = dict(
            storage=get("IS_STORAGE", "local" if get("IS_LOCAL_ROOT") else "s3").strip().lower(),
            bucket=get("IS_BUCKET", "").strip(),
            local_root=get("IS_LOCAL_ROOT", "").strip(),
            catalog_prefix=_prefix(get("IS_CATALOG_PREFIX", "catalogs/")),
            image_prefixes=tuple(_prefix(p) for p in _list(get("IS_IMAGE_ROOT_PREFIXES", "images/"))),
            static_prefixes=tuple(_prefix(p) for p in _list(get("IS_STATIC_ROOT_PREFIXES", "static/"))),
            catalog_refresh_seconds=float(get("IS_CATALOG_REFRESH_SECONDS", "10")),
            catalog_refresh_wait_s=float(get("IS_CATALOG_REFRESH_WAIT_S", "0.25")),
            catalog_settle_seconds=float(get("IS_CATALOG_SETTLE_SECONDS", "5")),
            catalog_watch_data_files=_bool(get("IS_CATALOG_WATCH_DATA_FILES", "false")),
            allow_default_catalog_requests=_bool(get("IS_ALLOW_DEFAULT_CATALOG_REQUESTS", "true")),
            path_rewrites=tuple(rewrites),
            max_response_bytes=int(get("IS_MAX_RESPONSE_BYTES", "4400000")),
            request_timeout_s=float(get("IS_REQUEST_TIMEOUT_S", "25")),
            max_source_pixels=int(get("IS_MAX_SOURCE_PIXELS", "100000000")),
            decode_budget_bytes=decode_budget,
            render_slots=_render_slots(e, decode_budget),
            render_wait_s=float(get("IS_RENDER_WAIT_S", "10")),
            max_render_pixels=int(get("IS_MAX_RENDER_PIXELS", "25000000")),
            jsonp_error_status=int(jsonp) if jsonp else None,
            cors_allow_origin=get("IS_CORS_ALLOW_ORIGIN", "").strip(),
            # A developer's tool: on for the local server, off on Lambda unless the stack turns it on.
            try_page=_bool(get("IS_TRY_PAGE", "false" if get("AWS_LAMBDA_FUNCTION_NAME") else "true")),
            bfc=_bool(get("IS_BFC", "on")),
            rendition_prefix=_prefix(get("IS_RENDITION_PREFIX", "")),
            rendition_url_seconds=int(get("IS_RENDITION_URL_SECONDS", "3600")),
            rendition_base_url=get("IS_RENDITION_BASE_URL", "").strip(),
            max_rendition_bytes=int(get("IS_MAX_RENDITION_BYTES", "200000000")),
            signing_keys=_list(get("IS_SIGNING_KEYS", ""), ","),
            signing_keys_ssm_parameter=get("IS_SIGNING_KEYS_SSM_PARAMETER", "").strip(),
            signature_required=_list(get("IS_SIGNATURE_REQUIRED", ""), ","),
            errors=ErrorPolicy(
                not_found_status=int(get("IS_NOT_FOUND_STATUS", "403")),
                error_image_kinds=frozenset(kinds) if kinds else ErrorPolicy().error_image_kinds,
            ),
        )
        values.update(overrides)
        settings = cls(**values)
        rendition = settings.rendition_prefix
        readable = (settings.catalog_prefix, *settings.image_prefixes, *settings.static_prefixes)
        if rendition and any(p.startswith(rendition) or rendition.startswith(p) for p in readable):
            raise ValueError(f"IS_RENDITION_PREFIX {rendition!r} overlaps the catalog, image or static roots")
        return settings

    @property
    def render_bytes_limit(self) -> int:
        """The largest encoded reply: the inline limit, or the rendition limit when renditions are on."""
        return self.max_rendition_bytes if self.rendition_prefix else self.max_response_bytes
