"""runtime/signature.py, manifest.py, targets.py: matching inputs to an artifact, the
manifest validation writes, trust across machines. No doit, no toolchain."""
from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
import textwrap
from dataclasses import dataclass

import pytest
from conftest import REPO, gemm_spec

from fusebuild.run import validate as V
from fusebuild.runtime import manifest as M
from fusebuild.runtime.signature import Mismatch, Signature, TensorSig
from fusebuild.runtime.targets import same_kind
from fusebuild.spec import parse_spec

STATIC = Signature((TensorSig("x", (4, 16), "float32"), TensorSig("w", (32, 16), "float32")),
                   (TensorSig("y", (4, 32), "float32"),))
# the IR contract of dynamic M (shapes issue): shape holds the upper bound, symbols name the dim
DYNAMIC = Signature((TensorSig("x", (4096, 2048), "float32", symbols=("M", None)),
                     TensorSig("w", (8192, 2048), "float32")),
                    (TensorSig("y", (4096, 8192), "float32", symbols=("M", None)),), {"M": (1, 4096)})


def test_static_signature_binds_exact_shapes_only():
    assert STATIC.bind([(4, 16), (32, 16)], ["float32", "float32"]) == {}
    assert STATIC.output_shapes({}) == [(4, 32)]
    cases = {((5, 16), (32, 16)): ("shape", "x is [5, 16], the artifact takes x float32[4, 16]"),
             ((4, 16, 1), (32, 16)): ("rank", "x has 3 dimensions [4, 16, 1], the artifact takes 2"),
             ((4, 16),): ("count", "takes 2 inputs (x, w), got 1")}
    for shapes, (kind, text) in cases.items():
        with pytest.raises(Mismatch) as e:
            STATIC.bind(shapes, ["float32"] * len(shapes))
        assert e.value.kind == kind and text in str(e.value), str(e.value)
    with pytest.raises(Mismatch, match="w is float16, the artifact takes float32") as e:
        STATIC.bind([(4, 16), (32, 16)], ["float32", "float16"])
    assert e.value.kind == "dtype"


def test_dynamic_signature_takes_any_value_in_range_and_sizes_outputs():
    for m in (1, 7, 4096):
        values = DYNAMIC.bind([(m, 2048), (8192, 2048)], ["float32", "float32"])
        assert values == {"M": m} and DYNAMIC.output_shapes(values) == [(m, 8192)]
    with pytest.raises(Mismatch, match=r"x: M=4097 is outside the artifact's range 1..4096") as e:
        DYNAMIC.bind([(4097, 2048), (8192, 2048)], ["float32", "float32"])
    assert e.value.kind == "range"
    with pytest.raises(Mismatch, match=r"w is \[8192, 1024\], the artifact takes w float32\[8192, 2048\]"):
        DYNAMIC.bind([(3, 2048), (8192, 1024)], ["float32", "float32"])
    assert DYNAMIC.describe() == "x float32[M=1..4096, 2048], w float32[8192, 2048]"


def test_a_symbol_shared_by_two_inputs_must_agree():
    sig = Signature((TensorSig("a", (64, 8), "float32", symbols=("M", None)),
                     TensorSig("b", (64, 8), "float32", symbols=("M", None))), (), {"M": (1, 64)})
    assert sig.bind([(5, 8), (5, 8)], ["float32"] * 2) == {"M": 5}
    with pytest.raises(Mismatch, match="b dimension 0 is 6 but M=5 from an earlier input"):
        sig.bind([(5, 8), (6, 8)], ["float32"] * 2)


def test_signature_json_round_trip():
    for sig in (STATIC, DYNAMIC):
        assert Signature.from_json(sig.to_json()) == sig


@dataclass(frozen=True)
class _T:              # a tensor of the shapes issue's IR: symbols per dim
    name: str
    shape: tuple
    dtype: str
    layout: object = None
    symbols: tuple = ()


@dataclass(frozen=True)
class _G:
    tensors: dict
    inputs: tuple
    outputs: tuple
    dynamic: dict


def test_signature_of_a_graph_with_dynamic_dims_reads_symbols_and_ranges():
    g = _G({"x": _T("x", (512, 64), "float32", symbols=("M", None)), "w": _T("w", (32, 64), "float32"),
            "y": _T("y", (512, 32), "float32", symbols=("M", None))}, ("x", "w"), ("y",), {"M": (1, 512)})
    sig = Signature.of_graph(g)
    assert sig.dynamic == {"M": (1, 512)}
    assert sig.inputs[0].symbols == ("M", None) and sig.inputs[1].symbols == ()
    assert sig.output_shapes(sig.bind([(9, 64), (32, 64)], ["float32"] * 2)) == [(9, 32)]


def test_signature_of_a_spec_variant_keeps_order_and_layouts():
    text = gemm_spec().replace("w: {shape: [N, K], dtype: float32}",
                               "w: {shape: [N, K], dtype: float32, layout: {tiled: [8, 8]}}")
    assert "tiled" in text
    spec = parse_spec(text, "specs/s.yaml")
    v = spec.variants[0]
    sig = Signature.of_graph(v.graph)
    assert sig.input_names == ("x", "w", "b") and sig.output_names == ("y",) and sig.dynamic == {}
    assert sig.inputs[1].layout == v.graph.tensors["w"].layout.dims and sig.inputs[0].layout is None


def test_manifest_rebuilds_the_graph_it_was_written_from(tmp_path):
    for text in (gemm_spec(), textwrap.dedent(SWIGLU)):
        v = parse_spec(text, "specs/s.yaml").variants[0]
        block = M.block(v, "tir-cpu", tmp_path, ("kernel.so",), {"y": V.tolerance_rule(v.graph, "float32", {})})
        m = M.Manifest(tmp_path, {"runtime": block})
        assert m.graph().digest() == v.graph.digest()
        assert m.signature == Signature.of_graph(v.graph)
        assert m.files == {}                          # nothing built in tmp_path
        assert not M.changed(m.key, M.spec_key(v, "tir-cpu"))
        assert M.changed(m.key, M.spec_key(dataclasses.replace(v, seed=9), "tir-cpu")) == ["seed"]


SWIGLU = """\
name: sw
params: {M: [4], E: 8, H: 16}
inputs:
  x:  {shape: [M, E], dtype: float32, layout: {tiled: [2, 4]}}
  wg: {shape: [H, E], dtype: float32}
  wu: {shape: [H, E], dtype: float32}
graph:
  - {op: matmul, inputs: [x, wg], output: g, transpose_b: true}
  - {op: matmul, inputs: [x, wu], output: u, transpose_b: true}
  - {op: silu, inputs: [g], output: a}
  - {op: mul, inputs: [a, u], output: y}
outputs: [y]
"""


def test_recorded_tolerance_gives_the_bounds_validation_used():
    import torch
    v = parse_spec(gemm_spec(), "specs/s.yaml").variants[0]
    ref = torch.randn(4, 32) * 7
    k = 16
    rtol = 4 * 2.0 ** -23 + 64 * 2.0 ** -23 * math.sqrt(k)     # run/validate.py's rule, written out
    for over, want in [({}, (rtol * float(ref.abs().max()), rtol)),
                       ({"float32": {"rtol": 1e-3}}, (rtol * float(ref.abs().max()), 1e-3)),
                       ({"float32": {"atol": 0.5}}, (0.5, rtol))]:
        rule = V.tolerance_rule(v.graph, "float32", over)
        recorded = M.Tolerance(**M.block(v, "tir-cpu", ".", (), {"y": rule})["tolerance"]["y"])
        assert recorded.bounds(ref) == pytest.approx(want) == V.tolerance(v.graph, "float32", over, ref)


def test_trust_needs_the_same_kind_of_device():
    cpu = {"kind": "cpu", "cpu": "x86_64 Some CPU [avx2 fma]"}
    assert same_kind(cpu, dict(cpu))
    assert not same_kind(cpu, {"kind": "cpu", "cpu": "x86_64 Other CPU [avx512f]"})
    assert not same_kind(None, cpu)
    h100 = {"kind": "cuda", "capability": "sm_90", "name": "NVIDIA H100"}
    assert same_kind(h100, {"kind": "cuda", "capability": "sm_90", "name": "NVIDIA H200"})
    assert not same_kind(h100, {"kind": "cuda", "capability": "sm_100", "name": "B200"})
    assert not same_kind(h100, {"kind": "cuda", "capability": None, "name": None})
    assert not same_kind({"kind": "emulator"}, {"kind": "emulator"})


def test_import_fusebuild_is_free_and_load_is_lazy():
    code = ("import sys, fusebuild; assert 'torch' not in sys.modules and 'fusebuild.runtime' not in sys.modules; "
            "fusebuild.load; import fusebuild.runtime.op; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_tir_cuda_parameters_map_onto_the_signature():
    """kernel.json lists inputs, workspaces (+ read aliases), outputs; the loader passes
    the tensor parameters (inputs and outputs) in its order."""
    from fusebuild.runtime.tir_cuda import param_order
    sig = Signature(tuple(TensorSig(n, (4, 4), "bfloat16") for n in ("x", "wg", "wu", "wd")),
                    (TensorSig("y", (4, 4), "bfloat16"),))
    params = [{"tensor": "x"}, {"tensor": "wg"}, {"tensor": "wu"}, {"tensor": "wd"}, {"tensor": "y"}]
    assert param_order(params, sig) == [0, 1, 2, 3, 4]
    assert param_order(params[::-1], sig) == [4, 3, 2, 1, 0]
    with pytest.raises(RuntimeError, match="do not match the signature"):
        param_order(params[:4] + [{"tensor": "h"}], sig)


def test_the_cuda_loader_path_imports_no_build_tool():
    code = ("import sys, fusebuild.runtime.op, fusebuild.runtime.tir_cuda, fusebuild.runtime.torchop, "
            "fusebuild.backends.tir_cuda.loader, fusebuild.runtime.modules; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('doit', 'jinja2', 'tilelang', 'tvm', 'tvm_ffi') "
            "or m.startswith('iree')]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr
