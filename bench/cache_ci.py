"""CI benchmark: what the remote artifact cache saves a fresh CI runner.

One run, three builds of the shipped specs (specs/*.yaml), each `python -m doit build` in
its own folder, against a real remote cache (nginx with WebDAV on 127.0.0.1):
  cold         runner A: empty local cache, empty remote, no state: renders, compiles,
               assembles, validates everything, and uploads the results
  warm-remote  runner B: a fresh clone (specs + dodo.py only), EMPTY local cache, no
               restored state: every stage is a remote hit
  no-op        runner B again: nothing changed
Wall time of the whole command (Python start, doit, TVM/torch imports included), hit rate
from B's out/cache-report.json. Goal: warm-remote at least 5x faster than cold.

    python bench/cache_ci.py            # writes bench/results/cache_ci.{json,md}
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from fusebuild.cache.server import NginxCache  # noqa: E402

GOAL = 5.0


def clone(dest: Path) -> Path:
    dest.mkdir(parents=True)
    shutil.copytree(REPO / "specs", dest / "specs")
    shutil.copy(REPO / "dodo.py", dest / "dodo.py")
    return dest


def build(folder: Path, env: dict) -> dict:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "doit", "build"], cwd=folder, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"build failed in {folder}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    report = json.loads((folder / "out/cache-report.json").read_text())
    ran = sum(1 for line in proc.stdout.splitlines() if line.startswith(".  "))
    return {"seconds": round(seconds, 3), "tasks_run": ran, "hit_rate": report["hit_rate"],
            "hits": report["hits"], "lookups": report["lookups"], "stages": report["stages"],
            "uploads": report["uploaded_entries"]}


def main():
    with tempfile.TemporaryDirectory(prefix="fusebuild-bench-cache-") as tmp:
        tmp = Path(tmp)
        base = {k: v for k, v in os.environ.items() if not k.startswith("FUSEBUILD_")}
        base["PYTHONPATH"] = str(REPO)
        with NginxCache(tmp / "nginx") as server:
            env_a = dict(base, FUSEBUILD_REMOTE_CACHE=server.url, FUSEBUILD_CACHE_DIR=str(tmp / "cache-a"))
            env_b = dict(base, FUSEBUILD_REMOTE_CACHE=server.url, FUSEBUILD_CACHE_DIR=str(tmp / "cache-b"))
            cold = build(clone(tmp / "runner-a"), env_a)
            stored = server.files()
            warm = build(clone(tmp / "runner-b"), env_b)
            noop = build(tmp / "runner-b", env_b)
    speedup = cold["seconds"] / warm["seconds"]
    results = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version(), "load_avg_1m": round(os.getloadavg()[0], 2)},
        "specs": sorted(p.name for p in (REPO / "specs").glob("*.yaml")),
        "remote": "nginx (WebDAV PUT) on 127.0.0.1",
        "remote_entries_after_cold": {"ac": sum(f.startswith("ac/") for f in stored),
                                      "cas": sum(f.startswith("cas/") for f in stored)},
        "cold": cold, "warm_remote": warm, "noop": noop,
        "speedup_warm_remote_vs_cold": round(speedup, 2), "goal": f">= {GOAL}x", "goal_met": speedup >= GOAL,
    }
    out = REPO / "bench/results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "cache_ci.json").write_text(json.dumps(results, indent=1) + "\n")
    rate = lambda r: "-" if r["hit_rate"] is None else f"{r['hit_rate']:.0%} ({r['hits']}/{r['lookups']})"
    rows = [("cold (runner A: empty caches, uploads)", cold),
            ("warm-remote (runner B: fresh clone, empty local cache)", warm),
            ("no-op (runner B again)", noop)]
    md = ["# CI cache benchmark (one run)", "",
          f"Shipped specs ({len(results['specs'])} files, {cold['stages']['compile']['miss']} artifacts), "
          f"`python -m doit build` wall time, remote = {results['remote']}; "
          f"{results['machine']['cores']} cores, load {results['machine']['load_avg_1m']} at the end.", "",
          "| build | wall time (s) | tasks run | cache hit rate | compiles run |", "|---|---|---|---|---|"]
    for name, r in rows:
        md.append(f"| {name} | {r['seconds']:.2f} | {r['tasks_run']} | {rate(r)} | {r['stages']['compile']['miss']} |")
    md += ["", f"warm-remote vs cold: **{speedup:.1f}x** faster (goal >= {GOAL}x: "
               f"{'met' if speedup >= GOAL else 'NOT met'}).", "",
           "Reproduce: `python bench/cache_ci.py` (needs nginx: `apt-get install nginx-light`)."]
    (out / "cache_ci.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
