"""`python -m imageserving serve` as a user runs it: a real uvicorn on 127.0.0.1, real HTTP."""

from __future__ import annotations

import io
import urllib.request
from pathlib import Path

from PIL import Image
from serving import running_server

ROOT = Path(__file__).resolve().parents[1]


def test_serve_answers_a_sample_url_over_http():
    with running_server(ROOT) as base:
        with urllib.request.urlopen(base + "/is/image/sample/rose?wid=300&fmt=png", timeout=10) as reply:
            assert reply.status == 200
            assert reply.headers["Content-Type"] == "image/png"
            image = Image.open(io.BytesIO(reply.read()))
    assert image.format == "PNG" and image.width == 300


def test_uvicorn_is_a_base_dependency_and_not_in_the_lambda_layer():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(d.startswith("uvicorn") for d in project["dependencies"])
    layer = (ROOT / "layers/dependencies/requirements.txt").read_text().lower()
    names = {line.split("==")[0].strip() for line in layer.splitlines() if line.strip() and not line.startswith("#")}
    # The local server and the CLI's optional extras stay out of the layer (Lambda runs the app through Mangum).
    assert not names & {"uvicorn", "click", "h11", "tqdm", "rich", "selenium", "moto", "pytest"}, names
    assert {"fastapi", "mangum", "pillow"} <= names
