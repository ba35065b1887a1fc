"""The request log line and its metrics (issue 13.2): one JSON object per request on stdout,
CloudWatch Embedded Metric Format inside it, the same line human-readable on a terminal, and no
secrets in it."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import local_client
from serving import running_server
from test_events import handler, load_event  # noqa: F401 - the Lambda handler on moto

from imageserving import observe
from imageserving.signing import sign

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def lines(capsys, monkeypatch):
    monkeypatch.setenv("IS_LOG_FORMAT", "json")

    def read() -> list[dict]:
        out = capsys.readouterr().out
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]

    return read


def _one(read) -> dict:
    found = read()
    assert len(found) == 1, found
    return found[0]


def _check_emf(line: dict) -> None:
    """What CloudWatch needs to extract the metrics: every dimension and metric a top-level field."""
    for directive in line["_aws"]["CloudWatchMetrics"]:
        for dims in directive["Dimensions"]:
            assert all(isinstance(line[d], str) and line[d] for d in dims)
        for metric in directive["Metrics"]:
            assert isinstance(line[metric["Name"]], (int, float))
    assert isinstance(line["_aws"]["Timestamp"], int)


def test_an_image_request_logs_its_catalog_outcome_size_format_and_stage_timings(client, lines):
    lines()
    reply = client.get("/is/image/sample/rose?wid=120&fmt=png", headers={"X-Request-Id": "req-42"})
    line = _one(lines)
    assert line["function_request_id"] == "req-42"
    assert (line["catalog"], line["req"], line["Outcome"], line["status"]) == ("sample", "img", "image", 200)
    assert line["bytes"] == len(reply.content) and line["Format"] == "png"
    assert {"parse_ms", "fetch_ms", "render_ms", "encode_ms", "total_ms"} <= line.keys()
    assert sum(line[k] for k in ("parse_ms", "fetch_ms", "render_ms", "encode_ms")) <= line["total_ms"]
    assert line["query"] == "wid=120&fmt=png" and line["path"] == "sample/rose"
    _check_emf(line)
    assert "Errors" not in line


@pytest.mark.parametrize(
    "url, outcome, status, kind",
    [
        ("/is/image/sample/nothing?wid=50", "default_image", 200, None),
        ("/is/image/Shop/SKU123?wid=abc", "error_image", 200, "bad_request"),
        ("/is/image/sample/rose?wid=abc", "error", 403, "bad_request"),
        ("/is/image/sample/rose?req=props,json&wid=abc", "error", 403, "bad_request"),
        ("/is/image/sample/rose?req=exists", "properties", 200, None),
        ("/is/content/sample/size-chart", "content", 200, None),
    ],
)
def test_fallbacks_and_errors_are_counted_by_outcome_and_kind(client, lines, url, outcome, status, kind):
    lines()
    assert client.get(url).status_code == status
    line = _one(lines)
    assert (line["Outcome"], line["status"], line.get("ErrorKind")) == (outcome, status, kind)
    _check_emf(line)
    assert ("Errors" in line) == (kind is not None)


CHROME = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"


def test_smart_imaging_conversions_and_savings_are_metrics_by_served_format(client, lines):
    lines()
    reply = client.get("/is/image/sample/rose?wid=400", headers={"Accept": CHROME})
    served, _, saved = reply.headers["x-is-smart-imaging"].partition("; saved=")
    line = _one(lines)
    assert (line["Format"], line["Converted"], line["SavedBytes"]) == (served, 1, int(saved))
    _check_emf(line)
    directive = line["_aws"]["CloudWatchMetrics"][-1]
    assert directive["Dimensions"] == [["Format"]]
    assert [m["Name"] for m in directive["Metrics"]] == ["Converted", "SavedBytes"]
    client.get("/is/image/sample/rose?wid=400", headers={"Accept": "*/*"})
    assert "Converted" not in _one(lines)


def test_the_text_line_says_what_smart_imaging_saved(client, capsys, monkeypatch):
    monkeypatch.setenv("IS_LOG_FORMAT", "text")
    capsys.readouterr()
    reply = client.get("/is/image/sample/rose?wid=400", headers={"Accept": CHROME})
    saved = reply.headers["x-is-smart-imaging"].partition("; saved=")[2]
    assert f"B (converted, saved {saved} B) " in capsys.readouterr().out


def test_a_revalidated_image_is_logged_as_not_modified(client, lines):
    etag = client.get("/is/image/sample/rose?wid=60").headers["etag"]
    lines()
    assert client.get("/is/image/sample/rose?wid=60", headers={"If-None-Match": etag}).status_code == 304
    assert _one(lines)["Outcome"] == "not_modified"


KEY = "k-9f2c-never-logged"


def _secrets(url: str) -> tuple[str, ...]:
    """What must never be logged for a signed, locked URL: the key, the signature, the lock, a wrong signature."""
    return (KEY, url.rsplit("=", 1)[1], "4a1f", "wrong")


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_keys_signatures_and_request_locks_never_reach_the_log(bucket, capsys, monkeypatch, fmt):
    _, _, make = bucket
    monkeypatch.setenv("IS_LOG_FORMAT", fmt)
    app = make(signing_keys=(KEY,), signature_required=("locked",))
    url = sign("/is/image/locked/rose", "wid=200&4a1f", KEY.encode())
    capsys.readouterr()
    assert app.get(url).status_code == 200
    assert app.get("/is/image/locked/rose?wid=200&4a1f&isSig=wrong").status_code == 403
    text = capsys.readouterr().out
    assert text.count("/rose") == 2 if fmt == "text" else text.count('"locked/rose"') == 2
    for secret in _secrets(url):
        assert secret not in text
    assert "&xxxx" in text and "isSig=-" in text


def test_the_lambda_handler_path_logs_no_secret(lines):
    """A signed URL as API Gateway delivers it (payload 2.0 rawQueryString) through Mangum."""
    from mangum import Mangum

    from imageserving.app import create_app
    from imageserving.settings import Settings

    settings = Settings.from_env({}, storage="local", local_root=str(ROOT), signing_keys=(KEY,))
    lambda_handler = Mangum(create_app(settings), lifespan="off")
    url = sign("/is/image/locked/rose", "wid=200&4a1f", KEY.encode())
    path, _, query = url.partition("?")
    event = load_event("image.json")
    event.update(rawPath=path, rawQueryString=query)
    event["requestContext"]["http"]["path"] = path
    lines()
    assert lambda_handler(event, SimpleNamespace(aws_request_id="lambda-1"))["statusCode"] == 200
    line = _one(lines)
    assert line["function_request_id"] == "lambda-1" and line["query"] == "wid=200&xxxx&isSig=-"
    for secret in _secrets(url):
        assert secret not in json.dumps(line)


def test_the_local_server_logs_no_secret(tmp_path):
    """`serve` as a user runs it: our line only; uvicorn's access log would print the raw URL."""
    url = sign("/is/image/locked/rose", "wid=200&4a1f", KEY.encode())
    log = tmp_path / "serve.log"
    env = {"IS_SIGNING_KEYS": KEY, "IS_SIGNATURE_REQUIRED": "locked", "IS_LOG_FORMAT": "json"}
    with running_server(ROOT, env=env, log=log) as base:
        with urllib.request.urlopen(base + url, timeout=10) as reply:
            assert reply.status == 200
    text = log.read_text()
    assert '"path":"locked/rose"' in text and '"query":"wid=200&xxxx&isSig=-"' in text
    for secret in _secrets(url):
        assert secret not in text


def test_lambda_lines_carry_the_lambda_request_id_and_cold_start(handler, lines):  # noqa: F811
    lines()
    handler(load_event("image.json"), SimpleNamespace(aws_request_id="8c2f-lambda-id"))
    line = _one(lines)
    assert line["function_request_id"] == "8c2f-lambda-id" and line["service"] == "imageserving"
    assert isinstance(line["cold_start"], bool)


def test_on_a_terminal_the_line_is_short_and_human(client, capsys, monkeypatch):
    monkeypatch.setenv("IS_LOG_FORMAT", "text")
    capsys.readouterr()
    client.get("/is/image/sample/rose?wid=80")
    out = capsys.readouterr().out.strip().splitlines()[-1]
    assert out.startswith("200 image jpeg ") and "/is/image/sample/rose?wid=80" in out and " ms " in out


def test_a_failing_log_line_never_costs_the_reply(monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(observe, "finish", broken)
    assert local_client(ROOT).get("/is/image/sample/rose?wid=40").status_code == 200


def test_spans_do_not_count_inner_time_twice():
    record = observe.begin("id", "GET", "image", "a", "")
    with observe.span("render"):
        with observe.span("decode"):
            sum(range(200_000))
    assert record.timings["decode"] > 0 and record.timings["render"] >= 0
    outer_only = record.timings["render"]
    assert outer_only < record.timings["decode"] * 5 + 0.01
