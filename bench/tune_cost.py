"""The cost of tuning, and what the cache saves a second machine.

    python bench/tune_cost.py [--budget 16] [--jobs 2] [--rounds 15] [--no-commit]

Tunes `gemm_bias_silu` (float32, nn.Linear weight, M=N=K=1024: the CPU benchmark's shape)
for tir-cpu and mlir-cpu through the real `fusebuild tune`, three times, each in a fresh
project folder with its own empty local cache, all sharing one remote cache (nginx on
loopback, fusebuild.cache.server):
  A  first machine: plans, builds every candidate (doit -n JOBS), measures, records, pushes
  B  second machine, records shared: its `fusebuild tune` finds the records in the remote
     cache, merges them, builds and measures nothing; its `doit build` uses the winners
  C  second machine whose records are not shared (A's tuning entries are removed from the
     remote cache: as for another device of the same toolchain): every candidate build is a
     remote cache hit, only the measuring is paid again
Per run: wall time, candidates per artifact, build and measure seconds (`tune --json`),
the load average before and after (this machine may be shared: say so with the numbers).
A's records are merged into the repository's tuning/records.jsonl (unless --no-commit):
they are the committed records of this shape on this CPU.
Writes bench/results/tune_cost.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SPEC = """\
name: gemm_bias_silu_1024
params: {M: 1024, N: 1024, K: 1024}
inputs:
  x:    {shape: [M, K], dtype: float32}
  w:    {shape: [N, K], dtype: float32}
  bias: {shape: [N], dtype: float32}
graph:
  - {op: matmul, inputs: [x, w], output: y, transpose_b: true, epilogue: [{add: bias}, silu]}
outputs: [y]
targets: [tir-cpu, mlir-cpu]
"""


def machine(root: Path, remote: str) -> dict:
    (root / "specs").mkdir(parents=True)
    (root / "specs" / "gemm_bias_silu_1024.yaml").write_text(SPEC)
    shutil.copy(REPO / "dodo.py", root / "dodo.py")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUSEBUILD_")}
    return dict(env, PYTHONPATH=str(REPO), FUSEBUILD_CACHE_DIR=str(root / "cache"), FUSEBUILD_REMOTE_CACHE=remote,
                FUSEBUILD_PROGRESS="plain")


def run(root: Path, env: dict, args: list, log: Path) -> dict:
    load = os.getloadavg()
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], cwd=root, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(args)} failed in {root}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return {"wall_s": round(wall, 2), "loadavg_before": load, "loadavg_after": os.getloadavg()}


def tune(root, env, opts, name, out) -> dict:
    res = run(root, env, ["-m", "fusebuild", "tune", "--budget", str(opts.budget), "-j", str(opts.jobs),
                          "--rounds", str(opts.rounds), "--json", str(root / "tune.json")], out / f"tune_{name}.log")
    res["artifacts"] = json.loads((root / "tune.json").read_text())["results"]
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=16)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--no-commit", action="store_true", help="do not merge A's records into tuning/records.jsonl")
    opts = ap.parse_args()
    from fusebuild.cache.server import NginxCache
    from fusebuild.tune import share
    from fusebuild.tune.problem import Key
    from fusebuild.tune.records import Records

    work = Path(tempfile.mkdtemp(prefix="fusebuild-tune-cost-"))
    logs = REPO / "bench" / "results" / "tune_cost_logs"
    logs.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": "cost of `fusebuild tune` (gemm_bias_silu 1024^3 float32, tir-cpu + mlir-cpu)",
              "budget": opts.budget, "jobs": opts.jobs, "rounds": opts.rounds, "date": time.strftime("%Y-%m-%d %H:%M"),
              "cpu": _cpu(), "cores": len(os.sched_getaffinity(0))}
    with NginxCache(work / "nginx") as server:
        a, b, c = work / "a", work / "b", work / "c"
        env_a = machine(a, server.url)
        result["A_first_machine"] = tune(a, env_a, opts, "A", logs)
        recs = Records(a / "tuning" / "records.jsonl").records
        env_b = machine(b, server.url)
        result["B_records_shared"] = tune(b, env_b, opts, "B", logs)
        result["B_build"] = run(b, env_b, ["-m", "doit", "build"], logs / "build_B.log")
        result["B_build"]["schedules"] = {
            str(p.relative_to(b / "out")): json.loads(p.read_text()).get("schedule", {}).get("source")
            for p in sorted((b / "out").rglob("validation.json"))}
        for key in {json.dumps(r["key"], sort_keys=True) for r in recs}:        # unshare the records
            server.path("ac", share.action(Key.from_json(json.loads(key)))).unlink(missing_ok=True)
        env_c = machine(c, server.url)
        result["C_records_not_shared"] = tune(c, env_c, opts, "C", logs)
        result["C_cache_report"] = _compile_hits(c)
    if not opts.no_commit:
        repo_records = Records(REPO / "tuning" / "records.jsonl")
        result["committed_records"] = repo_records.append(recs)
    out = REPO / "bench" / "results"
    (out / "tune_cost.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    (out / "tune_cost.md").write_text(markdown(result))
    print(markdown(result))
    shutil.rmtree(work, ignore_errors=True)


def _compile_hits(root: Path) -> dict:
    """How the candidates' compile stages of a tune run were served (from their .stages records)."""
    outcomes = {}
    for rec in (root / "out" / ".tune").rglob(".stages/compile.cache.json"):
        o = json.loads(rec.read_text()).get("outcome", "?")
        outcomes[o] = outcomes.get(o, 0) + 1
    return outcomes


def markdown(r: dict) -> str:
    lines = [f"# Cost of tuning ({r['date']}, {r['cpu']}, {r['cores']} cores)", "",
             (f"`fusebuild tune --budget {r['budget']} -j {r['jobs']} --rounds {r['rounds']}` on gemm_bias_silu "
              "1024x1024x1024 float32 (tir-cpu and mlir-cpu), three machines (fresh folders, empty local caches) "
              "sharing one remote cache."), "",
             ("| run | wall | artifact | candidates | measured | failed | build | measure "
              "| winner vs torch (same run) |"),
             "|---|---|---|---|---|---|---|---|---|"]
    for name, label in (("A_first_machine", "A: first machine"), ("B_records_shared", "B: records shared"),
                        ("C_records_not_shared", "C: records not shared")):
        run_ = r[name]
        for i, art in enumerate(run_["artifacts"]):
            lines.append(f"| {label if i == 0 else ''} | {_s(run_['wall_s']) if i == 0 else ''} | {art['artifact']} | "
                         f"{art.get('candidates', '-')} | {art.get('measured', '-')} | {art.get('failed', '-')} | "
                         f"{_s(art.get('build_s'))} | {_s(art.get('measure_s'))} | {art.get('vs_torch', '-')} |")
    lines += ["", f"B's `doit build` after its tune: {r['B_build']['wall_s']} s; schedules: "
              + ", ".join(f"{k}: {v}" for k, v in r["B_build"]["schedules"].items()),
              f"C's candidate compiles: {r['C_cache_report']} (remote-hit: built on A, not compiled again).",
              "", ("Load average (1, 5, 15 min) before / after each run: "
              + "; ".join(f"{n[0]}: {', '.join(f'{x:.1f}' for x in r[n]['loadavg_before'])} / "
                          f"{', '.join(f'{x:.1f}' for x in r[n]['loadavg_after'])}"
                          for n in ("A_first_machine", "B_records_shared", "C_records_not_shared")))]
    if "committed_records" in r:
        lines += ["", f"{r['committed_records']} new record(s) of run A merged into tuning/records.jsonl."]
    return "\n".join(lines) + "\n"


def _s(x) -> str:
    return "-" if x is None else f"{x:.1f} s"


def _cpu() -> str:
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "?"


if __name__ == "__main__":
    main()
