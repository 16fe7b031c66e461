"""The coverage corpus (tests/specs/, separate from the shipped examples), built and
validated on every CPU target by one real `doit` run: tails (M, N, K not multiples of 16
or 64, M = 1), every op in epilogue position and standalone, non-commutative epilogues
with the accumulator on either side. Every artifact must pass (or be `emulated`) on both
input sets: zero false failures of the per-element bound, and no target bug hiding."""
from __future__ import annotations

import json
import shutil

import pytest
from conftest import REPO

from fusebuild.ir.graph import fuse
from fusebuild.spec import load_spec

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
CORPUS = sorted((REPO / "tests/specs").glob("*.yaml"))
CPU_TARGETS = {"tir-cpu", "mlir-cpu", "mlir-aie"}


def test_corpus_covers_what_it_claims():
    specs = [load_spec(p) for p in CORPUS]
    graphs = [v.graph for s in specs for v in s.variants]
    dims = {(g.tensors[n.inputs[0]].shape[0], g.tensors[n.output].shape[1], g.tensors[n.inputs[0]].shape[1])
            for g in graphs for n in g.nodes if n.op == "matmul"}
    assert any(m == 1 for m, _, _ in dims)
    assert {"M", "N", "K"} <= {k for mnk in dims for k, d in zip("MNK", mnk) if d % 16 and d % 64}
    in_epilogue, standalone = set(), set()          # fused into a matmul's store, or a kernel of its own
    for g in graphs:
        for group in fuse(g):
            ops = [n.op for n in group.nodes if n.op != "matmul"]
            (in_epilogue if group.matmul is not None else standalone).update(ops)
    elementwise = {"add", "sub", "mul", "relu", "sigmoid", "silu", "gelu"}
    assert elementwise <= in_epilogue and elementwise <= standalone, (in_epilogue, standalone)
    sides = {(n.op, n.inputs.index(i)) for g in graphs for n in g.nodes if n.op in ("sub", "mul")
             for i in n.inputs if i.startswith("acc")}
    assert {("sub", 0), ("sub", 1), ("mul", 1)} <= sides
    assert {t for s in specs for v in s.variants for t in v.targets} == CPU_TARGETS


def test_corpus_builds_and_validates_on_every_cpu_target(project):
    for path in CORPUS:
        shutil.copy(path, project.root / "specs" / path.name)
    result = project.doit("-n", "2", "build")
    assert result.code == 0, result.text
    reports = [json.loads(p.read_text()) for p in (project.root / "out").rglob("validation.json")]
    expected = {(s.name, v.name, t) for p in CORPUS for s in [load_spec(p)] for v in s.variants for t in v.targets}
    assert {(r["spec"], r["variant"], r["target"]) for r in reports} == expected
    for r in reports:
        assert r["status"] == ("emulated" if r["target"] == "mlir-aie" else "pass"), r
        assert set(r["input_sets"]) == {"linear", "wide"} and r["ratio"] < 0.5, r
