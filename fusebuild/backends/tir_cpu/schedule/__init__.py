"""Hand-written TIR schedules for fused GEMM + epilogue kernels on x86 CPUs.

fusebuild renders one unscheduled ``main`` PrimFunc per spec: for each fused GEMM
group a ``<out>_matmul`` reduction block writing an ``acc_<out>`` scratch buffer and a
``<out>_epilogue`` block that reads it, plus optional ``<out>_ew`` elementwise blocks.
``schedule()`` turns that into a fast kernel with plain schedule primitives (no
auto-tuning, so a build stays well under a second), one rule per file:

  gemm.py          larger M (or B laid out (K, N)): register-blocked micro kernel,
                   packed B panels, fused epilogue on the registers, parallel cache tiles
  gemv.py          (N, K) weight and M below micro_m, or up to gemv_max_m with K >= 1024
                   (decode, short prompts): SIMD reduction along K, no packing
  elementwise.py   standalone elementwise blocks
  fast_math.py     polynomial exp/sigmoid/tanh in every store (vectorizable)
  target.py        the host's LLVM target and vector width

Chained groups (SwiGLU) are scheduled one by one; an epilogue reading an earlier
group's output gets that read hidden from the dependence check
(common.hide_cross_group_reads). The returned record says, per GEMM, which rule ran
and the tiles it used, with every reduction of a hint and its reason.

A dynamic M (a symbolic `dim_M`) takes the same rules: both pad M to whole steps with rows
past M reading row M-1 (gemm.py), and a kernel whose M straddles the GEMV threshold is a
rows/tiles dispatch whose two sides are scheduled apart (dispatch.py).
"""
from __future__ import annotations

import tvm
from tvm import s_tir, tirx

from . import dispatch, elementwise, gemm, gemv
from .common import GemmSchedule, hide_cross_group_reads
from .fast_math import prepare
from .target import host_target

__all__ = ["GemmSchedule", "host_target", "schedule"]


def is_gemv(g: GemmSchedule) -> bool:
    if g.m_dynamic is not None:
        return g.rows and g.transpose_b
    return g.transpose_b and g.m < g.gemv_below()


def schedule(func: tirx.PrimFunc, gemms: list, elementwise_blocks: list, threads: int, rows=None) -> tuple:
    """Schedule fusebuild's rendered `main` for the host CPU: (module for tvm.compile, record).

    `rows`: (gemms, elementwise blocks) of the rows side of a dynamic kernel's dispatch,
    `gemms`/`elementwise_blocks` then being its tiles side. A side is empty when the range
    of M lies on one side of micro_m; the kernel is then the other side alone."""
    sides = [side for side in (rows, (gemms, elementwise_blocks)) if side and side[0]]
    fast = {g.epilogue_block for side in sides for g in side[0] if g.epilogue_block}
    func = prepare(func, fast | {b for side in sides for b in side[1]})
    if len(sides) < 2:
        return _schedule(func, *(sides[0] if sides else (gemms, elementwise_blocks)), threads)
    cond, rows_func, tiles_func = dispatch.split(func)
    rows_mod, rows_record = _schedule(rows_func, *rows, threads)
    tiles_mod, record = _schedule(tiles_func, gemms, elementwise_blocks, threads)
    for key in record:
        record[key].update(rows_record[key])
    return tvm.IRModule({"main": dispatch.join(cond, rows_mod["main"], tiles_mod["main"])}), record


def _schedule(func: tirx.PrimFunc, gemms: list, elementwise_blocks: list, threads: int) -> tuple:
    sch = s_tir.Schedule(func)
    for g in gemms:
        (gemv if is_gemv(g) else gemm).pad(sch, g)
    sch = s_tir.Schedule(hide_cross_group_reads(sch.mod["main"], gemms))
    record = {"gemms": {}, "elementwise": {}}
    for g in gemms:
        record["gemms"][g.matmul_block] = (gemv if is_gemv(g) else gemm).apply(sch, g, threads)
    for name in elementwise_blocks:
        record["elementwise"][name] = elementwise.apply(sch, name, threads)
    return sch.mod, record
