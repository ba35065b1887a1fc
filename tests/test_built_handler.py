"""The function as `sam build` packs it, answering events/ against a moto S3 server.

The built layer holds CPython 3.12 manylinux wheels, so the handler runs in a python3.12 subprocess
whose sys.path is what Lambda gives it: the function directory, the layer's python/, and a boto3 of
its own standing in for the one the runtime provides. Without a build the test is skipped locally
and fails in CI (CI=true), where .ci/run builds first.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

# The in-process replay's events and expectations, whether or not tests/ is a package.
_events = importlib.import_module(f"{__package__}.test_events" if __package__ else "test_events")
CASES, load_event, upload_sample_bucket = _events.CASES, _events.load_event, _events.upload_sample_bucket

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from cold_start import find_python312  # noqa: E402  (one way to find the runtime's interpreter)

BUILD = ROOT / ".aws-sam" / "build"
FUNCTION_DIR = BUILD / "ImageServingFunction"
LAYER_DIR = BUILD / "DependenciesLayer" / "python"
# Outside .aws-sam/build, which every `sam build` empties.
RUNTIME_BOTO3 = ROOT / ".aws-sam" / "runtime-boto3"
BUCKET = "imageserving-built"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}

# Runs in the 3.12 subprocess: events in from a file, Lambda responses out to another, so that
# anything the app prints cannot corrupt the answer.
RUNNER = """
import json, sys
from handler import handler
events = json.load(open(sys.argv[1]))
json.dump([handler(event, None) for event in events], open(sys.argv[2], "w"))
"""


def _unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def runtime_boto3() -> Path:
    """boto3 for Python 3.12, installed once: the Lambda runtime provides it, the layer does not."""
    if not RUNTIME_BOTO3.is_dir():
        staging = RUNTIME_BOTO3.with_name(RUNTIME_BOTO3.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-warn-conflicts",
                "--no-compile",
                "--only-binary=:all:",
                "--python-version",
                "3.12",
                "--implementation",
                "cp",
                "--target",
                str(staging),
                "boto3",
            ],
            check=True,
        )
        staging.rename(RUNTIME_BOTO3)
    return RUNTIME_BOTO3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        s3.create_bucket(Bucket=BUCKET)
        assert upload_sample_bucket(s3, BUCKET) > 0
        yield endpoint
    finally:
        server.stop()


@pytest.fixture(scope="module")
def responses(s3_endpoint, tmp_path_factory) -> dict[str, dict]:
    if not (FUNCTION_DIR / "handler.py").is_file() or not LAYER_DIR.is_dir():
        _unavailable(f"no SAM build in {BUILD}: run `sam build` first")
    python = find_python312()
    if python is None:
        _unavailable("no Python 3.12 interpreter to run the python3.12 build with")
    names = sorted(CASES)
    work = tmp_path_factory.mktemp("built-handler")
    (work / "events.json").write_text(json.dumps([load_event(name) for name in names]))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        # Lambda's order: /var/task, then the layer, then the runtime's boto3.
        "PYTHONPATH": os.pathsep.join(map(str, (FUNCTION_DIR, LAYER_DIR, runtime_boto3()))),
        # Lambda's code is read-only; never leave cpython-312 caches in the deployable build.
        "PYTHONDONTWRITEBYTECODE": "1",
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL_S3": s3_endpoint,
        "IS_BUCKET": BUCKET,
    }
    # -S: no site-packages of the local interpreter; only what Lambda would have is importable.
    run = subprocess.run(
        [python, "-S", "-c", RUNNER, str(work / "events.json"), str(work / "out.json")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    return dict(zip(names, json.loads((work / "out.json").read_text())))


@pytest.mark.parametrize("name", sorted(CASES))
def test_built_handler_answers_event(responses, name):
    CASES[name](responses[name])


def test_build_ships_bytecode_for_python312():
    if not FUNCTION_DIR.is_dir():
        _unavailable(f"no SAM build in {BUILD}: run `sam build` first")
    if find_python312() is None:
        _unavailable("no Python 3.12 interpreter: the build could not precompile")
    assert (FUNCTION_DIR / "__pycache__" / "handler.cpython-312.pyc").is_file()
    assert not list(FUNCTION_DIR.rglob("*.cpython-311.pyc"))
    assert not (FUNCTION_DIR / "imageserving.egg-info").exists()


def test_build_ships_the_try_page():
    """/is/try's files travel with the package (the Makefile copies imageserving/ whole)."""
    if not FUNCTION_DIR.is_dir():
        _unavailable(f"no SAM build in {BUILD}: run `sam build` first")
    source = ROOT / "functions" / "imageserving" / "imageserving" / "try"
    for name in ("index.html", "try.js", "try.css", "examples.json"):
        assert (FUNCTION_DIR / "imageserving" / "try" / name).read_bytes() == (source / name).read_bytes(), name
