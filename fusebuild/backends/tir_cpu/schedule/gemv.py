"""The GEMV rule: B is (N, K) and M < micro_m (decode, M=1; a dynamic M's rows side).

Packing would cost as much as the product, so the kernel reduces along the contiguous
K with SIMD-wide vectors instead (``rfactor`` over the lanes, 4 rows of B in flight for
independent FMA chains and reuse of the x vector), parallel over N, with the horizontal
sum and the epilogue computed per 4 outputs.
"""
from __future__ import annotations

from tvm import s_tir

from .common import GemmSchedule, attach, out_dtype
from .target import vector_lanes

ROWS = 4       # rows of B reduced together


def apply(sch: s_tir.Schedule, g: GemmSchedule, threads: int) -> dict:
    mm = sch.get_sblock(g.matmul_block)
    lanes = vector_lanes(out_dtype(sch, mm))
    while lanes > 1 and g.k % lanes:
        lanes //= 2
    rows = min(ROWS, g.n)
    i, j, k = sch.get_loops(mm)
    jo, ji = sch.split(j, [None, rows])
    rf = None
    if lanes > 1:
        ko, ki = sch.split(k, [None, lanes])
        rf = sch.rfactor(ki, 0)  # rf[lane, i, j]: per-lane partial sums, reduced horizontally after
        ri, rjo, rji, rko, rki = sch.get_loops(rf)
        sch.reorder(rjo, ri, rko, rji, rki)
        sch.vectorize(rki)
        sch.unroll(rji)
        sch.reverse_compute_at(mm, ri)
        outer, row, red = rjo, ri, rko
    else:
        sch.reorder(jo, i, k, ji)
        sch.unroll(ji)
        outer, row, red = jo, i, k
    if g.epilogue_block:
        attach(sch, g.epilogue_block, row)
    if threads > 1:
        sch.parallel(outer)
    sch.decompose_reduction(rf if rf is not None else mm, red)
    m = f"M={g.m}" if g.m_dynamic is None else "M (dynamic, at run time)"
    return {"path": "gemv", "lanes": lanes, "rows": rows,
            "notes": [f"{m} < micro_m={g.hint('micro_m')} with an (N, K) weight: tile hints do not apply"]}
