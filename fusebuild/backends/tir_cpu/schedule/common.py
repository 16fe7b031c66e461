"""Helpers every tir-cpu schedule rule uses: the GEMM group record, block lookups (tile arithmetic: ../tiling.py)."""
from __future__ import annotations

from dataclasses import dataclass, field

from tvm import s_tir, tirx

from .. import tiling
from ..hints import HINTS


@dataclass(frozen=True)
class GemmSchedule:
    """One fused GEMM group of the rendered function, and the hints it is scheduled with."""

    matmul_block: str
    epilogue_block: str | None
    m: int
    n: int
    k: int
    transpose_b: bool
    hints: dict = field(default_factory=dict, hash=False)
    m_dynamic: str | None = None   # the dynamic parameter M is (then `m` is its maximum), else None
    rows: bool = False             # the rows side of a dynamic kernel's dispatch: M below gemv_below

    def hint(self, name: str) -> int:
        """The spec's value, else the declared default (hints.py)."""
        return self.hints.get(name, HINTS[name].default)

    def gemv_below(self) -> int:
        """The M below which this GEMM's (N, K) weight takes the GEMV rule (tiling.gemv_below)."""
        return tiling.gemv_below({h: self.hint(h) for h in ("micro_m", "gemv_max_m")}, self.k)


def try_get(sch: s_tir.Schedule, name: str):
    try:
        return sch.get_sblock(name)
    except Exception:  # noqa: BLE001 - pad_einsum only creates pad blocks it needs
        return None


def producer(sch: s_tir.Schedule, buffer):
    """The block TVM made to write `buffer` and named after it (pad_einsum's `<A>_pad` copy), or None.
    The name alone is not enough: rendered blocks are named `<tensor>_<role>`, which a buffer
    (`t_<tensor>`) can spell too, so the block must also be the one writing `buffer`."""
    block = try_get(sch, buffer.name)
    if block is None or not any(buf(w).same_as(buffer) for w in sch.get(block).writes):
        return None
    return block


def buf(region):
    """Buffer of a block read/write region (0.27 names it `.source`, older TVM `.buffer`)."""
    return region.source if hasattr(region, "source") else region.buffer


def out_dtype(sch: s_tir.Schedule, block) -> str:
    return str(buf(sch.get(block).writes[0]).dtype)


def attach(sch, name: str, loop):
    ep = sch.get_sblock(name)
    sch.reverse_compute_at(ep, loop)
    return ep


def vectorize_epilogue(sch, block, lanes: int):
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


def parallel_copy(sch, block, threads: int):
    loops = sch.get_loops(block)
    if threads > 1 and len(loops) > 1:
        sch.parallel(loops[0])


def block_regions(stmt, reads=False, writes=False) -> list:
    """The read and/or write regions of every block under `stmt` (rendered kernels access
    buffers only inside blocks)."""
    found = []

    def walk(s):
        if isinstance(s, tirx.SeqStmt):
            for x in s.seq:
                walk(x)
        elif isinstance(s, tirx.For):
            walk(s.body)
        elif isinstance(s, tirx.IfThenElse):
            walk(s.then_case)
            if s.else_case is not None:
                walk(s.else_case)
        elif isinstance(s, s_tir.SBlockRealize):
            found.extend([*(s.block.reads if reads else ()), *(s.block.writes if writes else ())])
            walk(s.block.body)
    walk(stmt)
    return found


def hide_cross_group_reads(func: tirx.PrimFunc, gemms: list) -> tirx.PrimFunc:
    """Hide epilogue reads of tensors written by *earlier* groups (SwiGLU: h = g * acc_h; or
    an earlier group's graph output read back: y = h @ w + h).

    reverse_compute_at insists every producer of the epilogue sit under the target
    loop, which an earlier group's output never does.  Hiding that read from the
    dependence analysis is safe because groups are rendered in dependence order: the
    earlier group's loop nest has finished before this group's nest starts.  (The
    schedule is rebuilt afterwards because the dependence graph is computed once.)
    """
    sch = s_tir.Schedule(func)
    written = [buf(r) for r in block_regions(func.body, writes=True)]   # scratch, and outputs read back
    for g in gemms:
        if not g.epilogue_block:
            continue
        ep = sch.get_sblock(g.epilogue_block)
        acc = buf(sch.get(sch.get_sblock(g.matmul_block)).writes[0])
        hide = [i for i, r in enumerate(sch.get(ep).reads)
                if not buf(r).same_as(acc) and any(buf(r).same_as(w) for w in written)]
        if hide:
            sch.unsafe_hide_buffer_access(ep, "read", hide)
    return sch.mod["main"]
