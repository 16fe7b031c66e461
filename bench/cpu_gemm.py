"""CPU benchmark: fusebuild's fused kernels (tir-cpu, mlir-cpu) vs torch, in one run.

Builds `gemm_bias_silu` (float32, w in nn.Linear layout) at M=N=K=1024 and M = 1, 16, 128 with
N=K=4096 (decode, a decode batch, a short prompt) through the real pipeline (a spec in a temp folder, `doit build`, validation included)
for both CPU targets, and the same operator with a dynamic M (`M: {dynamic: [1, 4096]}`:
one artifact per target taking M at run time, validated at M = 1, 61, 4096). It then
loads the built artifacts (TVM kernel.so, IREE kernel.vmfb) and times static, dynamic and
torch's `F.silu(F.linear(x, w, b))` on the same inputs, same threads, interleaved, median
of many runs. The goal for the dynamic artifacts: within 10% of the static ones.

    python bench/cpu_gemm.py            # writes bench/results/cpu_gemm.{json,md}
    BENCH_NAME=cpu_gemm_loaded python bench/cpu_gemm.py   # ... bench/results/cpu_gemm_loaded.{json,md}

The build uses the committed tuning records (tuning/records.jsonl: winners for this CPU and
these toolchain versions, `fusebuild tune`; FUSEBUILD_TUNING=off for none), and each row
says which schedule the static artifacts ran (tuned on <device>, <date> | default). The
CPU's fp32 peak is stated from its flags and clock, and measured (bench/cpu_peak.py).

Numbers are for the machine it runs on; the JSON records which, and its load average
before and after the run (`/proc/loadavg`: a shared machine's numbers are noisy).
"""
from __future__ import annotations

import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
NAME = os.environ.get("BENCH_NAME", "cpu_gemm")        # results file stem
os.environ.setdefault("TVM_NUM_THREADS", str(THREADS))
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
# TVM's pool spins after each call; spinning workers slowed whatever ran next (IREE by up to
# 1.2x on 2 vCPUs), so they yield at once and each run sees the machine as the others do
os.environ.setdefault("TVM_THREAD_POOL_SPIN_COUNT", "0")

SPEC = """\
name: {name}
params:
  M: {M}
  N: {N}
  K: {K}
inputs:
  x:    {{shape: [M, K], dtype: float32}}
  w:    {{shape: [N, K], dtype: float32}}
  bias: {{shape: [N], dtype: float32}}
graph:
  - {{op: matmul, inputs: [x, w], output: y, transpose_b: true, epilogue: [{{add: bias}}, silu]}}
outputs: [y]
targets: [{targets}]
{schedule}"""                                   # bench/cpu_gemv.py builds its tir-cpu variants from it too
TARGETS = ("tir-cpu", "mlir-cpu")
SHAPES = [(1024, 1024, 1024), (1, 4096, 4096), (16, 4096, 4096), (128, 4096, 4096)]   # + a decode batch, a short prompt
ROUNDS = 25
DYNAMIC = "{dynamic: [1, 4096]}"          # the dynamic specs' M
TARGETS = ("tir-cpu", "mlir-cpu")


def spec(name: str, m, n: int, k: int, targets=TARGETS, schedule: str = "") -> str:
    """gemm_bias_silu float32 (w in nn.Linear layout) at M (an int or a `{dynamic: ...}` text) x N x K."""
    return SPEC.format(name=name, M=m, N=n, K=k, targets=", ".join(targets), schedule=schedule)


def build(work: Path) -> dict:
    """One spec per shape, built and validated by `doit build` (the user's path)."""
    (work / "specs").mkdir(parents=True)
    for m, n, k in SHAPES:
        (work / "specs" / f"gemm_bias_silu_{m}.yaml").write_text(spec(f"gemm_bias_silu_{m}", m, n, k))
        (work / "specs" / f"gemm_bias_silu_dyn{n}.yaml").write_text(
            spec(f"gemm_bias_silu_dyn{n}", DYNAMIC, n, k))
    (work / "dodo.py").write_text((REPO / "dodo.py").read_text())
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "doit", "build"], cwd=work, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO),
                                   FUSEBUILD_TUNING=os.environ.get("FUSEBUILD_TUNING",
                                                                   str(REPO / "tuning" / "records.jsonl"))))
    print(proc.stdout[-2000:])
    if proc.returncode != 0:
        sys.exit(f"build failed:\n{proc.stdout}\n{proc.stderr}")
    return {"build_seconds": round(time.perf_counter() - start, 2)}


def median_time(fn, reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def tvm_runner(path: Path, tensors: list, m: int, n: int):
    """tir-cpu: the TVM library, called on torch tensors through DLPack (no copies);
    a dynamic artifact reads M from the tensors' shapes."""
    import torch
    import tvm
    lib = tvm.runtime.load_module(str(path))["main"]
    y = torch.empty(m, n)
    args = [tvm.runtime.from_dlpack(t) for t in (*tensors, y)]
    return (lambda: lib(*args)), (lambda: y)


def iree_runner(path: Path, tensors: list):
    """mlir-cpu: the IREE module, inputs already on its (host) device."""
    import iree.runtime as rt
    import torch
    ctx = rt.SystemContext(config=rt.Config("local-task"))
    ctx.add_vm_module(rt.VmModule.copy_buffer(ctx.instance, path.read_bytes()))
    fn = ctx.modules.module["main"]
    dev = [rt.asdevicearray(ctx.config.device, t.numpy()) for t in tensors]
    return (lambda: fn(*dev).to_host()), (lambda: torch.from_numpy(fn(*dev).to_host()))


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return "unknown"


def main():
    import torch
    import torch.nn.functional as F
    import tvm

    torch.set_num_threads(THREADS)
    work = Path(tempfile.mkdtemp(prefix="fusebuild-bench-"))
    from cpu_peak import peak
    load_before = loadavg()
    meta = build(work)
    rows = []
    for m, n, k in SHAPES:
        folders = {"static": work / "out" / f"gemm_bias_silu_{m}" / f"M{m}_N{n}_K{k}",
                   "dynamic": work / "out" / f"gemm_bias_silu_dyn{n}" / f"M1to4096_N{n}_K{k}"}
        reports = {(kind, t): json.loads((f / t / "validation.json").read_text())
                   for kind, f in folders.items() for t in TARGETS}
        assert all(r["status"] == "pass" for r in reports.values()), reports
        gen = torch.Generator().manual_seed(0)
        x, w, b = (torch.randn(s, generator=gen) for s in ((m, k), (n, k), (n,)))
        want = F.silu(F.linear(x, w, b))
        runs, outputs = {}, {}
        for kind, f in folders.items():
            runs[f"tir-cpu {kind}"], outputs[f"tir-cpu {kind}"] = tvm_runner(f / "tir-cpu" / "kernel.so", [x, w, b], m, n)
            runs[f"mlir-cpu {kind}"], outputs[f"mlir-cpu {kind}"] = iree_runner(f / "mlir-cpu" / "kernel.vmfb", [x, w, b])
        runs["torch"] = lambda x=x, w=w, b=b: F.silu(F.linear(x, w, b))
        reps = 10 if m > 1 else 100
        times = {name: [] for name in runs}
        order = random.Random(0)
        for _ in range(ROUNDS):     # interleave: all see the same machine state
            names = list(runs)
            order.shuffle(names)    # TVM's pool spins after a call: no run always follows the same one
            for name in names:
                times[name].append(median_time(runs[name], reps))
        for name, got in outputs.items():
            torch.testing.assert_close(got(), want, atol=1e-3, rtol=1e-3, msg=name)
        med = {name: statistics.median(v) for name, v in times.items()}
        flops = 2 * m * n * k
        rows.append({"M": m, "N": n, "K": k, **{f"{t}_ms": med[t] * 1e3 for t in runs},
                     **{f"{t}_gflops": flops / med[t] / 1e9 for t in runs},
                     "tir_cpu_vs_torch": med["torch"] / med["tir-cpu static"],
                     "mlir_cpu_vs_torch": med["torch"] / med["mlir-cpu static"],
                     **{f"{t}_dynamic_vs_static": med[f"{t} dynamic"] / med[f"{t} static"] for t in TARGETS},
                     "compile_seconds": {f"{t} {kind}": r["timings"].get("compile")
                                         for (kind, t), r in reports.items()},
                     "dynamic_validated_at": [s["M"] for s in reports[("dynamic", "tir-cpu")]["samples"]],
                     "schedule": {t: _schedule(reports[("static", t)]) for t in TARGETS},
                     "schedule_dynamic": {t: _schedule(reports[("dynamic", t)]) for t in TARGETS},
                     "dynamic_timed_at": {t: (reports[("dynamic", t)].get("schedule") or {}).get("tuning", {})
                                          .get("timed_at") for t in TARGETS}})
    result = {"benchmark": "gemm_bias_silu float32: tir-cpu and mlir-cpu (static and dynamic M) vs torch "
                           "F.silu(F.linear(x, w, b))",
              "threads": THREADS, "env": {k: os.environ.get(k) for k in ("TVM_NUM_THREADS", "OMP_NUM_THREADS",
                                                                 "TVM_THREAD_POOL_SPIN_COUNT")},
              "machine": platform.processor() or platform.machine(),
              "cpu": _cpu(), "torch": torch.__version__, "tvm": tvm.__version__,
              "date": time.strftime("%Y-%m-%d"), "loadavg_before": load_before, "loadavg_after": loadavg(),
              "method": f"median over {ROUNDS} interleaved rounds (each in a random order) of the median of 10 "
                        "(100 at M=1) calls; random inputs",
              **meta, "rows": rows, "peak": peak()}
    pk = result["peak"]["formula"]["peak_gflops"]
    measured_pk = result["peak"]["measured"].get("gflops")
    for r in rows:
        r["tir_cpu_of_peak"] = r["tir-cpu static_gflops"] / pk if pk else None
        r["tir_cpu_of_measured_peak"] = r["tir-cpu static_gflops"] / measured_pk if measured_pk else None
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{NAME}.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"# gemm_bias_silu float32 on the CPU ({THREADS} threads, {result['cpu']})", "",
             (f"torch {result['torch']}, apache-tvm {result['tvm']}, {result['date']}. "
              f"Median of {ROUNDS} interleaved rounds in random order; speed vs torch = torch time / target time (>1: faster than torch). "
              "dynamic: one artifact for every M in [1, 4096], run at the row's M; dyn/static = dynamic time / "
              f"static time (goal <= 1.10). Load average before / after: {load_before} / {result['loadavg_after']}."),
             "",
             ("| M x N x K | tir-cpu ms | tir-cpu dynamic ms | tir dyn/static | mlir-cpu ms | mlir-cpu dynamic ms "
              "| mlir dyn/static | torch ms | tir-cpu GFLOP/s | mlir-cpu GFLOP/s | tir-cpu vs torch | mlir-cpu vs torch |"),
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['M']} x {r['N']} x {r['K']} | {r['tir-cpu static_ms']:.3f} | "
                     f"{r['tir-cpu dynamic_ms']:.3f} | {r['tir-cpu_dynamic_vs_static']:.2f} | "
                     f"{r['mlir-cpu static_ms']:.3f} | {r['mlir-cpu dynamic_ms']:.3f} | "
                     f"{r['mlir-cpu_dynamic_vs_static']:.2f} | {r['torch_ms']:.3f} | "
                     f"{r['tir-cpu static_gflops']:.1f} | {r['mlir-cpu static_gflops']:.1f} | "
                     f"{r['tir_cpu_vs_torch']:.2f}x | {r['mlir_cpu_vs_torch']:.2f}x |")
    f, m = result["peak"]["formula"], result["peak"]["measured"]
    lines += ["", (f"fp32 peak (formula): {f['formula']} = {f['peak_gflops']} GFLOP/s ({f['fma_units_assumption']}; "
                   f"clock from {f['clock_source']}). Measured FMA-loop peak: {m.get('gflops', '?')} GFLOP/s "
                   f"({m.get('method', m.get('error', ''))}). tir-cpu (static) of the formula's peak: "
                   + ", ".join(f"{r['M']}x{r['N']}x{r['K']} {r['tir_cpu_of_peak']:.0%}" for r in rows)
                   + "; of the measured peak (the clock runs above /proc/cpuinfo's): "
                   + ", ".join(f"{r['M']}x{r['N']}x{r['K']} {r['tir_cpu_of_measured_peak']:.0%}"
                               for r in rows if r["tir_cpu_of_measured_peak"] is not None)
                   + ". Schedules (static tir-cpu / mlir-cpu): "
                   + "; ".join(f"{r['M']}x{r['N']}x{r['K']}: {r['schedule']['tir-cpu']} / {r['schedule']['mlir-cpu']}"
                               for r in rows) + ".")]
    lines += ["", "Dynamic artifacts (one per N x K, M in [1, 4096]; schedules tir-cpu / mlir-cpu, a tuned one timed "
                  "at its validated sizes; mlir-cpu's `M=n tuned on` parts: the row functions of n rows that "
                  "run the winner tuned for the static n-row problem, `docs/tuning.md`): " + "; ".join(
                      f"M={r['M']} ({r['N']}x{r['K']}): {r['schedule_dynamic']['tir-cpu']} / "
                      f"{r['schedule_dynamic']['mlir-cpu']}{_timed_at(r)}, dyn/static tir-cpu "
                      f"{r['tir-cpu_dynamic_vs_static']:.2f}, mlir-cpu {r['mlir-cpu_dynamic_vs_static']:.2f} "
                      f"({'within' if max(r[f'{t}_dynamic_vs_static'] for t in TARGETS) <= 1.10 else 'NOT within'} "
                      "the 10% goal)" for r in rows) + "."]
    (out / f"{NAME}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _schedule(report: dict) -> str:
    """What the report's schedule column says (a dynamic artifact's parts with static winners too)."""
    from fusebuild.engine.buildreport import schedule_text
    return schedule_text(report["schedule"]) if report.get("schedule") else "?"


def _timed_at(row: dict) -> str:
    at = row.get("dynamic_timed_at", {}).get("mlir-cpu")
    return f" (timed at M = {', '.join(str(a['M']) for a in at)})" if at else ""


def _cpu() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


if __name__ == "__main__":
    main()
