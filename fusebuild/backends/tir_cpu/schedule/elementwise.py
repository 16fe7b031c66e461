"""The elementwise rule: fuse all loops, vectorize the inner SIMD width, parallel when large."""
from __future__ import annotations

from tvm import s_tir

from .common import out_dtype
from .target import vector_lanes

PARALLEL_FROM = 1 << 14      # elements: below this, threads cost more than they save


def apply(sch: s_tir.Schedule, name: str, threads: int) -> dict:
    block = sch.get_sblock(name)
    loops = sch.get_loops(block)
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
