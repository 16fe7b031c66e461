"""Targets and the backend interface.

`TARGETS` is the registry: target name -> `TargetInfo` (cheap data: dtypes, schedule
hints, which module implements it). The implementation is imported only when a task
runs, so planning a build never imports a toolchain.

A backend is a folder `fusebuild/backends/<name>/` with a `backend.py` defining
`Backend(Base)`, plus a folder of Jinja templates under `templates/`. Copy one to start a
new target. The debugging modes (fused/separate/compare) are written against `Base`
only: a new target gets them by implementing it.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

from ..layouts import NPU_SHIM_DMA


@dataclass(frozen=True)
class TargetInfo:
    name: str
    module: str               # python module holding `Backend`
    dtypes: tuple
    hints: tuple = ()         # schedule hint keys a spec may set for this target
    description: str = ""
    dma_limits: object = None  # layouts.DmaLimits checked when a spec loads, if any
    check: str = ""           # "module:function" (graph, hints) -> [problem with .hint/.message/.valid],
                              # pure and cheap: run when a spec sets this target's hints

    def checker(self):
        module, _, fn = self.check.partition(":")
        return getattr(importlib.import_module(module), fn) if self.check else None


TARGETS = {t.name: t for t in [
    TargetInfo("tir-cpu", "fusebuild.backends.tir_cpu.backend", ("float32",),
               ("tile_m", "tile_n", "micro_m", "micro_n", "threads"),
               "Apache TVM TIR, LLVM, host CPU"),
    TargetInfo("mlir-cpu", "fusebuild.backends.mlir_cpu.backend", ("float32",), (),
               "upstream MLIR (linalg on tensors) through IREE, llvm-cpu, host CPU"),
    TargetInfo("mlir-aie", "fusebuild.backends.mlir_aie.backend", ("float32",),
               ("tile_m", "tile_n", "tile_k", "npu"),
               "IRON-style MLIR-AIE design for AMD NPUs (npu2; hint npu: 1 for npu1); "
               "emulated here, aiecc/XRT where present", NPU_SHIM_DMA),
    TargetInfo("tir-cuda", "fusebuild.backends.tir_cuda.backend", ("bfloat16", "float16"),
               ("block_m", "block_n", "block_k", "stages", "threads", "split_k", "swizzle", "min_blocks", "swap_ab",
                "direct", "dual_block_m", "dual_block_n", "dual_block_k", "dual_stages", "dual_threads",
                "dual_swizzle", "dual_min_blocks", "dual_swap_ab", "dual_direct", "fast_math"),
               "TileLang tile-level TIR for NVIDIA Hopper (sm_90a), lowered in the `tilelang` toolchain env, "
               "nvcc; built here, run where a CUDA device is",
               check="fusebuild.backends.tir_cuda.program:check"),
]}
DEFAULT_TARGETS = ("tir-cpu",)


def get_backend(target: str):
    """Instantiate the backend of a target (imports its module)."""
    info = TARGETS[target]
    return importlib.import_module(info.module).Backend(info)


class Base:
    """What every backend implements. Files in `build_dir` carry state between stages.

    render(graph, hints, source, variant) -> ({filename: text}, {template: sha256})
                           pure: no toolchain needed; the second part lists templates used
    compile(build_dir, dest)    writes objects/compiled modules into dest
    assemble(build_dir, dest)   writes the loadable artifact (`artifact_name`, plus any other
                           `artifact_files`, e.g. a manifest) into dest
    run(build_dir, graph, inputs) -> {output name: torch tensor}
    toolchain()            -> {"available": bool, "versions": {...}, "reason": str}; cheap
    device()               -> (True, "") or (False, reason) if artifacts cannot run here
    execution(build_dir)   -> {} when `run` executed the artifact for real; otherwise
                           {"status": "emulated", "reason": ..., "steps": {...}}: how it ran
    """

    source_files = ("kernel.txt",)     # what render writes
    compiled_files = ("kernel.o",)     # what compile writes
    artifact_name = "kernel.bin"       # what assemble writes (the file validation runs)

    @property
    def artifact_files(self) -> tuple:
        """Every file assemble writes (cached and tracked together)."""
        return (self.artifact_name,)

    @property
    def assemble_inputs(self) -> tuple:
        """Every file assemble reads: its file deps and part of its cache key."""
        return self.compiled_files

    def __init__(self, info: TargetInfo):
        self.info = info
        self.name = info.name

    def toolchain(self) -> dict:
        raise NotImplementedError

    def device(self):
        return True, ""

    def render(self, plan) -> dict:
        raise NotImplementedError

    def compile(self, build_dir):
        raise NotImplementedError

    def assemble(self, build_dir):
        raise NotImplementedError

    def run(self, build_dir, graph, inputs: dict) -> dict:
        raise NotImplementedError

    def execution(self, build_dir) -> dict:
        return {}

    # --- helpers shared by host-memory backends ------------------------------------------
    @staticmethod
    def host_buffers(graph, inputs: dict) -> dict:
        """Kernel arguments in order (inputs, then outputs), packed into their layouts.

        Outputs start as NaN so an element the kernel never writes cannot pass.
        """
        import torch
        buffers = {}
        for name in graph.inputs:
            x, t = inputs[name].contiguous(), graph.tensors[name]
            buffers[name] = t.layout.pack(x) if t.layout is not None else x
        for name in graph.outputs:
            t = graph.tensors[name]
            buffers[name] = torch.full(t.memory_shape, float("nan"), dtype=getattr(torch, t.dtype))
        return buffers

    @staticmethod
    def host_outputs(graph, buffers: dict) -> dict:
        out = {}
        for name in graph.outputs:
            t = graph.tensors[name]
            out[name] = t.layout.unpack(buffers[name]) if t.layout is not None else buffers[name]
        return out
