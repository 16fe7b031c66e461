"""Load-time refusals name the rule the spec breaks (mlir-cpu's IREE vector size limit,
mlir-aie's hints, tails and operands), pinned by message."""
from __future__ import annotations

import pytest

from fusebuild.backends.mlir_cpu import hints as cpu_hints
from fusebuild.spec import parse_spec
from fusebuild.tune.space import Gemm, Problem

from conftest import refused


def gemm(M, N, K, target, dtype="float32", hints="", epilogue="", extra=""):
    return (f"name: g\nparams: {{M: {M}, N: {N}, K: {K}}}\ninputs:\n  x: {{shape: [M, K], dtype: {dtype}}}\n"
            f"  w: {{shape: [N, K], dtype: {dtype}}}\n  bias: {{shape: [N], dtype: {dtype}}}\n{extra}"
            f"graph:\n  - {{op: matmul, inputs: [x, w], output: y, transpose_b: true{epilogue}}}\n"
            f"outputs: [y]\ntargets: [{target}]\n{hints}")


# 1. mlir-cpu: IREE's llvm-cpu vector size limit (native vector bytes x 512; AVX-512: 32768)

AVX512 = Problem((Gemm(64, 64, 64, True),), "float32", lanes=16, vector_registers=32)
AVX2 = Problem((Gemm(64, 64, 64, True),), "float32", lanes=8, vector_registers=16)
TILES = {"dist_m": 64, "dist_n": 64, "vec_m": 8, "vec_n": 16}


def test_mlir_cpu_vector_size_rule_matches_iree_limit():
    # measured with iree-compile (AVX-512 host): 8x16x64 f32 fails "large vector sizes (32768 bytes)",
    # 8x16x63, 8x16x32 and 4x16x64 compile, 8x32x32 and 16x16x32 fail
    rule = next(r for r in cpu_hints.HINTS.rules if r.name == "vector-size")
    assert cpu_hints.max_vector_bytes(AVX512) == 32768
    assert rule.check({**TILES, "vec_k": 64}, AVX512)
    assert rule.check({**TILES, "vec_k": 63}, AVX512) is None
    assert rule.check({**TILES, "vec_k": 32}, AVX512) is None
    assert rule.check({**TILES, "vec_m": 4, "vec_k": 64}, AVX512) is None
    assert rule.check({**TILES, "vec_n": 32, "vec_k": 32}, AVX512)
    assert rule.check({**TILES, "vec_m": 16, "vec_k": 32}, AVX512)
    assert cpu_hints.max_vector_bytes(AVX2) == 16384
    why, valid = rule.check({**TILES, "vec_k": 64}, AVX512), rule.fit({**TILES, "vec_k": 64}, AVX512)
    assert rule.hint == "vec_k"
    assert "32768-byte vector.contract" in why and "refuses 32768 bytes or more" in why
    assert "--iree-llvmcpu-max-allowed-number-of-native-vectors" in why
    assert valid == "vec_m*vec_n*vec_k*4 < 32768: vec_k <= 63 with vec_m=8 vec_n=16 (e.g. vec_k=32)"


def test_mlir_cpu_check_refuses_hints_past_the_vector_limit(monkeypatch):
    from fusebuild.tune import device
    monkeypatch.setattr(device, "vector_bits", lambda: 512)
    hints = "schedule: {mlir-cpu: {dist_m: 64, dist_n: 64, vec_m: 8, vec_n: 16, vec_k: %d}}\n"
    msg = refused(gemm(64, 64, 64, "mlir-cpu", hints=hints % 64, epilogue=", epilogue: [{add: bias}, relu]"))
    assert "schedule.mlir-cpu.vec_k:" in msg
    assert "schedule hints break rule 'vector-size'" in msg and "vec_k <= 63" in msg
    parse_spec(gemm(64, 64, 64, "mlir-cpu", hints=hints % 32), "specs/g.yaml")


def test_mlir_cpu_tuning_space_excludes_them():
    from fusebuild.backends import TARGETS
    from fusebuild.tune.space import Space
    space = Space.of(TARGETS["mlir-cpu"])
    assert space.why_not({"data_tiling": 0, **TILES, "vec_k": 64}, AVX512).startswith("vector-size: ")
    assert space.why_not({"data_tiling": 0, **TILES, "vec_k": 32}, AVX512) is None


# 2. mlir-aie: a hint that cannot divide its dimension is named, not the defaults around it

def test_mlir_aie_hint_not_dividing_k_is_named():
    msg = refused(gemm(64, 256, 256, "mlir-aie", "bfloat16", "schedule: {mlir-aie: {tile_k: 96}}\n"))
    assert "hint tile_k=96 does not divide K=256 in multiples of 8" in msg
    assert "valid: tile_k: a divisor of 256 that is a multiple of 8 (8, 16, 32, 64, 128, 256)" in msg
    assert "cores x tile_n" not in msg


def test_mlir_aie_hint_not_dividing_n_or_m_is_named():
    msg = refused(gemm(64, 256, 256, "mlir-aie", "bfloat16", "schedule: {mlir-aie: {tile_n: 48}}\n"))
    assert "hint tile_n=48 does not divide N=256 in multiples of 16" in msg
    msg = refused(gemm(64, 256, 256, "mlir-aie", "bfloat16", "schedule: {mlir-aie: {tile_m: 24}}\n"))
    assert "hint tile_m=24 does not divide M=64" in msg


def test_mlir_aie_partial_hints_report_the_nearest_completion():
    msg = refused(gemm(64, 256, 256, "mlir-aie", "bfloat16", "schedule: {mlir-aie: {tile_k: 64, cores: 32}}\n"))
    assert "schedule hints tile_m=64 tile_n=16 tile_k=64 cores=32 do not fit npu2: 'y': 32 cores x tile_n=16 " \
           "do not divide N=256" in msg
    assert "nearest tilings that fit: tile_m=64 tile_n=16 tile_k=64 cores=16" in msg


# 3. mlir-aie tails: the dimension at fault and its rule

@pytest.mark.parametrize("M, N, K, fault, valid", [
    (7, 32, 13, "K=13 is not a multiple of 8", "K a multiple of 8 (pad the operands), or another target"),
    (1, 1, 1, "N=1 is not a multiple of 16 (tile_n: the kernels' vector width); K=1 is not a multiple of 8",
     "N a multiple of 16 and K a multiple of 8 (pad the operands), or another target"),
    (1, 17, 8, "N=17 is not a multiple of 16", "N a multiple of 16 (pad the operands), or another target"),
])
def test_mlir_aie_tails_name_the_dimension(M, N, K, fault, valid):
    msg = refused(gemm(M, N, K, "mlir-aie"))
    assert f"no tiling fits npu2: {fault}" in msg
    assert "the design takes no tails" in msg
    assert f"(valid: {valid})" in msg
    assert "smaller shapes" not in msg


# 4. mlir-aie: a full-shape epilogue operand is filed under its graph entry

def test_mlir_aie_full_shape_operand_points_at_the_graph_entry():
    msg = refused(gemm(64, 256, 256, "mlir-aie", "bfloat16", epilogue=", epilogue: [{add: r}]",
                       extra="  r: {shape: [M, N], dtype: bfloat16}\n"))
    assert "graph[0]: target mlir-aie" in msg
    assert "epilogue operand 'r' has the output's full shape [64, 256]" in msg
    assert "schedule.mlir-aie" not in msg
