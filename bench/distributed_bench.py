"""Distributed-build benchmark: a clean build here (`doit -n 1`, `-n 2`) vs the same build on a
Dask cluster of 1 and 2 workers on loopback, in one run, interleaved; then a model of how
it scales with more workers.

    python bench/distributed_bench.py [--corpus full|shipped|gpu|tiny] [--repeat 3] [--workers 1,2]

Corpora: `shipped` = specs/*.yaml (every target); `gpu` = the GPU benchmark's build
(bench/gpu_bench.py: 48 tir-cuda artifacts, TileLang lowering + nvcc each); `full` = both in
one project (the default); `tiny` = 2 shipped GEMM families at small shapes x 2 variants x
tir-cpu/mlir-cpu (a smoke test of this script: seconds, not a measurement).

Method. Every configuration builds from nothing: a fresh project folder, a fresh local cache
(FUSEBUILD_CACHE_DIR), and for the cluster a fresh nginx cache and fresh `dask scheduler` /
`dask worker` processes (fusebuild/distributed/loopback.py: separate folders, one thread
each, `tilelang=1` on every worker when the tilelang env exists); starting the cluster is
not timed. The coordinator runs `doit -n J build` with J = 2 per worker (each coordinator
thread mostly waits on the network), in doit's thread pool (the default with a scheduler;
`--cluster-pool thread,process` adds `-P process` runs, where each doit process connects to
the scheduler itself). Repetitions run the configurations in a random order.
Measured per run: wall time of `doit build`, the coordinator's CPU time (its process and
children: with a cluster that is planning, hashing and transfers only), tasks that ran,
every artifact's status (a configuration whose statuses differ from the local -n 1 build's
is reported, not hidden), each stage's time from `.stages/*.json`. After each cluster build
a no-op rebuild (everything up to date) measures the coordinator's fixed cost.

Model (stated, not measured beyond 2 workers): with N tasks, W the work (sum of the stage
times of the local -n 1 build), T0 the no-op time, o the per-task overhead of a cluster
((T_cluster,1 - T_local,1) / N: transfers, round trips, queueing), c the coordinator's CPU
per task and C the longest artifact chain (render+compile+assemble+validate, + 4 o):

    T(w) = T0 + max(N c, C, (W + N o) / w)        speed-up(w) = T_local,1 / T(w)

N c is the coordinator's serial share (Amdahl): the cluster cannot go faster than the
coordinator plans, hashes and moves data. Results: bench/results/distributed[_<corpus>].json
and .md. Toolchain versions, CPU, load averages and the dask version are recorded.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(REPO), str(HERE)]

from fusebuild.cache.server import NginxCache
from fusebuild.distributed.loopback import Loopback

RESULTS = HERE / "results"
PY = sys.executable
STAGES = ("render", "compile", "assemble")


def write_corpus(root: Path, corpus: str):
    specs = root / "specs"
    specs.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dodo.py", root / "dodo.py")
    if corpus == "tiny":                  # the shipped GEMM families at small shapes (engine_bench's helper)
        from engine_bench import family_spec
        for fam in ("gemm_bias_silu", "gemm_bias_relu"):
            for target in ("tir-cpu", "mlir-cpu"):
                name = f"tiny_{fam}_{target.replace('-', '_')}"
                (specs / f"{name}.yaml").write_text(family_spec(fam, name, target, [16, 32], {"N": 64, "K": 64}))
        return
    if corpus in ("shipped", "full"):
        for p in (REPO / "specs").glob("*.yaml"):
            shutil.copy(p, specs / p.name)
    if corpus in ("gpu", "full"):
        from gpu_bench import write_specs
        write_specs(root)


def tilelang_env() -> bool:
    return (Path(os.environ.get("FUSEBUILD_TOOLCHAINS", REPO / ".toolchains")) / "tilelang").is_dir()


def base_env(root: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUSEBUILD_") or k == "FUSEBUILD_TOOLCHAINS"}
    return dict(env, PYTHONPATH=str(REPO), FUSEBUILD_PROGRESS="plain", FUSEBUILD_TEMPLATE_OVERRIDES="",
                FUSEBUILD_CACHE_DIR=str(root / "coordinator-cache"))


def doit(root: Path, env: dict, jobs: int, par: str | None = None) -> dict:
    """One `doit -n jobs [-P par] build`: wall and CPU seconds, tasks that ran, exit code."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    pool = ["-P", par] if par else []
    proc = subprocess.run([PY, "-m", "doit", "-n", str(jobs), *pool, "build"], cwd=root, env=env, capture_output=True,
                          text=True, timeout=6 * 3600, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    ran = re.search(r"fusebuild: (\d+) ran", proc.stdout)
    return {"wall": round(wall, 3), "cpu": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 3),
            "ran": int(ran.group(1)) if ran else None, "code": proc.returncode, "tail": proc.stdout[-1500:]}


def outcome(root: Path) -> dict:
    """Per artifact: status, and the seconds of each stage (as the coordinator timed them)."""
    arts = {}
    for f in sorted((root / "out").rglob("validation.json")):
        rep = json.loads(f.read_text())
        times = {s: (json.loads((f.parent / ".stages" / f"{s}.json").read_text())["seconds"]
                     if (f.parent / ".stages" / f"{s}.json").exists() else 0.0) for s in STAGES}
        times["validate"] = rep.get("timings", {}).get("validate", 0.0)
        arts[str(f.parent.relative_to(root / "out"))] = {"status": rep["status"], "seconds": times,
                                                         "worker": rep.get("worker", {})}
    return arts


def run_local(work: Path, corpus: str, jobs: int, tag: str) -> dict:
    root = work / tag
    write_corpus(root, corpus)
    res = doit(root, base_env(root), jobs)
    return dict(res, config=f"local -n {jobs}", workers=0, jobs=jobs, artifacts=outcome(root))


def run_cluster(work: Path, corpus: str, workers: int, tag: str, jobs_per_worker: int, par: str = "thread") -> dict:
    root = work / tag
    write_corpus(root, corpus)
    env = base_env(root)
    resources = {"tilelang": 1} if tilelang_env() else None
    with NginxCache(work / f"{tag}-nginx") as server, \
            Loopback(work / f"{tag}-cluster", server.url, env={k: v for k, v in env.items()
                                                               if k != "FUSEBUILD_CACHE_DIR"}) as lc:
        for i in range(workers):
            lc.worker(f"w{i + 1}", resources)
        env.update(FUSEBUILD_SCHEDULER=lc.address, FUSEBUILD_REMOTE_CACHE=server.url)
        jobs = jobs_per_worker * workers
        res = doit(root, env, jobs, par)
        noop = doit(root, env, jobs, par)
    pool = "" if par == "thread" else f" -P {par}"
    return dict(res, config=f"cluster {workers} worker{'s' * (workers > 1)} (doit -n {jobs}{pool})", workers=workers,
                jobs=jobs, par=par, noop=noop["wall"], noop_ran=noop["ran"], artifacts=outcome(root))


def model(runs: list, max_workers=(1, 2, 4, 8, 16, 32, 64)) -> dict:
    """The scaling model of the module docstring, from the medians of the measured runs."""
    local1 = [r for r in runs if r["config"] == "local -n 1"]
    one = [r for r in runs if r["workers"] == 1 and r.get("par") == "thread"]
    if not local1 or not one:
        return {}
    t_l1 = statistics.median(r["wall"] for r in local1)
    t_c1 = statistics.median(r["wall"] for r in one)
    n = statistics.median(r["ran"] for r in one)
    t0 = statistics.median(r["noop"] for r in one)
    arts = local1[0]["artifacts"]
    work = sum(sum(a["seconds"].values()) for a in arts.values())
    o = (t_c1 - t_l1) / n
    c = statistics.median(r["cpu"] for r in one) / n
    chain = max((sum(a["seconds"].values()) for a in arts.values()), default=0.0) + 4 * max(o, 0.0)
    proj = {}
    for w in max_workers:
        t = t0 + max(n * c, chain, (work + n * max(o, 0.0)) / w)
        proj[w] = {"seconds": round(t, 2), "speedup": round(t_l1 / t, 2)}
    return {"tasks": n, "work_s": round(work, 2), "noop_s": round(t0, 3), "overhead_per_task_s": round(o, 4),
            "coordinator_cpu_per_task_s": round(c, 4), "critical_path_s": round(chain, 2),
            "local_n1_s": round(t_l1, 2), "projection": proj,
            "limit_speedup": round(t_l1 / (t0 + max(n * c, chain)), 2)}


def versions() -> dict:
    from fusebuild.toolchains import cpu_key, package_version
    out = {p: package_version(p) for p in ("distributed", "doit", "apache-tvm", "iree-base-compiler", "torch")}
    out["cpu"] = cpu_key()
    try:
        nvcc = subprocess.run(["nvcc", "--version"], capture_output=True, text=True, check=False)
        out["nvcc"] = nvcc.stdout.strip().splitlines()[-1]
    except OSError:
        out["nvcc"] = None
    return out


def markdown(r: dict) -> str:
    lines = [f"# Distributed build benchmark ({r['corpus']})", "",
             (f"{r['machine']}; {r['when']}; load average at start {r['loadavg_start']}, at end {r['loadavg_end']}; "
              f"{r['repeat']} repetition(s), configurations in random order."), ""]
    if r["corpus"] == "tiny":
        lines += ["**Smoke test of the script on a tiny corpus, on a shared machine: not a measurement.**", ""]
    lines += [("| configuration | wall s (median) | runs | tasks | coordinator CPU s | speed-up vs local -n 1 | "
               "statuses equal local -n 1 |"), "|---|---|---|---|---|---|---|"]
    base = r["summary"].get("local -n 1", {}).get("wall")
    for name, s in r["summary"].items():
        sp = f"{base / s['wall']:.2f}x" if base else "-"
        lines.append(f"| {name} | {s['wall']:.2f} | {', '.join(f'{w:.2f}' for w in s['walls'])} | {s['ran']} | "
                     f"{s['cpu']:.1f} | {sp} | {s['statuses_equal']} |")
    m = r.get("model")
    if m:
        lines += ["", "## Model: how it would scale (a projection, not a measurement)", "",
                  (f"N = {m['tasks']} tasks, work W = {m['work_s']} s (sum of stage times, local -n 1), no-op T0 = "
                   f"{m['noop_s']} s, overhead per task o = {m['overhead_per_task_s']} s (cluster of 1 vs local -n 1), "
                   f"coordinator CPU per task c = {m['coordinator_cpu_per_task_s']} s, longest chain C = "
                   f"{m['critical_path_s']} s."), "",
                  ("T(w) = T0 + max(N c, C, (W + N o) / w); speed-up = T_local,1 / T(w); the coordinator's N c "
                   f"is the serial part (Amdahl). Limit as w grows: {m['limit_speedup']}x."), "",
                  "| workers | projected s | projected speed-up |", "|---|---|---|"]
        lines += [f"| {w} | {p['seconds']} | {p['speedup']}x |" for w, p in m["projection"].items()]
    lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in r["versions"].items()), ""]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default="full", choices=["full", "shipped", "gpu", "tiny"])
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--local-jobs", default="1,2")
    ap.add_argument("--jobs-per-worker", type=int, default=2)
    ap.add_argument("--cluster-pool", default="thread", help="doit's pool on the coordinator: thread,process")
    ap.add_argument("--out", default=None, help="results name (default: distributed[_<corpus>])")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    configs = [("local", int(j), None) for j in args.local_jobs.split(",")] + \
              [("cluster", int(w), par) for w in args.workers.split(",") for par in args.cluster_pool.split(",")]
    r = {"when": time.strftime("%Y-%m-%d %H:%M"), "corpus": args.corpus, "repeat": args.repeat,
         "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                    f"Python {platform.python_version()}", "loadavg_start": [round(x, 2) for x in os.getloadavg()],
         "versions": versions(), "jobs_per_worker": args.jobs_per_worker, "tilelang_env": tilelang_env(),
         "runs": []}
    with tempfile.TemporaryDirectory(prefix="fusebuild-dist-bench-") as tmp:
        work = Path(tmp)
        for rep in range(args.repeat):
            order = configs[:]
            rng.shuffle(order)
            for kind, k, par in order:
                tag = f"{kind}{k}{par or ''}-r{rep}"
                run = (run_local(work, args.corpus, k, tag) if kind == "local"
                       else run_cluster(work, args.corpus, k, tag, args.jobs_per_worker, par))
                print(f"{run['config']:<36} {run['wall']:8.2f} s  ran {run['ran']}  exit {run['code']}", flush=True)
                r["runs"].append(run)
    r["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    ref = next((x["artifacts"] for x in r["runs"] if x["config"] == "local -n 1"), None)
    summary = {}
    for run in r["runs"]:
        s = summary.setdefault(run["config"], {"walls": [], "cpus": [], "ran": run["ran"], "statuses_equal": True})
        s["walls"].append(run["wall"])
        s["cpus"].append(run["cpu"])
        if ref is not None:
            same = {k: v["status"] for k, v in run["artifacts"].items()} == {k: v["status"] for k, v in ref.items()}
            s["statuses_equal"] = s["statuses_equal"] and same
    for s in summary.values():
        s["wall"], s["cpu"] = statistics.median(s["walls"]), statistics.median(s["cpus"])
    r["summary"] = summary
    r["model"] = model(r["runs"])
    name = args.out or ("distributed" if args.corpus == "full" else f"distributed_{args.corpus}")
    RESULTS.mkdir(exist_ok=True)
    for run in r["runs"]:
        if run["code"] == 0:
            run.pop("tail", None)              # kept for a build that failed
    (RESULTS / f"{name}.json").write_text(json.dumps(r, indent=1) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown(r))
    print(markdown(r))


if __name__ == "__main__":
    main()
