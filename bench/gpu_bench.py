"""GPU benchmark of tir-cuda: fused TileLang artifacts built by fusebuild vs torch, on one GPU, in one run.

Three steps, because the build machine has no GPU and the GPU machine has no TileLang:

    python bench/gpu_bench.py build  [--work build/gpu_bench]     # here: specs + `doit build` + pack
    python bench/gpu_bench.py time   [--work ...] --json raw.json  # on the GPU (torch only)
    python bench/gpu_bench.py report --json raw.json               # here: bench/results/gpu.{json,md,png}

`build` writes one spec per (epilogue, N, K) with M in {1, 16, 128, 1024, 4096} (bf16, w in
nn.Linear layout, bias) for bias_silu / bias_relu / bias_gelu, plus swiglu_prefill at Llama-3-8B
sizes (hidden 4096, intermediate 14336, M in {128, 1024, 4096}), and builds them through the
real pipeline (doit build: render, TileLang lowering in the tilelang env, nvcc), tiles from
tir-cuda's tuned defaults. `time` loads each built artifact with fusebuild's loader and times
it against torch eager (`F.silu(F.linear(x, w, b))`, relu, gelu; SwiGLU as three matmuls) and
torch.compile (default mode) of the same function: CUDA-event medians after warm-up, input
sets rotated so repeated calls do not run from L2. The artifacts' numerics are checked by
`fusebuild gpu-validate --specs WORK/specs --out WORK/out`.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PEAK = 989.0          # H100 SXM dense bf16 TFLOP/s (spec sheet)
MS = [1, 16, 128, 1024, 4096]
NK = [(14336, 4096), (4096, 14336), (4096, 4096)]
EPILOGUES = {"bias_silu": "silu", "bias_relu": "relu", "bias_gelu": "gelu"}
SWIGLU_MS = [128, 1024, 4096]
H, I = 4096, 14336

GEMM_SPEC = """\
name: {name}
params:
  M: {ms}
  N: {N}
  K: {K}
inputs:
  x:    {{shape: [M, K], dtype: bfloat16}}
  w:    {{shape: [N, K], dtype: bfloat16}}
  bias: {{shape: [N], dtype: bfloat16}}
graph:
  - {{op: matmul, inputs: [x, w], output: y, transpose_b: true, epilogue: [{{add: bias}}, {act}]}}
outputs: [y]
targets: [tir-cuda]
"""
SWIGLU_SPEC = """\
name: swiglu_llama3_8b
params:
  M: {ms}
  E: {H}
  H: {I}
inputs:
  x:  {{shape: [M, E], dtype: bfloat16}}
  wg: {{shape: [H, E], dtype: bfloat16}}
  wu: {{shape: [H, E], dtype: bfloat16}}
  wd: {{shape: [E, H], dtype: bfloat16}}
graph:
  - {{op: matmul, inputs: [x, wg], output: gate, transpose_b: true}}
  - {{op: matmul, inputs: [x, wu], output: up, transpose_b: true}}
  - {{op: silu, inputs: [gate], output: act}}
  - {{op: mul, inputs: [act, up], output: h}}
  - {{op: matmul, inputs: [h, wd], output: y, transpose_b: true}}
outputs: [y]
targets: [tir-cuda]
"""


def write_specs(work: Path):
    specs = work / "specs"
    specs.mkdir(parents=True, exist_ok=True)
    for epi, act in EPILOGUES.items():
        for n, k in NK:
            name = f"{epi}_n{n}_k{k}"
            (specs / f"{name}.yaml").write_text(GEMM_SPEC.format(name=name, ms=MS, N=n, K=k, act=act))
    (specs / "swiglu_llama3_8b.yaml").write_text(SWIGLU_SPEC.format(ms=SWIGLU_MS, H=H, I=I))


def cmd_build(args):
    work = Path(args.work)
    write_specs(work)
    shutil.copy(REPO / "dodo.py", work / "dodo.py")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "doit", "-n", str(args.jobs), "build"], cwd=work, text=True,
                          capture_output=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    print(proc.stdout[-6000:], proc.stderr[-3000:])
    print(f"build: {time.perf_counter() - start:.0f} s")
    built = list((work / "out").glob("*/*/tir-cuda/kernel.so"))
    if not built:       # e.g. the tilelang env is missing: every artifact is not-run
        sys.exit("build: no tir-cuda artifact was built (see the summary above); nothing to pack")
    if args.pack:
        pack(work, Path(args.pack))
    return proc.returncode


def pack(work: Path, dest: Path):
    """specs + every artifact's kernel.so (stripped) + kernel.json + validation.json, as one .tar.xz."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w:xz", preset=9) as tf:
        for p in sorted((work / "specs").glob("*.yaml")):
            tf.add(p, arcname=str(p.relative_to(work)))
        for so in sorted((work / "out").glob("*/*/tir-cuda/kernel.so")):
            stripped = so.with_name("kernel.stripped.so")
            subprocess.run(["strip", "-o", str(stripped), str(so)], check=True)
            tf.add(stripped, arcname=str(so.relative_to(work)))
            stripped.unlink()
            for f in ("kernel.json", "validation.json"):
                if (so.parent / f).exists():
                    tf.add(so.parent / f, arcname=str((so.parent / f).relative_to(work)))
    print(f"packed {dest} ({dest.stat().st_size / 1e6:.1f} MB)")


# --- on the GPU ------------------------------------------------------------------------

def timeit(fns, warm_ms=30, reps=25):
    """Median ms per call over `reps` CUDA-event-timed loops (calls rotate over input sets)."""
    import torch
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < warm_ms / 1e3 or n < 3:
        fns[n % len(fns)]()
        n += 1
    torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record(); fns[0](); e.record(); torch.cuda.synchronize()
    inner = max(1, min(100, int(1.5 / max(s.elapsed_time(e), 1e-3))))
    times = []
    for _ in range(reps):
        s.record()
        for i in range(inner):
            fns[i % len(fns)]()
        e.record()
        torch.cuda.synchronize()
        times.append(s.elapsed_time(e) / inner)
    return statistics.median(times)


def cmd_time(args):
    import torch
    import torch.nn.functional as F
    sys.path.insert(0, str(REPO))
    from fusebuild.backends.tir_cuda.loader import Artifact
    from fusebuild.plan.project import Project

    torch.backends.cuda.matmul.allow_tf32 = False
    work = Path(args.work)
    project = Project(work / "specs", work / "out")
    assert not project.errors, project.errors
    acts = {"silu": F.silu, "relu": F.relu, "gelu": F.gelu}
    rows = []
    dev = torch.device("cuda")

    def dump(rows):
        Path(args.json).write_text(json.dumps({
            "device": torch.cuda.get_device_name(), "torch": torch.__version__, "peak_tflops": PEAK,
            "method": "CUDA-event median of 25 timed loops after >=30 ms warm-up; up to 4 rotated input sets",
            "rows": rows}, indent=1) + "\n")
    for a in project.artifacts:
        v, p = a.variant, a.variant.params
        if not (a.dir / "kernel.json").exists():
            print("missing", a.id, flush=True)
            continue
        art = Artifact(a.dir / "kernel.json")
        g = torch.Generator(device=dev).manual_seed(0)

        def randn(*shape, scale=1.0):
            return (torch.randn(*shape, device=dev, generator=g) * scale).to(torch.bfloat16)
        if v.spec.startswith("swiglu"):
            m, n, k = p["M"], p["E"], p["H"]
            kind, epi, flops = "swiglu", "swiglu", 2 * m * n * k * 3
            nbytes = 2 * (m * n + 3 * n * k + m * n)

            def make():
                return [randn(m, n), randn(k, n, scale=n ** -0.5), randn(k, n, scale=n ** -0.5),
                        randn(n, k, scale=k ** -0.5)]

            def eager(x, wg, wu, wd):
                return (F.silu(x @ wg.T) * (x @ wu.T)) @ wd.T
            out_shape = (m, n)
        else:
            m, n, k = p["M"], p["N"], p["K"]
            epi = v.spec.split("_n")[0]
            kind, flops = "gemm", 2 * m * n * k
            nbytes = 2 * (m * k + n * k + n + m * n)
            act = acts[EPILOGUES[epi]]

            def make():
                return [randn(m, k), randn(n, k, scale=k ** -0.5), randn(n)]

            def eager(x, w, b, act=act):
                return act(F.linear(x, w, b))
            out_shape = (m, n)
        sets = [make() for _ in range(max(1, min(4, math.ceil(200e6 / nbytes))))]
        outs = [torch.empty(out_shape, device=dev, dtype=torch.bfloat16) for _ in sets]
        fused = timeit([art.bind(*s, o) for s, o in zip(sets, outs)])
        eager_ms = timeit([lambda s=s: eager(*s) for s in sets])
        row = {"kind": kind, "epilogue": epi, "M": m, "N": n, "K": k, "flops": flops,
               "config": [ln["config"] for ln in art.manifest["launches"]],
               "fused_ms": fused, "eager_ms": eager_ms, "compile_ms": None}
        if args.compile == "all" or (args.compile == "silu" and epi in ("bias_silu", "swiglu")):
            try:
                torch._dynamo.reset()
                cf = torch.compile(eager, dynamic=False)
                t0 = time.time()
                cf(*sets[0]); torch.cuda.synchronize()
                row["compile_seconds"] = round(time.time() - t0, 1)
                row["compile_ms"] = timeit([lambda s=s: cf(*s) for s in sets])
            except Exception as err:     # record, keep going
                row["compile_error"] = f"{type(err).__name__}: {err}"[:300]
        rows.append(row)
        dump(rows)      # after every row: a run cut short still leaves its numbers
        print(f"{a.id:50s} fused {fused * 1e3:8.1f} us  eager {eager_ms * 1e3:8.1f} us  "
              f"x{eager_ms / fused:.3f}  compile {row['compile_ms'] and row['compile_ms'] * 1e3 or 0:8.1f} us",
              flush=True)
        del art, sets, outs
    dump(rows)


# --- report (here) -------------------------------------------------------------------------

def enrich(raw: dict) -> dict:
    rows = []
    for r in raw["rows"]:
        tf = r["flops"] / (r["fused_ms"] * 1e-3) / 1e12
        rows.append(dict(r, fused_tflops=tf, pct_peak=100 * tf / PEAK,
                         eager_tflops=r["flops"] / (r["eager_ms"] * 1e-3) / 1e12,
                         speedup_eager=r["eager_ms"] / r["fused_ms"],
                         speedup_compile=(r["compile_ms"] / r["fused_ms"]) if r.get("compile_ms") else None))
    rows.sort(key=lambda r: (r["kind"], r["epilogue"], r["N"], r["K"], r["M"]))
    bars = []
    for r in rows:
        shape = f"{r['epilogue']} {r['M']}x{r['N']}x{r['K']}"
        bars.append({"bar": f"fused >= eager: {shape}", "met": r["speedup_eager"] >= 1.0, "value": r["speedup_eager"]})
        if r["epilogue"] == "bias_silu" and r["M"] >= 1024:
            bars.append({"bar": f">= 1.10x eager: {shape}", "met": r["speedup_eager"] >= 1.10, "value": r["speedup_eager"]})
        if r["epilogue"] == "swiglu" and r["M"] >= 1024:
            bars.append({"bar": f"swiglu >= 1.15x eager: M={r['M']}", "met": r["speedup_eager"] >= 1.15,
                         "value": r["speedup_eager"]})
        if r["kind"] == "gemm" and (r["M"], r["N"], r["K"]) == (4096, 14336, 4096):
            bars.append({"bar": f">= 60% of peak: {shape}", "met": r["pct_peak"] >= 60, "value": r["pct_peak"] / 100})
    return dict(raw, rows=rows, bars=bars)


def markdown(res: dict) -> str:
    out = [f"# tir-cuda vs torch on {res['device']} (torch {res['torch']}, bf16)", "",
           f"{res['method']}. Peak: {PEAK:.0f} TFLOP/s (dense bf16). speedup = torch time / fused time.", "",
           "| op | M | N | K | fused us | TFLOP/s | % peak | eager us | x eager | compile us | x compile | tiles |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in res["rows"]:
        c = f"{r['compile_ms'] * 1e3:.1f}" if r.get("compile_ms") else "-"
        xc = f"{r['speedup_compile']:.3f}" if r.get("speedup_compile") else "-"
        tiles = " + ".join(f"{x['mode']} {x['block_M']}x{x['block_N']}x{x['block_K']} s{x['num_stages']}"
                           + (f" sk{x['split_k']}" if x["split_k"] > 1 else "") for x in r["config"])
        out.append(f"| {r['epilogue']} | {r['M']} | {r['N']} | {r['K']} | {r['fused_ms'] * 1e3:.1f} | "
                   f"{r['fused_tflops']:.1f} | {r['pct_peak']:.1f} | {r['eager_ms'] * 1e3:.1f} | "
                   f"{r['speedup_eager']:.3f} | {c} | {xc} | {tiles} |")
    met = sum(b["met"] for b in res["bars"])
    out += ["", f"## Bars: {met}/{len(res['bars'])} met", "", "| bar | met | value |", "|---|---|---:|"]
    out += [f"| {b['bar']} | {'yes' if b['met'] else '**no**'} | {b['value']:.3f} |" for b in res["bars"]]
    return "\n".join(out) + "\n"


def plot(res: dict, path: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    groups = {}
    for r in res["rows"]:
        groups.setdefault((r["epilogue"], r["N"], r["K"]), []).append(r)
    fig, axes = plt.subplots(2, 5, figsize=(22, 8), sharey=True)
    for ax, ((epi, n, k), rs) in zip(axes.flat, sorted(groups.items())):
        ms = [r["M"] for r in rs]
        ax.plot(ms, [r["speedup_eager"] for r in rs], "o-", label="vs torch eager")
        ax.plot(ms, [r["speedup_compile"] or float("nan") for r in rs], "s--", label="vs torch.compile")
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_title(f"{epi} N={n} K={k}", fontsize=9)
        ax.set_xlabel("M")
    axes.flat[0].set_ylabel("speedup of the fused artifact")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(f"tir-cuda fused kernels vs torch, {res['device']}, bf16")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def cmd_report(args):
    res = enrich(json.loads(Path(args.json).read_text()))
    dest = REPO / "bench" / "results"
    (dest / "gpu.json").write_text(json.dumps(res, indent=1) + "\n")
    (dest / "gpu.md").write_text(markdown(res))
    plot(res, dest / "gpu.png")
    print(markdown(res))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--work", default=str(REPO / "build" / "gpu_bench"))
    b.add_argument("--jobs", type=int, default=2)
    b.add_argument("--pack", help="write specs + stripped artifacts into this .tar.xz")
    t = sub.add_parser("time")
    t.add_argument("--work", default=str(REPO / "build" / "gpu_bench"))
    t.add_argument("--json", required=True)
    t.add_argument("--compile", choices=("none", "silu", "all"), default="all")
    r = sub.add_parser("report")
    r.add_argument("--json", required=True)
    args = ap.parse_args()
    sys.exit({"build": cmd_build, "time": cmd_time, "report": cmd_report}[args.cmd](args) or 0)


if __name__ == "__main__":
    main()
