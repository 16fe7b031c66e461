"""Whole-file golden renders: for each backend, representative shipped specs rendered and
compared byte for byte with tests/golden/<target>/<spec>/<variant>/<file>.

A render change that is meant: rerun with FUSEBUILD_UPDATE_GOLDEN=1, which rewrites the
files and fails anyway (an update never passes, so CI cannot go green on one), review
`git diff tests/golden`, rerun without it. (mlir-aie's design.mlir: tests/test_mlir_aie.py.)
"""
from __future__ import annotations

import pytest

from conftest import assert_golden_render

CASES = [
    # target     spec               variant index (of those building the target)   files
    ("tir-cpu", "gemm_bias_silu", 1, ("kernel.py", "plan.json")),        # GEMM + bias + silu, M=128
    ("tir-cpu", "swiglu_prefill", 0, ("kernel.py", "plan.json")),        # three GEMM groups, mul epilogue
    ("tir-cpu", "gemm_tiled_weight", 1, ("kernel.py", "plan.json")),     # a weight in 16x8 tiles
    ("mlir-cpu", "gemm_bias_silu", 1, ("kernel.mlir",)),
    ("mlir-cpu", "swiglu_prefill", 0, ("kernel.mlir",)),
    ("mlir-cpu", "gemm_bias_gelu", 1, ("kernel.mlir",)),                 # gelu tanh
    ("tir-cuda", "gemm_bias_silu", 2, ("kernel.py", "plan.json")),       # M=128 bf16: direct tiles, split-K
    ("tir-cuda", "gemm_bias_silu", 0, ("kernel.py", "plan.json")),       # M=1: swap-AB
    ("tir-cuda", "swiglu_prefill", 0, ("kernel.py", "plan.json")),       # dual-accumulator gate/up
]


@pytest.mark.parametrize("target,spec,index,files", CASES, ids=[f"{t}-{s}-{i}" for t, s, i, _ in CASES])
def test_whole_file_golden(target, spec, index, files):
    assert_golden_render(spec, target, index, files)
