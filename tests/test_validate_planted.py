"""Planted bugs the old global tolerance let through (issue 15, item 4), caught on every CPU
target: GELU's tanh form where the spec asks for the exact one, and a sigmoid clamped at
+-6, planted into each target's own templates through FUSEBUILD_TEMPLATE_OVERRIDES and
built with real `doit`. Each test also shows the old validation would have passed it: the
GELU output is within the old global tolerance (4 eps + 64 eps sqrt(K), times max|reference|),
and the old input set never drove the sigmoid past the clamp."""
from __future__ import annotations

import json
import math

import pytest
from conftest import REPO

from fusebuild.run import validate as V
from fusebuild.spec import load_spec

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SPEC = """\
name: planted
params: {M: [32], N: 64, K: 512}   # K as in the shipped gemm_bias_gelu
inputs:
  x: {shape: [M, K], dtype: float32}
  w: {shape: [N, K], dtype: float32}
  b: {shape: [N], dtype: float32}
graph:
  - {op: matmul, inputs: [x, w], output: y_gelu, transpose_b: true, epilogue: [{add: b}, gelu]}
  - {op: matmul, inputs: [x, w], output: y_sigmoid, transpose_b: true, epilogue: [{add: b}, sigmoid]}
STANDALONE
outputs: [y_gelu, y_sigmoid OUTS]
targets: [TARGET]
seed: 5
"""
STANDALONE = ("  - {op: gelu, inputs: [x], output: s_gelu}\n  - {op: sigmoid, inputs: [x], output: s_sigmoid}",
              ", s_gelu, s_sigmoid")

# (target, template file, text, planted text): each bug as an edit of the real template
GELU_TANH = {
    "tir-cpu": ("tir", "ops.j2", '{%- if approximate == "tanh" -%}', "{%- if true -%}"),
    "mlir-cpu": ("mlir", "ops.j2", '{% if approximate == "tanh" %}', "{% if true %}"),
    # mlir-aie's emulator runs each kernel by its name: call the tanh kernel instead
    "mlir-aie": ("aie", "core.j2", "func.call @{{ s.func }}",
                 "func.call @{{ s.func | replace('gelu_exact', 'gelu_tanh') }}"),
}
SIGMOID_CLAMP = {
    "tir-cpu": ("tir", "ops.j2", "{% macro sigmoid(a, dt) %}T.sigmoid({{ a }}){% endmacro %}",
                "{% macro sigmoid(a, dt) %}"
                "T.sigmoid(T.max(T.min({{ a }}, T.{{ dt }}(6)), T.{{ dt }}(-6))){% endmacro %}"),
    "mlir-cpu": ("mlir", "ops.j2", "{% macro sigmoid(r, a, ty) %}\n{{ _sigmoid(r, a, ty) }}",
                 ("{% macro sigmoid(r, a, ty) %}\n{{ r }}_six = arith.constant 6.0 : {{ ty }}\n"
                  "{{ r }}_msix = arith.constant -6.0 : {{ ty }}\n"
                  "{{ r }}_lo = arith.minimumf {{ a }}, {{ r }}_six : {{ ty }}\n"
                  "{{ r }}_cl = arith.maximumf {{ r }}_lo, {{ r }}_msix : {{ ty }}\n{{ _sigmoid(r, r ~ '_cl', ty) }}")),
}


def plant(tmp_path, edits: dict, target: str):
    folder, name, old, new = edits[target]
    src = (REPO / "templates" / folder / name).read_text()
    assert src.count(old) == 1, f"templates/{folder}/{name} changed: re-plant the bug"
    (tmp_path / "overrides" / folder).mkdir(parents=True)
    (tmp_path / "overrides" / folder / name).write_text(src.replace(old, new))
    if target == "mlir-aie":     # the kernel's declaration must match its call
        design = (REPO / "templates/aie/design.mlir.j2").read_text()
        old_decl = "func.func private @{{ k.name }}"
        assert design.count(old_decl) == 1
        (tmp_path / "overrides/aie/design.mlir.j2").write_text(design.replace(
            old_decl, "func.func private @{{ k.name | replace('gelu_exact', 'gelu_tanh') }}"))
    return tmp_path / "overrides"


def build(project, tmp_path, target, edits):
    standalone = target != "mlir-aie"          # mlir-aie renders GEMMs with epilogues only
    text = (SPEC.replace("STANDALONE", STANDALONE[0] if standalone else "")
            .replace(" OUTS", STANDALONE[1] if standalone else "").replace("TARGET", target))
    path = project.spec("planted", text)
    project.env["FUSEBUILD_TEMPLATE_OVERRIDES"] = str(plant(tmp_path, edits, target))
    result = project.doit("build")
    report = json.loads((project.root / f"out/planted/M32_N64_K512/{target}/validation.json").read_text())
    failing = {(s, name) for s, d in report["input_sets"].items() for name, r in d["outputs"].items() if not r["ok"]}
    return result, report, failing, load_spec(path).variants[0]


def old_tolerance_passes(variant, report, which: str, output: str) -> bool:
    """Would `max_abs` have passed the old rule, atol = (4 eps + 64 eps sqrt(K)) max(max|ref|, 1)?"""
    g = variant.graph
    ref = V.reference(g, V.make_inputs(g, variant.seed, which))[output]
    eps = 2.0 ** -23
    atol = (4 * eps + 64 * eps * math.sqrt(512)) * max(float(ref.abs().max()), 1.0)
    return report["input_sets"][which]["outputs"][output]["max_abs"] <= atol


@pytest.mark.parametrize("target", sorted(GELU_TANH))
def test_gelu_tanh_for_exact_is_caught(project, tmp_path, target):
    result, report, failing, v = build(project, tmp_path, target, GELU_TANH)
    assert result.code != 0 and report["status"] == "fail", result.text
    assert ("linear", "y_gelu") in failing, failing
    assert not {f for f in failing if "sigmoid" in f[1]}, failing
    if target != "mlir-aie":
        assert ("linear", "s_gelu") in failing, failing
    assert old_tolerance_passes(v, report, "linear", "y_gelu")


@pytest.mark.parametrize("target", sorted(SIGMOID_CLAMP))
def test_sigmoid_clamped_at_six_is_caught(project, tmp_path, target):
    result, report, failing, v = build(project, tmp_path, target, SIGMOID_CLAMP)
    assert result.code != 0 and report["status"] == "fail", result.text
    assert {("wide", "y_sigmoid"), ("wide", "s_sigmoid")} <= failing, failing
    assert not {f for f in failing if "gelu" in f[1]}, failing
    # the old validation (the linear set, the global tolerance) passed it: it never got past |x| = 6
    assert ("linear", "y_sigmoid") not in failing and old_tolerance_passes(v, report, "linear", "y_sigmoid")


def test_without_a_planted_bug_every_target_passes(project):
    """The same spec, unplanted, on every CPU target: zero false failures."""
    text = SPEC.replace("STANDALONE", "").replace(" OUTS", "").replace("TARGET", "tir-cpu, mlir-cpu, mlir-aie")
    project.spec("planted", text)
    result = project.doit("build", check=0)
    for target in ("tir-cpu", "mlir-cpu", "mlir-aie"):
        report = json.loads((project.root / f"out/planted/M32_N64_K512/{target}/validation.json").read_text())
        assert report["status"] in ("pass", "emulated"), (target, report)
        assert set(report["input_sets"]) == {"linear", "wide"}
    assert "Traceback" not in result.text
