"""A Llama-3.2-1B-shaped MLP block run eagerly and through fusebuild's fused operator.

The block is transformers' LlamaMLP (hidden 2048, intermediate 8192, SwiGLU, no biases)
with random weights (nothing is downloaded). The fused version holds the same weights
in a fusebuild.runtime.MLP module, which calls the `llama32_1b_mlp` operator built from
specs/llama32_1b_mlp.yaml (tir-cpu on a CPU, tir-cuda on a GPU). For each token count
it checks that both agree within the tolerance the operator was validated with, and
times both (interleaved, medians). Needs only torch and the fusebuild runtime:

  doit build:llama32_1b_mlp                       # once, where fusebuild builds
  python examples/llama_mlp.py                    # CPU: tir-cpu
  python examples/llama_mlp.py --device cuda      # GPU: tir-cuda (bfloat16 variants;
                                                  #   docs/runtime.md), plus torch.compile
                                                  #   and CUDA-graph capture of the fused op
Exit code 1 if any result is outside tolerance.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

import fusebuild
from fusebuild.errors import UseError
from fusebuild.runtime import MLP

HIDDEN, INTERMEDIATE = 2048, 8192


class LlamaMLP(nn.Module):
    """transformers.models.llama.modeling_llama.LlamaMLP with hidden_act="silu"."""

    def __init__(self, hidden=HIDDEN, intermediate=INTERMEDIATE):
        super().__init__()
        self.gate_proj = nn.Linear(hidden, intermediate, bias=False)
        self.up_proj = nn.Linear(hidden, intermediate, bias=False)
        self.down_proj = nn.Linear(intermediate, hidden, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


def timer(device):
    """A clock: seconds of one call of fn, wall clock on CPU, CUDA events on a GPU."""
    return events if device.type == "cuda" else wall


def wall(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def events(fn) -> float:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1e3


def agree(got, ref, tol) -> tuple:
    atol, rtol = tol
    diff = (got.double() - ref.double()).abs()
    bad = int((~(diff <= atol + rtol * ref.double().abs())).sum())
    return bad == 0, float(diff.max()), bad


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--tokens", type=int, nargs="+", default=None,
                   help="token counts M (default: 1 32 128 on cpu, 1 32 128 512 2048 on cuda)")
    p.add_argument("--out", default="out", help="folder with the built (or exported) artifacts")
    p.add_argument("--spec", default="llama32_1b_mlp")
    p.add_argument("--repeat", type=int, default=10, help="timed calls of each (interleaved)")
    p.add_argument("--allow-unvalidated", action="store_true",
                   help="also run artifacts not validated on this kind of device (warned)")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    tokens = args.tokens or ([1, 32, 128] if device.type == "cpu" else [1, 32, 128, 512, 2048])

    torch.manual_seed(0)
    eager = LlamaMLP().to(device, dtype).eval().requires_grad_(False)
    op = fusebuild.load(args.spec, out=args.out, allow_unvalidated=args.allow_unvalidated)
    fused = MLP.from_linears(op, eager.gate_proj, eager.up_proj, eager.down_proj)
    print(op)
    compiled = torch.compile(fused, fullgraph=True) if device.type == "cuda" else None
    clock, ok_all, rows, skipped = timer(device), True, [], []
    for m in tokens:
        x = torch.randn(1, m, HIDDEN, device=device, dtype=dtype)
        if not runs_here(fused, x, skipped, m):
            continue
        runs = {"torch eager": lambda x=x: eager(x), "fusebuild": lambda x=x: fused(x)}
        if device.type == "cuda":
            runs["fusebuild compiled"] = lambda x=x: compiled(x)
            runs["fusebuild cuda graph"] = captured(fused, x)
        with torch.no_grad():
            ref = eager(x)
            tol = fused.tolerance(x, ref=ref)
            checks = {name: agree(f().clone(), ref, tol) for name, f in runs.items()}   # also warms up
            ok_all &= all(c[0] for c in checks.values())
            times = {name: [] for name in runs}
            for _ in range(args.repeat):               # interleaved
                for name, f in runs.items():
                    times[name].append(clock(f))
        med = {name: statistics.median(t) for name, t in times.items()}
        for name, (ok, max_abs, bad) in checks.items():
            rows.append((m, name, med[name] * 1e3, med["torch eager"] / med[name], max_abs, bad, tol[0], ok))
    gpu = torch.cuda.get_device_name() if device.type == "cuda" else ""
    print(f"\n{device} {gpu} {dtype}; torch {torch.__version__}; {args.repeat} interleaved calls each, median")
    print(f"{'M':>5}  {'variant':22} {'ms':>9} {'vs eager':>9}  {'max_abs':>9} {'bad':>4} {'atol':>9}  agree")
    for m, name, ms, speed, max_abs, bad, atol, ok in rows:
        print(f"{m:>5}  {name:22} {ms:9.3f} {speed:8.2f}x  {max_abs:9.2e} {bad:>4} {atol:9.2e}  {'yes' if ok else 'NO'}")
    for m, why in skipped:
        print(f"M={m} NOT RUN: {why}")
    print(("all outputs within the spec's tolerance" if ok_all else "SOME OUTPUTS ARE OUTSIDE THE TOLERANCE")
          + (f" ({len(skipped)} token count(s) not run)" if skipped else ""))
    return 0 if ok_all and rows else 1


def runs_here(fused, x, skipped: list, m) -> bool:
    """Whether the op has a usable artifact for x; if not, say why in `skipped`."""
    try:
        fused.op.report(*fused.args(x.reshape(-1, x.shape[-1])))
    except UseError as err:
        skipped.append((m, err.message))
        return False
    return True


def captured(module, x):
    """One call of the module captured into a CUDA graph: a function that replays it and
    returns its (static) output. The fused kernel launches on the capturing stream."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side), torch.no_grad():    # warm up on a side stream (torch's recipe)
        module(x)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph), torch.no_grad():
        y = module(x)

    def replay():
        graph.replay()
        return y
    return replay


if __name__ == "__main__":
    sys.exit(main())
