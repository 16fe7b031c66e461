"""backends/mlir_cpu/backend.py: one IREE dispatch per fused group, laid-out inputs, compile
errors, every shipped spec validating, and incremental builds with counts (through doit)."""
from __future__ import annotations

import json
import re
import shutil

import pytest

from fusebuild.backends import get_backend
from fusebuild.backends.mlir_cpu.backend import dispatch_count
from fusebuild.ir.graph import fuse
from fusebuild.spec import load_spec

from conftest import REPO, build as build_in, gemm_spec, variants

SHIPPED = sorted((REPO / "specs").glob("*.yaml"))
BACKEND = get_backend("mlir-cpu")
pytestmark = pytest.mark.skipif(not BACKEND.toolchain().available, reason="IREE is not installed")


def only_target(text: str, target: str = "mlir-cpu") -> str:
    text = re.sub(r"^  dtype: \[.*$", "  dtype: float32", text, flags=re.M)   # drop the tir-cuda dtypes
    return re.sub(r"^targets: .*$", f"targets: [{target}]", text, flags=re.M)


def build(tmp_path, spec, variant: int = 0):
    """Render, compile and assemble one variant (of those building mlir-cpu) into tmp_path;
    return (variant, folder)."""
    v = variants(spec, "mlir-cpu")[variant]
    return v, build_in(tmp_path, v, "mlir-cpu")


def test_gemm_bias_silu_compiles_to_one_dispatch(tmp_path):
    """The epilogue is fused into the matmul's dispatch: IREE dumps one executable source
    (--iree-hal-dump-executable-sources-to, kept as executables.mlir) with one export."""
    v, folder = build(tmp_path, REPO / "specs" / "gemm_bias_silu.yaml", variant=1)
    sources = (folder / "executables.mlir").read_text()
    assert sources.count("// ----- ") == 1                      # dumped files
    assert dispatch_count(sources) == 1
    assert "linalg.matmul" in sources or "linalg.generic" in sources
    assert "math.exp" in sources or "exp" in sources              # silu lives in that same dispatch


def test_swiglu_compiles_to_one_dispatch_per_fused_group(tmp_path):
    v, folder = build(tmp_path, REPO / "specs" / "swiglu_prefill.yaml")
    assert dispatch_count((folder / "executables.mlir").read_text()) == len(fuse(v.graph)) == 3


def test_layouts_and_broadcast_and_two_outputs(tmp_path):
    import torch
    from fusebuild.run import validate as V
    spec = """\
    name: lay
    inputs:
      x: {shape: [8, 64], dtype: float32, layout: col_major}
      w: {shape: [32, 64], dtype: float32, layout: {tiled: [8, 16]}}
      b: {shape: [1, 32], dtype: float32}
    graph:
      - {op: matmul, inputs: [x, w], output: y, transpose_b: true, epilogue: [{add: b}, {gelu: {approximate: tanh}}]}
      - {op: sigmoid, inputs: [y], output: z}
      - {op: sub, inputs: [z, b], output: q}
    outputs: [q, y]
    targets: [mlir-cpu]
    """
    v, folder = build(tmp_path, spec)
    text = (folder / "kernel.mlir").read_text()
    assert "permutation = [0, 2, 1, 3]" in text and "%x.packed: tensor<512xf32>" in text
    inputs = V.make_inputs(v.graph, 5)
    exp, out = V.expected(v.graph, inputs), BACKEND.run(folder, v.graph, inputs)
    for name in ("q", "y"):
        assert V.compare(out[name], exp.values[name], exp.bounds[name])["ok"], name
    assert not torch.equal(out["q"], out["y"])


def test_compile_error_names_the_first_diagnostic(tmp_path):
    (tmp_path / "kernel.mlir").write_text("func.func @main() {\n  %0 = arith.bogus : f32\n}\n")
    with pytest.raises(Exception) as info:
        BACKEND.compile(tmp_path, tmp_path)
    assert "error:" in str(info.value) and "arith.bogus" in str(info.value)
    assert not (tmp_path / "executables.mlir").exists()


@pytest.mark.e2e
@pytest.mark.slow
def test_every_shipped_spec_passes_on_mlir_cpu(project):
    """doit build of every shipped spec (mlir-cpu only: tir-cpu has its own tests): all pass,
    each with one dispatch per fused group, IREE versions in the report."""
    for path in SHIPPED:
        assert "mlir-cpu" in load_spec(path).variants[0].targets, f"{path.name} does not build mlir-cpu"
        project.spec(path.stem, only_target(path.read_text()))
    result = project.doit("build", check=0)
    reports = sorted((project.root / "out").glob("*/*/mlir-cpu/validation.json"))
    assert len(reports) == sum(1 for p in SHIPPED for v in load_spec(p).variants if "mlir-cpu" in v.targets)
    for path in reports:
        r = json.loads(path.read_text())
        assert r["status"] == "pass", (path, r)
        assert r["toolchain"]["iree-base-compiler"] == r["toolchain"]["iree-base-runtime"] == "3.13.0"
        v = next(v for v in load_spec(project.root / "specs" / f"{r['spec']}.yaml").variants if v.name == r["variant"])
        # one dispatch per fused group (the epilogue inside it); an input with a layout may
        # add its own unpacking dispatch, at IREE's choice; a dynamic M split into powers of
        # two (backends/mlir_cpu/rows.py) has that per function compiled at a power of two
        laid_out = sum(v.graph.tensors[n].layout is not None for n in v.graph.inputs)
        count = dispatch_count((path.parent / "executables.mlir").read_text())
        parts = max(1, (path.parent / "kernel.mlir").read_text().count("func.func private @main_rows"))
        assert len(fuse(v.graph)) * parts <= count <= (len(fuse(v.graph)) + laid_out) * parts, path
    assert "mlir-cpu  pass" in result.text


@pytest.mark.e2e
@pytest.mark.slow
def test_incremental_mlir_cpu(project, tmp_path):
    """No-op second build; one spec edited reruns that spec only; one template edited reruns
    only the artifacts rendered from it."""
    overrides = tmp_path / "overrides"
    (overrides / "mlir").mkdir(parents=True)
    shutil.copy(REPO / "templates" / "mlir" / "epilogue.j2", overrides / "mlir" / "epilogue.j2")
    env = {"FUSEBUILD_TEMPLATE_OVERRIDES": str(overrides)}
    project.spec("a", gemm_spec("a", "relu") + "targets: [mlir-cpu]\n")
    project.spec("plain", only_target((REPO / "specs" / "gemm.yaml").read_text()).replace("name: gemm", "name: plain"))
    first = project.doit(env=env, check=0)
    assert len(first.ran_stage("validate")) == 4 and len(first.ran_stage("compile")) == 4

    assert project.doit(env=env, check=0).ran == []

    project.spec("a", gemm_spec("a", "silu") + "targets: [mlir-cpu]\n")
    edited = project.doit(env=env, check=0)
    for stage in ("render", "compile", "assemble", "validate"):
        assert sorted(edited.ran_stage(stage)) == [f"{stage}:a/M4_N32_K16/mlir-cpu", f"{stage}:a/M8_N32_K16/mlir-cpu"]

    # a template only `a` uses (plain GEMMs have no epilogue): only `a` rerenders and
    # recompiles; the edit is a comment, IREE's output is byte-identical, so assemble and
    # validate are cut off
    path = overrides / "mlir" / "epilogue.j2"
    path.write_text(path.read_text() + "  // edited\n")
    templ = project.doit(env=env, check=0)
    a_only = ["a/M4_N32_K16/mlir-cpu", "a/M8_N32_K16/mlir-cpu"]
    assert sorted(templ.ran_stage("render")) == [f"render:{x}" for x in a_only]
    assert sorted(templ.ran_stage("compile")) == [f"compile:{x}" for x in a_only]
    assert templ.ran_stage("assemble") == templ.ran_stage("validate") == []
    assert project.doit(env=env, check=0).ran == []
