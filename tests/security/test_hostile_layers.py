"""Hostile layer inputs found in review: each answers through the error model (or serves), in
well under a second, never a 500 or a runaway allocation."""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image


@pytest.mark.parametrize(
    "query",
    [
        "effect=--1",
        "layer=1&size=10,10&effect=%C2%B2",  # a Unicode digit: str.isdigit() says yes, int() says no
        "req=resolve&effect=--1",
        "layer=1&size=50,50&color=ff0000&clipPath=M0,0L1e400,0L0,5Z",  # inf
        "layer=1&size=50,50&color=ff0000&clipPath=M0,0L9e9,0L0,5Z",
    ],
)
def test_hostile_numbers_are_bad_requests(client, query):
    reply = client.get(f"/is/image/sample/rose?wid=100&{query}")
    assert reply.status_code == 403, reply.text
    assert reply.headers["x-is-error"] == "bad_request"


def test_an_inner_effect_shifted_far_away_stays_cheap(client):
    started = time.monotonic()
    url = "/is/image/sample/tulip?wid=100&fmt=png&effect=1&color=000000&pos=100000,100000"
    reply = client.get(url)
    assert reply.status_code == 200
    assert time.monotonic() - started < 5
    near = client.get("/is/image/sample/tulip?wid=100&fmt=png&effect=1&color=000000&pos=5000,5000")
    assert reply.content == near.content  # past the parent an inner effect samples only background


def test_a_truncated_animated_gif_is_served_as_its_first_frame(bucket):
    _, write, make = bucket
    frames = [Image.new("P", (40, 30), i) for i in (1, 2, 3)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    data = out.getvalue()
    write({"images/sample/cut.gif": data[: len(data) - 12]})
    reply = make().get("/is/image/sample/cut.gif?wid=40&fmt=png")
    assert reply.status_code in (200, 403), reply.text  # served, or a content error: never a 500
    assert reply.headers.get("x-is-error") in (None, "content_error")
