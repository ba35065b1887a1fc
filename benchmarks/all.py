"""Every table of issue 12's Targets in one command, each row met or not.

    .venv/bin/python benchmarks/all.py            # 25 runs per render figure (~10 min on 2 idle cores)
    .venv/bin/python benchmarks/all.py --quick    # 5 runs, fewer loopback requests: a smoke run

Runs, each in a process of its own (their own tables are printed as they go):
bench_render.py on every core and again pinned to one (``--cpus 0``, sharp with
``sharp.concurrency(1)``), budget.py (the shrink-on-load headroom against rendering.md §16),
load.py with 2 uvicorn workers beside thumbor, and cold_start.py when a ``sam build`` output exists
(``.venv-sam/bin/sam build`` first, else that row says so). Then the Targets table.

Every contender of a table is measured in the same run, interleaved; ratios are what the targets
read. Absolute figures depend on what else runs on the machine: the load average is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BUILD = ROOT / ".aws-sam" / "build" / "ImageServingFunction" / "handler.py"


def run(script: str, *args: str, out: Path | None = None) -> dict | list | None:
    """``script`` with ``args`` (its output shown), and what it wrote to ``--json``."""
    command = [sys.executable, str(HERE / script), *args] + (["--json", str(out)] if out else [])
    print(f"\n=== {' '.join(Path(c).name if i < 2 else c for i, c in enumerate(command))}", flush=True)
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(ROOT / "functions" / "imageserving"), os.environ.get("PYTHONPATH", "")])
        )
    }
    done = subprocess.run(command, env=env)
    if done.returncode != 0 or out is None or not out.exists():
        return None
    return json.loads(out.read_text())


def render_rows(figures: dict | None, labels: dict[str, str], suffix: str = "") -> list[tuple]:
    """(figure, target, measured, met) for the render workloads named in ``labels``."""
    rows = []
    by_label = {r["label"]: r for r in figures["rows"]} if figures else {}
    for label, figure in labels.items():
        r = by_label.get(label)
        if not r or not r.get("sharp"):
            rows.append((figure + suffix, "", "sharp unavailable", None))
            continue
        ratio = r["ours"] / r["sharp"]
        rows.append(
            (
                figure + suffix,
                f"≤ {r['target']:.1f}× sharp",
                f"{ratio:.2f}× ({r['ours']:.0f} / {r['sharp']:.0f} ms)",
                ratio <= r["target"],
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 runs per render figure, 60 loopback requests a level")
    args = parser.parse_args()
    quick = ["--quick"] if args.quick else []
    print(f"benchmarks/all.py: load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="bench-all-") as tmp:
        out = Path(tmp)
        render = run("bench_render.py", *quick, out=out / "render.json")
        pinned = run("bench_render.py", *quick, "--cpus", "0", out=out / "pinned.json")
        run("budget.py")
        loop = run("load.py", "--workers", "2", "--requests", "60" if args.quick else "160", out=out / "load.json")
        cold = run("cold_start.py", out=out / "cold.json") if BUILD.exists() else None

    rows = render_rows(render, {"default (sharp2) jpg": "default resMode, 12 MP → 500 px JPEG"})
    if render:
        label, enc_ours, enc_naive, _ = render["jpeg"][0]
        delta = enc_ours - enc_naive
        rows.append(("  … PSNR against naive Pillow's", "within 0.2 dB", f"{delta:+.2f} dB", delta >= -0.2))
    rows += render_rows(render, {"resMode=bilin jpg": "resMode=bilin", "webp": "WebP 500 px", "avif": "AVIF 500 px"})
    for fmt, _size, _, *peer in render["codec"] if render else []:
        if fmt != "jpg" and peer:
            theirs, their_ssim, matched = peer
            rows.append(
                (
                    f"  … {fmt} SSIM at sharp's bytes",
                    "≥ sharp's",
                    f"{matched:.4f} vs {their_ssim:.4f}",
                    matched >= their_ssim,
                )
            )
    rows += render_rows(
        render,
        {
            "png reply": "PNG reply",
            "png source → jpg": "PNG source",
            "2000 px reply jpg": "2000 px reply",
            "1 MP → 200 px jpg": "1 MP → 200 px thumbnail",
        },
    )
    pinned_labels = {r["label"]: r["label"] for r in pinned["rows"]} if pinned else {"(all)": "(all)"}
    rows += render_rows(pinned, pinned_labels, suffix=", pinned to one core")
    if render and render.get("rss"):
        mb = render["rss"]["ours"]
        rows.append(("peak RSS, 50 MP JPEG (fresh process)", "≤ 120 MB", f"{mb:.0f} MB", mb <= 120))
    for figure, goal, value, met in loop or [("loopback (load.py)", "", "failed", None)]:
        rows.append((f"loopback, 2 workers: {figure}", goal, value, met))
    if cold:
        rows.append(
            ("cold: import of the built handler", "≤ 300 ms", f"{cold['import']:.0f} ms", cold["import"] <= 300)
        )
        rows.append(("cold: first byte (local image)", "≤ 450 ms", f"{cold['first']:.0f} ms", cold["first"] <= 450))
    else:
        why = "cold_start.py failed (above)" if BUILD.exists() else "no sam build (.venv-sam/bin/sam build)"
        rows.append(("cold: import / first byte", "≤ 300 / 450 ms", why, None))

    print(
        f"\n=== Targets (issue 12), load average now {os.getloadavg()[0]:.2f}: ratios hold, absolute ms are under load"
    )
    print(f"{'figure':48} {'target':>16} {'measured':>28}  met")
    for figure, goal, value, met in rows:
        print(f"{figure:48} {goal:>16} {value:>28}  {'n/a' if met is None else 'yes' if met else 'NO'}")
    print("(budget.py above: the shrink-on-load headroom against rendering.md §16)")


if __name__ == "__main__":
    main()
