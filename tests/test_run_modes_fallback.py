"""Compare mode on every target (issue 15, item 5): a node a target cannot build alone runs
through a fallback the compare table names, and a node whose run raises gets a row with
its error instead of no table. Planning uses the real backends' `can_build` (a render
probe: pure, no toolchain); running uses a stand-in target that computes each unit with
torch, so these tests need no compiler."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from conftest import REPO

from fusebuild.backends import get_backend
from fusebuild.ir.ops import OPS
from fusebuild.plan.artifacts import Artifact, node_steps, units
from fusebuild.run import modes
from fusebuild.run import validate as V
from fusebuild.spec import parse_spec

SWIGLU = (REPO / "specs" / "swiglu_prefill.yaml").read_text()


def swiglu(target: str, mode="compare") -> Artifact:
    text = re.sub(r"^  M: .*$", "  M: [64]", SWIGLU, flags=re.MULTILINE)
    text = re.sub(r"^  E: .*$", "  E: 128", text, flags=re.MULTILINE)
    text = re.sub(r"^  H: .*$", "  H: 256", text, flags=re.MULTILINE)
    dtype = "bfloat16" if target == "tir-cuda" else "float32"
    text = re.sub(r"^  dtype: .*$", f"  dtype: {dtype}", text, flags=re.MULTILINE)
    text = re.sub(r"^targets: .*$", f"targets: [{target}]", text, flags=re.MULTILINE)
    v = parse_spec(text, "specs/swiglu_prefill.yaml").variants[0]
    return Artifact(dataclasses.replace(v, mode=mode), target, Path("out"))


@pytest.mark.parametrize("target", ["tir-cuda"])
def test_elementwise_nodes_fuse_with_their_producer_on_gemm_only_targets(target):
    steps = node_steps(swiglu(target), get_backend(target))
    assert [(s.node.output, s.fallback) for s in steps] == [
        ("gate", ""), ("up", ""), ("act", "fused with its producer gate"), ("h", "fused with its producer up"),
        ("y", "")]
    act = steps[2].unit.variant.graph
    assert [n.op for n in act.nodes] == ["matmul", "silu"] and act.inputs == ("x", "wg") and act.outputs == ("act",)
    h = steps[3].unit.variant.graph
    assert [n.op for n in h.nodes] == ["matmul", "mul"] and set(h.inputs) == {"x", "wu", "act"}
    assert [u.node for u in units(swiglu(target), get_backend(target))] == ["gate", "up", "act", "h", "y"]


def test_every_node_builds_alone_on_cpu_targets_and_mlir_aie():
    for target in ("tir-cpu", "mlir-cpu", "mlir-aie"):
        assert all(s.fallback == "" for s in node_steps(swiglu(target), get_backend(target)))


class Torchy:
    """A stand-in target: each unit runs as its torch reference; some graphs refused, some runs raise."""

    def __init__(self, refuse=lambda g: None, raise_for=()):
        self.refuse, self.raise_for = refuse, set(raise_for)

    def can_build(self, graph, hints=None):
        return self.refuse(graph)

    def run(self, build_dir, graph, inputs):
        if graph.outputs[0] in self.raise_for:
            raise RuntimeError(f"segfault in {graph.outputs[0]}")
        values = V.reference(graph, inputs)
        return {o: values[o] for o in graph.outputs}


def no_lone_elementwise(graph):
    if all(OPS[n.op].elementwise for n in graph.nodes):
        return "elementwise work needs a matmul"
    return None


def test_a_node_no_pair_can_build_runs_as_its_torch_reference_marked_not_on_target():
    def only_matmul(graph):
        return None if [n.op for n in graph.nodes] == ["matmul"] else "only lone matmuls"
    a = swiglu("mlir-cpu")
    run = modes.execute(a, Torchy(refuse=only_matmul), V.make_inputs(a.variant.graph, 0), "linear")
    rows = {s["node"]: s for s in run.steps}
    assert rows["act"]["ran"] == "torch reference, not on target: only lone matmuls"
    assert rows["act"]["not_on_target"] and rows["gate"]["ran"] == "on target"
    report = {"spec": "swiglu_prefill", "variant": "v", "target": "t", "steps": run.steps}
    line = next(ln for ln in modes.step_table(report).splitlines() if " act " in ln)
    assert "torch reference, not on target: only lone matmuls" in line and "not on target" in line


def test_fused_with_its_producer_runs_the_pair_on_the_targets_own_values():
    a = swiglu("mlir-aie")
    run = modes.execute(a, Torchy(refuse=no_lone_elementwise), V.make_inputs(a.variant.graph, 0), "linear")
    rows = {s["node"]: s for s in run.steps}
    assert rows["act"]["ran"] == "fused with its producer gate" and rows["act"]["ok"]
    assert run.ok and all(s["ratio"] < 1 for s in run.steps)


def test_a_node_whose_run_raises_gets_a_row_with_its_error():
    a = swiglu("mlir-cpu")
    run = modes.execute(a, Torchy(raise_for={"up"}), V.make_inputs(a.variant.graph, 0), "linear")
    assert not run.ok
    rows = {s["node"]: s for s in run.steps}
    assert set(rows) == {"gate", "up", "act", "h", "y"}                 # the table goes on after the error
    assert rows["up"]["ok"] is False and rows["up"]["error"] == "run failed: RuntimeError: segfault in up"
    assert rows["y"]["ok"]                                              # later nodes ran on up's reference value
    table = modes.step_table({"spec": "s", "variant": "v", "target": "t", "steps": run.steps})
    assert "run failed: RuntimeError: segfault in up" in table


def test_separate_mode_reports_only_the_rows_that_raised():
    a = swiglu("mlir-cpu", mode="separate")
    run = modes.execute(a, Torchy(raise_for={"h"}), V.make_inputs(a.variant.graph, 0), "linear")
    assert [s["node"] for s in run.steps] == ["h"] and not run.ok


@pytest.mark.e2e
@pytest.mark.slow
def test_compare_mode_builds_and_tabulates_on_mlir_aie(project):
    """The README's `FUSEBUILD_MODE=compare doit build:swiglu_prefill`, on mlir-aie (emulated)."""
    text = re.sub(r"^  M: .*$", "  M: [64]", SWIGLU, flags=re.MULTILINE)
    text = re.sub(r"^  dtype: .*$", "  dtype: float32", text, flags=re.MULTILINE)
    project.spec("swiglu_prefill", re.sub(r"^targets: .*$", "targets: [mlir-aie]", text, flags=re.MULTILINE))
    result = project.doit("build:swiglu_prefill", env={"FUSEBUILD_MODE": "compare"})
    assert result.code == 0, result.text
    rows = [ln for ln in result.text.splitlines() if re.match(r"(linear|wide) +\d ", ln)]
    assert len(rows) == 10, result.text
    assert all(" on target " in ln for ln in rows), result.text        # mlir-aie builds every node alone
    assert all(ln.rstrip().endswith(" ok") for ln in rows), result.text
