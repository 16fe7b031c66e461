"""Validation: seeded inputs, the torch reference of a graph, and one compare helper.

The reference composes each op's own torch reference (ops.OPS[op].reference) in graph
order, so a fused artifact is checked against exactly the graph the user wrote. Inputs
are drawn from a seeded generator per input name: the same spec and seed give the same
inputs on every machine.

Tolerance: per dtype, `rtol = eps(dtype) * C * sqrt(K)` where K is the longest reduction
in the graph (rounding error of a dot product grows like sqrt(K) for random data), and
`atol = rtol * max|reference|`: a GEMM's error scales with the size of its terms, not of
each output element, so outputs near zero need an absolute floor on the output's scale.
A spec can override either, per dtype, with absolute numbers.
"""
from __future__ import annotations

import math
import zlib

from .ops import EPS, OPS

TOLERANCE_SCALE = {"float32": 64.0, "float16": 4.0, "bfloat16": 4.0}


def make_inputs(graph, seed: int) -> dict:
    import torch
    inputs = {}
    for name in graph.inputs:
        t = graph.tensors[name]
        gen = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
        inputs[name] = torch.randn(t.shape, generator=gen, dtype=torch.float32).to(getattr(torch, t.dtype))
    return inputs


def run_node(node, args: list):
    """One node's torch reference on given tensors."""
    return OPS[node.op].reference(args, node.attr)


def reference(graph, inputs: dict) -> dict:
    """Every tensor of the graph, computed by the ops' torch references."""
    import torch
    values = dict(inputs)
    with torch.no_grad():
        for node in graph.nodes:
            out = run_node(node, [values[i] for i in node.inputs])
            values[node.output] = out.to(getattr(torch, graph.tensors[node.output].dtype))
    return values


def reduction_length(graph) -> int:
    ks = [graph.tensors[n.inputs[0]].shape[-1] for n in graph.nodes if OPS[n.op].kind == "matmul"]
    return max(ks, default=1)


def tolerance(graph, dtype: str, overrides: dict, ref=None) -> tuple:
    """(atol, rtol) for an output of `dtype` whose reference is `ref`."""
    rtol = EPS[dtype] * TOLERANCE_SCALE[dtype] * math.sqrt(reduction_length(graph))
    scale = float(ref.abs().max()) if ref is not None and ref.numel() else 1.0
    over = overrides.get(dtype, {})
    return over.get("atol", rtol * max(scale, 1.0)), over.get("rtol", rtol)


def compare(out, ref, atol: float, rtol: float, show: int = 5) -> dict:
    """Shape, dtype, then |out - ref| <= atol + rtol * |ref| elementwise; NaN never passes.

    max_rel is |out - ref| / max(|ref|, atol): relative where the reference is not tiny.
    """
    import torch
    if tuple(out.shape) != tuple(ref.shape):
        return {"ok": False, "error": f"shape {list(out.shape)} != reference {list(ref.shape)}"}
    o, r = out.double(), ref.double()
    diff = (o - r).abs()
    bad = ~(diff <= atol + rtol * r.abs())          # NaN compares False -> bad
    finite = torch.isfinite(diff)
    result = {
        "ok": not bool(bad.any()),
        "max_abs": float(diff[finite].max()) if finite.any() else float("nan"),
        "mean_abs": float(diff[finite].mean()) if finite.any() else float("nan"),
        "max_rel": float((diff / r.abs().clamp_min(max(atol, 1e-30)))[finite].max()) if finite.any() else float("nan"),
        "nan": int((~finite).sum()),
        "mismatches": int(bad.sum()),
    }
    if bad.any():
        idx = bad.nonzero()[:show]
        result["first_mismatches"] = [
            {"index": [int(v) for v in i], "got": float(o[tuple(i)]), "want": float(r[tuple(i)])} for i in idx]
    return result
