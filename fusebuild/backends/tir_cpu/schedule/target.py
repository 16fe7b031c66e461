"""The LLVM target of the host CPU and its vector width (what every rule sizes tiles by)."""
from __future__ import annotations

import functools
import os

import tvm
from tvm.target import codegen


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


def vector_lanes(dtype: str) -> int:
    """Lanes of one SIMD register for dtype (512-bit if the host has AVX-512)."""
    _, feats = _host_cpu()
    bits = 512 if "avx512f" in feats else 256
    return max(1, bits // tvm.runtime.DataType(dtype).bits)
