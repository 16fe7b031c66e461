"""Dynamic M on the CPU targets: one artifact takes M at run time and validates at every
sample size (the minimum, a prime, the maximum, the spec's `validate:`), through the
backend interface and through `doit build` (validation.json's samples, the summary).
Also x @ x^T (one tensor as both matmul operands) on both targets."""
from __future__ import annotations

import json

import pytest
import torch
from backend_build import build, validate, variant_of
from conftest import REPO

from fusebuild.backends import get_backend
from fusebuild.run import validate as V
from fusebuild.run.samples import at_size

CPU = ["tir-cpu", "mlir-cpu"]

GEMM = """\
name: dgemm
params:
  M: {{dynamic: [1, 40], validate: [4, 33]}}
inputs:
  x: {{shape: [M, 24], dtype: float32}}
  w: {{shape: [{wshape}], dtype: float32}}
  bias: {{shape: [20], dtype: float32}}
  r: {{shape: [M, 20], dtype: float32}}
graph:
  - {{op: matmul, inputs: [x, w], output: y, transpose_b: {tb}, epilogue: [{{add: bias}}, gelu, {{add: r}}]}}
outputs: [y]
targets: [{target}]
{schedule}"""

SWIGLU = """\
name: dswiglu
params:
  M: {{dynamic: [1, 70]}}
inputs:
  x: {{shape: [M, 32], dtype: float32}}
  wg: {{shape: [80, 32], dtype: float32}}
  wu: {{shape: [80, 32], dtype: float32}}
  wd: {{shape: [32, 80], dtype: float32}}
graph:
  - {{op: matmul, inputs: [x, wg], output: g, transpose_b: true, epilogue: [silu]}}
  - {{op: matmul, inputs: [x, wu], output: h, transpose_b: true, epilogue: [{{mul: g}}]}}
  - {{op: matmul, inputs: [h, wd], output: y, transpose_b: true}}
outputs: [h, y]
targets: [{target}]
"""


def need(target):
    if not get_backend(target).toolchain().available:
        pytest.skip(f"{target}: toolchain missing")


@pytest.mark.parametrize("target", CPU)
@pytest.mark.parametrize("tb", [True, False])
def test_dynamic_gemm_is_one_artifact_valid_at_every_sample(tmp_path, target, tb):
    need(target)
    v = variant_of(GEMM.format(wshape="20, 24" if tb else "24, 20", tb=str(tb).lower(), target=target,
                               schedule=""), target)
    assert v.name == "M1to40" and v.dynamic == {"M": (1, 40)}
    result = validate(v, target, tmp_path)
    assert [s["M"] for s in result.samples] == [1, 4, 5, 33, 40]         # min, validate:, a prime, max
    assert result.ok and all(s["status"] == "pass" for s in result.samples), result.samples
    folder = tmp_path / "dgemm" / "M1to40" / target
    source = (folder / ("kernel.py" if target == "tir-cpu" else "kernel.mlir")).read_text()
    if target == "tir-cpu":
        assert "dim_M = T.int32()" in source and "x = T.match_buffer(var_x, (dim_M, 24)" in source
        assert ("if dim_M < 8:" in source) == tb        # the run-time GEMV/GEMM dispatch (N, K) weights get
    else:
        assert "%x: tensor<?x24xf32>" in source and "func.call @main_rows32(" in source


@pytest.mark.parametrize("target", CPU)
def test_dynamic_artifact_runs_at_a_size_it_was_not_validated_at(tmp_path, target):
    need(target)
    v = variant_of(GEMM.format(wshape="20, 24", tb="true", target=target, schedule=""), target)
    backend = build(v, target, tmp_path)
    for m in (2, 23, 33):
        g = v.graph.specialize({"M": m})
        inputs = V.make_inputs(g, 7)
        got = backend.run(tmp_path, g, inputs)["y"]
        exp = V.expected(g, inputs)
        assert got.shape == (m, 20)
        assert V.compare(got, exp.values["y"], exp.bounds["y"])["ok"], m


@pytest.mark.parametrize("target", CPU)
def test_dynamic_swiglu_with_two_outputs_validates(tmp_path, target):
    need(target)
    v = variant_of(SWIGLU.format(target=target), target)
    result = validate(v, target, tmp_path)
    assert [s["M"] for s in result.samples] == [1, 7, 70]
    assert result.ok, result.samples


@pytest.mark.parametrize("target", CPU)
def test_x_times_x_transposed_builds_and_validates(tmp_path, target):
    need(target)
    text = f"""\
name: xxt
inputs:
  x: {{shape: [37, 19], dtype: float32}}
graph:
  - {{op: matmul, inputs: [x, x], output: y, transpose_b: true, epilogue: [relu]}}
  - {{op: matmul, inputs: [y, y], output: z}}
outputs: [z]
targets: [{target}]
"""
    result = validate(variant_of(text, target), target, tmp_path)
    assert result.ok, result.outputs


@pytest.mark.parametrize("target", CPU)
@pytest.mark.parametrize("m", ["5", "{dynamic: [1, 30]}"])
def test_an_epilogue_may_read_an_earlier_output(tmp_path, target, m):
    """y = h @ w + h with h a graph output too (found by a graph fuzz: tir-cpu's schedule
    once refused it)."""
    need(target)
    text = f"""\
name: reuse
params:
  M: {m}
inputs:
  x: {{shape: [M, 7], dtype: float32}}
  w: {{shape: [7, 7], dtype: float32}}
graph:
  - {{op: matmul, inputs: [x, w], output: h}}
  - {{op: matmul, inputs: [h, w], output: y, epilogue: [{{add: h}}]}}
outputs: [y, h]
targets: [{target}]
"""
    result = validate(variant_of(text, target), target, tmp_path)
    assert result.ok, result.outputs


# x @ x^T with a dynamic M: M is both the rows and the columns of the output
DXXT = """\
name: dxxt
params:
  M: {dynamic: [1, 50]}
inputs:
  x: {shape: [M, 16], dtype: float32}
graph:
  - {op: matmul, inputs: [x, x], output: y, transpose_b: true}
outputs: [y]
targets: [mlir-cpu]
"""


def test_dynamic_x_times_x_transposed_on_mlir_cpu(tmp_path):
    """M as both the rows and the columns of the output: mlir-cpu keeps `?` dimensions."""
    need("mlir-cpu")
    v = variant_of(DXXT, "mlir-cpu")
    result = validate(v, "mlir-cpu", tmp_path)
    assert result.ok and [s["M"] for s in result.samples] == [1, 7, 50]
    assert "tensor<?x?xf32>" in (tmp_path / "dxxt" / "M1to50" / "mlir-cpu" / "kernel.mlir").read_text()


TILES = "schedule: {mlir-cpu: {dist_m: 32, dist_n: 16, vec_m: 8, vec_n: 16, vec_k: 8}}\n"


@pytest.mark.parametrize("graph", ["rows", "xxt"])
def test_mlir_cpu_tile_hints_of_a_dynamic_m_compile_and_validate_at_every_size(tmp_path, graph):
    """Tile hints are checked against the range's maximum (tune.space.Problem), so a tuned
    winner meets M below its tile: a `?` dimension (x @ x^T keeps them) takes partial tiles;
    the row functions take the tiles where they fit (32 rows) and IREE's own below (rows.py).
    Both compile and validate at every size."""
    need("mlir-cpu")
    text = GEMM.format(wshape="20, 24", tb="true", target="mlir-cpu", schedule="") if graph == "rows" else DXXT
    v = variant_of(text + TILES, "mlir-cpu")
    result = validate(v, "mlir-cpu", tmp_path)
    assert result.ok and [s["M"] for s in result.samples][0] == 1, result.samples
    mlir = next(tmp_path.rglob("kernel.mlir")).read_text()
    funcs = {f.split("(", 1)[0]: f for f in mlir.split("func.func ")[1:]}
    tiled = sorted(name for name, f in funcs.items() if "distribution = [32, 16, 0]" in f)
    assert tiled == (["private @main_rows32"] if graph == "rows" else ["@main"]), tiled


def test_at_size_specializes_only_the_graph():
    v = variant_of(GEMM.format(wshape="20, 24", tb="true", target="tir-cpu", schedule=""), "tir-cpu")
    from fusebuild.plan.artifacts import Artifact
    a = Artifact(v, "tir-cpu", REPO / "out")
    b = at_size(a, {"M": 9})
    assert b.dir == a.dir and b.variant.name == v.name
    assert b.variant.graph.tensors["y"].shape == (9, 20) and not b.variant.graph.dynamic
    assert at_size(a, {}) is a


@pytest.mark.e2e
@pytest.mark.slow
def test_doit_build_reports_every_sample_and_a_planted_bug_at_its_size(project):
    need("tir-cpu")
    project.spec("dgemm", GEMM.format(wshape="20, 24", tb="true", target="tir-cpu, mlir-cpu", schedule=""))
    result = project.doit("build", check=0)
    for target in CPU:
        report = json.loads((project.root / "out/dgemm/M1to40" / target / "validation.json").read_text())
        assert report["status"] == "pass"
        assert [s["M"] for s in report["samples"]] == [1, 4, 5, 33, 40]
        assert all(s["status"] == "pass" and s["max_abs"] is not None for s in report["samples"])
        assert set(report["worst_sample"]) == {"M"}
    assert "5 sizes, worst M=" in result.text
    # a planted bug (the epilogue dropped) fails at the first size and says which
    project.env["FUSEBUILD_TEMPLATE_OVERRIDES"] = str(REPO / "tests/data/planted_drop_bias")
    bad = project.doit("build")
    assert bad.code != 0
    report = json.loads((project.root / "out/dgemm/M1to40/tir-cpu/validation.json").read_text())
    assert report["status"] == "fail" and report["worst_sample"] == {"M": 1}
    assert all(s["status"] == "fail" and s["reason"].startswith("y: ") for s in report["samples"])
    assert "validate dgemm/M1to40/tir-cpu: FAIL at M=1" in bad.text


def test_dynamic_inputs_are_drawn_at_the_sample_size():
    v = variant_of(GEMM.format(wshape="20, 24", tb="true", target="tir-cpu", schedule=""), "tir-cpu")
    g = v.graph.specialize({"M": 5})
    inputs = V.make_inputs(g, v.seed)
    assert inputs["x"].shape == torch.Size([5, 24]) and inputs["r"].shape == torch.Size([5, 20])
