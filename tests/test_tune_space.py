"""tune/space.py and the spaces the backends declare: candidates, rules, effective dedupe,
budget and order, --space overrides; tir-cuda's adapter; mlir-cpu's hints in its source."""
from __future__ import annotations

import json

import pytest
from conftest import render, variants

from fusebuild.backends import TARGETS
from fusebuild.backends.tir_cpu import tiling
from fusebuild.errors import FusebuildError
from fusebuild.tune.space import Problem, Space, SpaceError, config_id, parse_overrides

GEMM = """\
name: g
params: {{M: {M}, N: {N}, K: {K}}}
inputs:
  x: {{shape: [M, K], dtype: {dt}}}
  w: {{shape: [N, K], dtype: {dt}}}
  b: {{shape: [N], dtype: {dt}}}
graph:
  - {{op: matmul, inputs: [x, w], output: y, transpose_b: true, epilogue: [{{add: b}}, silu]}}
outputs: [y]
targets: [{target}]
"""


def gemm(target="tir-cpu", M=1024, N=1024, K=1024, dt="float32"):
    return variants(GEMM.format(M=M, N=N, K=K, dt=dt, target=target), target)[0]


def space_of(target, overrides=None):
    return Space.of(TARGETS[target], overrides)


def candidates(target, v, budget=None, overrides=None, given=None, cores=2, bits=512):
    return space_of(target, overrides).candidates(given or {}, Problem.of(v.graph, cores, bits), "seed", budget)


def test_base_config_first_then_budget_cuts():
    v = gemm()
    all_, _ = candidates("tir-cpu", v)
    first, _ = candidates("tir-cpu", v, budget=5)
    assert first[0] == TARGETS["tir-cpu"].hints.resolve({})
    assert first == all_[:5] and len(all_) > 20
    assert len({config_id(c) for c in all_}) == len(all_)


def test_the_spec_hints_are_the_base():
    v = gemm()
    cands, _ = candidates("tir-cpu", v, budget=3, given={"tile_m": 128, "micro_n": 32})
    assert cands[0] == {"tile_m": 128, "tile_n": 96, "micro_m": 8, "micro_n": 32, "k_unroll": 2, "gemv_max_m": 64}


def test_tir_cpu_builds_each_effective_kernel_once():
    """Configurations the schedule reduces to the same tiles are one candidate."""
    v = gemm(M=64, N=96, K=32)
    t = TARGETS["tir-cpu"].hints
    p = Problem.of(v.graph, 2, 512)
    cands, _ = candidates("tir-cpu", v)
    effective = [json.dumps(t.effective(c, p), sort_keys=True) for c in cands]
    assert len(set(effective)) == len(effective)
    # tile_m 128/256/512 on M=64 all become the whole M, then 8 rows for 4 tiles per thread
    assert len(candidates("tir-cpu", v, overrides={"tile_m": (128, 256, 512)})[0]) == 1


def test_tir_cpu_effective_matches_the_schedule_arithmetic():
    t = tiling.tiles(1024, 1024, {"tile_m": 256, "tile_n": 96, "micro_m": 4, "micro_n": 40}, 16, 4, 2)
    assert (t.micro_m, t.micro_n, t.tile_m, t.tile_n) == (4, 32, 256, 64)   # 3 micro tiles do not divide 32
    assert "micro_n 40 -> 32: whole 16-lane vectors" in t.notes
    t = tiling.tiles(1024, 1024, {"tile_m": 256, "tile_n": 96, "micro_m": 16, "micro_n": 64}, 16, 4, 2)
    assert t.micro_m == 15                   # 16x64 floats = 4 KiB: not under the stack limit (lower.py)


def test_register_rule_on_a_256_bit_cpu():
    v = gemm()
    cands, rejected = candidates("tir-cpu", v, bits=256)
    assert rejected.get("registers", 0) > 0
    for c in cands[1:]:
        t = tiling.micro(1024, c["micro_m"], c["micro_n"], 8, 4)
        assert t.micro_m * (t.micro_n // 8) + t.micro_n // 8 + 1 <= 16


def test_gemv_problem_has_nothing_to_tune():
    cands, _ = candidates("tir-cpu", gemm(M=1, N=256, K=256))
    assert len(cands) == 1


def test_order_covers_every_value_early():
    v = gemm("mlir-cpu")
    cands, rejected = candidates("mlir-cpu", v, budget=12)
    assert {c.get("data_tiling") for c in cands} == {0, 1}
    assert {c.get("ukernels") for c in cands} >= {0, 1}
    assert {c.get("vec_n") for c in cands} >= {16, 32, 64}
    assert rejected["modes"] > 0 and rejected["together"] > 0


def test_mlir_cpu_rules():
    v = gemm("mlir-cpu")
    cands, _ = candidates("mlir-cpu", v)
    tiles = ("dist_m", "dist_n", "vec_m", "vec_n", "vec_k")
    for c in cands:
        given = [h for h in tiles if c.get(h) is not None]
        assert given in ([], list(tiles))
        if given:
            assert c["data_tiling"] == 0 and c["vec_n"] % 16 == 0 and c["dist_m"] % c["vec_m"] == 0
        if c.get("ukernels") is not None or c.get("tile_bytes") is not None:
            assert c["data_tiling"] == 1


def test_mlir_cpu_tiles_of_a_dynamic_m_must_fit_its_maximum():
    """A dynamic M is checked at its range's maximum: a tile no larger than it serves every M
    (smaller M take partial tiles; tests/test_dynamic_build.py compiles them)."""
    v = variants(GEMM.format(M="{dynamic: [1, 64]}", N=256, K=256, dt="float32", target="mlir-cpu"), "mlir-cpu")[0]
    p = Problem.of(v.graph, 2, 512)
    assert [g.m for g in p.gemms] == [64]
    tiles = {"data_tiling": 0, "dist_n": 64, "vec_m": 8, "vec_n": 16, "vec_k": 8}
    space = space_of("mlir-cpu")
    assert space.why_not(dict(tiles, dist_m=64), p) is None
    assert "larger than the 64x256x256 matmul" in space.why_not(dict(tiles, dist_m=128), p)


def test_overrides_are_checked():
    assert parse_overrides(["micro_n=16,32", "tile_m=64"]) == {"micro_n": (16, 32), "tile_m": (64,)}
    with pytest.raises(SpaceError, match="expected NAME=V1,V2"):
        parse_overrides(["micro_n"])
    with pytest.raises(SpaceError, match="no tunable hint 'tile_q'") as info:
        space_of("tir-cpu", {"tile_q": (1,)})
    assert "tile_m" in str(info.value)
    with pytest.raises(SpaceError, match="no tunable hint 'threads'"):      # part of the problem, not searched
        space_of("tir-cpu", {"threads": (1,)})
    with pytest.raises(SpaceError, match="micro_m=99 is out of range"):
        space_of("tir-cpu", {"micro_m": (99,)})
    assert space_of("tir-cpu", {"micro_n": (16, 32)}).searched == ("micro_n",)


def test_pinned_hints_are_the_ones_not_searched():
    s = space_of("tir-cpu")
    assert s.pinned({"threads": 1, "tile_m": 64}) == {"threads": 1}


# --- tir-cuda: the adapter's values and rules -----------------------------------------------

def cuda_problem(M=4096, N=4096, K=4096):
    return Problem.of(gemm("tir-cuda", M, N, K, "bfloat16").graph)


def test_tir_cuda_shared_memory_and_register_rules():
    s, p = space_of("tir-cuda"), cuda_problem()
    big = {"block_m": 256, "block_n": 256, "block_k": 128, "stages": 4}
    assert "shared-memory" in s.why_not(big, p) and "524288 B" in s.why_not(big, p)
    assert s.why_not({"block_m": 128, "block_n": 256, "block_k": 64, "stages": 3}, p) is None
    assert "registers" in s.why_not({"block_m": 256, "block_n": 256, "threads": 128}, p)
    assert "split-k" in s.why_not({"split_k": 4, "block_k": 128, "stages": 4}, cuda_problem(K=1024))


def test_tir_cuda_space_is_built_from_its_declared_hints():
    s = space_of("tir-cuda")
    declared = TARGETS["tir-cuda"].hints
    assert set(s.searched) <= set(declared.names)
    for name, values in s.values.items():
        assert all(declared[name].problem(v) is None for v in values), name
    cands, rejected = s.candidates({}, cuda_problem(), "seed", 40)
    assert cands[0] == {} and len(cands) == 40 and rejected
    assert not any(k.startswith("dual_") for c in cands for k in c)        # a plain GEMM: no dual_* hints


def test_tir_cuda_swiglu_searches_the_dual_kernel():
    from pathlib import Path

    from fusebuild.spec import load_spec
    spec = Path(__file__).resolve().parent.parent / "specs" / "swiglu_prefill.yaml"
    v = next(v for v in load_spec(spec).variants if "tir-cuda" in v.targets)
    cands, _ = space_of("tir-cuda").candidates({}, Problem.of(v.graph), "seed", 30)
    assert any(k.startswith("dual_") for c in cands for k in c)


# --- mlir-cpu: hints reach the source and the flags ----------------------------------------

def test_mlir_cpu_tile_hints_render_a_compilation_info():
    v = gemm("mlir-cpu", 128, 128, 64)
    hints = {"data_tiling": 0, "dist_m": 64, "dist_n": 32, "vec_m": 8, "vec_n": 16, "vec_k": 1}
    r = render(v, "mlir-cpu", hints=hints)
    text = r.files["kernel.mlir"]
    assert ("lowering_config = #iree_cpu.lowering_config<distribution = [64, 32, 0], "
            "vector_common_parallel = [8, 16, 0], vector_reduction = [0, 0, 1]>") in text
    assert json.loads(r.files["plan.json"])["flags"] == ["--iree-opt-data-tiling=false"]
    plain = render(v, "mlir-cpu", hints={"data_tiling": 1, "ukernels": 1, "tile_bytes": 65536})
    assert "compilation_info" not in plain.files["kernel.mlir"]
    assert json.loads(plain.files["plan.json"])["flags"] == [
        "--iree-opt-data-tiling=true", "--iree-llvmcpu-enable-ukernels=all", "--iree-llvmcpu-matmul-tile-bytes=65536"]


def test_mlir_cpu_partial_tile_hints_are_one_clear_error():
    v = gemm("mlir-cpu", 128, 128, 64)
    with pytest.raises(FusebuildError) as info:
        render(v, "mlir-cpu", hints={"dist_m": 64})
    assert "dist_n, vec_m, vec_n, vec_k not" in str(info.value) and "valid:" in str(info.value)


def test_tir_cuda_seeds_come_first_and_every_candidate_passes_the_backend_check():
    from fusebuild.backends.tir_cuda import tiles
    for m in (1, 1024):
        v = gemm("tir-cuda", m, 14336, 4096, "bfloat16")
        cands, _ = space_of("tir-cuda").candidates({}, Problem.of(v.graph), "seed", 10, v.graph)
        own = [tiles.config_hints(c, "") for c in tiles.candidates("gemm", m, 14336, 4096)]
        assert cands[0] == {} and cands[1] in own                     # the defaults, then the backend's own
        assert ("swap_ab" in cands[1]) == (m <= tiles.DECODE_MAX)
        assert all(TARGETS["tir-cuda"].check(v.graph, c) == [] for c in cands)
