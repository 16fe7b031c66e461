"""The elementwise rule: fuse all loops, vectorize the inner SIMD width, parallel when large.

With a dynamic size (its rows: tir-cpu's limits keep dynamic sizes in the first
dimension) the loops are not fused: the static innermost loop is vectorized when it
holds whole vectors, and the outermost runs parallel.
"""
from __future__ import annotations

from tvm import s_tir, tirx

from .common import out_dtype
from .target import vector_lanes

PARALLEL_FROM = 1 << 14      # elements: below this, threads cost more than they save


def apply(sch: s_tir.Schedule, name: str, threads: int) -> dict:
    block = sch.get_sblock(name)
    loops = sch.get_loops(block)
    if not all(isinstance(sch.get(lp).extent, tirx.IntImm) for lp in loops):
        return _dynamic(sch, block, loops, threads)
    fused = sch.fuse(*loops) if len(loops) > 1 else loops[0]
    lanes = vector_lanes(out_dtype(sch, block))
    extent = int(sch.get(fused).extent)
    if extent % lanes == 0 and extent >= lanes:
        outer, inner = sch.split(fused, [None, lanes])
        sch.vectorize(inner)
    else:
        outer = fused
    parallel = threads > 1 and extent >= PARALLEL_FROM
    if parallel:
        sch.parallel(outer)
    return {"path": "elementwise", "vector": extent % lanes == 0 and extent >= lanes, "parallel": parallel}


def _dynamic(sch: s_tir.Schedule, block, loops, threads: int) -> dict:
    lanes = vector_lanes(out_dtype(sch, block))
    inner = sch.get(loops[-1]).extent
    vector = len(loops) > 1 and isinstance(inner, tirx.IntImm) and int(inner) % lanes == 0
    if vector:
        _, vec = sch.split(loops[-1], [None, lanes])
        sch.vectorize(vec)
    if threads > 1:
        sch.parallel(loops[0])
    return {"path": "elementwise", "vector": vector, "parallel": threads > 1, "dynamic": True}
