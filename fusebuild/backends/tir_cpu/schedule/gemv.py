"""The GEMV rule: B is (N, K) and M is small (M < micro_m, or M <= gemv_max_m with K >= 1024;
a dynamic M's rows side).

Packing B costs a transposing copy of the whole weight per call, as much as the product at
these M, so the kernel reduces along the contiguous K with SIMD-wide vectors instead
(``rfactor`` over the lanes), parallel over N: per step, 4 rows of B by up to 4 rows of x
(16 vector accumulators, each B vector loaded once for 4 rows, each x vector for 4 rows of
B), with the horizontal sums and the epilogue computed per 4 x 4 outputs.

Tails never reach the inner loop as predicates (a predicated step ran 10x slower): M is
padded to whole row steps (a zero-filled copy of x, which is small here; with a dynamic M
the padded rows read row M-1 instead, gemm.clamp_rows), N takes the largest step of 4, 2, 1
rows that divides it, and a K that is not a whole number of vectors is padded with zeros
when x has at least one full row step (a copy of B, still cheaper than scalar products for
4 or more rows), else reduced with narrower vectors.
"""
from __future__ import annotations

from tvm import s_tir

from .. import tiling
from .common import GemmSchedule, attach, buf, out_dtype, parallel_copy, producer
from .gemm import pad_to
from .target import vector_lanes

ROWS = 4       # rows of B reduced together


def _lanes(sch, g: GemmSchedule) -> int:
    return vector_lanes(out_dtype(sch, sch.get_sblock(g.matmul_block)))


def _step(g: GemmSchedule) -> int:
    return tiling.gemv_row_tile(None if g.m_dynamic else g.m)


def _pads_k(g: GemmSchedule, lanes: int) -> bool:
    return g.m_dynamic is None and g.m >= tiling.GEMV_ROWS and g.k % lanes != 0


def pad(sch: s_tir.Schedule, g: GemmSchedule):
    """Pad M to whole row steps (and K to whole vectors, see above) before scheduling."""
    lanes = _lanes(sch, g)
    pad_to(sch, g, [_step(g), 1, lanes if _pads_k(g, lanes) else 1])


def _vectorized_copy(sch: s_tir.Schedule, copy, lanes: int, threads: int):
    """A zero-padded copy of x or W: parallel over rows, whole vectors along K."""
    cols = sch.get_loops(copy)[-1]
    if int(sch.get(cols).extent) % lanes == 0:
        _, vec = sch.split(cols, [None, lanes])
        sch.vectorize(vec)
    parallel_copy(sch, copy, threads)


def apply(sch: s_tir.Schedule, g: GemmSchedule, threads: int) -> dict:
    mm = sch.get_sblock(g.matmul_block)
    lanes = _lanes(sch, g)
    copies = [b for b in (producer(sch, buf(r)) for r in sch.get(mm).reads[:2]) if b is not None]  # pad()'s
    k = tiling.ceil_to(g.k, lanes) if _pads_k(g, lanes) else g.k
    while lanes > 1 and k % lanes:
        lanes //= 2
    rows = max(r for r in (ROWS, 2, 1) if g.n % r == 0)
    step = _step(g)
    i, j, kl = sch.get_loops(mm)
    jo, ji = sch.split(j, [None, rows])
    rf = None
    if lanes > 1:
        ko, ki = sch.split(kl, [None, lanes])
        rf = sch.rfactor(ki, 0)  # rf[lane, i, j]: per-lane partial sums, reduced horizontally after
        ri, rjo, rji, rko, rki = sch.get_loops(rf)
        rio, rii = sch.split(ri, [None, step])
        sch.reorder(rjo, rio, rko, rii, rji, rki)
        sch.vectorize(rki)
        sch.unroll(rji)
        sch.unroll(rii)
        sch.reverse_compute_at(mm, rio)
        outer, row, red = rjo, rio, rko
    else:
        io, ii = sch.split(i, [None, step])
        sch.reorder(jo, io, kl, ii, ji)
        sch.unroll(ii)
        sch.unroll(ji)
        outer, row, red = jo, io, kl
    if g.epilogue_block:
        attach(sch, g.epilogue_block, row)
    if threads > 1:
        sch.parallel(outer)
    sch.decompose_reduction(rf if rf is not None else mm, red)
    for copy in copies:
        _vectorized_copy(sch, copy, lanes, threads)
    m = f"M={g.m}" if g.m_dynamic is None else "M (dynamic, at run time)"
    notes = [f"{m} < {g.gemv_below()} (micro_m; gemv_max_m + 1 if K >= {tiling.GEMV_MIN_K}) with an (N, K) weight: "
             "tile hints do not apply"]
    if k != g.k:
        notes.append(f"K={g.k} padded to {k}: whole {lanes}-lane vectors")
    return {"path": "gemv", "lanes": lanes, "rows": rows, "row_step": step, "notes": notes}
