"""backends/mlir_cpu/render.py: text in, MLIR lines out (one linalg.matmul, one linalg.generic
per epilogue); whole files: test_backends_golden.py."""
from __future__ import annotations

import pytest

from conftest import REPO, gemm_spec, render as render_spec

MLIR_CPU = "targets: [mlir-cpu]\n"


def render(spec, variant: int = 0) -> str:
    return render_spec(spec, "mlir-cpu", variant).files["kernel.mlir"]


def test_gemm_epilogue_renders_matmul_then_one_generic():
    text = render(gemm_spec(act="silu") + MLIR_CPU)
    assert "linalg.matmul\n      indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d2)>, " \
           "affine_map<(d0, d1, d2) -> (d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1)>]" in text   # B transposed
    assert text.count("linalg.generic") == 1
    body = text[text.index("^bb0"):text.index("linalg.yield")]
    assert "%y.v0 = arith.addf %y.acc.in, %b.in : f32" in body          # the bias, on the accumulator
    assert "math.exp" in body and "%y.v1 = arith.divf %y.v0, %y.v1_den : f32" in body     # silu
    assert "affine_map<(d0, d1) -> (d1)>" in text                 # bias broadcast along rows


def test_plain_gemm_has_no_generic():
    text = render(REPO / "specs" / "gemm.yaml")
    assert "linalg.generic" not in text and "return %y : tensor<1x512xf32>" in text


@pytest.mark.parametrize("act, n_ops", [("relu", 1), ("gelu", 1), ("sigmoid", 1)])
def test_each_epilogue_renders_into_the_one_generic(act, n_ops):
    text = render(gemm_spec(act=act) + MLIR_CPU)
    assert text.count("linalg.generic") == n_ops
