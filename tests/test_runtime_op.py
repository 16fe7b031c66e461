"""fusebuild.load on real tir-cpu and mlir-cpu artifacts: dispatch, inputs, outputs, every
bad use, torch.compile, the nn.Modules, export, the light import path.

One project is built once for the module (real `doit build`); tests that break an
artifact work on a copy of it.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings

import pytest
import torch
import torch.nn.functional as F
from conftest import REPO, Project, gemm_spec

from fusebuild.errors import UseError

pytestmark = pytest.mark.e2e

PAIR = """\
name: pair
params: {M: [4], N: 16, K: 8}
inputs:
  x: {shape: [M, K], dtype: float32}
  w: {shape: [N, K], dtype: float32}
graph:
  - {op: matmul, inputs: [x, w], output: h, transpose_b: true}
  - {op: relu, inputs: [h], output: r}
  - {op: silu, inputs: [h], output: s}
outputs: [r, s]
targets: [tir-cpu, mlir-cpu]
"""
TILED = """\
name: tiled
params: {M: [4], N: 16, K: 16}
inputs:
  x: {shape: [M, K], dtype: float32}
  w: {shape: [N, K], dtype: float32, layout: {tiled: [8, 8]}}
graph:
  - {op: matmul, inputs: [x, w], output: y, transpose_b: true, epilogue: [relu]}
outputs: [y]
targets: [tir-cpu, mlir-cpu]
"""
TARGETS = ("tir-cpu", "mlir-cpu")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    p = Project(tmp_path_factory.mktemp("runtime") / "proj")
    p.spec("small", gemm_spec("small") + "targets: [tir-cpu, mlir-cpu]\n")
    p.spec("pair", PAIR)
    p.spec("tiled", TILED)
    p.doit("build", check=0)
    return p


@pytest.fixture
def copy(built, tmp_path):
    """A copy of the built project, to break."""
    root = tmp_path / "proj"
    shutil.copytree(built.root, root, ignore=shutil.ignore_patterns(".doit*"))
    return root


def load(root, spec="small", **kw):
    import fusebuild
    kw.setdefault("specs", root / "specs")
    return fusebuild.load(spec, out=root / "out", **kw)


def small_inputs(m=4):
    return torch.randn(m, 16), torch.randn(32, 16), torch.randn(32)


def small_ref(x, w, b):
    return F.silu(x @ w.T + b)


def test_load_lists_what_is_built_and_calls_by_position_and_name(built):
    op = load(built.root)
    assert op.inputs == ("x", "w", "b") and op.outputs == ("y",)
    assert [(v.target, v.variant, v.status, v.usable) for v in op.variants] == [
        ("tir-cpu", "M4_N32_K16", "pass", True), ("tir-cpu", "M8_N32_K16", "pass", True),
        ("mlir-cpu", "M4_N32_K16", "pass", True), ("mlir-cpu", "M8_N32_K16", "pass", True)]
    x, w, b = small_inputs()
    y = op(x, w, b)
    atol, rtol = op.tolerance(x, w, b, ref=small_ref(x, w, b))
    torch.testing.assert_close(y, small_ref(x, w, b), atol=atol, rtol=rtol)
    assert torch.equal(op(b=b, x=x, w=w), y) and torch.equal(op(x, b=b, w=w), y)


def test_dispatch_by_shape_and_target(built):
    op = load(built.root)
    for m in (4, 8):
        x, w, b = small_inputs(m)
        assert op.report(x, w, b)["variant"] == f"M{m}_N32_K16"
        assert op.report(x, w, b)["target"] == "tir-cpu"              # CPU tensors: tir-cpu first
        torch.testing.assert_close(op(x, w, b), small_ref(x, w, b), atol=1e-4, rtol=1e-4)
    mlir = load(built.root, target="mlir-cpu")
    x, w, b = small_inputs(8)
    assert mlir.report(x, w, b)["target"] == "mlir-cpu"
    torch.testing.assert_close(mlir(x, w, b), op(x, w, b), atol=1e-4, rtol=1e-4)
    assert op.report(variant="M8_N32_K16", target="mlir-cpu")["status"] == "pass"


@pytest.mark.parametrize("target", TARGETS)
def test_several_outputs_come_back_as_a_tuple(built, target):
    op = load(built.root, "pair", target=target)
    x, w = torch.randn(4, 8), torch.randn(16, 8)
    r, s = op(x, w)
    h = x @ w.T
    torch.testing.assert_close(r, h.relu(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(s, F.silu(h), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("target", TARGETS)
def test_a_packed_layout_is_packed_by_the_runtime(built, target):
    op = load(built.root, "tiled", target=target)
    x, w = torch.randn(4, 16), torch.randn(16, 16)
    torch.testing.assert_close(op(x, w), (x @ w.T).relu(), atol=1e-5, rtol=1e-5)


# --- bad use: one clear error each --------------------------------------------------------

def test_a_shape_no_variant_covers_lists_the_built_ones(built):
    op = load(built.root)
    with pytest.raises(UseError) as e:
        op(*small_inputs(5))
    text = str(e.value)
    assert "no built variant takes x float32[5, 16], w float32[32, 16], b float32[32]" in text
    assert "M4_N32_K16 (tir-cpu, mlir-cpu): x float32[4, 16]" in text
    assert "M8_N32_K16 (tir-cpu, mlir-cpu): x float32[8, 16]" in text
    assert "doit build:small" in text


def test_wrong_dtype_device_arity_and_names(built):
    op = load(built.root)
    x, w, b = small_inputs()
    cases = [
        (lambda: op(x.double(), w.double(), b.double()), "x is float64, the artifact takes float32"),
        (lambda: op(x.to("meta"), w.to("meta"), b.to("meta")), "no fusebuild target runs tensors on meta"),
        (lambda: op(x, w.to("meta"), b), "inputs are on different devices: x on cpu, w on meta, b on cpu"),
        (lambda: op(x, w), "missing input b"),
        (lambda: op(x, w, b, bias=b), "unknown input 'bias'"),
        (lambda: op(x, w, x=x), "input 'x' given twice"),
        (lambda: op(x, w, b, x), "takes 3 inputs, got 4"),
        (lambda: op(x, w, 1.0), "input b is a float, not a torch.Tensor"),
        (lambda: op(x, w.clone().requires_grad_(), b), "input w requires grad, and fusebuild ops compute no gradients"),
        (lambda: torch.ops.fusebuild.small(x, w, b.clone().requires_grad_()), "input b requires grad"),
        (lambda: load(built.root, target="tir-cuda"), "no tir-cuda artifacts of small"),
        (lambda: load(built.root, target="tir-cpux"), "unknown target 'tir-cpux'; did you mean 'tir-cpu'?"),
        (lambda: load(built.root, "smal"), "no built artifacts of 'smal' in"),
        (lambda: load(built.root, "../out"), "'../out' is not a spec name"),
    ]
    for call, text in cases:
        with pytest.raises(UseError) as e:
            call()
        assert text in str(e.value), str(e.value)
    with pytest.raises(UseError, match="did you mean 'small'"):
        load(built.root, "smal")


def test_a_non_contiguous_input_is_copied_and_says_so(built):
    op = load(built.root)
    x, w, b = small_inputs()
    wt = w.T.contiguous().T                          # same values, column-major
    assert not wt.is_contiguous()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        y = op(x, wt, b)
    assert torch.equal(y, op(x, w, b))
    msgs = [str(m.message) for m in seen]
    assert any("input w is not contiguous" in m and "it was copied" in m for m in msgs), msgs


def test_a_missing_artifact(copy):
    (copy / "out/small/M4_N32_K16/tir-cpu/kernel.so").unlink()
    op = load(copy, target="tir-cpu")
    with pytest.raises(UseError, match=r"missing .*M4_N32_K16/tir-cpu/kernel.so: rebuild: doit build:small"):
        op(*small_inputs(4))
    assert op(*small_inputs(8)).shape == (8, 32)            # the other variant still runs
    with pytest.warns(RuntimeWarning, match=r"running mlir-cpu M4_N32_K16; not using tir-cpu M4_N32_K16 \(missing"):
        assert load(copy)(*small_inputs(4)).shape == (4, 32)   # target=None: mlir-cpu takes over, saying why


def test_an_artifact_older_than_its_spec_names_the_rebuild_command(copy):
    spec = copy / "specs/small.yaml"
    spec.write_text(spec.read_text().replace("seed: 3", "seed: 4"))
    with pytest.raises(UseError) as e:
        load(copy)
    assert "older than its spec: seed changed in" in str(e.value) and "doit build:small" in str(e.value)
    spec.write_text(spec.read_text().replace("silu", "relu"))
    with pytest.raises(UseError, match="graph, seed changed"):
        load(copy)
    op = load(copy, specs=None)                      # no spec to check against: the manifests are trusted
    assert op(*small_inputs()).shape == (4, 32)
    spec.write_text(spec.read_text().replace("M: [4, 8]", "M: [8]").replace("relu", "silu").replace("seed: 4",
                                                                                                   "seed: 3"))
    op = load(copy)
    with pytest.raises(UseError, match="no longer has variant M4_N32_K16"):
        op(*small_inputs(4))
    assert op(*small_inputs(8)).shape == (8, 32)


def test_an_artifact_that_failed_validation(copy):
    report = copy / "out/small/M4_N32_K16/tir-cpu/validation.json"
    r = json.loads(report.read_text())
    report.write_text(json.dumps(dict(r, status="fail", reason="y: 12 mismatches, max_abs 3.0")))
    op = load(copy, target="tir-cpu")
    with pytest.raises(UseError, match="tir-cpu: failed validation: y: 12 mismatches"):
        op(*small_inputs(4))
    with pytest.raises(UseError, match="failed validation"):      # allow_unvalidated does not run a failure
        load(copy, target="tir-cpu", allow_unvalidated=True)(*small_inputs(4))
    with pytest.warns(RuntimeWarning, match="running mlir-cpu M4_N32_K16; not using tir-cpu M4_N32_K16"):
        assert load(copy).report(*small_inputs(4))["target"] == "mlir-cpu"


def test_an_artifact_changed_after_validation(copy):
    so = copy / "out/small/M4_N32_K16/tir-cpu/kernel.so"
    so.write_bytes(so.read_bytes() + b"\0")
    with pytest.raises(UseError, match="kernel.so changed after validation"):
        load(copy)(*small_inputs(4))


def test_an_artifact_validated_on_another_cpu_needs_allow_unvalidated(copy):
    for t in TARGETS:
        report = copy / f"out/small/M4_N32_K16/{t}/validation.json"
        r = json.loads(report.read_text())
        report.write_text(json.dumps(dict(r, validated_on={"kind": "cpu", "cpu": "x86_64 Another CPU [avx2]"})))
    op = load(copy)
    with pytest.raises(UseError) as e:
        op(*small_inputs(4))
    assert "validated on CPU x86_64 Another CPU [avx2], not on this machine's CPU" in str(e.value)
    assert "allow_unvalidated=True" in str(e.value)
    op = load(copy, allow_unvalidated=True)
    x, w, b = small_inputs(4)
    with pytest.warns(RuntimeWarning, match="validated on CPU x86_64 Another CPU"):
        y = op(x, w, b)
    torch.testing.assert_close(y, small_ref(x, w, b), atol=1e-4, rtol=1e-4)


def test_a_gpu_artifact_built_here_is_not_used_for_cpu_tensors(copy):
    """A tir-cuda artifact built on a machine without a GPU (built-not-validated)."""
    src, dst = copy / "out/small/M4_N32_K16/tir-cpu", copy / "out/small/M4_N32_K16/tir-cuda"
    dst.mkdir()
    r = json.loads((src / "validation.json").read_text())
    r = dict(r, target="tir-cuda", status="built-not-validated", reason="built, not validated: no CUDA device",
             fix="fusebuild gpu-validate (on a machine with a Hopper GPU)")
    r.pop("validated_on")
    (dst / "validation.json").write_text(json.dumps(r))
    for f in ("kernel.so", "kernel.json"):
        (dst / f).write_text("")
    r["runtime"]["files"] = {f: __import__("fusebuild.hashing").hashing.file_sha256(dst / f)
                             for f in ("kernel.so", "kernel.json")}
    (dst / "validation.json").write_text(json.dumps(r))
    # the spec does not list tir-cuda: checked against it, the folder is a leftover
    with pytest.raises(UseError, match="no longer builds tir-cuda for M4_N32_K16"):
        load(copy, target="tir-cuda")
    with pytest.raises(UseError, match="built but not validated .*no CUDA device.*fusebuild gpu-validate"):
        load(copy, target="tir-cuda", specs=None)
    op = load(copy, target="tir-cuda", specs=None, allow_unvalidated=True)
    with pytest.raises(UseError, match="target tir-cuda takes cuda tensors; the inputs are on cpu"):
        op(*small_inputs(4))
    status = {(v.target, v.variant): v.note for v in load(copy, specs=None).variants}
    assert "built but not validated" in status[("tir-cuda", "M4_N32_K16")]


# --- torch integration --------------------------------------------------------------------

def test_the_custom_op_runs_inside_torch_compile_fullgraph(built):
    op = load(built.root)
    x, w, b = small_inputs(8)

    def f(x, w, b):
        return torch.ops.fusebuild.small(x * 2, w, b) + 1
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")   # fake tensors trace the op
    torch.testing.assert_close(compiled(x, w, b), op(x * 2, w, b) + 1)
    x4 = torch.randn(4, 16)                               # recompiled (M becomes symbolic): guarded per variant
    torch.testing.assert_close(compiled(x4, w, b), op(x4 * 2, w, b) + 1)
    with pytest.raises(Exception, match=r"no built variant takes x float32\[\w+, 16\]"):
        compiled(*small_inputs(5))                        # a shape no variant covers: the same error, traced
    pr = load(built.root, "pair")
    r, s = torch.compile(lambda x, w: torch.ops.fusebuild.pair(x, w), fullgraph=True, backend="aot_eager")(
        torch.ones(4, 8), torch.ones(16, 8))
    torch.testing.assert_close((r, s), pr(torch.ones(4, 8), torch.ones(16, 8)))


@pytest.mark.slow
def test_a_linear_module_compiles_with_inductor_without_a_graph_break(built):
    from fusebuild.runtime import Linear
    op = load(built.root)
    lin = torch.nn.Linear(16, 32)
    model = torch.nn.Sequential(torch.nn.LayerNorm(16), Linear.from_linear(op, lin), torch.nn.ReLU())
    x = torch.randn(2, 4, 16)                             # [..., K]: leading dims flattened into M = 8
    with torch.no_grad():
        want = torch.relu(F.silu(lin(F.layer_norm(x, (16,)))))
        eager = model(x)
        compiled = torch.compile(model, fullgraph=True)(x)
    torch.testing.assert_close(eager, want, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(compiled, want, atol=1e-4, rtol=1e-4)


def test_modules_hold_weights_and_check_their_inputs(built):
    from fusebuild.runtime import MLP, Fused, Linear
    op = load(built.root)
    x, w, b = small_inputs(8)
    lin = Linear(op, w, b)
    assert set(dict(lin.named_buffers())) == {"w", "b"}
    torch.testing.assert_close(lin(x.reshape(2, 4, 16)), small_ref(x, w, b).reshape(2, 4, 32), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(Fused(op, w=w)(x, b), small_ref(x, w, b), atol=1e-4, rtol=1e-4)
    with pytest.raises(UseError, match="small has no input bias"):
        Fused(op, bias=b)
    with pytest.raises(UseError, match="a MLP holds gate"):
        MLP(op, w, w, w)


# --- export, fresh processes, the light import path -----------------------------------------

FORBIDDEN = ("doit", "jinja2", "tilelang", "tvm", "iree.compiler")
USE = """
import sys, json, torch, fusebuild
op = fusebuild.load("small", out=sys.argv[1], specs=sys.argv[2] if len(sys.argv) > 2 else "specs")
x, w, b = torch.randn(8, 16), torch.randn(32, 16), torch.randn(32)
y = op(x, w, b)
want = torch.nn.functional.silu(x @ w.T + b)
atol, rtol = op.tolerance(x, w, b, ref=want)
ok = bool(((y - want).abs() <= atol + rtol * want.abs()).all())
heavy = sorted(m for m in sys.modules if m in {FORBIDDEN} or m.startswith("iree.compiler"))
print(json.dumps({{"ok": ok, "target": op.report(x, w, b)["target"], "heavy": heavy,
                  "runtime": sorted(m for m in ("tvm_ffi", "iree.runtime") if m in sys.modules),
                  "yaml": "yaml" in sys.modules}}))
"""


def run_use(cwd, out, *extra, target_env=None):
    code = USE.format(FORBIDDEN=set(FORBIDDEN))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", code, str(out), *extra], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_loading_and_calling_imports_no_build_tool(built):
    got = run_use(built.root, built.root / "out")        # with specs/: the spec is loaded and checked too
    assert got == {"ok": True, "target": "tir-cpu", "heavy": [], "runtime": ["tvm_ffi"], "yaml": True}


def test_export_then_load_in_a_fresh_process_elsewhere(built, tmp_path):
    dest = tmp_path / "deploy"
    proc = subprocess.run([sys.executable, "-m", "fusebuild", "export", str(dest), "small"], cwd=built.root,
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert "4 artifacts exported" in proc.stdout
    index = json.loads((dest / "export.json").read_text())
    assert sorted(x["artifact"] for x in index["exported"]) == sorted(
        f"small/M{m}_N32_K16/{t}" for t in ("mlir-cpu", "tir-cpu") for m in (4, 8))
    assert sorted(p.name for p in (dest / "small/M4_N32_K16/tir-cpu").iterdir()) == ["kernel.so", "validation.json"]
    assert not (dest / "pair").exists()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()                                     # no specs/, no out/ here
    got = run_use(elsewhere, dest)                        # no spec to read: not even the YAML parser
    assert got == {"ok": True, "target": "tir-cpu", "heavy": [], "runtime": ["tvm_ffi"], "yaml": False}
    shutil.rmtree(dest / "small/M8_N32_K16/tir-cpu")      # mlir-cpu takes over: IREE's runtime only
    assert run_use(elsewhere, dest) == {"ok": True, "target": "mlir-cpu", "heavy": [], "runtime": ["iree.runtime"],
                                        "yaml": False}


def test_export_leaves_out_what_cannot_run_and_says_why(copy, tmp_path):
    report = copy / "out/small/M4_N32_K16/tir-cpu/validation.json"
    report.write_text(json.dumps(dict(json.loads(report.read_text()), status="fail", reason="y: 3 mismatches")))
    (copy / "out/small/M8_N32_K16/mlir-cpu/kernel.vmfb").unlink()
    proc = subprocess.run([sys.executable, "-m", "fusebuild", "export", str(tmp_path / "d")], cwd=copy,
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    left = {x["artifact"]: x["reason"] for x in json.loads((tmp_path / "d/export.json").read_text())["left_out"]}
    assert left == {"small/M4_N32_K16/tir-cpu": "fail: y: 3 mismatches",
                    "small/M8_N32_K16/mlir-cpu": "missing kernel.vmfb"}
    assert "6 artifacts exported" in proc.stdout      # small: 2 of 4, pair: 2, tiled: 2
    bad = subprocess.run([sys.executable, "-m", "fusebuild", "export", str(tmp_path / "e"), "smal"], cwd=copy,
                         capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=300,
                          check=False)
    assert bad.returncode == 1 and "no spec named 'smal'" in bad.stderr and "did you mean 'small'" in bad.stderr
    into = subprocess.run([sys.executable, "-m", "fusebuild", "export", "out/sub"], cwd=copy, capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=300, check=False)
    assert into.returncode == 1 and "cannot export into the build output folder" in into.stderr
    assert (copy / "out/small/M8_N32_K16/tir-cpu/kernel.so").is_file()


def test_validation_runs_artifacts_through_the_runtime(built, monkeypatch):
    """The one code path: tir-cpu's and mlir-cpu's Backend.run go through runtime.call.Call
    with the runtime's kernels, and the validate key covers runtime/."""
    from fusebuild.backends import get_backend
    from fusebuild.plan.keys import VALIDATE_CODE
    from fusebuild.run import validate as V
    from fusebuild.runtime import call
    from fusebuild.spec import load_spec
    assert "runtime" in VALIDATE_CODE
    seen, real = [], call.Call.__call__
    monkeypatch.setattr(call.Call, "__call__", lambda self, t: seen.append(type(self.kernel).__module__) or real(self, t))
    v = load_spec(built.root / "specs/pair.yaml").variants[0]
    inputs = V.make_inputs(v.graph, v.seed)
    for t in TARGETS:
        outs = get_backend(t).run(built.root / "out/pair/M4_N16_K8" / t, v.graph, inputs)
        torch.testing.assert_close(outs["r"], (inputs["x"] @ inputs["w"].T).relu(), atol=1e-5, rtol=1e-5)
    assert seen == ["fusebuild.runtime.tir_cpu", "fusebuild.runtime.mlir_cpu"]
