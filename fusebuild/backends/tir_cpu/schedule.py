"""Hand-written TIR schedules for fused GEMM + epilogue kernels on x86 CPUs.

fusebuild renders one unscheduled ``main`` PrimFunc per spec: for each fused GEMM
group a ``<out>_matmul`` reduction block writing an ``<out>_acc`` scratch buffer
and a ``<out>_epilogue`` block that reads it, plus optional ``<out>_ew``
elementwise blocks.  ``schedule()`` turns that into a fast kernel with plain
schedule primitives (no auto-tuning, so a build stays well under a second).

Schedule model (GEMM path, M >= micro_m or B laid out (K, N)):

* Register blocking.  The output is cut into ``micro_m x micro_n`` micro tiles
  (default 4 rows x 48 columns = 4 x 3 AVX-512 vectors = 12 accumulators).  For
  each micro tile the whole K loop runs with the accumulators in registers: the
  ``<out>_acc`` buffer compacts to that micro tile, stays under TVM's 1 KiB
  stack-allocation limit, and LLVM promotes it to zmm registers.  Each k step
  is ``micro_m`` broadcasts of A, ``micro_n / 16`` vector loads of B and
  ``micro_m * micro_n / 16`` FMAs.
* Fused epilogue.  The epilogue block is ``reverse_compute_at`` the micro tile,
  so bias/activation run on the registers right before the single store of the
  output; there is no second pass over M x N.  exp/sigmoid/tanh in epilogues are
  rewritten into a vectorizable polynomial exp (libm ``expf`` calls would not
  vectorize and cost as much as the GEMM's last 20 %).
* B packing.  B is copied (inside the kernel, parallel) into panels
  ``Bp[n // micro_n, k, n % micro_n]`` so the micro kernel reads one contiguous
  stream; for (N, K) weights this is also the transpose that makes N the
  contiguous, vectorizable dimension.  Its cost (N*K copies) is small next to
  M*N*K FMAs.
* Cache blocking.  Micro tiles are grouped into ``tile_m x tile_n`` cache tiles,
  iterated column-panel outer / row inner so a B panel (K x micro_n) is reused
  from L1/L2 by all row blocks of a tile; the ``(tile_m, tile_n)`` tiles are
  fused and run ``parallel``.
* Ragged shapes.  M and N are padded (``pad_einsum``) to multiples of the micro
  tile, so the micro kernel never carries a predicate; the pad lives in the
  packing copies and the epilogue simply skips out-of-range rows/columns.
* K is not blocked (there is no ``tile_k`` hint yet): with K in the micro
  kernel the accumulators never leave registers; the B panel streams from L2.
* Chained groups (SwiGLU) are scheduled one by one; an epilogue reading an
  earlier group's output gets that read hidden from the dependence check (see
  ``_hide_cross_group_reads``).

GEMV path (B is (N, K) and M < micro_m, e.g. decode M=1): packing would cost
as much as the product, so the kernel reduces along the contiguous K with
16-lane vectors instead (``rfactor`` over the lanes, 4 rows of B in flight for
independent FMA chains and reuse of the x vector), parallel over N, with the
horizontal sum and the epilogue computed per 4 outputs.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field

import tvm
from tvm import s_tir, tirx
from tvm.target import codegen

__all__ = ["GemmSchedule", "host_target", "schedule", "DEFAULT_HINTS"]

# Tuned on a 2-core AVX-512 Xeon (Sapphire-Rapids class, 48 KiB L1d, 2 MiB L2).
DEFAULT_HINTS = {
    "tile_m": 256,   # rows of a parallel cache tile
    "tile_n": 96,    # columns of a parallel cache tile (multiple of micro_n)
    "micro_m": 4,    # register tile rows (broadcasts of A per k step)
    "micro_n": 48,   # register tile columns (3 zmm vectors of fp32)
}
_STACK_LIMIT = 1024  # bytes: TVM keeps smaller constant "global" allocs on the stack (-> registers)
_GEMV_ROWS = 4       # rows of B reduced together on the GEMV path


@dataclass(frozen=True)
class GemmSchedule:
    """One fused GEMM group of the rendered function."""

    matmul_block: str
    epilogue_block: str | None
    m: int
    n: int
    k: int
    transpose_b: bool
    hints: dict = field(default_factory=dict, hash=False)

    def __post_init__(self):
        unknown = sorted(set(self.hints) - set(DEFAULT_HINTS))
        if unknown:
            raise ValueError(
                f"unknown schedule hint(s) {unknown} for {self.matmul_block}; "
                f"valid hints: {sorted(DEFAULT_HINTS)}"
            )
        for key, val in self.hints.items():
            if not isinstance(val, int) or val <= 0:
                raise ValueError(f"schedule hint {key}={val!r} must be a positive int")


# --------------------------------------------------------------------------- target


@functools.lru_cache(maxsize=None)
def _host_cpu() -> tuple[str, tuple[str, ...]]:
    """LLVM's name for the host CPU and the ISA features LLVM enables for it."""
    cpu = str(codegen.llvm_get_system_cpu())
    target = tvm.target.Target({"kind": "llvm", "mcpu": cpu})
    return cpu, tuple(sorted(str(f) for f in codegen.llvm_get_cpu_features(target)))


def host_target() -> tvm.target.Target:
    """LLVM target for this host: the CPU LLVM detects (so AVX-512 is used if present)."""
    cpu, _ = _host_cpu()
    return tvm.target.Target({"kind": "llvm", "mcpu": cpu, "num-cores": _num_cores()})


def _num_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _vector_lanes(dtype: str) -> int:
    """Lanes of one SIMD register for dtype (512-bit if the host has AVX-512)."""
    _, feats = _host_cpu()
    bits = 512 if "avx512f" in feats else 256
    return max(1, bits // tvm.runtime.DataType(dtype).bits)


# --------------------------------------------------------------------------- fast math


def _f32(v: float):
    return tirx.FloatImm("float32", v)


def _let(name, value, body_fn):
    var = tirx.Var(name, "float32")
    return tirx.Let(var, value, body_fn(var))


def _fast_exp(x):
    """Cephes exp: 2^n * P(r), ~1e-7 relative error; pure arithmetic, so it vectorizes."""

    def with_n(xc, n):
        def with_r(r):
            p = _f32(1.9875691500e-4)
            for c in (1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1):
                p = p * r + _f32(c)
            two_n = tirx.reinterpret(
                "float32",
                tirx.shift_left(tirx.Cast("int32", n) + tirx.IntImm("int32", 127), tirx.IntImm("int32", 23)),
            )
            return (p * r * r + r + _f32(1.0)) * two_n

        return _let("r", xc - n * _f32(0.693359375) + n * _f32(2.12194440e-4), with_r)

    clamp = tirx.Max(tirx.Min(x, _f32(88.3762626647950)), _f32(-88.3762626647949))
    return _let("xc", clamp, lambda xc: _let("n", tirx.floor(xc * _f32(1.4426950408889634) + _f32(0.5)),
                                             lambda n: with_n(xc, n)))


def _fast_tanh(x):
    # Each Let-bound value is used through its var only: a Let (and its vars) may
    # appear once in the tree, or TIR's well-formedness check rejects the function.
    def body(v):
        ax = tirx.Max(v, _f32(0.0) - v)
        v2 = v * v  # Taylor series near 0, where 1 - t cancels
        small = v * (_f32(1.0) + v2 * (_f32(-1.0 / 3) + v2 * (_f32(2.0 / 15) + v2 * _f32(-17.0 / 315))))
        big = _let("t", _fast_exp(_f32(-2.0) * ax), lambda t: (_f32(1.0) - t) / (_f32(1.0) + t))
        signed = _let("tb", big, lambda b: tirx.Select(v < _f32(0.0), _f32(0.0) - b, b))
        return tirx.Select(ax < _f32(0.125), small, signed)

    return _let("tx", x, body)


_FAST_MATH = {
    "tirx.exp": _fast_exp,
    "tirx.sigmoid": lambda x: _f32(1.0) / (_f32(1.0) + _fast_exp(_f32(0.0) - x)),
    "tirx.tanh": _fast_tanh,
}
_BINARY = (tirx.Add, tirx.Sub, tirx.Mul, tirx.Div, tirx.Mod, tirx.FloorDiv, tirx.FloorMod, tirx.Min,
           tirx.Max, tirx.EQ, tirx.NE, tirx.LT, tirx.LE, tirx.GT, tirx.GE, tirx.And, tirx.Or)


def _rewrite_expr(e):
    """Replace libm transcendental calls by _FAST_MATH; unknown nodes are left untouched."""
    if isinstance(e, _BINARY):
        a, b = _rewrite_expr(e.a), _rewrite_expr(e.b)
        return e if a.same_as(e.a) and b.same_as(e.b) else type(e)(a, b)
    if isinstance(e, tirx.Not):
        return tirx.Not(_rewrite_expr(e.a))
    if isinstance(e, tirx.Cast):
        return tirx.Cast(str(e.ty), _rewrite_expr(e.value))
    if isinstance(e, tirx.Select):
        return tirx.Select(_rewrite_expr(e.condition), _rewrite_expr(e.true_value), _rewrite_expr(e.false_value))
    if isinstance(e, tvm.ir.Call):
        args = [_rewrite_expr(a) for a in e.args]
        name, dtype = getattr(e.op, "name", ""), str(e.ty)
        if name in _FAST_MATH and len(args) == 1 and dtype in ("float32", "float16", "bfloat16"):
            arg = args[0] if dtype == "float32" else tirx.Cast("float32", args[0])
            out = _FAST_MATH[name](arg)
            return out if dtype == "float32" else tirx.Cast(dtype, out)
        if all(a.same_as(b) for a, b in zip(args, e.args)):
            return e
        return tvm.ir.Call(e.op, args, e.attrs, e.ty_args, ret_ty=e.ty)
    return e


def _rewrite_stmt(s, blocks: set[str]):
    """Walk the rendered loop nests and apply _rewrite_expr to the stores of `blocks`."""
    if isinstance(s, tirx.SeqStmt):
        return tirx.SeqStmt([_rewrite_stmt(x, blocks) for x in s.seq])
    if isinstance(s, tirx.For):
        return tirx.For(s.loop_var, s.min, s.extent, s.kind, _rewrite_stmt(s.body, blocks),
                        s.thread_binding, s.annotations, s.step)
    if isinstance(s, s_tir.SBlockRealize):
        b = s.block
        body = _rewrite_stmt(b.body, blocks) if b.name_hint in blocks else b.body
        nb = s_tir.SBlock(b.iter_vars, b.reads, b.writes, b.name_hint, body, b.init,
                          b.alloc_buffers, b.match_buffers, b.annotations)
        return s_tir.SBlockRealize(s.iter_values, s.predicate, nb)
    if isinstance(s, tirx.BufferStore):
        return tirx.BufferStore(s.buffer, _rewrite_expr(s.value), s.indices)
    return s


def _prepare(func: tirx.PrimFunc, fast_math_blocks: set[str]) -> tirx.PrimFunc:
    """Make the rendered function schedulable.

    TVM 0.27 parses a function-level ``T.alloc_buffer`` as a flat ``AllocBuffer``
    statement, which the schedule treats as external memory (no compute_inline /
    compaction).  Moving those buffers into the root block's ``alloc_buffers``
    makes them block-local scratch that can shrink to a register tile.
    """
    root = func.body.block
    stmts = list(root.body.seq) if isinstance(root.body, tirx.SeqStmt) else [root.body]
    allocs = [s.buffer for s in stmts if isinstance(s, tirx.AllocBuffer)]
    rest = [s for s in stmts if not isinstance(s, tirx.AllocBuffer)]
    body = tirx.SeqStmt(rest) if len(rest) > 1 else rest[0]
    body = _rewrite_stmt(body, fast_math_blocks)
    new_root = s_tir.SBlock(root.iter_vars, root.reads, root.writes, root.name_hint, body, root.init,
                            list(root.alloc_buffers) + allocs, root.match_buffers, root.annotations)
    return func.with_body(s_tir.SBlockRealize([], True, new_root))


# --------------------------------------------------------------------------- schedules


def _ceil_to(x: int, m: int) -> int:
    return -(-x // m) * m


def _largest_divisor_at_most(n: int, cap: int) -> int:
    return max(d for d in range(1, max(1, min(n, cap)) + 1) if n % d == 0)


def _try_get(sch: s_tir.Schedule, name: str):
    try:
        return sch.get_sblock(name)
    except Exception:  # noqa: BLE001 - pad_einsum only creates pad blocks it needs
        return None


def _buf(region):
    """Buffer of a block read/write region (0.27 names it `.source`, older TVM `.buffer`)."""
    return region.source if hasattr(region, "source") else region.buffer


def _out_dtype(sch: s_tir.Schedule, block) -> str:
    return str(_buf(sch.get(block).writes[0]).dtype)


def _hide_cross_group_reads(func: tirx.PrimFunc, gemms: list[GemmSchedule]) -> tirx.PrimFunc:
    """Hide epilogue reads of intermediates written by *earlier* groups (SwiGLU: h = g * h_acc).

    reverse_compute_at insists every producer of the epilogue sit under the target
    loop, which an earlier group's output never does.  Hiding that read from the
    dependence analysis is safe because groups are rendered in dependence order: the
    earlier group's loop nest has finished before this group's nest starts.  (The
    schedule is rebuilt afterwards because the dependence graph is computed once.)
    """
    sch = s_tir.Schedule(func)
    scratch = {b.name for b in sch.mod["main"].body.block.alloc_buffers}
    for g in gemms:
        if not g.epilogue_block:
            continue
        ep = sch.get_sblock(g.epilogue_block)
        acc = _buf(sch.get(sch.get_sblock(g.matmul_block)).writes[0]).name
        hide = [i for i, r in enumerate(sch.get(ep).reads) if _buf(r).name in scratch - {acc}]
        if hide:
            sch.unsafe_hide_buffer_access(ep, "read", hide)
    return sch.mod["main"]


def _attach(sch, name: str, loop):
    ep = sch.get_sblock(name)
    sch.reverse_compute_at(ep, loop)
    return ep


def _schedule_epilogue_vector(sch, block, lanes: int):
    """Vectorize the innermost (column) loop of an epilogue placed at a tile."""
    loops = sch.get_loops(block)
    if len(loops) < 2:
        return
    cols = loops[-1]
    extent = int(sch.get(cols).extent)
    if extent % lanes == 0:
        _, inner = sch.split(cols, [None, lanes])
        sch.vectorize(inner)
    elif extent <= 64:
        sch.vectorize(cols)


def _micro_tile(sch: s_tir.Schedule, g: GemmSchedule):
    """(micro_m, micro_n, padded M, padded N, vector lanes) for a GEMM-path group."""
    h = {**DEFAULT_HINTS, **g.hints}
    dtype = _out_dtype(sch, sch.get_sblock(g.matmul_block))
    lanes = _vector_lanes(dtype)
    mr = h["micro_m"]
    nr = max(lanes, h["micro_n"] // lanes * lanes)  # whole vectors
    while mr * nr * tvm.runtime.DataType(dtype).bits // 8 >= _STACK_LIMIT and mr > 1:
        mr -= 1  # keep the register tile under the stack-allocation limit
    if g.m < mr:  # tiny M on a (K, N) weight: shrink the micro tile instead of padding
        mr = g.m
    return mr, nr, _ceil_to(g.m, mr), _ceil_to(g.n, nr), lanes


def _pad_gemm(sch: s_tir.Schedule, g: GemmSchedule):
    """Pad M/N to whole micro tiles, so the micro kernel never needs a predicate."""
    mr, nr, mp, np_, _ = _micro_tile(sch, g)
    if (mp, np_) != (g.m, g.n):
        mm = sch.get_sblock(g.matmul_block)
        sch.pad_einsum(mm, [mr, nr, 1])
        # The epilogue reads the padded accumulator directly (no unpad copy).
        sch.compute_inline(sch.get_sblock(_buf(sch.get(mm).writes[0]).name))


def _schedule_gemm(sch: s_tir.Schedule, g: GemmSchedule, threads: int):
    h = {**DEFAULT_HINTS, **g.hints}
    mr, nr, mp, np_, lanes = _micro_tile(sch, g)
    mm = sch.get_sblock(g.matmul_block)
    b_name = _buf(sch.get(mm).reads[1]).name
    b_pad = _try_get(sch, b_name) if b_name.endswith("_pad") else None

    # Pack B into contiguous (N/nr, K, nr) panels (also the transpose for (N, K) B).
    pack = b_pad if b_pad is not None else sch.cache_read(mm, 1, "global")
    if g.transpose_b:
        sch.transform_layout(mm, ("read", 1), lambda j, k: (j // nr, k, j % nr))
    else:
        sch.transform_layout(mm, ("read", 1), lambda k, j: (j // nr, k, j % nr))

    tm = mr * _largest_divisor_at_most(mp // mr, max(1, h["tile_m"] // mr))
    tn = nr * _largest_divisor_at_most(np_ // nr, max(1, h["tile_n"] // nr))
    while threads > 1 and (mp // tm) * (np_ // tn) < 4 * threads and tm > mr:  # enough parallel tiles
        tm = mr * _largest_divisor_at_most(mp // mr, max(1, tm // mr // 2))
    i, j, k = sch.get_loops(mm)
    i0, i1, i2 = sch.split(i, [None, tm // mr, mr])
    j0, j1, j2 = sch.split(j, [None, tn // nr, nr])
    sch.reorder(i0, j0, j1, i1, k, i2, j2)  # B panel (j1) reused by all row blocks (i1)
    if g.epilogue_block:  # epilogue on the register tile
        _schedule_epilogue_vector(sch, _attach(sch, g.epilogue_block, i1), lanes)
    j2o, j2i = sch.split(j2, [None, lanes])
    sch.unroll(i2)
    sch.unroll(j2o)
    sch.vectorize(j2i)
    if threads > 1:
        sch.parallel(sch.fuse(i0, j0))
    sch.decompose_reduction(mm, k)

    # Packing copy: parallel over panels, vectorized along the contiguous source dim.
    _schedule_copy(sch, pack, threads, lanes)
    a_name = _buf(sch.get(mm).reads[0]).name
    x_pad = _try_get(sch, a_name) if a_name.endswith("_pad") else None
    if x_pad is not None:
        _schedule_copy(sch, x_pad, threads, lanes)


def _schedule_copy(sch, block, threads: int, lanes: int):
    loops = sch.get_loops(block)
    if threads > 1 and len(loops) > 1:
        sch.parallel(loops[0])


def _schedule_gemv(sch: s_tir.Schedule, g: GemmSchedule, threads: int):
    mm = sch.get_sblock(g.matmul_block)
    lanes = _vector_lanes(_out_dtype(sch, mm))
    while lanes > 1 and g.k % lanes:
        lanes //= 2
    rows = min(_GEMV_ROWS, g.n)
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
        _attach(sch, g.epilogue_block, row)
    if threads > 1:
        sch.parallel(outer)
    sch.decompose_reduction(rf if rf is not None else mm, red)


def _schedule_elementwise(sch: s_tir.Schedule, name: str, threads: int):
    block = sch.get_sblock(name)
    loops = sch.get_loops(block)
    fused = sch.fuse(*loops) if len(loops) > 1 else loops[0]
    lanes = _vector_lanes(_out_dtype(sch, block))
    extent = int(sch.get(fused).extent)
    if extent % lanes == 0 and extent >= lanes:
        outer, inner = sch.split(fused, [None, lanes])
        sch.vectorize(inner)
    else:
        outer = fused
    if threads > 1 and extent >= 1 << 14:
        sch.parallel(outer)


def schedule(func: tirx.PrimFunc, gemms: list[GemmSchedule], elementwise_blocks: list[str],
             threads: int) -> tvm.IRModule:
    """Schedule fusebuild's rendered `main` for the host CPU; returns a module for tvm.compile."""
    fast = {g.epilogue_block for g in gemms if g.epilogue_block} | set(elementwise_blocks)
    sch = s_tir.Schedule(_prepare(func, fast))
    gemv = [g.transpose_b and g.m < {**DEFAULT_HINTS, **g.hints}["micro_m"] for g in gemms]
    for g, is_gemv in zip(gemms, gemv):
        if not is_gemv:
            _pad_gemm(sch, g)
    sch = s_tir.Schedule(_hide_cross_group_reads(sch.mod["main"], gemms))
    for g, is_gemv in zip(gemms, gemv):
        (_schedule_gemv if is_gemv else _schedule_gemm)(sch, g, threads)
    for name in elementwise_blocks:
        _schedule_elementwise(sch, name, threads)
    return sch.mod
