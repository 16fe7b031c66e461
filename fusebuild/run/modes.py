"""Dispatch modes: how a variant is built and run when it is validated.

  fused      (default) the whole graph is one artifact: what a build ships.
  separate   one artifact per graph node (Graph.subgraph), chained on the host: each
             node's outputs are copied back and fed to the next; same final validation.
  reference  each node's torch reference on host tensors, chained the same way; no
             toolchain, no artifact. It checks the spec, the inputs and the validation
             path on a machine without the target's toolchain (its error is zero by
             construction).
  compare    like separate, and before each step its inputs are the target's own
             outputs of the previous steps; the node's torch reference runs on exactly
             those inputs and the step's max_abs / mean_abs / max_rel are recorded. Each
             row measures that node's error alone (nothing accumulates), so the first
             row over tolerance names the node to look at.

A mode is chosen per spec (`mode:`) or per invocation (FUSEBUILD_MODE, which wins); the
effective mode is written into the variant when the project plans its artifacts
(plan/artifacts.with_mode), so it is part of the validate key and of validation.json.
What each mode builds is planned in plan/artifacts.units; this module runs it.

Nothing here knows a target: node artifacts are ordinary artifacts rendered, compiled
and assembled by the same tasks and the same Backend methods as a fused one, and run
through `Backend.run`. A new target gets every mode by implementing its backend.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..fsutil import read_json
from ..plan.artifacts import Artifact, node_artifact, units
from ..plan.project import MODE_SETTING
from ..tables import fmt, table
from . import validate as V


@dataclass(frozen=True)
class ModeRun:
    outputs: dict              # graph output name -> tensor
    report: dict               # fields added to validation.json
    ok: bool = True            # False if a step of compare is over tolerance


def hint(a: Artifact) -> str:
    """What to try next when `a` fails validation in its mode."""
    if a.variant.mode in ("fused", "separate") and len(a.variant.graph.nodes) > 1:
        return f"to find the node: {MODE_SETTING}=compare doit build:{a.variant.spec}"
    return ""


def execute(a: Artifact, backend, inputs: dict) -> ModeRun:
    """Run `a` in its mode on `inputs`; `backend` is None in reference mode."""
    mode, graph = a.variant.mode, a.variant.graph
    if mode == "fused":
        return ModeRun(backend.run(a.dir, graph, inputs), {})
    if mode == "reference":
        values = V.reference(graph, inputs)
        return ModeRun({n: values[n] for n in graph.outputs}, {"timings": {}})
    values, steps = dict(inputs), []
    for node in graph.nodes:
        unit = node_artifact(a, node)
        sub = unit.variant.graph
        args = {i: values[i] for i in sub.inputs}
        got = backend.run(unit.dir, sub, args)[node.output]
        if mode == "compare":
            steps.append(_step(a, node, sub, args, got, len(steps)))
        values[node.output] = got
    report = {"timings": _unit_timings(a)}
    ok = True
    if mode == "compare":
        first = next((s for s in steps if not s["ok"]), None)
        for s in steps:
            s["first_bad"] = s is first
        report.update(steps=steps, first_bad_step=first["node"] if first else None)
        ok = first is None
    return ModeRun({n: values[n] for n in graph.outputs}, report, ok)


def _step(a, node, sub, args, got, index) -> dict:
    """One compare row: the node's reference on exactly the inputs the target gave it."""
    import torch
    dtype = sub.tensors[node.output].dtype
    with torch.no_grad():
        want = V.run_node(node, [args[i] for i in node.inputs]).to(getattr(torch, dtype))
    atol, rtol = V.tolerance(sub, dtype, a.variant.tolerance, want)
    r = V.compare(got, want, atol, rtol)
    return {"step": index, "node": node.output, "op": node.op, "inputs": list(node.inputs),
            "ok": r["ok"], "max_abs": r.get("max_abs"), "mean_abs": r.get("mean_abs"), "max_rel": r.get("max_rel"),
            "atol": atol, "rtol": rtol, "mismatches": r.get("mismatches"),
            **({"error": r["error"]} if "error" in r else {}),
            **({"first_mismatches": r["first_mismatches"]} if "first_mismatches" in r else {})}


def _unit_timings(a) -> dict:
    """Stage times summed over the node artifacts (what a node mode paid to build)."""
    total = {}
    for unit in units(a):
        for stage in ("render", "compile", "assemble"):
            rec = read_json(unit.dir / ".stages" / f"{stage}.json")
            if rec:
                total[stage] = round(total.get(stage, 0.0) + rec["seconds"], 4)
    return total


def step_table(report: dict) -> str:
    """The compare report of one artifact as a table; the first step over tolerance is marked."""
    rows = []
    for s in report.get("steps", []):
        mark = "<-- first over tolerance" if s.get("first_bad") else ("over" if not s["ok"] else "")
        rows.append([s["step"], s["node"], f"{s['op']}({', '.join(s['inputs'])})", fmt(s.get("max_abs")),
                     fmt(s.get("mean_abs")), fmt(s.get("max_rel")), fmt(s.get("atol")), "ok" if s["ok"] else "FAIL",
                     mark])
    title = f"compare {report['spec']}/{report['variant']}/{report['target']}"
    return title + "\n" + table(["step", "node", "op", "max_abs", "mean_abs", "max_rel", "atol", "status", ""], rows)
