"""CPU benchmark: tir-cpu's GEMV rule (no packing) against its packed GEMM at the small M where
the rule switches (`gemv_max_m`, K >= 1024), and torch, in one interleaved run.

Each shape is built twice through `doit build` (validation included): with the default hints
(the path the rule picks) and with the hint that forces the other path (`gemv_max_m: 0` where
the rule picks GEMV, `gemv_max_m: 4096` where it picks the packed GEMM). Both are timed with
torch's `F.silu(F.linear(x, w, b))` on the same random inputs, same threads, rounds in random
order, median of the rounds; the JSON records the CPU, versions and load average.

    python bench/cpu_gemv.py            # writes bench/results/cpu_gemv.{json,md}
"""
from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
os.environ.setdefault("TVM_NUM_THREADS", str(THREADS))
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
os.environ.setdefault("TVM_THREAD_POOL_SPIN_COUNT", "0")     # as bench/cpu_gemm.py: no spinning pool

SHAPES = [(16, 4096, 4096), (32, 4096, 1024), (64, 4096, 1024), (64, 4096, 4096), (128, 4096, 4096)]
ROUNDS = 15


def build(work: Path):
    sys.path.insert(0, str(REPO / "bench"))
    from cpu_gemm import spec
    (work / "specs").mkdir(parents=True)
    for m, n, k in SHAPES:
        for tag, schedule in (("rule", ""), ("other", "schedule: {tir-cpu: {gemv_max_m: %d}}\n")):
            other = 0 if m <= 64 else 4096                 # the default gemv_max_m is 64
            text = spec(f"g{m}_{n}_{k}_{tag}", m, n, k, targets=("tir-cpu",),
                        schedule=schedule % other if schedule else "")
            (work / "specs" / f"g{m}_{n}_{k}_{tag}.yaml").write_text(text)
    (work / "dodo.py").write_text((REPO / "dodo.py").read_text())
    proc = subprocess.run([sys.executable, "-m", "doit", "build"], cwd=work, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO), FUSEBUILD_TUNING="off"))
    if proc.returncode != 0:
        sys.exit(f"build failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")


def main():
    import torch
    import torch.nn.functional as F
    import tvm
    sys.path.insert(0, str(REPO / "bench"))
    from cpu_gemm import _cpu, loadavg, median_time, tvm_runner

    torch.set_num_threads(THREADS)
    work = Path(tempfile.mkdtemp(prefix="fusebuild-gemv-"))
    before = loadavg()
    build(work)
    rows = []
    for m, n, k in SHAPES:
        gen = torch.Generator().manual_seed(0)
        x, w, b = (torch.randn(s, generator=gen) for s in ((m, k), (n, k), (n,)))
        runs, paths = {}, {}
        for tag in ("rule", "other"):
            folder = work / "out" / f"g{m}_{n}_{k}_{tag}" / f"M{m}_N{n}_K{k}" / "tir-cpu"
            assert json.loads((folder / "validation.json").read_text())["status"] == "pass", folder
            paths[tag] = json.loads((folder / "schedule.json").read_text())["gemms"]["y_matmul"]["path"]
            runs[tag], out = tvm_runner(folder / "kernel.so", [x, w, b], m, n)
            runs[tag]()
            torch.testing.assert_close(out(), F.silu(F.linear(x, w, b)), atol=1e-3, rtol=1e-3)
        runs["torch"] = lambda x=x, w=w, b=b: F.silu(F.linear(x, w, b))
        times = {name: [] for name in runs}
        order = random.Random(0)
        for _ in range(ROUNDS):
            names = list(runs)
            order.shuffle(names)
            for name in names:
                times[name].append(median_time(runs[name], 5))
        med = {name: statistics.median(v) for name, v in times.items()}
        gemv = "rule" if paths["rule"] == "gemv" else "other"
        packed = "other" if gemv == "rule" else "rule"
        rows.append({"M": m, "N": n, "K": k, "rule_path": paths["rule"],
                     "gemv_ms": med[gemv] * 1e3, "packed_ms": med[packed] * 1e3, "torch_ms": med["torch"] * 1e3,
                     "packed_over_gemv": med[packed] / med[gemv], "torch_over_rule": med["torch"] / med["rule"]})
    result = {"benchmark": "tir-cpu gemm_bias_silu fp32: GEMV rule vs packed GEMM vs torch", "threads": THREADS,
              "cpu": _cpu(), "torch": torch.__version__, "tvm": tvm.__version__, "date": time.strftime("%Y-%m-%d"),
              "loadavg_before": before, "loadavg_after": loadavg(),
              "method": f"median over {ROUNDS} interleaved rounds (random order) of the median of 5 calls; "
                        "random inputs; both paths built and validated by `doit build`", "rows": rows}
    out = REPO / "bench" / "results"
    (out / "cpu_gemv.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"# tir-cpu: the GEMV rule against the packed GEMM ({THREADS} threads, {result['cpu']})", "",
             f"torch {result['torch']}, apache-tvm {result['tvm']}, {result['date']}. {result['method']}. "
             "packed/GEMV > 1: the GEMV path is faster. The rule takes GEMV for M <= gemv_max_m (64) with "
             f"K >= 1024. Load average before / after: {before} / {result['loadavg_after']}.", "",
             "| M x N x K | rule picks | GEMV ms | packed GEMM ms | torch ms | packed / GEMV | torch / rule's |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['M']} x {r['N']} x {r['K']} | {r['rule_path']} | {r['gemv_ms']:.3f} | "
                     f"{r['packed_ms']:.3f} | {r['torch_ms']:.3f} | {r['packed_over_gemv']:.2f} | "
                     f"{r['torch_over_rule']:.2f}x |")
    (out / "cpu_gemv.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
