"""Cold-start import time of the built Lambda handler: precompiled build vs. the same build without .pyc.

Run after `sam build`:  .venv/bin/python benchmarks/cold_start.py [--runs 7]

Second table, "first byte": a fresh python3.12 process importing the precompiled handler and
answering its first small image (events/image.json: sample/rose, wid=300 PNG, from the repo's
sample bucket as a local folder), then, in the same process, the cost S3 adds on Lambda: importing
the SDK (botocore) and creating its S3 client (no request is sent), and creating it once more
after what handler.prime leaves in a SnapStart snapshot. Targets: import ≤ 300 ms, first byte ≤ 450 ms.

Each sample is a fresh python3.12 process doing `import handler` with Lambda's sys.path (function
directory, then the layer's python/, then the runtime's boto3 if tests/test_built_handler.py has
installed one). The baseline is a copy of the build with every .pyc removed,
which is what a plain `sam build` ships; bytecode writing is off as on Lambda's read-only file
system, so the baseline compiles from source on every start. Runs alternate between the two
variants so that drift of the machine hits both alike. Import must not touch the network: a first,
untimed run watches for socket connections and reports them.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / ".aws-sam" / "build"
FUNCTION = "ImageServingFunction"
LAYER = "DependenciesLayer"
# boto3 comes with the Lambda runtime, not the build; tests/test_built_handler.py installs a copy here.
RUNTIME_BOTO3 = ROOT / ".aws-sam" / "runtime-boto3"

# Prints the import time in ms, and with sys.argv[1] == "watch" the network connections tried, as
# the last line of output (JSON).
PROBE = """
import json, sys, time
connections = []
if sys.argv[1] == "watch":
    def hook(event, args):
        if event in ("socket.connect", "socket.getaddrinfo"):
            connections.append(repr(args[1] if event == "socket.connect" else args[:2]))
    sys.addaudithook(hook)
start = time.perf_counter()
import handler
elapsed = (time.perf_counter() - start) * 1000
print(json.dumps({"ms": elapsed, "connections": connections}))
"""

# Import, then the first reply from a local folder, then the SDK + an S3 client as S3Storage makes
# it (botocore's session, storage.sdk_session), and the same client again after what a SnapStart
# snapshot holds of the SDK (storage.load_s3_sdk, in handler.prime) in a second session.
FIRST_BYTE = """
import base64, json, sys, time
start = time.perf_counter()
import handler
imported = time.perf_counter()
event = json.load(open(sys.argv[1]))
reply = handler.handler(event, type("C", (), {"function_name": "cold", "aws_request_id": "cold"})())
assert reply["statusCode"] == 200, reply
answered = time.perf_counter()
from imageserving import storage
storage.sdk_session().create_client("s3", region_name="us-east-1")
s3 = time.perf_counter()
import botocore.session
storage.sdk_session.cache_clear()
storage.load_s3_sdk()
primed = time.perf_counter()
storage.sdk_session().create_client("s3", region_name="us-east-1")
restored = time.perf_counter()
print(json.dumps({"import": (imported - start) * 1000, "first": (answered - start) * 1000,
                  "s3": (s3 - answered) * 1000, "s3_primed": (restored - primed) * 1000}))
"""

# No real endpoint anywhere: a stray S3 call at import fails fast on this machine instead of
# reaching AWS, and the audit hook above names it.
ENV = {
    "IS_BUCKET": "cold-start-benchmark",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9",
    "PYTHONDONTWRITEBYTECODE": "1",
}


def find_python312() -> str | None:
    """A Python 3.12 that really runs (a pyenv shim may exist without the version selected)."""
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates = [
        os.environ.get("PYTHON312", ""),
        shutil.which("python3.12") or "",
        *sorted(glob.glob(f"{pyenv_root}/versions/3.12*/bin/python3.12")),
    ]
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; sys.exit(sys.version_info[:2] != (3, 12))"], capture_output=True
        )
        if probe.returncode == 0:
            return candidate
    return None


def import_once(python: str, build: Path, mode: str = "time") -> tuple[float, list[str]]:
    path = [build / FUNCTION, build / LAYER / "python"] + ([RUNTIME_BOTO3] if RUNTIME_BOTO3.is_dir() else [])
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **ENV, "PYTHONPATH": os.pathsep.join(map(str, path))}
    # -S: only what Lambda has is importable, not this machine's site-packages.
    run = subprocess.run([python, "-S", "-c", PROBE, mode], env=env, capture_output=True, text=True, timeout=120)
    if run.returncode != 0:
        sys.exit(f"import handler failed in {build}:\n{run.stderr}")
    result = json.loads(run.stdout.splitlines()[-1])
    return result["ms"], result["connections"]


def first_byte_once(python: str, build: Path) -> dict:
    path = [build / FUNCTION, build / LAYER / "python"] + ([RUNTIME_BOTO3] if RUNTIME_BOTO3.is_dir() else [])
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **ENV,
        "IS_LOCAL_ROOT": str(ROOT),
        "PYTHONPATH": os.pathsep.join(map(str, path)),
    }
    event = str(ROOT / "events" / "image.json")
    run = subprocess.run(
        [python, "-S", "-c", FIRST_BYTE, event], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    if run.returncode != 0:
        sys.exit(f"first byte failed in {build}:\n{run.stderr}")
    return json.loads(run.stdout.splitlines()[-1])


def without_bytecode(build: Path, into: Path) -> Path:
    copy = into / "build"
    for part in (FUNCTION, LAYER):
        shutil.copytree(build / part, copy / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return copy


def count_pyc(build: Path) -> int:
    return sum(1 for _ in build.rglob("*.pyc"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed imports per variant (median reported)")
    parser.add_argument("--build", type=Path, default=BUILD, help="the `sam build` output folder")
    parser.add_argument("--json", type=Path, help="also write the first-byte medians here (benchmarks/all.py)")
    args = parser.parse_args()

    if not (args.build / FUNCTION / "handler.py").is_file():
        sys.exit(f"no build in {args.build}: run `sam build` first")
    python = find_python312()
    if python is None:
        sys.exit("no Python 3.12 found (set PYTHON312): the build targets the python3.12 runtime")

    _, connections = import_once(python, args.build, "watch")
    if connections:
        print(f"WARNING: `import handler` touches the network: {', '.join(connections)}", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="cold-start-") as tmp:
        variants = {
            "precompiled .pyc (this build)": args.build,
            "no .pyc (plain sam build)": without_bytecode(args.build, Path(tmp)),
        }
        samples: dict[str, list[float]] = {name: [] for name in variants}
        for build in variants.values():
            import_once(python, build)  # warm the page cache, untimed
        for _ in range(args.runs):
            for name, build in variants.items():
                samples[name].append(import_once(python, build)[0])
        pyc = {name: count_pyc(build) for name, build in variants.items()}

    medians = {name: statistics.median(values) for name, values in samples.items()}
    fastest = min(medians.values())
    print(f"cold `import handler`, python {python}, median of {args.runs} fresh processes")
    print(f"{'variant':<32} {'.pyc files':>10} {'median ms':>10} {'min ms':>8} {'max ms':>8} {'ratio':>6}")
    for name, values in samples.items():
        print(
            f"{name:<32} {pyc[name]:>10} {medians[name]:>10.1f} {min(values):>8.1f} {max(values):>8.1f}"
            f" {medians[name] / fastest:>5.2f}x"
        )

    first_byte_once(python, args.build)  # warm the page cache, untimed
    firsts = [first_byte_once(python, args.build) for _ in range(args.runs)]
    med = {key: statistics.median(f[key] for f in firsts) for key in ("import", "first", "s3", "s3_primed")}
    print()
    print(f"first byte from a fresh process (precompiled build), median of {args.runs}:")
    print(f"  import handler                 {med['import']:7.1f} ms   target ≤ 300 ms: {_met(med['import'], 300)}")
    print(f"  + first small image (local)    {med['first']:7.1f} ms   target ≤ 450 ms: {_met(med['first'], 450)}")
    print(f"  + SDK import and S3 client     {med['s3']:7.1f} ms   (what S3 adds on Lambda without SnapStart)")
    primed = med["s3_primed"]
    print(f"    the client after SnapStart   {primed:7.1f} ms   (handler.prime loaded the SDK and S3's model)")
    total = med["first"] + med["s3"]
    print(f"  first byte with S3             {total:7.1f} ms   target ≤ 450 ms: {_met(total, 450)}")
    if args.json:
        args.json.write_text(json.dumps(med | {"with_s3": total}))


def _met(value: float, target: float) -> str:
    return "yes" if value <= target else "NO"


if __name__ == "__main__":
    main()
