"""Loopback load: the standard request against a real uvicorn server, latency percentiles and req/s.

    .venv/bin/python benchmarks/load.py                 # 1 and 2 workers, concurrency 1, 4, 8
    .venv/bin/python benchmarks/load.py --requests 60   # fewer requests per level (a smoke test)

The script starts ``uvicorn --factory imageserving.app:create_app`` itself on a free port of
127.0.0.1 (the bucket of bench_render.py: the 12 MP photo, ``wid=500&hei=375&qlt=80&fmt=jpg``),
waits for it to answer, drives it from client threads with keep-alive connections, and stops it.
Bounded: a fixed number of requests per level (after warm-up requests on every connection),
every request with a timeout. Client and server share the machine's cores, as they would with
any loopback measurement; the client threads spend well under a millisecond per request.

Every figure is under whatever else runs on the machine: the load average is printed beside it.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import bench_render as bench
from PIL import Image

STANDARD = "/is/image/photo12?wid=500&hei=375&qlt=80&fmt=jpg"
LEVELS = (1, 4, 8)


@dataclass
class Result:
    """One load level: latencies in ms, requests per second, failures."""

    concurrency: int
    latencies: list[float]
    seconds: float
    failures: int

    def pct(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]

    def merged(self, other: Result) -> Result:
        return Result(
            self.concurrency,
            self.latencies + other.latencies,
            self.seconds + other.seconds,
            self.failures + other.failures,
        )

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def row(self) -> str:
        return (
            f"{self.concurrency:>4} {self.pct(50):8.1f} {self.pct(90):8.1f} {self.pct(99):8.1f} "
            f"{max(self.latencies):8.1f} {self.rps:7.1f} {self.pct(99) / self.pct(50):7.2f}"
            + (f"  {self.failures} failed" if self.failures else "")
        )


HEADER = f"{'conc':>4} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'req/s':>7} {'p99/p50':>7}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(conn: http.client.HTTPConnection, path: str) -> bytes:
    conn.request("GET", path, headers={"Accept": "image/jpeg"})
    reply = conn.getresponse()
    body = reply.read()
    if reply.status != 200:
        raise RuntimeError(f"HTTP {reply.status}: {body[:200]!r}")
    return body


def wait_ready(port: int, path: str, proc: subprocess.Popen | None = None, timeout: float = 60) -> None:
    """Until ``path`` answers 200 (the server is up and has rendered once)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            get(conn, path)
            conn.close()
            return
        except (OSError, RuntimeError, http.client.HTTPException):
            time.sleep(0.2)
    raise RuntimeError(f"no answer on 127.0.0.1:{port}{path} within {timeout:.0f} s")


def drive(port: int, path: str, concurrency: int, requests: int, warmup: int = 2, timeout: float = 30) -> Result:
    """``requests`` GETs of ``path`` from ``concurrency`` threads, each with its own keep-alive
    connection (``warmup`` untimed requests each first)."""
    latencies: list[float] = []
    failures = [0]
    left = [requests]
    lock = threading.Lock()
    start_line = threading.Barrier(concurrency + 1)

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        for _ in range(warmup):
            get(conn, path)
        start_line.wait()
        while True:
            with lock:
                if left[0] <= 0:
                    break
                left[0] -= 1
            t = time.perf_counter()
            try:
                get(conn, path)
            except (OSError, RuntimeError, http.client.HTTPException):
                with lock:
                    failures[0] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
                continue
            ms = (time.perf_counter() - t) * 1000
            with lock:
                latencies.append(ms)
        conn.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    start_line.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    return Result(concurrency, latencies, time.perf_counter() - began, failures[0])


class Server:
    """``uvicorn --factory imageserving.app:create_app`` on 127.0.0.1 serving the benchmark bucket."""

    def __init__(
        self,
        workers: int,
        env: dict[str, str] | None = None,
        cpus: str | None = None,
        code: Path | None = None,
        factory: str = "imageserving.app:create_app",
    ):
        """``code``: the ``functions/imageserving`` folder to import the package from (default this
        checkout's), so that another checkout can serve as the baseline; ``cpus``: taskset's list."""
        self.port = free_port()
        self.workers = workers
        self.path = STANDARD
        command = [sys.executable, "-m", "uvicorn", "--factory", factory, "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--workers", str(workers), "--log-level", "warning", "--no-access-log"]
        if cpus:
            command = ["taskset", "-c", cpus, *command]
        environ = (
            os.environ
            | {"IS_LOCAL_ROOT": str(bench.BUCKET), "IS_CATALOG_SETTLE_SECONDS": "0", "IS_LOG_FORMAT": "json"}
            | (env or {})
        )
        package = code or bench.ROOT / "functions" / "imageserving"
        environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(package), environ.get("PYTHONPATH", "")) if p)
        self.proc = subprocess.Popen(
            command, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )

    def __enter__(self) -> Server:
        try:
            # One request per worker at least, so that every worker has rendered before timing.
            wait_ready(self.port, self.path, self.proc)
            drive(self.port, self.path, concurrency=2 * self.workers, requests=0, warmup=2)
        except Exception:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        """The server and its worker processes: they run in a session of their own, and a
        parent stopped alone (thumbor --processes) would leave its children serving."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.proc.poll() is None:
            self.proc.wait()


class Thumbor(Server):
    """thumbor (PyPI) in its own virtual environment, serving the benchmark photo from the bucket's
    images folder: ``/unsafe/500x375/photo12.jpg`` at QUALITY 80, baseline JPEG like ours (thumbor's
    default is progressive), no storage or result storage (every request renders), Pillow engine.
    ``--processes`` plays the part of uvicorn's workers."""

    VENV = bench.CACHE / "thumbor-venv"
    CONF = """LOADER = 'thumbor.loaders.file_loader'
FILE_LOADER_ROOT_PATH = {root!r}
ALLOW_UNSAFE_URL = True
STORAGE = 'thumbor.storages.no_storage'
RESULT_STORAGE = None
QUALITY = 80
PROGRESSIVE_JPEG = False
AUTO_WEBP = False
"""

    @classmethod
    def install(cls) -> str | None:
        """Install thumbor from PyPI into its venv once; the reason when it cannot."""
        exe = cls.VENV / "bin" / "thumbor"
        if exe.exists():
            return None
        try:
            subprocess.run([sys.executable, "-m", "venv", str(cls.VENV)], check=True, capture_output=True, timeout=120)
            done = subprocess.run(
                [str(cls.VENV / "bin" / "pip"), "install", "-q", "thumbor"], capture_output=True, text=True, timeout=600
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return f"cannot create its venv: {exc}"
        if done.returncode != 0 or not exe.exists():
            return f"pip install thumbor failed: {done.stderr.strip()[-200:]}"
        return None

    def __init__(self, workers: int, cpus: str | None = None):  # not Server's: no uvicorn here
        self.port = free_port()
        self.workers = workers
        self.path = "/unsafe/500x375/photo12.jpg"
        conf = bench.CACHE / "thumbor.conf"
        conf.write_text(self.CONF.format(root=str(bench.BUCKET / "images")))
        command = [str(self.VENV / "bin" / "thumbor"), "-i", "127.0.0.1", "-p", str(self.port), "-c", str(conf)]
        command += ["-l", "warning", "--processes", str(workers)]
        if cpus:
            command = ["taskset", "-c", cpus, *command]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)

    @classmethod
    def version(cls) -> str:
        done = subprocess.run([str(cls.VENV / "bin" / "thumbor"), "--version"], capture_output=True, text=True)
        return (done.stdout or done.stderr).strip() if done.returncode == 0 else "?"


def compare(servers: dict[str, Server], requests: int, levels=LEVELS, rounds: int = 4) -> dict:
    """Every level driven against every server in turns (``rounds`` slices each), so that the
    machine's noise hits all alike; latencies of a server's slices are pooled."""
    results: dict[str, dict[int, Result]] = {name: {} for name in servers}
    for c in levels:
        per_round = max(requests // rounds, 2 * c)
        for _ in range(rounds):
            for name, server in servers.items():
                part = drive(server.port, server.path, c, per_round)
                old = results[name].get(c)
                results[name][c] = part if old is None else old.merged(part)
    return results


def print_tables(title: str, results: dict[str, dict[int, Result]]) -> None:
    print(f"\n{title}  (load average now {os.getloadavg()[0]:.2f})")
    names = list(results)
    ratios = f"   req/s ÷ {names[0][:8]}  p99 ÷ {names[0][:8]}" if len(names) > 1 else ""
    print(f"{'':12} {HEADER}{ratios}")
    for c in results[names[0]]:
        first = results[names[0]][c]
        for name in names:
            r = results[name][c]
            extra = f"   {r.rps / first.rps:14.2f} {r.pct(99) / first.pct(99):13.2f}" if name != names[0] else ""
            print(f"{name[:12]:12} {r.row()}{extra}")


def run(workers: int, requests: int, baseline: Path | None = None, peer: bool = True, levels=LEVELS) -> dict:
    """One table: thumbor (when it installs and ``peer``), the baseline checkout (if given) and ours,
    each with ``workers`` processes, every level interleaved."""
    servers: dict[str, Server] = {}
    if peer:
        reason = Thumbor.install()
        if reason:
            print(f"thumbor: skipped ({reason})")
        else:
            servers["thumbor"] = Thumbor(workers)
    if baseline:
        servers["baseline"] = Server(workers, code=baseline / "functions" / "imageserving")
    servers["ours"] = Server(workers)
    try:
        for server in servers.values():
            server.__enter__()
        reference = Image.open(bench.PHOTO).convert("RGB").resize(bench.SIZE, bench.LANCZOS)
        for name, server in servers.items():
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            body = get(conn, server.path)
            conn.close()
            psnr = bench.compare(bench.decoded(body), reference)[0]
            print(f"{name}: {server.path} → {len(body)} bytes, PSNR {psnr:.2f} dB against full decode + LANCZOS")
        results = compare(servers, requests, levels=levels)
    finally:
        for server in servers.values():
            server.stop()
    print_tables(f"{workers} worker{'s' if workers > 1 else ''} each", results)
    return results


def targets(results: dict[str, dict[int, Result]]) -> list[tuple[str, str, str, bool | None]]:
    """Issue 12's loopback targets from a 2-worker table: (figure, target, measured, met)."""
    ours = results["ours"][4]
    tail = ours.pct(99) / ours.pct(50)
    rows = [("p99 / p50, concurrency 4", "≤ 2.0", f"{tail:.2f}", tail <= 2)]
    if "thumbor" in results:
        for c in (4, 8):
            ratio = results["ours"][c].rps / results["thumbor"][c].rps
            rows.append((f"req/s ÷ thumbor's, concurrency {c}", "≥ 1.30", f"{ratio:.2f}", ratio >= 1.3))
    else:
        rows.append(("req/s ÷ thumbor's", "≥ 1.30", "thumbor unavailable", None))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=160, help="timed requests per concurrency level")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="uvicorn worker counts")
    parser.add_argument("--no-peer", action="store_true", help="leave thumbor out")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a checkout (e.g. /work/main) whose functions/imageserving serves beside this one, interleaved",
    )
    parser.add_argument("--json", type=Path, help="also write the 2-worker targets here (benchmarks/all.py)")
    args = parser.parse_args()
    bench.prepare_photo()
    bench.prepare_bucket()
    print(f"loopback load: {STANDARD}, {args.requests} requests per level; uptime: {uptime()}")
    print("absolute figures are under the machine's load: compare rows of the same run")
    if not args.no_peer and not Thumbor.install():
        print(f"peer: thumbor {Thumbor.version()} (PyPI, own venv {Thumbor.VENV}), Pillow engine")
    for workers in args.workers:
        results = run(workers, args.requests, args.baseline, peer=not args.no_peer)
        if workers == 2:
            print()
            rows = targets(results)
            for figure, goal, value, met in rows:
                print(f"{figure:36} {goal:>8} {value:>10}  {'n/a' if met is None else 'yes' if met else 'NO'}")
            if args.json:
                args.json.write_text(json.dumps(rows))


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "load average %.2f %.2f %.2f" % os.getloadavg()


if __name__ == "__main__":
    main()
