"""template= and records used as layer sources (protocol.md §3.7, §7)."""

import io

from PIL import Image


def size_of(r):
    assert r.status_code == 200, r.text
    return Image.open(io.BytesIO(r.content)).size


def test_template_puts_the_url_object_into_its_body(client):
    assert size_of(client.get("/is/image/sample/rose?template=frame")) == (240, 240)


def test_url_variables_override_template_defaults(client):
    r = client.get("/is/image/sample/rose?template=sample/frame&$size=120&$bg=ff0000&fmt=png")
    img = Image.open(io.BytesIO(r.content)).convert("RGB")
    assert img.size == (120, 120)
    assert img.getpixel((60, 2)) == (255, 0, 0)  # rose is 4:3: red bands above and below


def test_missing_template_is_not_found_without_default_image(client):
    r = client.get("/is/image/sample/rose?template=no-such-template")
    assert r.status_code == 403 and r.headers["x-is-error"] == "not_found"
    assert r.text.startswith("error.title=Template not found")


def test_missing_object_inside_a_template_gets_the_default_image(client):
    r = client.get("/is/image/sample/nothing?template=frame")
    assert r.status_code == 200 and r.headers["x-is-default-image"] == "1"


def test_src_record_brings_its_modifier(client):
    # tulip's Modifier is bgc=eeeeee&wid=200: used through src=, its wid applies to the layer's request.
    assert size_of(client.get("/is/image/sample?src=tulip&fmt=png")) == (200, 300)
    assert size_of(client.get("/is/image/sample?src=tulip&wid=100&fmt=png")) == (100, 150)
