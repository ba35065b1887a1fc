"""The SnapStart hook of handler.py: registered through snapshot_restore_py when the runtime has
it, priming the image half (imported late otherwise) and Pillow's plugins and codecs, never the
network, storage or secrets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FUNCTION = Path(__file__).resolve().parents[1] / "functions" / "imageserving"

PROBE = r"""
import json, sys, types
connections = []
NETWORK = ("socket.connect", "socket.getaddrinfo")
sys.addaudithook(lambda event, args: connections.append(event) if event in NETWORK else None)
hooks = []
if sys.argv[1] == "runtime":
    fake = types.ModuleType("snapshot_restore_py")
    fake.register_before_snapshot = lambda fn: hooks.append(fn) or fn
    fake.register_after_restore = lambda fn: fn
    sys.modules["snapshot_restore_py"] = fake
from PIL import Image
import handler
before = Image._initialized
imaging_at_import = "imageserving.render.pipeline" in sys.modules
for hook in hooks:
    hook()
server = handler.handler.app.state.server
print(json.dumps({
    "hooks": [h.__name__ for h in hooks],
    "initialized_before": before,
    "initialized_after": Image._initialized,
    "imaging_at_import": imaging_at_import,
    "imaging_after": "imageserving.imaging" in sys.modules and "imageserving.render.pipeline" in sys.modules,
    "s3_client": getattr(server.storage, "_client", None) is not None,
    "boto3": "boto3" in sys.modules,
    "botocore": "botocore.session" in sys.modules,
    "connections": connections,
}))
"""

ENV = {
    "IS_BUCKET": "snapstart-test",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9",
}


def probe(mode: str) -> dict:
    run = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        cwd=FUNCTION,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(FUNCTION), **ENV},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.splitlines()[-1])


def test_before_snapshot_hook_primes_the_image_half_and_pillow_only():
    out = probe("runtime")
    assert out["hooks"] == ["prime"]
    assert out["initialized_after"] == 2  # every Pillow plugin loaded into the snapshot
    # The renderer, left out of the cold import, is in the snapshot all the same.
    assert (out["imaging_at_import"], out["imaging_after"]) == (False, True)
    # The SDK and S3's API description, but nothing that can change or is secret: no S3 client
    # (it would resolve credentials), no connection at all.
    assert out == {**out, "botocore": True, "s3_client": False, "boto3": False, "connections": []}


def test_without_the_runtime_module_nothing_is_registered_or_primed():
    out = probe("local")
    assert out["hooks"] == [] and out["initialized_after"] == out["initialized_before"]
    assert not out["imaging_at_import"] and not out["imaging_after"]  # left to the first image request
    assert not out["botocore"]
    assert out["connections"] == []
