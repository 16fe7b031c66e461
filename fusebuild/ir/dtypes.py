"""The one table of element types: everything fusebuild knows about a dtype.

Each backend spells a dtype its own way (MLIR `f32`, AIE kernel names `bf16`), each
tolerance starts from its machine epsilon, each DMA pattern counts its bytes: all of it
is read from here, so adding a dtype is one line.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DType:
    name: str          # spec and torch name: float32, bfloat16, ...
    bits: int
    eps: float         # machine epsilon (tolerances scale from it)
    short: str         # MLIR element type and kernel-name suffix: f32, bf16, f16

    @property
    def bytes(self) -> int:
        return self.bits // 8

    def torch(self):
        import torch
        return getattr(torch, self.name)


DTYPES: dict[str, DType] = {d.name: d for d in [
    DType("float32", 32, 2.0 ** -23, "f32"),
    DType("float16", 16, 2.0 ** -10, "f16"),
    DType("bfloat16", 16, 2.0 ** -7, "bf16"),
]}
BY_SHORT = {d.short: d for d in DTYPES.values()}


def eps(name: str) -> float:
    return DTYPES[name].eps


def nbytes(name: str) -> int:
    return DTYPES[name].bytes
