"""Validation: seeded inputs, the torch reference of a graph, one compare helper, one verdict.

The reference composes each op's own torch reference (ops.OPS[op].reference) in graph
order, so a fused artifact is checked against exactly the graph the user wrote. Inputs
are drawn from a seeded generator per input name: the same spec and seed give the same
inputs on every machine.

Inputs are standard normal, except a matmul's B operand, drawn like nn.Linear's init
(scaled by 1/sqrt(K)) so activations stay O(1) through chained GEMMs and a dropped bias
is visible even in bfloat16.

Tolerance: `rtol = 4 eps(dtype) + 64 eps(float32) sqrt(K)`: a few output roundings in the
output dtype, plus fp32 accumulation error that grows like sqrt(K) (K: the longest
reduction in the graph), and `atol = rtol * max|reference|`: a GEMM's error scales with
the size of its terms, not of each output element, so outputs near zero need a floor on
the output's scale. A spec can override either, per dtype, with absolute numbers.
"""
from __future__ import annotations

import math
import zlib

from ..ir.dtypes import eps
from ..ir.ops import OPS
from ..runtime.manifest import Tolerance
from ..status import Status


def input_scales(graph) -> dict:
    """1/sqrt(K) for tensors used as a matmul's B operand, 1 otherwise."""
    scales = {name: 1.0 for name in graph.inputs}
    for n in graph.nodes:
        if OPS[n.op].kind == "matmul" and n.inputs[1] in scales:
            scales[n.inputs[1]] = 1.0 / math.sqrt(graph.tensors[n.inputs[0]].shape[-1])
    return scales


def make_inputs(graph, seed: int) -> dict:
    import torch
    inputs = {}
    for name, scale in input_scales(graph).items():
        t = graph.tensors[name]
        gen = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
        x = torch.randn(t.shape, generator=gen, dtype=torch.float32) * scale
        inputs[name] = x.to(getattr(torch, t.dtype))
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


def tolerance_rule(graph, dtype: str, overrides: dict) -> Tolerance:
    """The rule for an output of `dtype` (recorded in the artifact's manifest)."""
    rtol = 4 * eps(dtype) + 64 * eps("float32") * math.sqrt(reduction_length(graph))
    over = overrides.get(dtype, {})
    return Tolerance(over.get("rtol", rtol), over.get("atol"), rtol)


def tolerance(graph, dtype: str, overrides: dict, ref=None) -> tuple:
    """(atol, rtol) for an output of `dtype` whose reference is `ref`."""
    return tolerance_rule(graph, dtype, overrides).bounds(ref)


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


def check_outputs(graph, outs: dict, ref: dict, overrides: dict) -> dict:
    """{output: compare result + its atol/rtol} for every graph output."""
    per_output = {}
    for name in graph.outputs:
        atol, rtol = tolerance(graph, graph.tensors[name].dtype, overrides, ref[name])
        per_output[name] = dict(compare(outs[name], ref[name].to(outs[name].device), atol, rtol), atol=atol, rtol=rtol)
    return per_output


def verdict(per_output: dict, steps_ok: bool = True, execution=None) -> tuple:
    """(Status, reason) of a validation: the one place a verdict is decided.

    pass needs every output within tolerance (and every compare step); an artifact that
    was emulated (`execution`, from Backend.execution) gets that status instead of pass,
    with its reason; a mismatch is a fail whatever ran it.
    """
    ok = steps_ok and all(r["ok"] for r in per_output.values())
    if not ok:
        bad = [f"{n}: {r.get('error') or str(r.get('mismatches', '?')) + ' mismatches'}, max_abs {r.get('max_abs')}"
               for n, r in per_output.items() if not r["ok"]]
        return Status.FAIL, "; ".join(bad) if bad else "a compare step is over tolerance"
    if execution is not None:
        return execution.status, execution.reason
    return Status.PASS, None


def worst(per_output: dict) -> dict:
    """The summary numbers of a report: those of the output furthest from its reference."""
    w = max(per_output.values(), key=lambda r: r.get("max_rel", float("inf")))
    return {k: w.get(k) for k in ("max_abs", "mean_abs", "max_rel", "atol", "rtol")}
