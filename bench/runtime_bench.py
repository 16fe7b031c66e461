"""Runtime benchmark: the Llama-3.2-1B MLP block through fusebuild.load vs torch, and what
the Python dispatch costs per call.

    python bench/runtime_bench.py                   # CPU: torch eager vs tir-cpu, M = 1, 32, 128
    python bench/runtime_bench.py --device cuda     # GPU: torch eager, torch.compile, CUDA graphs vs
                                                    #   fusebuild (eager call, inside torch.compile,
                                                    #   inside a CUDA graph), M = 1, 32, 128, 512, 2048

Both read built (or exported) artifacts from --out: `llama32_1b_mlp` for the block (float32
tir-cpu on a CPU; bfloat16 tir-cuda on a GPU, docs/runtime.md says how to build them) and
`gemm_bias_silu` M=1 for the dispatch overhead (a kernel of a few microseconds, so the
overhead is not lost in its noise). Method: random data; candidates interleaved call by
call, medians (CPU: wall clock; GPU: CUDA events); torch.compile and CUDA graphs warmed
up before timing; numerics of every candidate checked against torch eager within the
tolerance the artifact was validated with. Overhead per call = (op call) - (raw kernel
call on the same tensors with a preallocated output), host time, medians of bursts.
Writes bench/results/runtime_<device>.{json,md}; records CPU/GPU, clocks, versions.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "examples"))
from llama_mlp import HIDDEN, LlamaMLP, agree, captured, events, runs_here, wall

import fusebuild
from fusebuild.runtime import MLP
from fusebuild.toolchains import cpu_key, package_version

MLP_SPEC, OVERHEAD_SPEC = "llama32_1b_mlp", "gemm_bias_silu"


def median_ms(ts) -> float:
    return statistics.median(ts) * 1e3


# --- timing ------------------------------------------------------------------------------

def interleaved(runs: dict, repeat: int, clock) -> dict:
    """{name: [seconds per call]}: one call of each candidate per round."""
    for f in runs.values():
        f()
    times = {n: [] for n in runs}
    for _ in range(repeat):
        for name, f in runs.items():
            times[name].append(clock(f))
    return times


def host_us(fns: dict, calls: int, rounds: int, sync=None) -> dict:
    """Host microseconds per call of each function: bursts of `calls`, interleaved, median."""
    out = {n: [] for n in fns}
    for _ in range(rounds):
        for name, f in fns.items():
            if sync:
                sync()
            t = time.perf_counter()
            for _ in range(calls):
                f()
            out[name].append((time.perf_counter() - t) / calls * 1e6)
    if sync:
        sync()
    return {n: statistics.median(v) for n, v in out.items()}


# --- the MLP block -------------------------------------------------------------------------

def mlp_rows(device, dtype, tokens, out, repeat) -> list:
    torch.manual_seed(0)
    eager = LlamaMLP().to(device, dtype).eval().requires_grad_(False)
    op = fusebuild.load(MLP_SPEC, out=out)
    fused = MLP.from_linears(op, eager.gate_proj, eager.up_proj, eager.down_proj)
    cuda = device.type == "cuda"
    if cuda:
        eager_c, fused_c = torch.compile(eager), torch.compile(fused, fullgraph=True)
    rows, skipped = [], []
    for m in tokens:
        x = torch.randn(m, HIDDEN, device=device, dtype=dtype)
        if not runs_here(fused, x, skipped, m):
            rows.append({"M": m, "candidate": "all", "skipped": skipped[-1][1]})
            continue
        runs = {"torch eager": lambda x=x: eager(x), "fusebuild": lambda x=x: fused(x)}
        if cuda:
            runs.update({"torch.compile": lambda x=x: eager_c(x), "fusebuild in torch.compile": lambda x=x: fused_c(x),
                         "torch eager CUDA graph": captured(eager, x), "fusebuild CUDA graph": captured(fused, x)})
        with torch.no_grad():
            ref = eager(x)
            tol = fused.tolerance(x, ref=ref)
            checks = {n: agree(f().clone(), ref, tol) for n, f in runs.items()}
            times = interleaved(runs, repeat, events if cuda else wall)
        flop = 2 * m * HIDDEN * 8192 * 3
        base = median_ms(times["torch eager"])
        for name, ts in times.items():
            ok, max_abs, _ = checks[name]
            rows.append({"M": m, "candidate": name, "ms": median_ms(ts), "min_ms": min(ts) * 1e3,
                         "gflops": flop / statistics.median(ts) / 1e9, "vs_eager": base / median_ms(ts),
                         "agree": ok, "max_abs": max_abs, "atol": tol[0], "calls": len(ts),
                         "artifact": op.report(x.reshape(-1, HIDDEN), *fused.args(x)[1:])["variant"]})
    return rows


# --- dispatch overhead -----------------------------------------------------------------------

def overhead(device, dtype, out, calls, rounds) -> dict:
    op = fusebuild.load(OVERHEAD_SPEC, out=out)
    x, w, b = (torch.randn(s, device=device, dtype=dtype) for s in ((1, 512), (256, 512), (256,)))
    op(x, w, b)
    plan = next(iter(op._plans.values()))
    kernel, y = plan.call.kernel, torch.empty(1, 256, device=device, dtype=dtype)
    fns = {"raw kernel (preallocated output)": lambda: kernel([x, w, b], [y]),
           "runtime Call (allocates output)": lambda: plan.call([x, w, b]),
           "fusebuild op(x, w, b)": lambda: op(x, w, b),
           f"torch.ops.fusebuild.{OVERHEAD_SPEC}": lambda: op.torch_op(x, w, b)}
    cuda = device.type == "cuda"
    if cuda:
        launch = kernel.art.bind(x, w, b, y)
        fns["raw kernel (bound launcher)"] = launch
    got = host_us(fns, calls, rounds, torch.cuda.synchronize if cuda else None)
    raw = got["raw kernel (bound launcher)" if cuda else "raw kernel (preallocated output)"]
    result = {"artifact": op.report(x, w, b)["variant"] + "/" + op.report(x, w, b)["target"], "host_us": got,
              "overhead_us": {n: v - raw for n, v in got.items()}, "calls_per_burst": calls, "rounds": rounds}
    if cuda:
        result["cuda_graph"] = graph_overhead(op, kernel, x, w, b, y)
    return result


def graph_overhead(op, kernel, x, w, b, y, k=20) -> dict:
    """Device time per kernel: k raw launches vs a CUDA graph of k op calls (replayed)."""
    def raw():
        for _ in range(k):
            kernel([x, w, b], [y])
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        op(x, w, b)
    torch.cuda.current_stream().wait_stream(side)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(k):
            op(x, w, b)
    t = interleaved({"raw launches": raw, "graph of op calls": g.replay}, 50, events)
    return {n: median_ms(v) * 1e3 / k for n, v in t.items()} | {"unit": "us per kernel, device time", "k": k}


# --- machine facts ---------------------------------------------------------------------------

def machine(device) -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "cpu": cpu_key(), "apache-tvm": package_version("apache-tvm"),
            "iree-base-runtime": package_version("iree-base-runtime"),
            "date": time.strftime("%Y-%m-%d %H:%M:%S"), "load_avg": os.getloadavg()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
        info["clocks"] = nvidia_smi()
    return info


def nvidia_smi() -> str:
    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=clocks.sm,clocks.max.sm,power.draw,temperature.gpu",
                               "--format=csv,noheader"], check=False, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"nvidia-smi failed: {err}"


def markdown(result) -> str:
    m, o = result["machine"], result["overhead"]
    lines = [f"# Runtime benchmark ({result['device']})", "",
             (f"{m.get('gpu') or m['cpu']}; torch {m['torch']}, {m['threads']} threads; {m['date']}; "
              f"load average at start {m['load_avg'][0]:.2f}. {result['note']}"), "",
             "## Llama-3.2-1B MLP block (hidden 2048, intermediate 8192, SwiGLU)", "",
             "| M | candidate | artifact | median ms | min ms | GFLOP/s | vs torch eager | agrees (max_abs / atol) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in result["mlp"]:
        if "skipped" in r:
            lines.append(f"| {r['M']} | NOT RUN | - | - | - | - | - | {r['skipped']} |")
            continue
        lines.append(f"| {r['M']} | {r['candidate']} | {r['artifact'] if 'fusebuild' in r['candidate'] else '-'} | "
                     f"{r['ms']:.3f} | {r['min_ms']:.3f} | {r['gflops']:.1f} | {r['vs_eager']:.2f}x | "
                     f"{'yes' if r['agree'] else 'NO'} ({r['max_abs']:.1e} / {r['atol']:.1e}) |")
    lines += ["", (f"## Dispatch overhead per call ({o['artifact']}; host time, median of {o['rounds']} bursts of "
                   f"{o['calls_per_burst']} calls)"), "", "| path | us per call | overhead over raw, us |", "|---|---|---|"]
    for name, us in o["host_us"].items():
        lines.append(f"| {name} | {us:.2f} | {o['overhead_us'][name]:+.2f} |")
    if "cuda_graph" in o:
        g = o["cuda_graph"]
        lines += ["", (f"Inside a CUDA graph ({g['k']} calls, device time per kernel): raw launches "
                       f"{g['raw launches']:.2f} us, graph of op calls {g['graph of op calls']:.2f} us.")]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--out", default="out", help="built or exported artifacts")
    p.add_argument("--overhead-out", default=None, help=f"where {OVERHEAD_SPEC} is built (default: --out)")
    p.add_argument("--repeat", type=int, default=None, help="timed calls per candidate (default 15 cpu, 50 cuda)")
    p.add_argument("--tokens", type=int, nargs="+", default=None)
    p.add_argument("--results", default=str(REPO / "bench" / "results"))
    p.add_argument("--note", default="", help="a sentence recorded with the results (e.g. how quiet the machine was)")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    dtype = torch.bfloat16 if cuda else torch.float32
    tokens = args.tokens or ([1, 32, 128, 512, 2048] if cuda else [1, 32, 128])
    repeat = args.repeat or (50 if cuda else 15)
    result = {"device": args.device, "dtype": str(dtype), "machine": machine(device), "note": args.note,
              "method": __doc__.split("Method: ", 1)[1].split("Writes")[0].strip()}
    result["overhead"] = overhead(device, dtype, args.overhead_out or args.out, calls=200 if cuda else 500, rounds=15)
    print(json.dumps(result["overhead"], indent=1))
    result["mlp"] = mlp_rows(device, dtype, tokens, args.out, repeat)
    if cuda:
        result["machine"]["clocks_after"] = nvidia_smi()
    result["machine"]["load_avg_end"] = os.getloadavg()
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"runtime_{args.device}.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / f"runtime_{args.device}.md").write_text(markdown(result))
    print(markdown(result))
    return 0 if all(r.get("agree", True) for r in result["mlp"]) else 1


if __name__ == "__main__":
    sys.exit(main())
