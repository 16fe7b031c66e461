"""run/modes.py: reference mode without any toolchain, separate == fused, and a planted bug
that fused catches and compare pins to one node (through doit)."""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from fusebuild.backends import get_backend
from fusebuild.backends.base import Toolchain
from fusebuild.plan.artifacts import Artifact
from fusebuild.plan.project import MODE_SETTING, Project
from fusebuild.run import modes, stages
from fusebuild.run import validate as V
from fusebuild.spec import load_spec

from conftest import REPO, SWIGLU_V, small_swiglu, swiglu_artifact as artifact

SWIGLU_NODES = ["gate", "up", "act", "h", "y"]


def usable(target: str) -> bool:
    return get_backend(target).toolchain().available


TARGETS = [pytest.param(t, marks=pytest.mark.skipif(not usable(t), reason=f"{t}: toolchain not here"))
           for t in ("mlir-cpu", "tir-cpu")]


def plant_silu_as_relu(root: Path, folder: str) -> Path:
    """A test-only template override: the target's own ops.j2 with silu's macro body
    replaced by relu's (same signature), nothing else changed."""
    src = (REPO / "templates" / folder / "ops.j2").read_text()

    def macro(name):
        return re.compile(r"{% macro " + name + r"\((.*?)\) %}(.*?){% endmacro %}", re.S)
    relu_body = macro("relu").search(src).group(2)
    planted, n = macro("silu").subn(lambda m: "{% macro silu(" + m.group(1) + ") %}" + relu_body + "{% endmacro %}",
                                    src)
    assert n == 1 and planted != src
    (root / folder).mkdir(parents=True, exist_ok=True)
    (root / folder / "ops.j2").write_text(planted)
    return root


def report(project, target, variant=SWIGLU_V, spec="swiglu_prefill") -> dict:
    return json.loads((project.root / "out" / spec / variant / target / "validation.json").read_text())


def test_reference_mode_runs_without_any_toolchain(tmp_path, monkeypatch):
    class NoBackend(Project):
        def backend(self, target):
            raise AssertionError("reference mode must not touch a backend")

        def toolchain(self, target):
            return Toolchain.missing("iree is not installed")
    a = artifact("reference", out=tmp_path)
    assert stages.validate(NoBackend(tmp_path, tmp_path), a) is None
    r = json.loads(a.report.read_text())
    assert r["status"] == "pass" and r["mode"] == "reference" and r["max_abs"] == 0.0


@pytest.mark.e2e
def test_reference_mode_builds_nothing(project):
    project.spec("swiglu_prefill", small_swiglu("mlir-cpu"))
    result = project.doit(env={MODE_SETTING: "reference"}, check=0)
    assert result.ran_stage("render") == result.ran_stage("compile") == result.ran_stage("assemble") == []
    assert result.ran_stage("validate") == [f"validate:swiglu_prefill/{SWIGLU_V}/mlir-cpu"]
    assert "pass (reference)" in result.text


# --- on a target --------------------------------------------------------------------------

@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
def test_planted_bug_fused_fails_and_compare_points_at_the_node(project, tmp_path, target):
    folder = {"mlir-cpu": "mlir", "tir-cpu": "tir"}[target]
    env = {"FUSEBUILD_TEMPLATE_OVERRIDES": str(plant_silu_as_relu(tmp_path / "planted", folder))}
    project.spec("swiglu_prefill", small_swiglu(target))

    fused = project.doit(env=env)
    assert fused.code != 0 and report(project, target)["status"] == "fail"

    compare = project.doit(env=dict(env, FUSEBUILD_MODE="compare"))
    assert compare.code != 0
    r = report(project, target)
    assert r["status"] == "fail" and r["mode"] == "compare" and r["first_bad_step"] == "act"
    assert {s["node"]: s["ok"] for s in r["steps"]} == {"gate": True, "up": True, "act": False, "h": True, "y": True}
    assert [s["node"] for s in r["steps"] if s["first_bad"]] == ["act"]
    act = next(s for s in r["steps"] if s["node"] == "act")
    assert act["ratio"] > 100
    row = next(line for line in compare.text.splitlines() if re.match(r"linear +2 +act ", line))
    assert "FAIL" in row and "<-- first over its bound" in row


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.skipif(not usable("mlir-cpu"), reason="IREE is not installed")
def test_separate_matches_fused_and_modes_share_artifacts(project):
    project.spec("swiglu_prefill", small_swiglu("mlir-cpu"))
    fused = project.doit(check=0)
    assert len(fused.ran_stage("compile")) == 1

    separate = project.doit(env={MODE_SETTING: "separate"}, check=0)
    assert sorted(separate.ran_stage("compile")) == sorted(
        f"compile:swiglu_prefill/{SWIGLU_V}/mlir-cpu/nodes/{n}" for n in SWIGLU_NODES)
    assert report(project, "mlir-cpu")["status"] == "pass"

    # compare reuses separate's node artifacts; going back to fused reuses the fused one
    compare = project.doit(env={MODE_SETTING: "compare"}, check=0)
    assert compare.ran == [f"validate:swiglu_prefill/{SWIGLU_V}/mlir-cpu"]
    r = report(project, "mlir-cpu")
    assert r["first_bad_step"] is None and all(s["ok"] for s in r["steps"]) and len(r["steps"]) == 2 * 5
    assert project.doit(check=0).ran == [f"validate:swiglu_prefill/{SWIGLU_V}/mlir-cpu"]

    # the same inputs through both: final outputs both within the reference's bound
    a = project_artifact(project, "mlir-cpu")
    backend = get_backend("mlir-cpu")
    inputs = V.make_inputs(a.variant.graph, a.variant.seed)
    exp = V.expected(a.variant.graph, inputs)
    for m in ("fused", "separate"):
        out = modes.execute(dataclasses.replace(a, variant=dataclasses.replace(a.variant, mode=m)), backend,
                            inputs).outputs["y"]
        assert V.compare(out, exp.values["y"], exp.bounds["y"])["ok"], m


def project_artifact(project, target) -> Artifact:
    v = load_spec(project.root / "specs" / "swiglu_prefill.yaml").variants[0]
    return Artifact(v, target, project.root / "out")
