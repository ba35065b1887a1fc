"""Bounded loopback soak (issue 8.8): mixed and hostile requests against the real local server.

    .venv/bin/python benchmarks/soak.py                      # 10,000 requests at concurrency 8
    .venv/bin/python benchmarks/soak.py --requests 2000      # a shorter run

The script copies the repository's sample bucket (catalogs/, images/, static/) to a temporary
folder, adds hostile material a URL alone cannot bring (a macro bomb catalog, a PNG whose header
claims 60000x60000 pixels, a truncated JPEG), starts ``python -m imageserving serve --root
<copy>`` itself on a free port of 127.0.0.1, and drives it from ``--concurrency`` client threads
with keep-alive connections, each request with a timeout, a fixed seed choosing from the mix
below. It stops the server at the end (or on Ctrl-C).

Printed: requests, errors (a request that got no HTTP answer: refused, reset, timed out),
replies by status, 5xx, replies that leaked (a traceback or the serving folder in a body),
tracebacks in the server's own output, the server's RSS (VmRSS) at start (after one warm-up
request) and after 20 %, 50 % and 100 % of the requests (2k/5k/10k of the default run), and
latency p50/p99/max overall and per class. The load average is printed beside the figures: the
client threads share the machine's cores with the server, as in any loopback measurement.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (class, weight, URL or a function of the random generator giving one)
NORMAL = [
    lambda g: f"/is/image/sample/rose?wid={g.randrange(40, 900)}&fmt={g.choice(['jpeg', 'png', 'webp'])}",
    "/is/image/sample/rose?$thumb$",
    "/is/image/sample/SKU123",
    "/is/image/sample/tulip?fmt=png-alpha&wid=200",
    "/is/image/sample/rose?template=frame&$size=200",
    "/is/image/sample/rose?wid=400&template=layered&$text=Hello",
    "/is/image/marked/rose.jpg?wid=400",
    "/is/image/sample/shoes?req=set,json,UTF-8&id=1",
    "/is/image/sample/rose?req=props",
    "/is/image/sample/rose?req=imageprops,json",
    "/is/image/sample/rose?req=exists",
    "/is/image/sample?req=catalogprops",
    "/is/content/sample/size-chart",
    "/is/image",
]
ERROR_MODEL = [
    "/is/image/sample/nothing?wid=200",  # default image
    "/is/image/Shop/SKU123?wid=abc",  # error image
    "/is/image/sample/rose?wid=abc",  # formatted error
    "/is/image/sample/rose?wid=abc&req=props,json&id=7",
    "/is/image/sample/nothing?defaultImage=&req=imageprops,xml",
]
_TEXT60 = "size=4000,4000&color=ffffff" + "".join(f"&layer={i}&size=4000,4000&text=L{i}" for i in range(1, 61))
_NEST9 = "src=is{sample/rose?" * 9 + "wid=10" + "}" * 9
HOSTILE = [
    "/is/content//catalogs/default.ini",
    "/is/content/%2Fcatalogs%2Fdefault.ini",
    "/is/content/sample//catalogs/sample/rules.xml",
    "/is/content/sample/%2e%2e/%2e%2e/catalogs/default.ini",
    "/is/content/sample/..%5C..%5Ccatalogs%5Cdefault.ini",
    "/is/image//images/sample/rose.jpg",
    "/is/image/sample/rose?wid=99999999&hei=99999999",
    "/is/image/sample/rose?scl=0.00000001",
    "/is/image/sample?" + _TEXT60 + "&wid=200&fmt=png",
    "/is/image/sample/rose?wid=50&fmt=png&printRes=99999999999",
    "/is/image/sample/rose?wid=50&" + _NEST9,
    "/is/image/sample/rose?wid=50" + "".join(f"&layer={i}&src=sample/rose" for i in range(1, 102)),
    "/is/image/sample/rose?wid=100&hei=100&layer=0&crop=0,0,1,99999999&layer=1&src=rose",
    "/is/image/sample/rose?" + "wid=1&" * 12000,  # a 72 KB query
    "/is/image/sample/rose?src=http://169.254.169.254/latest/meta-data/&wid=10",
    "/is/image/sample/rose?layer=1&src=is{sample/rose?wid=10&hei=10",  # unbalanced bracket
    "/is/image/sample/%ff%fe?wid=10",
    "/is/image/sample/rose?$$&%zz&wid=%ff",
    "/is/image/sample/rose?text=%7B%5Crtf1%5Cfs99999%20x%7D&size=100,100",  # a 50,000-pt font
    "/is/image/bomb/rose?$m0$",  # 10^16 tokens if expanded
    "/is/image/bomb/pixelbomb.png?wid=100",  # header: 60000x60000
    "/is/image/bomb/truncated.jpg?wid=100",
]
MIX = [("normal", 60, NORMAL), ("error-model", 15, ERROR_MODEL), ("hostile", 25, HOSTILE)]


def _png_header_bomb(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR claiming ``width`` x ``height``, with one tiny IDAT."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def prepare_bucket(folder: Path) -> None:
    for name in ("catalogs", "images", "static"):
        shutil.copytree(ROOT / name, folder / name)
    macros = ["Name\tDefinition"] + [f"m{i}\t" + "&".join([f"$m{i + 1}$"] * 10) for i in range(15)] + ["m15\twid=10"]
    (folder / "catalogs/bomb").mkdir()
    (folder / "catalogs/bomb/macros.txt").write_text("\n".join(macros) + "\n")
    (folder / "catalogs/bomb.ini").write_text("RootId=bomb\nRootPath=bomb/\nMacroFile=bomb/macros.txt\nDefaultImage=\n")
    (folder / "images/bomb").mkdir()
    (folder / "images/bomb/pixelbomb.png").write_bytes(_png_header_bomb(60000, 60000))
    rose = (folder / "images/sample/rose.jpg").read_bytes()
    (folder / "images/bomb/truncated.jpg").write_bytes(rose[: len(rose) // 3])
    shutil.copy(folder / "images/sample/rose.jpg", folder / "images/bomb/rose.jpg")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Soak:
    def __init__(self, port: int, folder: Path, requests: int, concurrency: int, seed: int, timeout: float):
        self.port, self.folder, self.total, self.concurrency, self.timeout = (
            port,
            folder,
            requests,
            concurrency,
            timeout,
        )
        rng = random.Random(seed)
        weights = [w for _, w, _ in MIX]
        self.plan: list[tuple[str, str]] = []
        for _ in range(requests):
            cls, _, urls = rng.choices(MIX, weights)[0]
            url = rng.choice(urls)
            self.plan.append((cls, url(rng) if callable(url) else url))
        self.lock = threading.Lock()
        self.next = 0
        self.latency: dict[str, list[float]] = {cls: [] for cls, _, _ in MIX}
        self.statuses: dict[int, int] = {}
        self.errors = 0
        self.leaks: list[str] = []
        self.failed: list[str] = []  # URLs that got no HTTP answer
        self.done = 0

    def take(self) -> tuple[str, str] | None:
        with self.lock:
            if self.next >= self.total:
                return None
            self.next += 1
            return self.plan[self.next - 1]

    def client(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        secret = str(self.folder).encode()
        while (job := self.take()) is not None:
            cls, url = job
            start = time.perf_counter()
            try:
                conn.request("GET", url, headers={"Accept": "image/webp,image/*,*/*"})
                reply = conn.getresponse()
                body = reply.read()
                status = reply.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
                with self.lock:
                    self.errors += 1
                    self.failed.append(url[:120])
                    self.done += 1
                continue
            ms = (time.perf_counter() - start) * 1000
            leaked = not reply.getheader("content-type", "").startswith("image/") and (
                b"Traceback" in body or secret in body
            )
            with self.lock:
                self.latency[cls].append(ms)
                self.statuses[status] = self.statuses.get(status, 0) + 1
                self.done += 1
                if leaked:
                    self.leaks.append(url[:120])
        conn.close()


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))] if ordered else float("nan")


def load() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="soak-"))
    server = log = None
    try:
        prepare_bucket(folder)
        port = free_port()
        log = open(folder / "server.log", "w+")  # noqa: SIM115 - closed below
        env = os.environ | {"IS_LOG_FORMAT": "off", "PYTHONPATH": str(ROOT / "functions" / "imageserving")}
        command = [sys.executable, "-m", "imageserving", "serve", "--root", str(folder)]
        server = subprocess.Popen(
            command + ["--host", "127.0.0.1", "--port", str(port)], env=env, stdout=log, stderr=log
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", "/is/image/sample/rose?wid=100")
                if conn.getresponse().read() and True:
                    conn.close()
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(
                        f"the server did not start: {(folder / 'server.log').read_text()[-500:]}"
                    ) from None
                time.sleep(0.2)
        soak = Soak(port, folder, args.requests, args.concurrency, args.seed, args.timeout)
        print(f"soak: {args.requests} requests, concurrency {args.concurrency}, seed {args.seed}; {load()}")
        print("mix: " + ", ".join(f"{cls} {w} % ({len(urls)} URLs)" for cls, w, urls in MIX))
        checkpoints = sorted({max(1, args.requests * f // 100) for f in (20, 50, 100)})
        rss = [("start", 0, rss_mb(server.pid))]
        threads = [threading.Thread(target=soak.client, daemon=True) for _ in range(args.concurrency)]
        began = time.perf_counter()
        for t in threads:
            t.start()
        for mark in checkpoints:
            while soak.done < mark and any(t.is_alive() for t in threads):
                time.sleep(0.05)
            rss.append((f"{mark}", soak.done, rss_mb(server.pid)))
        for t in threads:
            t.join()
        seconds = time.perf_counter() - began
        alive = server.poll() is None
    finally:
        if server is not None and server.poll() is None:
            server.terminate()
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    log.seek(0)
    server_tracebacks = log.read().count("Traceback")
    log.close()
    shutil.rmtree(folder, ignore_errors=True)

    every = [ms for values in soak.latency.values() for ms in values]
    fivexx = sum(n for s, n in soak.statuses.items() if s >= 500)
    print(f"\nrequests {soak.done} in {seconds:.1f} s ({soak.done / seconds:.1f} req/s); {load()}")
    print(f"errors (no HTTP answer) {soak.errors}; 5xx {fivexx}; leaks {len(soak.leaks)}; ", end="")
    print(f"server tracebacks {server_tracebacks}")
    print("statuses: " + ", ".join(f"{s}: {n}" for s, n in sorted(soak.statuses.items())))
    print(
        "server RSS: " + ", ".join(f"{name} {mb:.0f} MB" for name, _, mb in rss) + ("" if alive else " (server died)")
    )
    print(f"\n{'class':12} {'n':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for cls, values in [*soak.latency.items(), ("all", every)]:
        print(f"{cls:12} {len(values):6} {pct(values, 50):8.1f} {pct(values, 99):8.1f} {max(values, default=0):8.1f}")
    for url in soak.leaks[:5]:
        print(f"leak: {url}")
    for url in sorted(set(soak.failed))[:5]:
        print(f"no answer: {url} ({soak.failed.count(url)}x)")
    return 0 if not (soak.errors or fivexx or soak.leaks or server_tracebacks) and alive else 1


if __name__ == "__main__":
    sys.exit(main())
