"""The GEMM rule: register-blocked micro kernel, packed B, fused epilogue, parallel cache tiles.

* Register blocking.  The output is cut into ``micro_m x micro_n`` micro tiles
  (default 4 rows x 48 columns = 4 x 3 AVX-512 vectors = 12 accumulators).  For
  each micro tile the whole K loop runs with the accumulators in registers: the
  ``<out>_acc`` buffer compacts to that micro tile, stays under TVM's 1 KiB
  stack-allocation limit, and LLVM promotes it to zmm registers.
* Fused epilogue.  The epilogue block is ``reverse_compute_at`` the micro tile,
  so bias/activation run on the registers right before the single store.
* B packing.  B is copied (inside the kernel, parallel) into panels
  ``Bp[n // micro_n, k, n % micro_n]`` so the micro kernel reads one contiguous
  stream; for (N, K) weights this is also the transpose.
* Cache blocking.  Micro tiles are grouped into ``tile_m x tile_n`` cache tiles,
  iterated column-panel outer / row inner so a B panel is reused from L1/L2; the
  tiles are fused and run ``parallel``.
* Ragged shapes.  M and N are padded (``pad_einsum``) to whole micro tiles, so the
  micro kernel never carries a predicate.

Every reduction of a hint (to whole vectors, under the stack limit, for enough
parallel tiles) is recorded with its reason in the returned record.
"""
from __future__ import annotations

import tvm
from tvm import s_tir

from .common import (_STACK_LIMIT, GemmSchedule, attach, buf, ceil_to, largest_divisor_at_most, out_dtype,
                     parallel_copy, try_get, vectorize_epilogue)
from .target import vector_lanes


def micro_tile(sch: s_tir.Schedule, g: GemmSchedule, notes: list | None = None):
    """(micro_m, micro_n, padded M, padded N, vector lanes); reductions are noted."""
    notes = [] if notes is None else notes
    dtype = out_dtype(sch, sch.get_sblock(g.matmul_block))
    lanes = vector_lanes(dtype)
    mr, want_n = g.hint("micro_m"), g.hint("micro_n")
    nr = max(lanes, want_n // lanes * lanes)  # whole vectors
    if nr != want_n:
        notes.append(f"micro_n {want_n} -> {nr}: whole {lanes}-lane vectors")
    want_m = mr
    while mr * nr * tvm.runtime.DataType(dtype).bits // 8 >= _STACK_LIMIT and mr > 1:
        mr -= 1  # keep the register tile under the stack-allocation limit
    if mr != want_m:
        notes.append(f"micro_m {want_m} -> {mr}: the {mr + 1}x{nr} register tile would pass TVM's 1 KiB stack limit")
    if g.m < mr:  # tiny M on a (K, N) weight: shrink the micro tile instead of padding
        notes.append(f"micro_m {mr} -> {g.m}: M is {g.m}")
        mr = g.m
    return mr, nr, ceil_to(g.m, mr), ceil_to(g.n, nr), lanes


def pad(sch: s_tir.Schedule, g: GemmSchedule):
    """Pad M/N to whole micro tiles, so the micro kernel never needs a predicate."""
    mr, nr, mp, np_, _ = micro_tile(sch, g)
    if (mp, np_) != (g.m, g.n):
        mm = sch.get_sblock(g.matmul_block)
        sch.pad_einsum(mm, [mr, nr, 1])
        # The epilogue reads the padded accumulator directly (no unpad copy).
        sch.compute_inline(sch.get_sblock(buf(sch.get(mm).writes[0]).name))


def apply(sch: s_tir.Schedule, g: GemmSchedule, threads: int) -> dict:
    notes = []
    mr, nr, mp, np_, lanes = micro_tile(sch, g, notes)
    mm = sch.get_sblock(g.matmul_block)
    b_name = buf(sch.get(mm).reads[1]).name
    b_pad = try_get(sch, b_name) if b_name.endswith("_pad") else None

    # Pack B into contiguous (N/nr, K, nr) panels (also the transpose for (N, K) B).
    # this GEMM only: another GEMM reading the same B packs its own copy (a shared
    # cache would be transformed twice)
    pack = b_pad if b_pad is not None else sch.cache_read(mm, 1, "global", consumer_blocks=[mm])
    if g.transpose_b:
        sch.transform_layout(mm, ("read", 1), lambda j, k: (j // nr, k, j % nr))
    else:
        sch.transform_layout(mm, ("read", 1), lambda k, j: (j // nr, k, j % nr))

    tm = mr * largest_divisor_at_most(mp // mr, max(1, g.hint("tile_m") // mr))
    tn = nr * largest_divisor_at_most(np_ // nr, max(1, g.hint("tile_n") // nr))
    for name, got in (("tile_m", tm), ("tile_n", tn)):
        if got != g.hint(name):
            notes.append(f"{name} {g.hint(name)} -> {got}: whole micro tiles dividing the padded "
                         f"{'M' if name == 'tile_m' else 'N'} ({mp if name == 'tile_m' else np_})")
    first_tm = tm
    while threads > 1 and (mp // tm) * (np_ // tn) < 4 * threads and tm > mr:  # enough parallel tiles
        tm = mr * largest_divisor_at_most(mp // mr, max(1, tm // mr // 2))
    if tm != first_tm:
        notes.append(f"tile_m {first_tm} -> {tm}: at least 4 parallel tiles per thread ({threads} threads)")
    i, j, k = sch.get_loops(mm)
    i0, i1, i2 = sch.split(i, [None, tm // mr, mr])
    j0, j1, j2 = sch.split(j, [None, tn // nr, nr])
    sch.reorder(i0, j0, j1, i1, k, i2, j2)  # B panel (j1) reused by all row blocks (i1)
    if g.epilogue_block:  # epilogue on the register tile
        vectorize_epilogue(sch, attach(sch, g.epilogue_block, i1), lanes)
    j2o, j2i = sch.split(j2, [None, lanes])
    sch.unroll(i2)
    sch.unroll(j2o)
    sch.vectorize(j2i)
    if threads > 1:
        sch.parallel(sch.fuse(i0, j0))
    sch.decompose_reduction(mm, k)

    # Packing copy: parallel over panels.
    parallel_copy(sch, pack, threads)
    a_name = buf(sch.get(mm).reads[0]).name
    x_pad = try_get(sch, a_name) if a_name.endswith("_pad") else None
    if x_pad is not None:
        parallel_copy(sch, x_pad, threads)
    return {"path": "gemm", "tile_m": tm, "tile_n": tn, "micro_m": mr, "micro_n": nr,
            "padded": [mp, np_], "notes": notes}
