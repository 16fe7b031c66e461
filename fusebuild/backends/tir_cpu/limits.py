"""tir-cpu's load-time limits (TargetInfo.load_check): what its renderer and schedule refuse.

A dynamic size must be the rows of every tensor (the schedule compiles a symbolic M: GEMM
rows, epilogue operands, elementwise rows), never a GEMM's N or K.
"""
from __future__ import annotations

from ..limits import rows_only


def check(graph, hints: dict) -> list:
    return rows_only(graph, "tir-cpu")
