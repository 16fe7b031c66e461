"""Dispatch modes: how a variant is built and run when it is validated.

  fused      (default) the whole graph is one artifact: what a build ships.
  separate   one artifact per graph node (Graph.subgraph), chained on the host: each
             node's outputs are copied back and fed to the next; same final validation.
  reference  each node's torch reference on host tensors, chained the same way; no
             toolchain, no artifact. It checks the spec, the inputs and the validation
             path on a machine without the target's toolchain (its error is zero by
             construction).
  compare    like separate, and before each step its inputs are the target's own
             outputs of the previous steps; the node's torch reference (and its error
             bound, validate.expected) runs on exactly those inputs and the step's
             max_abs / max_rel / bound / ratio are recorded, per input set. Each row
             measures that node's error alone (nothing accumulates), so the first row
             over its bound names the node to look at.

A node the target cannot build alone runs through the fallback plan/artifacts.node_steps
chose (fused with its producer, or its torch reference "not on target"); its row says
which. A node whose run raises gets a row with the error (the next steps go on from its
reference value), never a missing table.

A mode is chosen per spec (`mode:`) or per invocation (FUSEBUILD_MODE, which wins); the
effective mode is written into the variant when the project plans its artifacts
(plan/artifacts.with_mode), so it is part of the validate key and of validation.json.
What each mode builds is planned in plan/artifacts.units; this module runs it.

Nothing here knows a target: node artifacts are ordinary artifacts rendered, compiled
and assembled by the same tasks and the same Backend methods as a fused one, and run
through `Backend.run`. A new target gets every mode by implementing its backend.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..fsutil import read_json
from ..plan.artifacts import Artifact, node_steps, units
from ..plan.project import MODE_SETTING
from ..tables import fmt, table
from . import validate as V


@dataclass(frozen=True)
class ModeRun:
    outputs: dict              # graph output name -> tensor
    report: dict               # fields added to validation.json (timings)
    ok: bool = True            # False if a step of compare is over its bound, or a node's run raised
    steps: list = field(default_factory=list)     # compare rows (and rows of nodes whose run raised)


def hint(a: Artifact) -> str:
    """What to try next when `a` fails validation in its mode."""
    if a.variant.mode in ("fused", "separate") and len(a.variant.graph.nodes) > 1:
        return f"to find the node: {MODE_SETTING}=compare doit build:{a.variant.spec}"
    return ""


def execute(a: Artifact, backend, inputs: dict, which: str = "") -> ModeRun:
    """Run `a` in its mode on `inputs` (input set `which`); `backend` is None in reference mode."""
    mode, graph = a.variant.mode, a.variant.graph
    if mode == "fused":
        return ModeRun(backend.run(a.dir, graph, inputs), {})
    if mode == "reference":
        values = V.reference(graph, inputs)
        return ModeRun({n: values[n] for n in graph.outputs}, {"timings": {}})
    values, steps = dict(inputs), []
    for step in node_steps(a, backend):
        row = _run_step(a, backend, step, values, len(steps))
        row["set"] = which
        if mode == "compare" or row.get("error"):
            steps.append(row)
    ok = all(s["ok"] for s in steps)
    return ModeRun({n: values[n] for n in graph.outputs}, {"timings": _unit_timings(a, backend)}, ok, steps)


def _run_step(a, backend, step, values: dict, index: int) -> dict:
    """Run one node (or its fallback) on the values the target produced so far; store its
    output in `values`; return its compare row: the node's reference (and error bound) on
    exactly the inputs the target gave it."""
    import torch
    node = step.node
    sub = step.unit.variant.graph if step.unit is not None else a.variant.graph.subgraph(node)
    args = {i: values[i] for i in sub.inputs}
    exp = V.expected(sub, args)
    row = {"step": index, "node": node.output, "op": node.op, "inputs": list(node.inputs),
           "ran": step.fallback or "on target"}
    if step.unit is None:                          # the target cannot build it: its torch reference
        values[node.output] = exp.values[node.output]
        return dict(row, ok=True, not_on_target=True)
    try:
        got = backend.run(step.unit.dir, sub, args)[node.output]
    except Exception as err:                       # noqa: BLE001 - a row with the error, and go on
        values[node.output] = exp.values[node.output]
        return dict(row, ok=False, error=f"run failed: {type(err).__name__}: {err}"[:500])
    values[node.output] = got.to(exp.values[node.output].device) if isinstance(got, torch.Tensor) else got
    r = V.compare(got, exp.values[node.output], exp.bounds.get(node.output),
                  *_overrides(a, sub.tensors[node.output].dtype))
    return dict(row, ok=r["ok"], **{k: r[k] for k in ("max_abs", "mean_abs", "max_rel", "bound", "ratio",
                                                      "mismatches", "error", "first_mismatches") if k in r})


def _overrides(a, dtype) -> tuple:
    over = a.variant.tolerance.get(dtype, {})
    return over.get("atol", 0.0), over.get("rtol", 0.0)


def _unit_timings(a, backend=None) -> dict:
    """Stage times summed over the node artifacts (what a node mode paid to build)."""
    total = {}
    for unit in units(a, backend):
        for stage in ("render", "compile", "assemble"):
            rec = read_json(unit.dir / ".stages" / f"{stage}.json")
            if rec:
                total[stage] = round(total.get(stage, 0.0) + rec["seconds"], 4)
    return total


def step_table(report: dict) -> str:
    """The compare report of one artifact as a table (a block per input set); the first
    step over its bound is marked; a node that did not run alone on the target says how it ran."""
    rows = []
    for s in report.get("steps", []):
        mark = "<-- first over its bound" if s.get("first_bad") else ("over" if not s["ok"] else "")
        if s.get("error"):
            mark = (mark + " " if mark else "") + s["error"][:80]
        status = "not on target" if s.get("not_on_target") else ("ok" if s["ok"] else "FAIL")
        rows.append([s.get("set", ""), s["step"], s["node"], f"{s['op']}({', '.join(s['inputs'])})",
                     s.get("ran", "on target"), fmt(s.get("max_abs")), fmt(s.get("max_rel")), fmt(s.get("bound")),
                     fmt(s.get("ratio")), status, mark])
    title = f"compare {report['spec']}/{report['variant']}/{report['target']}"
    return title + "\n" + table(["set", "step", "node", "op", "ran", "max_abs", "max_rel", "bound", "ratio",
                                 "status", ""], rows)
