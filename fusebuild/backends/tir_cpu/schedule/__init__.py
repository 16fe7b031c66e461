"""Hand-written TIR schedules for fused GEMM + epilogue kernels on x86 CPUs.

fusebuild renders one unscheduled ``main`` PrimFunc per spec: for each fused GEMM
group a ``<out>_matmul`` reduction block writing an ``<out>_acc`` scratch buffer and a
``<out>_epilogue`` block that reads it, plus optional ``<out>_ew`` elementwise blocks.
``schedule()`` turns that into a fast kernel with plain schedule primitives (no
auto-tuning, so a build stays well under a second), one rule per file:

  gemm.py          M >= micro_m (or B laid out (K, N)): register-blocked micro kernel,
                   packed B panels, fused epilogue on the registers, parallel cache tiles
  gemv.py          (N, K) weight and M < micro_m (decode): SIMD reduction along K
  elementwise.py   standalone elementwise blocks
  fast_math.py     polynomial exp/sigmoid/tanh in every store (vectorizable)
  target.py        the host's LLVM target and vector width

Chained groups (SwiGLU) are scheduled one by one; an epilogue reading an earlier
group's output gets that read hidden from the dependence check
(common.hide_cross_group_reads). The returned record says, per GEMM, which rule ran
and the tiles it used, with every reduction of a hint and its reason.
"""
from __future__ import annotations

from tvm import s_tir, tirx

from . import elementwise, gemm, gemv
from .common import GemmSchedule, hide_cross_group_reads
from .fast_math import prepare
from .target import host_target

__all__ = ["GemmSchedule", "host_target", "schedule"]


def is_gemv(g: GemmSchedule) -> bool:
    return g.transpose_b and g.m < g.hint("micro_m")


def schedule(func: tirx.PrimFunc, gemms: list, elementwise_blocks: list, threads: int) -> tuple:
    """Schedule fusebuild's rendered `main` for the host CPU: (module for tvm.compile, record)."""
    fast = {g.epilogue_block for g in gemms if g.epilogue_block} | set(elementwise_blocks)
    sch = s_tir.Schedule(prepare(func, fast))
    for g in gemms:
        if not is_gemv(g):
            gemm.pad(sch, g)
    sch = s_tir.Schedule(hide_cross_group_reads(sch.mod["main"], gemms))
    record = {"gemms": {}, "elementwise": {}}
    for g in gemms:
        record["gemms"][g.matmul_block] = (gemv if is_gemv(g) else gemm).apply(sch, g, threads)
    for name in elementwise_blocks:
        record["elementwise"][name] = elementwise.apply(sch, name, threads)
    return sch.mod, record
