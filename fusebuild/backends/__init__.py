"""Targets: the registry, and the backend interface every target implements.

`TARGETS` maps a target name to `TargetInfo`: cheap data (dtypes, the declared schedule
hints, DMA limits checked at load, the module implementing it). Planning a build reads
only this table; a backend's module (and its toolchain) is imported only when one of
its stages runs (`get_backend`).

Two fields shape what a spec expands into and what `fusebuild check` reports:
  dynamic   the target compiles symbolic shapes: a dynamic parameter (M: {dynamic: [1, 4096]})
            becomes ONE artifact taking M at run time; otherwise it is expanded into static
            bucket variants (spec/dynamic.py).
  load_check  the load-time check hook: `(graph, hints) -> [problem]` (backends/limits.Limit:
            a message, what would be valid, and the `.hint` / `.input` / `.node` at fault,
            whose line is reported), or it raises a FusebuildError (reported at the target's
            hints). Pure Python, no toolchain import: it states in advance what render or
            compile would refuse. "module:function" (imported when a spec is first checked
            against it) or a callable.

A backend is a folder `fusebuild/backends/<name>/`:
  hints.py     its schedule hints, declared once (backends.hints.Hint)
  backend.py   `Backend(base.Backend)`: render, compile, assemble, run, toolchain, device
  ...          whatever else it needs (schedule rules, loaders, checkers)
plus its templates under `templates/<folder>/`. docs/architecture.md has the recipe.

`resources` says what a machine must offer to run a stage of the target when the build runs
on a Dask cluster (FUSEBUILD_SCHEDULER; fusebuild/distributed/placement.py): per stage, the
alternatives in order of preference, each a set of Dask worker resources
(`dask worker ... --resources "tilelang=1 GPU=1"`). `{}` means any worker; a stage not named
needs nothing. A toolchain resource stands for the whole toolchain the target's `toolchain()`
probes (`tilelang`: the tilelang env and nvcc).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from ..ir.layouts import NPU_SHIM_DMA, DmaLimits
from .hints import HintTable
from .mlir_aie.hints import HINTS as AIE_HINTS
from .mlir_cpu.hints import HINTS as MLIR_CPU_HINTS
from .tir_cpu.hints import HINTS as TIR_CPU_HINTS
from .tir_cuda.hints import HINTS as TIR_CUDA_HINTS


@dataclass(frozen=True)
class TargetInfo:
    name: str
    module: str                         # python module holding `Backend`
    dtypes: tuple
    hints: HintTable = HintTable()
    description: str = ""
    dma_limits: DmaLimits | None = None  # checked against operand layouts when a spec loads
    load_check: object = ""             # the load-time check hook (see module doc): "module:function" or callable
    dynamic: bool = False               # compiles a dynamic dimension into one artifact (else: buckets)
    resources: dict = field(default_factory=dict, hash=False)   # stage -> ({resource: n}, ...) on a cluster

    @property
    def folder(self) -> str:
        """The backend's folder relative to fusebuild/ (its code is part of its keys)."""
        return self.module.rsplit(".", 1)[0].replace("fusebuild.", "").replace(".", "/")

    def check(self, graph, hints: dict) -> list:
        """Run the target's load-time check (imports only its pure-Python checker module):
        the problems it returns ([]: it builds); a FusebuildError it raises propagates."""
        fn = self.load_check
        if not fn:
            return []
        if isinstance(fn, str):
            module, _, name = fn.partition(":")
            fn = getattr(importlib.import_module(module), name)
        return list(fn(graph, hints) or [])


TARGETS = {t.name: t for t in [
    TargetInfo("tir-cpu", "fusebuild.backends.tir_cpu.backend", ("float32",), TIR_CPU_HINTS,
               "Apache TVM TIR, LLVM, host CPU", load_check="fusebuild.backends.tir_cpu.limits:check",
               dynamic=True),
    TargetInfo("mlir-cpu", "fusebuild.backends.mlir_cpu.backend", ("float32",), MLIR_CPU_HINTS,
               "upstream MLIR (linalg on tensors) through IREE, llvm-cpu, host CPU",
               load_check="fusebuild.backends.mlir_cpu.limits:check", dynamic=True),
    # static designs: a dynamic M is expanded into buckets
    TargetInfo("mlir-aie", "fusebuild.backends.mlir_aie.backend", ("bfloat16", "float32"), AIE_HINTS,
               "IRON-style MLIR-AIE design for AMD NPUs, written for mlir-aie v1.3.1 (npu2; hint npu: 1 for "
               "npu1); emulated here, Peano/aiecc/XRT where present", NPU_SHIM_DMA,
               "fusebuild.backends.mlir_aie.fit:check", dynamic=False,
               # Peano + aiecc where a worker has them, else the rules check anywhere; an NPU run where
               # a worker has one, else emulation (what a machine without them does today)
               resources={"compile": ({"aiecc": 1}, {}), "assemble": ({"aiecc": 1}, {}),
                          "validate": ({"NPU": 1}, {})}),
    # one artifact for a dynamic M: one prim_func per M bucket, the .so's call dispatches by M
    TargetInfo("tir-cuda", "fusebuild.backends.tir_cuda.backend", ("bfloat16", "float16"), TIR_CUDA_HINTS,
               "TileLang tile-level TIR for NVIDIA Hopper (sm_90a), lowered in the `tilelang` toolchain env, "
               "nvcc; built here, run where a CUDA device is",
               load_check="fusebuild.backends.tir_cuda.program:check", dynamic=True,
               resources={"compile": ({"tilelang": 1},), "assemble": ({"tilelang": 1},), "validate": ({"GPU": 1},)}),
]}


def get_backend(target: str, targets: dict | None = None):
    """Instantiate the backend of a target (imports its module)."""
    info = (targets or TARGETS)[target]
    return importlib.import_module(info.module).Backend(info)
