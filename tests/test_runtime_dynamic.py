"""Dispatch to a dynamic-M artifact: any M in its range, through the real tir-cpu loader.

Until the shapes issue builds dynamic-M artifacts from specs, the artifact is a TIR kernel
with a symbolic M compiled here, and its manifest is written by hand in the format
validation writes (a signature whose x and y dims 0 are the symbol M with range 1..64).
"""
from __future__ import annotations

import json

import pytest
import torch

from fusebuild.errors import UseError
from fusebuild.hashing import file_sha256
from fusebuild.runtime.manifest import FORMAT
from fusebuild.runtime.signature import Signature, TensorSig
from fusebuild.runtime.targets import here

tvm = pytest.importorskip("tvm")

KERNEL = """
@T.prim_func
def main(a: T.handle, b: T.handle, c: T.handle):
    m = T.int64()
    A = T.match_buffer(a, (m, 16), "float32")
    B = T.match_buffer(b, (16,), "float32")
    C = T.match_buffer(c, (m, 16), "float32")
    for i, j in T.grid(m, 16):
        C[i, j] = A[i, j] * B[j] + T.float32(1)
"""


def artifact(folder, signature: Signature, variant: str):
    folder.mkdir(parents=True)
    tvm.compile(tvm.script.from_source(KERNEL), target="llvm").export_library(str(folder / "kernel.so"))
    report = {"spec": "scale", "variant": variant, "target": "tir-cpu", "mode": "fused", "status": "pass",
              "validated_on": here("tir-cpu"),
              "runtime": {"format": FORMAT, "signature": signature.to_json(), "graph": {}, "key": {},
                          "tolerance": {"y": {"rtol": 1e-6, "atol": None, "atol_scale": None}},
                          "files": {"kernel.so": file_sha256(folder / "kernel.so")}}}
    (folder / "validation.json").write_text(json.dumps(report))


def sig(m_shape, symbols=(), dynamic=None):
    return Signature((TensorSig("x", (m_shape, 16), "float32", symbols=symbols), TensorSig("s", (16,), "float32")),
                     (TensorSig("y", (m_shape, 16), "float32", symbols=symbols),), dynamic or {})


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    root = tmp_path_factory.mktemp("dyn") / "out"
    artifact(root / "scale/M1to64/tir-cpu", sig(64, ("M", None), {"M": (1, 64)}), "M1to64")
    artifact(root / "scale/M4/tir-cpu", sig(4), "M4")
    return root


def test_any_m_in_range_runs_the_dynamic_artifact(out):
    import fusebuild
    op = fusebuild.load("scale", out=out, specs=None)
    s = torch.randn(16)
    for m in (1, 5, 17, 64):
        x = torch.randn(m, 16)
        y = op(x, s)
        assert y.shape == (m, 16)
        torch.testing.assert_close(y, x * s + 1)
        assert op.report(x, s)["variant"] == "M1to64"
    assert op.report(torch.randn(4, 16), s)["variant"] == "M4"      # a static variant wins where it fits
    with pytest.raises(UseError) as e:
        op(torch.randn(65, 16), s)
    assert "no built variant takes x float32[65, 16]" in str(e.value)
    assert "M1to64 (tir-cpu): x float32[M=1..64, 16], s float32[16]" in str(e.value)


def test_the_fake_op_gives_symbolic_outputs_for_a_dynamic_artifact(out):
    import fusebuild
    fusebuild.load("scale", out=out, specs=None)          # defines torch.ops.fusebuild.scale
    s = torch.randn(16)

    def f(x, s):
        return torch.ops.fusebuild.scale(x, s) * 2
    compiled = torch.compile(f, fullgraph=True, dynamic=True, backend="aot_eager")
    for m in (3, 9, 33):
        x = torch.randn(m, 16)
        torch.testing.assert_close(compiled(x, s), (x * s + 1) * 2)
