"""Dispatch modes: planning per mode, FUSEBUILD_MODE, reference without a toolchain,
separate == fused, and a planted bug that fused catches and compare pins to one node."""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from fusebuild.backends import get_backend
from fusebuild.backends.base import Toolchain
from fusebuild.errors import SpecError
from fusebuild.plan import keys
from fusebuild.plan.artifacts import Artifact, units, with_mode
from fusebuild.plan.project import MODE_SETTING, Project, invocation_mode
from fusebuild.run import modes, stages
from fusebuild.run import validate as V
from fusebuild.spec import load_spec, parse_spec

from conftest import REPO

SWIGLU = (REPO / "specs" / "swiglu_prefill.yaml").read_text()
SWIGLU_NODES = ["gate", "up", "act", "h", "y"]
SWIGLU_V = "M64_E512_H2048_float32"


def small_swiglu(target: str) -> str:
    """The shipped swiglu_prefill graph, at its smaller shape only, on one target."""
    text = re.sub(r"^  M: .*$", "  M: [64]", SWIGLU, flags=re.M)
    text = re.sub(r"^  dtype: .*$", "  dtype: float32", text, flags=re.M)   # shipped: + bf16/fp16 for tir-cuda
    return re.sub(r"^targets: .*$", f"targets: [{target}]", text, flags=re.M)


def artifact(mode: str, target="mlir-cpu", out=Path("out")) -> Artifact:
    v = parse_spec(small_swiglu(target), "specs/swiglu_prefill.yaml").variants[0]
    return Artifact(dataclasses.replace(v, mode=mode), target, out)


def usable(target: str) -> bool:
    if not get_backend(target).toolchain().available:
        return False
    return True


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


# --- planning (no toolchain) --------------------------------------------------------------

def test_units_per_mode():
    assert units(artifact("fused")) == [artifact("fused")]
    assert units(artifact("reference")) == []
    for mode in ("separate", "compare"):
        us = units(artifact(mode))
        assert [u.node for u in us] == SWIGLU_NODES
        assert us[2].dir == Path(f"out/swiglu_prefill/{SWIGLU_V}/mlir-cpu/nodes/act")
        assert us[2].id == f"swiglu_prefill/{SWIGLU_V}/mlir-cpu/nodes/act"
        act = us[2].variant.graph
        assert act.inputs == ("gate",) and act.outputs == ("act",) and [n.op for n in act.nodes] == ["silu"]


def test_invocation_mode_overrides_the_spec(monkeypatch):
    a = artifact("fused")
    monkeypatch.delenv(MODE_SETTING, raising=False)
    assert with_mode([a], invocation_mode())[0].variant.mode == "fused"
    monkeypatch.setenv(MODE_SETTING, "compare")
    assert with_mode([a], invocation_mode())[0].variant.mode == "compare"
    monkeypatch.setenv(MODE_SETTING, "comapre")
    with pytest.raises(SpecError) as info:
        invocation_mode()
    assert str(info.value) == ("environment variable FUSEBUILD_MODE: unknown mode 'comapre'; did you mean 'compare'? "
                               "(valid: compare, fused, reference, separate)")


def test_mode_is_in_the_validate_key_and_doit_help(project):
    tc, backend = Toolchain(True), get_backend("mlir-cpu")
    assert keys.validate(artifact("fused"), backend, tc).fields != keys.validate(artifact("compare"), backend, tc).fields
    assert "FUSEBUILD_MODE=fused|separate|reference|compare" in project.doit("help", "build", check=0).text


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


def test_reference_mode_builds_nothing(project):
    project.spec("swiglu_prefill", small_swiglu("mlir-cpu"))
    result = project.doit(env={MODE_SETTING: "reference"}, check=0)
    assert result.ran_stage("render") == result.ran_stage("compile") == result.ran_stage("assemble") == []
    assert result.ran_stage("validate") == [f"validate:swiglu_prefill/{SWIGLU_V}/mlir-cpu"]
    assert "pass (reference)" in result.text


# --- on a target --------------------------------------------------------------------------

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
