"""backends/tir_cpu/render.py: TVMScript golden lines for the fused GEMM, gelu variants, a tiled
layout as flat index arithmetic; whole files: test_backends_golden.py."""
from __future__ import annotations

import json

import pytest

from conftest import REPO, render as render_spec


def render(path_or_text, variant=0):
    r = render_spec(path_or_text, "tir-cpu", variant)    # shipped specs add tir-cuda dtypes: tir-cpu ones only
    return r.files, r.templates


def test_gemm_bias_silu_golden_lines():
    files, deps = render(REPO / "specs/gemm_bias_silu.yaml", 1)
    src = files["kernel.py"]
    assert ('def main(t_x: T.Buffer((128, 512), "float32"), t_w: T.Buffer((256, 512), "float32"), '
            't_bias: T.Buffer((256,), "float32"), t_y: T.Buffer((128, 256), "float32")):') in src
    assert '            acc_y[vi, vj] = acc_y[vi, vj] + t_x[vi, vk] * t_w[vj, vk]' in src
    assert '            t_y[vi, vj] = ((acc_y[vi, vj] + t_bias[vj]) * T.sigmoid((acc_y[vi, vj] + t_bias[vj])))' in src
    assert "from tvm.script" not in src       # TVM 0.27's from_source refuses import lines
    assert set(deps["templates"]) == {"kernel.py.j2", "gemm.j2", "ops.j2"}
    plan = json.loads(files["plan.json"])
    assert plan["gemms"] == [{"matmul_block": "y_matmul", "epilogue_block": "y_epilogue",
                              "m": 128, "n": 256, "k": 512, "transpose_b": True}]


@pytest.mark.parametrize("approx,needle", [("exact", "T.erf("), ("tanh", "T.tanh(")])
def test_gelu_variants_render_their_own_formula(approx, needle):
    files, _ = render(REPO / "specs/gemm_bias_gelu.yaml", 0 if approx == "exact" else 1)
    assert needle in files["kernel.py"]


def test_tiled_layout_renders_flat_buffer_index():
    files, _ = render("""
name: t
inputs:
  x: {shape: [8, 16], dtype: float32}
  w: {shape: [32, 16], dtype: float32, layout: {tiled: [4, 8]}}
graph:
  - {op: matmul, inputs: [x, w], output: y, transpose_b: true}
outputs: [y]
""")
    src = files["kernel.py"]
    assert 't_w: T.Buffer((512,), "float32")' in src
    assert "rm_w[v0, v1] = t_w[(v0 // 4 % 8) * 64 + (v0 % 4) * 8 + (v1 // 8 % 2) * 32 + (v1 % 8) * 1]" in src
    assert "acc_y[vi, vj] + t_x[vi, vk] * rm_w[vj, vk]" in src
