"""The GEMM rule: register-blocked micro kernel, packed B, fused epilogue, parallel cache tiles.

* Register blocking.  The output is cut into ``micro_m x micro_n`` micro tiles
  (default 8 rows x 48 columns = 8 x 3 AVX-512 vectors = 24 accumulators).  For
  each micro tile the whole K loop runs with the accumulators in registers: the
  ``acc_<out>`` buffer compacts to that micro tile, stays an alloca (../lower.py
  keeps scratch buffers up to 4 KiB off TVM's heap workspace), and LLVM promotes it
  to zmm registers.
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
* Dynamic M.  A symbolic M is always padded to whole micro tiles, but the padded rows
  read row M-1 of A instead of a zero-filled copy (``clamp_rows``): no copy of A, no
  predicate in the micro kernel, and the extra rows are never stored (the epilogue
  covers rows < M). Cache tiles are ``tile_m`` rows (M is unknown, so no divisor search
  and no reduction for parallelism); the last one is predicated at tile level.

Every reduction of a hint (to whole vectors, under the stack limit, for enough
parallel tiles) is recorded with its reason in the returned record. The tile arithmetic
is tiling.py (no TVM), which the tuner's space uses too.
"""
from __future__ import annotations

import tvm
from tvm import s_tir, tirx

from .. import tiling
from .common import GemmSchedule, attach, buf, out_dtype, parallel_copy, producer, try_get, vectorize_epilogue
from .target import vector_lanes


def micro_tile(sch: s_tir.Schedule, g: GemmSchedule, notes: list | None = None):
    """(micro_m, micro_n, padded M (None if M is dynamic), padded N, vector lanes); reductions are noted."""
    dtype = out_dtype(sch, sch.get_sblock(g.matmul_block))
    lanes = vector_lanes(dtype)
    t = tiling.micro(g.m, g.hint("micro_m"), g.hint("micro_n"), lanes, tvm.runtime.DataType(dtype).bits // 8,
                     g.m_dynamic)
    if notes is not None:
        notes.extend(t.notes)
    return t.micro_m, t.micro_n, t.padded[0], tiling.ceil_to(g.n, t.micro_n), lanes


def pad(sch: s_tir.Schedule, g: GemmSchedule):
    """Pad M/N to whole micro tiles, so the micro kernel never needs a predicate."""
    mr, nr, _, _, _ = micro_tile(sch, g)
    pad_to(sch, g, [mr, nr, 1])


def pad_to(sch: s_tir.Schedule, g: GemmSchedule, multiples: list):
    """Pad the GEMM's M, N, K to `multiples` (pad_einsum). The epilogue reads the padded
    accumulator directly (no unpad copy); with a dynamic M the padded rows read row M-1 of A
    (clamp_rows) instead of a zero-filled copy of A."""
    mr, nr, kr = multiples
    if not ((g.m_dynamic is not None and mr > 1) or (g.m_dynamic is None and g.m % mr) or g.n % nr or g.k % kr):
        return
    mm = sch.get_sblock(g.matmul_block)
    sch.pad_einsum(mm, multiples)
    unpad = try_get(sch, buf(sch.get(mm).writes[0]).name)     # none if only K was padded
    if unpad is not None:
        sch.compute_inline(unpad)
    a_pad = producer(sch, buf(sch.get(mm).reads[0])) if g.m_dynamic is not None and kr == 1 else None
    if a_pad is not None:
        name = sch.get(a_pad).name_hint
        clamp_rows(sch, a_pad)
        sch.compute_inline(sch.get_sblock(name))


def clamp_rows(sch: s_tir.Schedule, block):
    """Rewrite pad_einsum's copy `A_pad[i, k] = if_then_else(i < M, A[i, k], 0)` into
    `A_pad[i, k] = A[min(i, M - 1), k]`, so inlining it leaves the matmul reading A in
    place: rows past M repeat row M-1 (finite values, results never stored)."""
    b = sch.get(block)
    store = b.body
    value = store.value
    load = value.args[1] if isinstance(value, tvm.ir.Call) and len(value.args) == 3 else None
    if load is None or not hasattr(load, "source"):
        return                                           # not the expected copy: keep the zero fill
    rows = load.source.shape[0]
    idx = [tirx.Min(load.indices[0], rows - 1), *load.indices[1:]]
    read = tirx.BufferRegion(load.source, [tvm.ir.Range.from_min_extent(i, 1) for i in idx])
    new = s_tir.SBlock(b.iter_vars, [read], b.writes, b.name_hint,
                       tirx.BufferStore(store.buffer, tirx.BufferLoad(load.source, idx), store.indices),
                       b.init, b.alloc_buffers, b.match_buffers, b.annotations)
    sch.state.replace(sch.get_sref(block), new)


def pack_panels(sch: s_tir.Schedule, pack, transpose_b: bool, nr: int, lanes: int, threads: int):
    """The packing copy, one panel per parallel task: for each k, the panel's nr values are
    stored as whole vectors (read with gathers from an (N, K) weight). Left to LLVM, the
    copy in B's own order became scatters of 8 lanes, which cost about as much as the
    product itself at M = 16 (4096 x 4096)."""
    loops = sch.get_loops(pack)
    if len(loops) != 2:
        return parallel_copy(sch, pack, threads)
    n, k = loops if transpose_b else loops[::-1]
    panel, col = sch.split(n, [None, nr])
    sch.reorder(panel, k, col)
    vec_o, vec = sch.split(col, [None, lanes])
    sch.unroll(vec_o)
    sch.vectorize(vec)
    if threads > 1:
        sch.parallel(panel)


def apply(sch: s_tir.Schedule, g: GemmSchedule, threads: int) -> dict:
    dtype = out_dtype(sch, sch.get_sblock(g.matmul_block))
    lanes = vector_lanes(dtype)
    t = tiling.tiles(g.m, g.n, {h: g.hint(h) for h in ("micro_m", "micro_n", "tile_m", "tile_n")}, lanes,
                     tvm.runtime.DataType(dtype).bits // 8, threads, g.m_dynamic)
    mr, nr, (mp, np_), tm, tn, notes = t.micro_m, t.micro_n, t.padded, t.tile_m, t.tile_n, t.notes
    mm = sch.get_sblock(g.matmul_block)
    b_pad = producer(sch, buf(sch.get(mm).reads[1]))

    # Pack B into contiguous (N/nr, K, nr) panels (also the transpose for (N, K) B).
    # this GEMM only: another GEMM reading the same B packs its own copy (a shared
    # cache would be transformed twice)
    pack = b_pad if b_pad is not None else sch.cache_read(mm, 1, "global", consumer_blocks=[mm])
    if g.transpose_b:
        sch.transform_layout(mm, ("read", 1), lambda j, k: (j // nr, k, j % nr))
    else:
        sch.transform_layout(mm, ("read", 1), lambda k, j: (j // nr, k, j % nr))

    i, j, k = sch.get_loops(mm)
    if mp is None:       # dynamic M: whole micro tiles (exact), then tiles of them (the last one predicated)
        i01, i2 = sch.split(i, [None, mr])
        i0, i1 = sch.split(i01, [None, tm // mr])
    else:
        i0, i1, i2 = sch.split(i, [None, tm // mr, mr])
    j0, j1, j2 = sch.split(j, [None, tn // nr, nr])
    ku = tiling.k_unroll(g.k, g.hint("k_unroll"))
    if ku != g.hint("k_unroll"):
        notes.append(f"k_unroll {g.hint('k_unroll')} -> {ku}: the largest divisor of K ({g.k}) up to it")
    k, kk = sch.split(k, [None, ku])
    sch.reorder(i0, j0, j1, i1, k, kk, i2, j2)  # B panel (j1) reused by all row blocks (i1)
    sch.unroll(kk)
    if g.epilogue_block:  # epilogue on the register tile
        vectorize_epilogue(sch, attach(sch, g.epilogue_block, i1), lanes)
    j2o, j2i = sch.split(j2, [None, lanes])
    sch.unroll(i2)
    sch.unroll(j2o)
    sch.vectorize(j2i)
    if threads > 1:
        sch.parallel(sch.fuse(i0, j0))
    sch.decompose_reduction(mm, k)

    pack_panels(sch, pack, g.transpose_b, nr, lanes, threads)
    x_pad = producer(sch, buf(sch.get(mm).reads[0]))
    if x_pad is not None:
        parallel_copy(sch, x_pad, threads)
    return {"path": "gemm", "tile_m": tm, "tile_n": tn, "micro_m": mr, "micro_n": nr, "k_unroll": ku,
            "padded": [mp if mp is not None else f"ceil({g.m_dynamic}/{mr})*{mr}", np_], "notes": notes}
