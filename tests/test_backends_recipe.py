"""docs/architecture.md's recipes, kept honest: a target built exactly as "add a target" says
(tests/data/stub_target: a hints.py, a backend.py implementing backends.base.Backend,
templates/stub/ with kernel.py.j2 and ops.j2, one TargetInfo entry) gets, with no other
code, the task graph, validation, incremental builds, the artifact cache and the
debugging modes; its schedule hint, declared once ("add a schedule hint"), is checked
when a spec loads and recorded in validation.json."""
from __future__ import annotations

import json
import shutil

import pytest

from conftest import REPO, Project

STUB = REPO / "tests" / "data" / "stub_target"
SPEC = """\
name: mlp
params:
  M: [4]
inputs:
  x: {shape: [M, 16], dtype: float32}
  w: {shape: [32, 16], dtype: float32}
  b: {shape: [32], dtype: float32}
graph:
  - {op: matmul, inputs: [x, w], output: h, transpose_b: true, epilogue: [{add: b}, {gelu: {approximate: tanh}}]}
  - {op: sigmoid, inputs: [h], output: y}
outputs: [y]
targets: [stub]
schedule: {stub: {unroll: 2}}
"""
ART = "mlp/M4/stub"
STAGES = ("render", "compile", "assemble", "validate")


def stub_project(root) -> Project:
    p = Project(root)
    shutil.copytree(STUB / "stub", root / "stub")
    shutil.copy(STUB / "dodo.py", root / "dodo.py")
    p.env["FUSEBUILD_TEMPLATE_OVERRIDES"] = str(STUB / "templates")
    return p


def report(p: Project) -> dict:
    return json.loads((p.root / "out" / ART / "validation.json").read_text())


@pytest.mark.e2e
@pytest.mark.slow
def test_a_target_built_by_the_recipe_gets_tasks_validation_cache_and_modes(tmp_path):
    p = stub_project(tmp_path / "one")
    path = p.spec("mlp", SPEC)
    first = p.doit("build", check=0)
    assert sorted(first.ran) == sorted(f"{s}:{ART}" for s in STAGES), first.text
    r = report(p)
    assert r["status"] == "pass" and r["ratio"] < 1, r
    assert r["schedule"]["hints"] == {"unroll": 2} and r["schedule"]["resolved"] == {"unroll": 2}
    assert "# unroll: 2" in (p.root / "out" / ART / "kernel.py").read_text()
    assert p.doit("build", check=0).ran == []                                   # incremental
    # the hint is checked against the declaration when the spec loads: one line, file:line
    path.write_text(SPEC.replace("unroll: 2", "unroll: 9"))
    bad = p.doit("build")
    assert bad.code != 0 and "specs/mlp.yaml:13: schedule.stub.unroll: hint unroll=9 is out of range " \
                                     "(valid: an integer in [1, 8])" in bad.text, bad.text
    # a hint change rerenders; the compiled code is the same (a comment), so the rebuild stops
    # there, and the report still says which hints the artifact was built with
    path.write_text(SPEC.replace("unroll: 2", "unroll: 3"))
    third = p.doit("build", check=0)
    assert sorted(third.ran) == sorted(f"{s}:{ART}" for s in ("render", "compile", "validate")), third.text
    assert report(p)["schedule"]["resolved"] == {"unroll": 3}
    # another checkout sharing the cache builds nothing itself
    other = stub_project(tmp_path / "two")
    other.cache = p.cache
    other.env["FUSEBUILD_CACHE_DIR"] = str(p.cache)
    other.spec("mlp", SPEC.replace("unroll: 2", "unroll: 3"))
    other.doit("build", check=0)
    assert other.cache_report()["hits"] == other.cache_report()["lookups"] == 4
    # the debugging modes: compare builds one artifact per node and checks each
    compare = p.doit("build", check=0, env={"FUSEBUILD_MODE": "compare"})
    assert sorted(compare.ran_stage("render")) == [f"render:{ART}/nodes/{n}" for n in ("h", "h_e1", "h_mm", "y")]
    r = report(p)
    assert r["mode"] == "compare" and r["first_bad_step"] is None and len(r["steps"]) == 2 * 4, r   # 2 input sets
