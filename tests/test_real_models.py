"""Real-model specs the targets had not seen when they were written (tests/data/real_models):
Qwen2.5-0.5B's SwiGLU MLP with a dynamic M, GPT-2's GELU MLP (nn.Linear and Conv1D weight
layouts, a dynamic M from 3), Gemma-2B's GeGLU, Qwen2-1.5B's down projection + residual with
odd K, prime shapes with W stored [K, N], SwiGLU in that layout, a three-GEMM fp16 chain, the
GPU benchmark's two GELU MLPs, and (2026-12-01) the Phi-3-mini MLP, the Llama-2 vocabulary
projection, a Qwen2.5-7B up projection at mid M and mid-M variants of three of the above.
Every one loads, and every tir-cuda variant renders here; the CPU targets build and validate
the GPT-2 MLP in both layouts. On an H200 the 38 tir-cuda artifacts of the first ten validated
(bench/results/gpu_validation_real_models_h200.log), the benchmark MLPs' 10
(gpu_validation_mlp_h200.log), and the 12 of the 2026-12-01 six (gpu_real_models_validate_h200.log)."""
from __future__ import annotations

import pytest
from backend_build import validate
from conftest import REPO
from conftest import render as render_spec

from fusebuild.backends import get_backend
from fusebuild.spec import load_spec

SPECS = sorted((REPO / "tests" / "data" / "real_models").glob("*.yaml"))


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_every_real_model_spec_loads_and_its_tir_cuda_variants_render(path):
    spec = load_spec(path)
    cuda = [v for v in spec.variants if "tir-cuda" in v.targets]
    assert spec.variants and cuda, path
    for v in cuda:
        files = render_spec(v, "tir-cuda").files
        assert "@T.prim_func" in files["kernel.py"]


@pytest.mark.slow
@pytest.mark.parametrize("target", ["tir-cpu", "mlir-cpu"])
@pytest.mark.parametrize("name", ["gpt2_mlp", "gpt2_conv1d"])
def test_gpt2_mlp_builds_and_validates_on_the_cpu_targets(tmp_path, target, name):
    if not get_backend(target).toolchain().available:
        pytest.skip(f"{target}: toolchain missing")
    v = next(v for v in load_spec(REPO / "tests" / "data" / "real_models" / f"{name}.yaml").variants
             if target in v.targets)
    result = validate(v, target, tmp_path)
    assert result.ok, result.samples
    assert [s["M"] for s in result.samples][0] == v.dynamic["M"][0]
