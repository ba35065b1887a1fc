"""Run the real ``python -m imageserving serve`` in a subprocess on 127.0.0.1 and a free port (for tests
that need a listening server: the CLI itself, a real browser)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(
    root: Path, env: dict[str, str] | None = None, timeout: float = 20.0, log: Path | None = None
) -> Iterator[str]:
    """Start ``serve --root ROOT`` and yield its base URL once ``/is/image`` answers; stop it afterwards.
    With ``log``, everything the server prints (stdout and stderr) goes to that file."""
    port = free_port()
    cmd = [sys.executable, "-m", "imageserving", "serve", "--root", str(root)]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    out = open(log, "w") if log is not None else subprocess.PIPE  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        cmd,
        env={**os.environ, **(env or {})},
        stdout=out,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                said = proc.stdout.read() if proc.stdout else Path(log).read_text()
                raise RuntimeError(f"serve exited with {proc.returncode}: {said}")
            try:
                with urllib.request.urlopen(base + "/is/image", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    raise RuntimeError("serve did not answer in time") from None
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
        if log is not None:
            out.close()
