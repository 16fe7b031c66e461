"""tir-cpu's small-M path (schedule/gemv.py) and its micro kernel (schedule/gemm.py, lower.py):
the GEMV rule multiplies up to gemv_max_m rows of x without packing W, 4 rows of x by 4 rows of
W per step, with every tail (M, N, K) padded or narrowed instead of predicated; the packed
GEMM's K loop holds k_unroll steps per body (a divisor of K); register tiles over TVM's 1 KiB
limit stay on the stack."""
from __future__ import annotations

import json
import re

import pytest
from backend_build import validate, variant_of

from fusebuild.backends import get_backend

SPEC = """\
name: gv
inputs:
  x: {{shape: [{m}, {k}], dtype: float32}}
  w: {{shape: [{n}, {k}], dtype: float32}}
  bias: {{shape: [{n}], dtype: float32}}
graph:
  - {{op: matmul, inputs: [x, w], output: y, transpose_b: true, epilogue: [{{add: bias}}, silu]}}
outputs: [y]
targets: [tir-cpu]
{schedule}"""


def need_tvm():
    if not get_backend("tir-cpu").toolchain().available:
        pytest.skip("tir-cpu: apache-tvm missing")


def built(tmp_path, m, n, k, schedule=""):
    v = variant_of(SPEC.format(m=m, n=n, k=k, schedule=schedule), "tir-cpu")
    result = validate(v, "tir-cpu", tmp_path)
    record = json.loads((tmp_path / "gv" / v.name / "tir-cpu" / "schedule.json").read_text())
    return result, record["gemms"]["y_matmul"]


@pytest.mark.parametrize("m, n, k, step, rows, lanes, padded_k", [
    (1, 20, 24, 1, 4, 8, False),         # decode, K narrows to 8-lane vectors
    (3, 37, 64, 3, 1, 16, False),        # N = 37: one row of W per step
    (4, 12, 10, 4, 4, 16, True),         # only K padded (no unpad copy of the accumulator)
    (5, 6, 333, 4, 2, 16, True),         # M padded to 8, K = 333 padded to 336
    (16, 20, 1024, 4, 4, 16, False),     # M >= micro_m: GEMV as K >= 1024
    (61, 40, 1037, 4, 4, 16, True),      # M = 61 padded to 64, K to 1040
    (64, 12, 1024, 4, 4, 16, False),     # the default gemv_max_m: still GEMV
])
def test_gemv_tails_validate(tmp_path, m, n, k, step, rows, lanes, padded_k):
    need_tvm()
    result, sched = built(tmp_path, m, n, k)
    assert result.ok, result.samples
    assert sched["path"] == "gemv" and (sched["row_step"], sched["rows"], sched["lanes"]) == (step, rows, lanes)
    assert any(n.startswith(f"K={k} padded to") for n in sched["notes"]) == padded_k


def test_gemv_or_packed_gemm(tmp_path):
    need_tvm()
    result, sched = built(tmp_path, 65, 20, 1024)                   # M above gemv_max_m
    assert result.ok and sched["path"] == "gemm" and (sched["micro_m"], sched["micro_n"]) == (8, 48)
    result, sched = built(tmp_path / "b", 20, 20, 1024, "schedule: {tir-cpu: {gemv_max_m: 0}}\n")
    assert result.ok and sched["path"] == "gemm"
    result, sched = built(tmp_path / "c", 20, 20, 1000)              # K too short for the horizontal sums
    assert result.ok and sched["path"] == "gemm"


def test_k_unroll_divides_k():
    from fusebuild.backends.tir_cpu.tiling import k_unroll
    assert [k_unroll(k, 2) for k in (1024, 333, 1)] == [2, 1, 1]
    assert [k_unroll(k, 4) for k in (1000, 12, 6, 7)] == [4, 4, 3, 1]


@pytest.mark.parametrize("k, hint, unroll", [(333, 4, 3), (331, 4, 1), (96, 4, 4), (90, 1, 1)])
def test_k_unroll_validates(tmp_path, k, hint, unroll):
    need_tvm()
    result, sched = built(tmp_path, 40, 50, k, f"schedule: {{tir-cpu: {{k_unroll: {hint}}}}}\n")
    assert result.ok, result.samples
    assert sched["path"] == "gemm" and sched["k_unroll"] == unroll
    assert any(n.startswith(f"k_unroll {hint} -> {unroll}") for n in sched["notes"]) == (hint != unroll)


def _ll(mod, **kw) -> str:
    import tvm

    from fusebuild.backends.tir_cpu.schedule import host_target
    return tvm.compile(mod, target=host_target(), **kw).mod.inspect_source("ll")


def test_an_8x48_register_tile_stays_on_the_stack():
    """A 1.5 KiB accumulator tile is an alloca with the fusebuild pipeline, a heap workspace
    (every FMA through memory) with TVM's default one."""
    need_tvm()
    import tvm
    from tvm.script import tirx as T

    from fusebuild.backends.tir_cpu.lower import pipeline

    @T.prim_func(s_tir=True)
    def tile(a: T.Buffer((64, 64), "float32"), c: T.Buffer((64, 48), "float32")):
        for io in T.parallel(8):
            with T.sblock("tile"):
                vio = T.axis.spatial(8, io)
                acc = T.sblock_alloc_buffer((8, 48), "float32")
                for i, j in T.grid(8, 48):
                    with T.sblock("init"):
                        vi, vj = T.axis.remap("SS", [i, j])
                        acc[vi, vj] = T.float32(0)
                for k, i, j in T.grid(64, 8, 48):
                    with T.sblock("update"):
                        vk, vi, vj = T.axis.remap("RSS", [k, i, j])
                        acc[vi, vj] = acc[vi, vj] + a[vio * 8 + vi, vk]
                for i, j in T.grid(8, 48):
                    with T.sblock("store"):
                        vi, vj = T.axis.remap("SS", [i, j])
                        c[vio * 8 + vi, vj] = acc[vi, vj]

    mod = tvm.IRModule({"main": tile})
    heap = _ll(mod)
    stack = _ll(mod, tir_pipeline=pipeline())
    workspace = re.compile(r"call ptr %\w+\(i32 1, i32 %\w+, i64 1536,")   # TVMBackendAllocWorkspace(cpu, ., 1536 B)
    assert workspace.search(heap) and "alloca [384 x float]" not in heap
    assert not workspace.search(stack) and "alloca [384 x float]" in stack
