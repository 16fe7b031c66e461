"""Power/clock probe (GPU machine, torch only): time one built tir-cuda artifact in a steady
loop for ~3 s while nvidia-smi samples the SM clock and board power; `--one` runs a single
launch after warm-up (for ncu). The artifacts are bias+ReLU and bias+SiLU at
4096x14336x4096 bf16, built by `doit build` from two specs (params M=4096, N=14336,
K=4096; bf16 x, w (N, K), bias; matmul transpose_b with epilogue [{add: bias}, relu|silu];
targets [tir-cuda]), their kernel.so/kernel.json copied to ARTIFACTS/<relu|silu>/.

    python bench/gpu_power_probe.py relu|silu [--one]     # ARTIFACTS=.gpu_carry/ncu by default
Results of the run in docs/gpu.md: bench/results/gpu_power_probe.jsonl."""
import json
import os
import statistics
import subprocess
import sys
import time

import torch
sys.path.insert(0, ".")
from fusebuild.backends.tir_cuda.loader import Artifact

M, N, K = 4096, 14336, 4096
def make():
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(M, K, device="cuda", generator=g).bfloat16()
    w = (torch.randn(N, K, device="cuda", generator=g) / K ** 0.5).bfloat16()
    b = torch.randn(N, device="cuda", generator=g).bfloat16()
    y = torch.empty(M, N, device="cuda", dtype=torch.bfloat16)
    return x, w, b, y

which = sys.argv[1]
art = Artifact(f"{os.environ.get('ARTIFACTS', '.gpu_carry/ncu')}/{which}/kernel.json")
x, w, b, y = make()
launch = art.bind(x, w, b, y)
if "--one" in sys.argv:
    for _ in range(3):
        launch()
    torch.cuda.synchronize()
    launch(); torch.cuda.synchronize()
    sys.exit(0)
for _ in range(20):
    launch()
torch.cuda.synchronize()
smi = subprocess.Popen(["nvidia-smi", "--query-gpu=clocks.sm,power.draw", "--format=csv,noheader,nounits", "-lms", "50"],
                       stdout=subprocess.PIPE, text=True)
t0 = time.time(); n = 0
e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
times = []
while time.time() - t0 < 3.0:
    e0.record(); [launch() for _ in range(10)]; e1.record(); torch.cuda.synchronize(); times.append(e0.elapsed_time(e1) / 10)
smi.terminate(); out = smi.communicate()[0]
rows = [list(map(float, l.split(","))) for l in out.strip().splitlines() if l.strip()]
rows = rows[2:-2] if len(rows) > 6 else rows
clk = statistics.median(r[0] for r in rows); pw = statistics.median(r[1] for r in rows)
print(json.dumps({"epilogue": which, "median_us": statistics.median(times) * 1e3, "sm_clock_mhz": clk, "power_w": pw, "samples": len(rows)}))
