"""Golden renders of two whole mlir-aie designs and their kernel sources: a GEMM + epilogue and
IRON's 256x512x2048 SwiGLU, both bfloat16. Any change to the planner, the templates or the
kernel sources shows up here as a text diff to review.

After an intended change, rewrite the files and review the diff:
    FUSEBUILD_UPDATE_GOLDEN=1 python -m pytest tests/test_mlir_aie_golden.py
"""
from __future__ import annotations

import os

import pytest

from fusebuild.backends import get_backend
from fusebuild.spec import load_spec

from conftest import REPO, render as render_spec

GOLDEN = REPO / "tests" / "golden" / "mlir_aie"
CASES = [("gemm_bias_silu", "M128_N256_K512_bfloat16"), ("swiglu_prefill", "M256_E512_H2048_bfloat16")]


@pytest.mark.parametrize("spec,variant", CASES)
def test_golden_design(spec, variant):
    v = next(v for v in load_spec(REPO / "specs" / f"{spec}.yaml").variants if v.name == variant)
    files = render_spec(v, "mlir-aie").files
    folder = GOLDEN / f"{spec}_{variant}"
    for name in ("design.mlir", "kernels.cc"):
        path = folder / name
        if os.environ.get("FUSEBUILD_UPDATE_GOLDEN") == "1":
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text(files[name])
        want = path.read_text()
        got = files[name]
        if got != want:
            diff = next(i for i, (a, b) in enumerate(zip(got.splitlines() + [""], want.splitlines() + [""])) if a != b)
            pytest.fail(f"{path.relative_to(REPO)} differs from the render at line {diff + 1}:\n"
                        f"  golden: {want.splitlines()[diff] if diff < len(want.splitlines()) else '<end>'}\n"
                        f"  render: {got.splitlines()[diff] if diff < len(got.splitlines()) else '<end>'}\n"
                        f"(FUSEBUILD_UPDATE_GOLDEN=1 rewrites it after an intended change)")
