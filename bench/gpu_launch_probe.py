"""Single-launch device time of the mid-M bias + SiLU 4096 x 4096 static artifacts and the dynamic-M
artifacts of two builds (CUDA events around each call, L2 flushed before it, interleaved in random
order): separates the kernels from the CUDA-graph replays `gpu_bench.py time` measures. On the GPU
machine, in a pack unpacked from `gpu_bench.py pack --work W --baseline B`:

    PYTHONPATH=<checkout> python bench/gpu_launch_probe.py W W/base out.json
"""
from __future__ import annotations

import json
import random
import statistics
import sys
from pathlib import Path

import torch

from fusebuild.backends.tir_cuda.loader import Artifact

SPEC, N, K, ROUNDS = "bias_silu_sq4096", 4096, 4096, 60


def timed(fn, flush) -> float:
    """Device microseconds of one call after the L2 is flushed."""
    flush.zero_()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) * 1e3


def main(work: Path, base: Path, dest: Path):
    dev = torch.device("cuda")
    flush = torch.empty(256 << 20, dtype=torch.uint8, device=dev)
    rows = []
    for m in (600, 768, 896, 1280, 1536):
        arts = {"static": Artifact(next((work / f"out/{SPEC}").glob(f"M{m}_*/tir-cuda/kernel.json"))),
                "dyn_new": Artifact(work / f"out_dyn/{SPEC}/tir-cuda/kernel.json"),
                "dyn_old": Artifact(base / f"out_dyn/{SPEC}/tir-cuda/kernel.json")}
        x = torch.randn(m, K, device=dev).to(torch.bfloat16)
        w = (torch.randn(N, K, device=dev) / 64).to(torch.bfloat16)
        b = torch.randn(N, device=dev).to(torch.bfloat16)
        y = torch.empty(m, N, device=dev, dtype=torch.bfloat16)
        fns = {k: a.bind(x, w, b, y) for k, a in arts.items()}
        for fn in fns.values():          # warm-up
            for _ in range(20):
                fn()
        times = {k: [] for k in fns}
        for _ in range(ROUNDS):
            order = list(fns)
            random.shuffle(order)
            for k in order:
                times[k].append(timed(fns[k], flush))
        med = {k: round(statistics.median(v), 2) for k, v in times.items()}
        print(m, med, {k: round(v / med["static"], 3) for k, v in med.items()}, flush=True)
        rows.append({"M": m, "median_us": med})
    dest.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
