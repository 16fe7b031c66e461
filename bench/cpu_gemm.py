"""CPU benchmark: fusebuild's fused kernels (tir-cpu, mlir-cpu) vs torch, in one run.

Builds `gemm_bias_silu` (float32, w in nn.Linear layout) at M=N=K=1024 and M=1,N=K=4096
through the real pipeline (a spec in a temp folder, `doit build`, validation included)
for both CPU targets, then loads the built artifacts (TVM kernel.so, IREE kernel.vmfb)
and times them against torch's `F.silu(F.linear(x, w, b))` on the same inputs, same
threads, interleaved, median of many runs.

    python bench/cpu_gemm.py            # writes bench/results/cpu_gemm.{json,md}
    BENCH_NAME=cpu_gemm_loaded python bench/cpu_gemm.py   # ... bench/results/cpu_gemm_loaded.{json,md}

The build uses the committed tuning records (tuning/records.jsonl: winners for this CPU and
these toolchain versions, `fusebuild tune`), and each row says which schedule each target
ran (tuned on <device>, <date> | default). The CPU's fp32 peak is stated from its flags
and clock, and measured (bench/cpu_peak.py), with the load average before and after.
Numbers are for the machine it runs on; the JSON records which.
"""
from __future__ import annotations

import json
import os
import platform
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
targets: [tir-cpu, mlir-cpu]
"""
SHAPES = [(1024, 1024, 1024), (1, 4096, 4096)]


def build(work: Path) -> dict:
    """One spec per shape, built and validated by `doit build` (the user's path)."""
    (work / "specs").mkdir(parents=True)
    for m, n, k in SHAPES:
        (work / "specs" / f"gemm_bias_silu_{m}.yaml").write_text(SPEC.format(name=f"gemm_bias_silu_{m}", M=m, N=n, K=k))
    (work / "dodo.py").write_text((REPO / "dodo.py").read_text())
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "doit", "build"], cwd=work, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO),
                                   FUSEBUILD_TUNING=os.environ.get("FUSEBUILD_TUNING", str(REPO / "tuning" / "records.jsonl"))))
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


def main():
    import iree.runtime as rt
    import torch
    import torch.nn.functional as F
    import tvm

    from cpu_peak import peak
    torch.set_num_threads(THREADS)
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="fusebuild-bench-"))
    meta = build(work)
    rows = []
    for m, n, k in SHAPES:
        folder = work / "out" / f"gemm_bias_silu_{m}" / f"M{m}_N{n}_K{k}"
        reports = {t: json.loads((folder / t / "validation.json").read_text()) for t in ("tir-cpu", "mlir-cpu")}
        assert all(r["status"] == "pass" for r in reports.values()), reports
        gen = torch.Generator().manual_seed(0)
        x, w, b = (torch.randn(s, generator=gen) for s in ((m, k), (n, k), (n,)))
        want = F.silu(F.linear(x, w, b))
        # tir-cpu: the TVM library, called on torch tensors through DLPack (no copies)
        lib = tvm.runtime.load_module(str(folder / "tir-cpu" / "kernel.so"))["main"]
        y = torch.empty(m, n)
        args = [tvm.runtime.from_dlpack(t) for t in (x, w, b, y)]
        # mlir-cpu: the IREE module, inputs already on its (host) device
        ctx = rt.SystemContext(config=rt.Config("local-task"))
        ctx.add_vm_module(rt.VmModule.copy_buffer(ctx.instance, (folder / "mlir-cpu" / "kernel.vmfb").read_bytes()))
        iree_main = ctx.modules.module["main"]
        dev = [rt.asdevicearray(ctx.config.device, t.numpy()) for t in (x, w, b)]
        runs = {"tir-cpu": lambda: lib(*args), "mlir-cpu": lambda: iree_main(*dev).to_host(),
                "torch": lambda: F.silu(F.linear(x, w, b))}
        reps = 20 if m > 1 else 200
        times = {name: [] for name in runs}
        for _ in range(3):          # interleave: all see the same machine state
            for name, fn in runs.items():
                times[name].append(median_time(fn, reps))
        torch.testing.assert_close(y, want, atol=1e-3, rtol=1e-3)
        torch.testing.assert_close(torch.from_numpy(iree_main(*dev).to_host()), want, atol=1e-3, rtol=1e-3)
        med = {name: statistics.median(v) for name, v in times.items()}
        flops = 2 * m * n * k
        rows.append({"M": m, "N": n, "K": k, **{f"{t}_ms": med[t] * 1e3 for t in runs},
                     **{f"{t}_gflops": flops / med[t] / 1e9 for t in runs},
                     "tir_cpu_vs_torch": med["torch"] / med["tir-cpu"],
                     "mlir_cpu_vs_torch": med["torch"] / med["mlir-cpu"],
                     "compile_seconds": {t: r["timings"].get("compile") for t, r in reports.items()},
                     "schedule": {t: _schedule(r) for t, r in reports.items()}})
    result = {"benchmark": "gemm_bias_silu float32: tir-cpu and mlir-cpu vs torch F.silu(F.linear(x, w, b))",
              "threads": THREADS, "machine": platform.processor() or platform.machine(),
              "cpu": _cpu(), "torch": torch.__version__, "tvm": tvm.__version__,
              "date": time.strftime("%Y-%m-%d"), **meta, "rows": rows,
              "loadavg": {"before": load_before, "after": os.getloadavg()}, "peak": peak()}
    pk = result["peak"]["formula"]["peak_gflops"]
    for r in rows:
        r["tir_cpu_of_peak"] = r["tir-cpu_gflops"] / pk if pk else None
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{NAME}.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"# gemm_bias_silu float32 on the CPU ({THREADS} threads, {result['cpu']})", "",
             (f"torch {result['torch']}, apache-tvm {result['tvm']}, {result['date']}. "
              "Median of interleaved runs; speed vs torch = torch time / target time (>1: faster than torch)."), "",
             ("| M x N x K | tir-cpu ms | mlir-cpu ms | torch ms | tir-cpu GFLOP/s | mlir-cpu GFLOP/s | torch GFLOP/s "
              "| tir-cpu vs torch | mlir-cpu vs torch | tir-cpu of peak | schedule (tir-cpu / mlir-cpu) |"),
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['M']} x {r['N']} x {r['K']} | {r['tir-cpu_ms']:.3f} | {r['mlir-cpu_ms']:.3f} | "
                     f"{r['torch_ms']:.3f} | {r['tir-cpu_gflops']:.1f} | {r['mlir-cpu_gflops']:.1f} | "
                     f"{r['torch_gflops']:.1f} | {r['tir_cpu_vs_torch']:.2f}x | {r['mlir_cpu_vs_torch']:.2f}x | "
                     f"{r['tir_cpu_of_peak']:.0%} | {r['schedule']['tir-cpu']} / {r['schedule']['mlir-cpu']} |")
    f, m = result["peak"]["formula"], result["peak"]["measured"]
    lines += ["", (f"fp32 peak (formula): {f['formula']} = {f['peak_gflops']} GFLOP/s ({f['fma_units_assumption']}; "
                   f"clock from {f['clock_source']}). Measured FMA-loop peak: {m.get('gflops', '?')} GFLOP/s "
                   f"({m.get('method', m.get('error', ''))}). Load average before/after: "
                   f"{', '.join(f'{x:.2f}' for x in result['loadavg']['before'])} / "
                   f"{', '.join(f'{x:.2f}' for x in result['loadavg']['after'])}.")]
    (out / f"{NAME}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _schedule(report: dict) -> str:
    s = report.get("schedule") or {}
    return f"tuned on {s['tuned_on']}" if s.get("source") == "tuned" else s.get("source", "?")


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
