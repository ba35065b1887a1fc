"""One structured line per request: the log an operator searches and, on Lambda, the metrics
CloudWatch extracts from it (Embedded Metric Format), in the same JSON object.

Why not Powertools for AWS Lambda: measured on this machine, importing its Logger and Metrics
into the already-imported app costs 25-35 ms of cold start (the budget is ~30 ms) and 7.6 MB of
layer, for what is here one ``json.dumps`` per request. The line keeps Powertools' field names
(``level``, ``message``, ``timestamp``, ``service``, ``cold_start``, ``function_request_id``) so
its log queries work unchanged.

Fields: request id (Lambda's, else API Gateway's, else ``X-Request-Id``, else a new one), method,
context, catalog (RootId), ``req`` type, outcome (``image``, ``content`` for /is/content,
``default_image``, ``error_image``, ``error``, ``properties``, ``not_modified``), error kind,
status, bytes, format, and timings in milliseconds: ``catalog`` (cache check; a load on a cold
start), ``parse``, ``fetch``, ``decode`` (whole-image decodes; the streamed JPEG path decodes
while it resizes, inside ``render``), ``render`` (drawing, the decode not counted), ``encode``,
``total``.
Metrics (namespace ``IS_METRICS_NAMESPACE``): ``Requests``, ``Latency``, ``ReplyBytes`` by
``Outcome``, by ``Format`` and in all; ``Errors`` by ``ErrorKind``; Smart Imaging's ``Converted``
(a reply served in another format than asked) and ``SavedBytes`` (against the asked format, when
it was encoded to compare) by the served ``Format``.

Never logged: signing keys, ``isSig=`` values and request locks (``&xxxx``) — the query is
written with them blanked. ``IS_LOG_FORMAT``: ``json`` (default off a terminal, so on Lambda),
``text`` (default on a terminal: one short human line), ``off``.
"""

from __future__ import annotations

import contextvars
import json
import os
import re
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field

_current: contextvars.ContextVar[RequestRecord | None] = contextvars.ContextVar("is_request", default=None)
_cold = [True]
# isSig= values, and a request lock: 4 hex digits last, or before the signature parameters.
_SECRET = re.compile(r"((?:^|&)isSig=)[^&]*|&[0-9A-Fa-f]{4}(?=\Z|&is(?:Exp|Sig)=)", re.IGNORECASE)
_TIMINGS = ("catalog", "parse", "fetch", "decode", "render", "encode")


@dataclass
class RequestRecord:
    request_id: str
    method: str
    context: str
    path: str
    query: str
    started: float = field(default_factory=time.perf_counter)
    catalog: str = ""
    req: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    _open: list[list[float]] = field(default_factory=list)  # [start, time spent in inner spans]


def request_id(scope: dict, headers: dict[str, str]) -> str:
    """The id to find one request by: Lambda's, API Gateway's, the client's, or a new one."""
    context = scope.get("aws.context")
    if getattr(context, "aws_request_id", None):
        return context.aws_request_id
    event = scope.get("aws.event")
    if isinstance(event, dict) and (event.get("requestContext") or {}).get("requestId"):
        return event["requestContext"]["requestId"]
    given = headers.get("x-request-id", "")
    return given[:64] if re.fullmatch(r"[\w.:-]{1,64}", given) else uuid.uuid4().hex


def begin(request_id: str, method: str, context: str, path: str, query: str) -> RequestRecord:
    record = RequestRecord(request_id, method, context, path, _SECRET.sub(_blank, query))
    _current.set(record)
    return record


def current() -> RequestRecord | None:
    return _current.get()


@contextmanager
def span(name: str):
    """Time a stage of the current request; an inner span's time is not counted in the outer's."""
    record = _current.get()
    if record is None:
        yield
        return
    frame = [time.perf_counter(), 0.0]
    record._open.append(frame)
    try:
        yield
    finally:
        record._open.pop()
        spent = time.perf_counter() - frame[0]
        record.timings[name] = record.timings.get(name, 0.0) + spent - frame[1]
        if record._open:
            record._open[-1][1] += spent


def finish(record: RequestRecord, status: int, headers: dict[str, str], media_type: str | None, size: int) -> None:
    """Write the request's line (and metrics) to stdout, where Lambda collects it."""
    _current.set(None)
    fmt = _format()
    if fmt == "off":
        return
    total = (time.perf_counter() - record.started) * 1000
    kind = headers.get("X-IS-Error", "")
    outcome = _outcome(status, kind, headers, record.req, record.context)
    cold, _cold[0] = _cold[0], False
    fields = {
        "level": "ERROR" if status >= 500 else "INFO",
        "message": "request",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
        "service": "imageserving",
        "cold_start": cold,
        "function_request_id": record.request_id,
        "method": record.method,
        "context": record.context,
        "path": record.path,
        "query": record.query,
        "catalog": record.catalog,
        "req": record.req,
        "Outcome": outcome,
        "status": status,
        "bytes": size,
        "Format": (media_type or "none").split(";")[0].split("/")[-1],
        **({"ErrorKind": kind} if kind else {}),
        **_smart_imaging(headers),
        **{f"{n}_ms": round(record.timings[n] * 1000, 2) for n in _TIMINGS if n in record.timings},
        "total_ms": round(total, 2),
    }
    if fmt == "text":
        line = _text_line(fields)
    else:
        line = json.dumps({**fields, **_emf(fields, kind)}, separators=(",", ":"), ensure_ascii=False)
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _emf(fields: dict, kind: str) -> dict:
    namespace = os.environ.get("IS_METRICS_NAMESPACE", "imageserving")
    metrics = [
        {"Name": "Requests", "Unit": "Count"},
        {"Name": "Latency", "Unit": "Milliseconds"},
        {"Name": "ReplyBytes", "Unit": "Bytes"},
    ]
    directives = [{"Namespace": namespace, "Dimensions": [[], ["Outcome"], ["Format"]], "Metrics": metrics}]
    values = {"Requests": 1, "Latency": fields["total_ms"], "ReplyBytes": fields["bytes"]}
    if kind:
        directives.append(
            {"Namespace": namespace, "Dimensions": [["ErrorKind"]], "Metrics": [{"Name": "Errors", "Unit": "Count"}]}
        )
        values["Errors"] = 1
    if "Converted" in fields:
        # Smart Imaging: replies served in another format than asked, and what that saved, by served format.
        metrics = [{"Name": "Converted", "Unit": "Count"}]
        values["Converted"] = 1
        if "SavedBytes" in fields:
            metrics.append({"Name": "SavedBytes", "Unit": "Bytes"})
            values["SavedBytes"] = fields["SavedBytes"]
        directives.append({"Namespace": namespace, "Dimensions": [["Format"]], "Metrics": metrics})
    return {"_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": directives}, **values}


def _smart_imaging(headers: dict[str, str]) -> dict:
    """``X-IS-Smart-Imaging: <served format>[; saved=<bytes>]``, present when negotiation converted."""
    value = headers.get("X-IS-Smart-Imaging", "")
    if not value:
        return {}
    fields: dict = {"Converted": 1}
    saved = value.partition("saved=")[2].strip()
    if saved.lstrip("-").isdigit():
        fields["SavedBytes"] = int(saved)
    return fields


def _outcome(status: int, kind: str, headers: dict[str, str], req: str, context: str) -> str:
    if status == 304:
        return "not_modified"
    if headers.get("X-IS-Default-Image"):
        return "default_image"
    if kind:
        return "error_image" if status == 200 else "error"
    if context == "content" and req in ("", "img"):
        return "content"  # a static file or record of /is/content, not a rendered image
    return "image" if req in ("", "img", "tmb", "mask") else "properties"


def _text_line(f: dict) -> str:
    stages = " ".join(f"{n} {f[n + '_ms']:.1f}" for n in _TIMINGS if n + "_ms" in f)
    query = f"?{f['query']}" if f["query"] else ""
    kind = f" {f['ErrorKind']}" if "ErrorKind" in f else ""
    converted = ""
    if "Converted" in f:
        converted = f" (converted, saved {f['SavedBytes']} B)" if "SavedBytes" in f else " (converted)"
    return (
        f"{f['status']} {f['Outcome']}{kind} {f['Format']} {f['bytes']} B{converted} {f['total_ms']:.1f} ms "
        f"/is/{f['context']}/{f['path']}{query}" + (f"  [{stages}]" if stages else "")
    )


def _format() -> str:
    fmt = os.environ.get("IS_LOG_FORMAT", "").strip().lower()
    if fmt in ("json", "text", "off"):
        return fmt
    return "text" if sys.stdout.isatty() and not os.environ.get("AWS_LAMBDA_FUNCTION_NAME") else "json"


def _blank(match: re.Match) -> str:
    return f"{match.group(1)}-" if match.group(1) else "&xxxx"
