"""Validation: seeded input sets, the torch reference of a graph with a per-element error
bound, one compare helper, one verdict.

Inputs. Each artifact is validated on two input sets drawn from one seeded generator per
input name (the same spec and seed give the same inputs on every machine):
  linear  standard normal, except a matmul's B operand, drawn like nn.Linear's init
          (scaled by 1/sqrt(K)), so values stay O(1) through chained GEMMs and a dropped
          bias is visible even in bfloat16;
  wide    the same draw with every other input scaled by WIDE (8): pre-activations of
          magnitude 10 and beyond, of both signs, so every activation is driven across its
          range (sigmoid's tails, a clamp, GELU's shoulder, overflow in exp).

Reference. Each op's own torch reference (ops.OPS[op].reference) in graph order, each
node's result rounded to its dtype (as an unfused program would), so a fused artifact is
checked against exactly the graph the user wrote.

Error bound (`expected`): next to each reference value R_t the reference carries E_t >= 0,
a bound on |computed - R_t| that a correct implementation stays within, element by
element, whatever summation order, fusion or intermediate precision it chose. With eps(d)
the machine epsilon of dtype d (one ulp at 1; ir/dtypes.py) and |.| element-wise:
  input              E = 0                                  (the artifact gets exactly these)
  matmul C = A B     E = C_DOT eps(acc) sqrt(K) P  +  (P - |A||B|)  +  eps(C) |C|
                     P = (|A| + E_A)(|B| + E_B), computed by the reference as a matmul on
                     absolute values. First term: rounding a K-term sum in any order (the
                     probabilistic bound, sqrt(K) rather than K; C_DOT covers the artifact's
                     and the reference's own rounding); second: the operands' errors carried
                     through, E_A |B| + |A| E_B + E_A E_B; third: rounding to C's dtype.
  add, sub           E = E_a + E_b + eps(out) |r|
  mul                E = |b| E_a + |a| E_b + E_a E_b + eps(out) |r|
  unary f            E = L_f E_x + c (|f(x)| + L_f |x|) + eps(out) |f(x)|
                     L_f: f's largest slope (relu 1, sigmoid 1/4, silu 1.1, gelu 1.13), so the
                     input's error is carried; second term: evaluating f (targets approximate
                     exp/erf/tanh to a few ulps; an argument rounded by one ulp moves f by
                     |f'(x)| |x| eps), with c = max(C_FN eps(float32), C_FN16 eps(out)): a few
                     float32 ulps, or a few ulps of a 16-bit output that a target evaluates f
                     in (the NPU's vector unit computes bf16); third: rounding to the output dtype.
Broadcast operands broadcast their bound. An output passes where
      |out - R| <= E + TINY + atol + rtol |R|
TINY: the output dtype's smallest normal number (a subnormal result may be flushed to zero);
atol/rtol: the spec's `tolerance:` overrides, 0 by default (they can only loosen, capped
in spec/limits.py). NaN never passes. The bound is computed with torch only, on the device
holding the values (gpu-validate computes it on the GPU), for every dtype.

Why not one global tolerance: an error bound of max|R| x rtol is set by the largest output
and the longest reduction, hundreds of times above the error of most elements, so GELU's
tanh form (off by up to 4.7e-4) or a sigmoid clamped at +-6 (2.5e-3) passed it. Each
element's own terms bound it within 10-100x of the real error.

Reports give per output max_abs, mean_abs, max_rel, `bound` (the largest allowed
difference) and `ratio` (max |out - R| / allowed: below 1 passes; how close it came).
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

from ..ir.dtypes import eps
from ..ir.ops import OPS
from ..runtime.manifest import Tolerance
from ..status import Status

INPUT_SETS = ("linear", "wide")
WIDE = 8.0                     # scale of non-weight inputs in the wide set
C_DOT = 2.0                    # the artifact's and the reference's summation rounding
C_FN = 64.0                    # ulps of float32 allowed for evaluating exp/erf/tanh
C_FN16 = 4.0                   # ulps of a 16-bit output dtype, when the target evaluates f in it
SLOPE = {"relu": 1.0, "sigmoid": 0.25, "silu": 1.0998, "gelu": 1.1289}   # max |f'|; gelu: both forms


# --- inputs -----------------------------------------------------------------------------

def input_scales(graph, which: str = "linear") -> dict:
    """1/sqrt(K) for tensors used as a matmul's B operand; 1 (or WIDE) otherwise."""
    scales = {name: WIDE if which == "wide" else 1.0 for name in graph.inputs}
    for n in graph.nodes:
        if OPS[n.op].kind == "matmul" and n.inputs[1] in scales:
            scales[n.inputs[1]] = 1.0 / math.sqrt(graph.tensors[n.inputs[0]].shape[-1])
    return scales


def make_inputs(graph, seed: int, which: str = "linear") -> dict:
    import torch
    inputs = {}
    for name, scale in input_scales(graph, which).items():
        t = graph.tensors[name]
        gen = torch.Generator().manual_seed((seed * 1_000_003 + zlib.crc32(name.encode())) % 2**64)
        x = torch.randn(t.shape, generator=gen, dtype=torch.float32) * scale
        inputs[name] = x.to(getattr(torch, t.dtype))
    return inputs


def input_sets(graph, seed: int) -> dict:
    """{set name: inputs} for every input set an artifact is validated on."""
    return {which: make_inputs(graph, seed, which) for which in INPUT_SETS}


# --- reference and bound ----------------------------------------------------------------

def run_node(node, args: list):
    """One node's torch reference on given tensors."""
    return OPS[node.op].reference(args, node.attr)


def reference(graph, inputs: dict, run=run_node) -> dict:
    """Every tensor of the graph, computed by the ops' torch references (or by `run(node,
    args)`: tune's baseline runs each op as a model would, tune.runners.native)."""
    return expected(graph, inputs, bounds=False, run=run).values


@dataclass(frozen=True)
class Expected:
    values: dict               # tensor name -> reference value (its dtype)
    bounds: dict               # tensor name -> float32 bound on |computed - value|, or None (0)


def expected(graph, inputs: dict, bounds: bool = True, run=run_node) -> Expected:
    """Reference values of every tensor and, with `bounds`, their error bounds (module doc)."""
    import torch
    values, errs = dict(inputs), {name: None for name in inputs}
    with torch.no_grad():
        for node in graph.nodes:
            args = [values[i] for i in node.inputs]
            out = run(node, args).to(getattr(torch, graph.tensors[node.output].dtype))
            values[node.output] = out
            if bounds:
                errs[node.output] = node_bound(node, args, [errs[i] for i in node.inputs], out)
    return Expected(values, errs if bounds else {})


def node_bound(node, args: list, arg_bounds: list, out):
    """E of one node's output from its operands' values and bounds (module doc). float32."""
    import torch
    op = OPS[node.op]
    f32 = torch.float32
    a = [x.to(f32).abs() for x in args]
    e = [None if b is None else b.to(f32) for b in arg_bounds]
    r = out.to(f32).abs()
    rounding = eps(str(out.dtype).removeprefix("torch.")) * r
    if op.kind == "matmul":
        A, B = a
        EA, EB = e
        if node.attr["transpose_b"]:
            B, EB = B.T, (EB.T if EB is not None else None)
        AB = A @ B
        carried = 0.0
        if EA is not None or EB is not None:     # P - |A||B| = E_A |B| + |A| E_B + E_A E_B (>= 0)
            P = (A + EA if EA is not None else A) @ (B + EB if EB is not None else B)
            carried = (P - AB).clamp_min(0)
        else:
            P = AB
        k = args[0].shape[-1]
        return C_DOT * eps(node.attr["acc_dtype"]) * math.sqrt(k) * P + carried + rounding
    if op.kind == "binary":
        (x, y), (ex, ey) = a, e
        if node.op in ("add", "sub"):
            carried = _add(ex, ey)
        else:   # mul
            carried = _add(_mul(ex, y), _mul(ey, x))
            if ex is not None and ey is not None:
                carried = carried + ex * ey
        return (carried if carried is not None else 0.0) + rounding
    (x,), (ex,) = a, e
    slope = SLOPE[node.op]
    dtype = str(out.dtype).removeprefix("torch.")
    fn = max(C_FN * eps("float32"), C_FN16 * eps(dtype)) * (r + slope * x)
    return (slope * ex if ex is not None else 0.0) + fn + rounding


def _add(x, y):
    if x is None:
        return y
    return x if y is None else x + y


def _mul(err, value):
    return None if err is None else err * value


# --- the runtime's coarse rule ------------------------------------------------------------
# Not what validation checks (that is each element against its own bound, above): the one
# (atol, rtol) pair per output that fusebuild.load offers a user comparing their own runs
# (runtime/manifest.Tolerance, recorded in each report's `runtime` block).

def reduction_length(graph) -> int:
    ks = [graph.tensors[n.inputs[0]].shape[-1] for n in graph.nodes if OPS[n.op].kind == "matmul"]
    return max(ks, default=1)


def tolerance_rule(graph, dtype: str, overrides: dict) -> Tolerance:
    """The runtime's rule for an output of `dtype` (recorded in the artifact's manifest)."""
    rtol = 4 * eps(dtype) + 64 * eps("float32") * math.sqrt(reduction_length(graph))
    over = overrides.get(dtype, {})
    return Tolerance(over.get("rtol", rtol), over.get("atol"), rtol)


def tolerance(graph, dtype: str, overrides: dict, ref=None) -> tuple:
    """(atol, rtol) of the runtime's rule for an output of `dtype` whose reference is `ref`."""
    return tolerance_rule(graph, dtype, overrides).bounds(ref)


# --- comparing --------------------------------------------------------------------------

def compare(out, ref, bound=None, atol: float = 0.0, rtol: float = 0.0, show: int = 5) -> dict:
    """Shape, then |out - ref| <= bound + TINY + atol + rtol |ref| element-wise; NaN never passes.

    `bound`: the modelled error bound of `ref` (a tensor broadcastable to it, or None: 0).
    max_rel is |out - ref| / max(|ref|, allowed): relative where the reference is not tiny.
    """
    import torch
    if tuple(out.shape) != tuple(ref.shape):
        return {"ok": False, "error": f"shape {list(out.shape)} != reference {list(ref.shape)}"}
    o, r = out.double(), ref.to(out.device).double()
    tiny = torch.finfo(ref.dtype).tiny if ref.dtype.is_floating_point else 0.0
    allowed = r.abs() * rtol + (atol + tiny)
    if bound is not None:
        allowed = allowed + (bound.to(o.device).double() if hasattr(bound, "to") else float(bound))
    diff = (o - r).abs()
    bad = ~(diff <= allowed)                       # NaN compares False -> bad
    finite = torch.isfinite(diff)
    some = bool(finite.any())
    result = {
        "ok": not bool(bad.any()),
        "max_abs": float(diff[finite].max()) if some else float("nan"),
        "mean_abs": float(diff[finite].mean()) if some else float("nan"),
        "max_rel": float((diff / torch.maximum(r.abs(), allowed))[finite].max()) if some else float("nan"),
        "bound": float(allowed.max()),
        "ratio": float((diff / allowed)[finite].max()) if some else float("nan"),
        "nan": int((~finite).sum()),
        "mismatches": int(bad.sum()),
    }
    if bad.any():
        idx = bad.nonzero()[:show]
        result["first_mismatches"] = [
            {"index": [int(v) for v in i], "got": float(o[tuple(i)]), "want": float(r[tuple(i)]),
             "allowed": float(allowed[tuple(i)])} for i in idx]
    return result


def check_outputs(graph, outs: dict, exp: Expected, overrides: dict) -> dict:
    """{output: compare result} for every graph output, against `exp` (from `expected`)."""
    per_output = {}
    for name in graph.outputs:
        over = overrides.get(graph.tensors[name].dtype, {})
        per_output[name] = compare(outs[name], exp.values[name], exp.bounds.get(name),
                                   over.get("atol", 0.0), over.get("rtol", 0.0))
    return per_output


# --- the verdict ------------------------------------------------------------------------

def verdict(per_output: dict, steps_ok: bool = True, execution=None) -> tuple:
    """(Status, reason) of a validation: the one place a verdict is decided.

    pass needs every output within its bound (and every compare step); an artifact that
    was emulated (`execution`, from Backend.execution) gets that status instead of pass,
    with its reason; a mismatch is a fail whatever ran it. `per_output` may be one set's
    results or {set: per_output} (every set must pass; reasons name the set).
    """
    flat = _flatten(per_output)
    ok = steps_ok and all(r["ok"] for r in flat.values())
    if not ok:
        bad = []
        for key, r in flat.items():
            if r["ok"]:
                continue
            which, _, name = key.rpartition("/")
            where = f" [{which} inputs]" if which else ""
            bad.append(f"{name}: {r['error']}{where}" if "error" in r else
                       f"{name}: {r.get('mismatches', '?')} mismatches, max_abs {r.get('max_abs'):.3g} (allowed "
                       f"{r.get('bound', float('nan')):.3g}, ratio {r.get('ratio', float('nan')):.3g}){where}")
        return Status.FAIL, "; ".join(bad) if bad else "a compare step is over its bound"
    if execution is not None:
        return execution.status, execution.reason
    return Status.PASS, None


def worst(per_output: dict) -> dict:
    """The summary numbers of a report: those of the output (in any input set) that came
    closest to its bound."""
    flat = _flatten(per_output)
    w = max(flat.values(), key=lambda r: _num(r.get("ratio")))
    return {k: w.get(k) for k in ("max_abs", "mean_abs", "max_rel", "bound", "ratio")}


def _flatten(results: dict) -> dict:
    """{output: r} or {set: {output: r}} -> {"output" or "set/output": r}."""
    if results and all(isinstance(v, dict) and "ok" not in v for v in results.values()):
        return {f"{s}/{n}": r for s, outs in results.items() for n, r in outs.items()}
    return results


def _num(x) -> float:
    return float("inf") if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)
