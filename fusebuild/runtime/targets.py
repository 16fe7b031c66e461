"""The runtime's table of targets: which module loads an artifact, which files it reads,
which tensors it takes, and what "this kind of device" means for it.

An artifact is trusted on a machine only if validation ran it on the same kind of
device (`same_kind`): for CPU targets the same CPU model and vector features (LLVM code
is built for the host CPU with `-mcpu=host` and may not run on another; this is the
`llvm-host` toolchain fact the build keys on); for tir-cuda the same compute capability
(sm_90a code runs on sm_90 only). mlir-aie designs never ran on an NPU here: they are
emulated, so they load only with allow_unvalidated.

Each loader module defines `Kernel(folder, signature, manifest, device)` (runtime/call.py
has the calling convention). Importing this table imports no loader.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class RuntimeTarget:
    name: str
    module: str            # the loader: defines Kernel
    files: tuple           # what the loader reads, relative to the artifact folder
    device: str            # torch device type of the tensors it takes
    kind: str              # cpu | cuda | emulator: how `here` describes the device
    needs: str             # what must be installed to call it (for messages)

    def kernel_class(self):
        return importlib.import_module(self.module).Kernel


TARGETS = {t.name: t for t in [
    RuntimeTarget("tir-cpu", "fusebuild.runtime.tir_cpu", ("kernel.so",), "cpu", "cpu",
                  "TVM's runtime (pip package apache-tvm)"),
    RuntimeTarget("mlir-cpu", "fusebuild.runtime.mlir_cpu", ("kernel.vmfb",), "cpu", "cpu",
                  "IREE's runtime (pip package iree-base-runtime)"),
    RuntimeTarget("tir-cuda", "fusebuild.runtime.tir_cuda", ("kernel.so", "kernel.json"), "cuda", "cuda",
                  "torch with CUDA and a Hopper (sm_90) GPU"),
    RuntimeTarget("mlir-aie", "fusebuild.runtime.mlir_aie", ("artifact.json", "design.mlir"), "cpu", "emulator",
                  "nothing: the design is emulated on the host with torch (slow; not an NPU run)"),
]}

# target=None: the targets tried for tensors on each device type, in order
BY_DEVICE = {"cpu": ("tir-cpu", "mlir-cpu", "mlir-aie"), "cuda": ("tir-cuda",)}


def here(target: str) -> dict:
    """The kind of device this machine offers `target` (what validation records)."""
    kind = TARGETS[target].kind if target in TARGETS else "cpu"
    if kind == "cpu":
        from ..toolchains import cpu_key
        return {"kind": "cpu", "cpu": cpu_key()}
    if kind == "cuda":
        import torch
        if not torch.cuda.is_available():
            return {"kind": "cuda", "capability": None, "name": None}
        major, minor = torch.cuda.get_device_capability()
        return {"kind": "cuda", "capability": f"sm_{major}{minor}", "name": torch.cuda.get_device_name()}
    return {"kind": kind}


def same_kind(validated_on: dict | None, current: dict) -> bool:
    if not validated_on or validated_on.get("kind") != current.get("kind"):
        return False
    if current["kind"] == "cpu":
        return validated_on.get("cpu") == current["cpu"]
    if current["kind"] == "cuda":
        return current["capability"] is not None and validated_on.get("capability") == current["capability"]
    return False


def describe(kind: dict | None) -> str:
    if not kind:
        return "nowhere"
    if kind.get("kind") == "cpu":
        return f"CPU {kind.get('cpu')}"
    if kind.get("kind") == "cuda":
        return f"{kind.get('name') or 'no CUDA device'} ({kind.get('capability')})"
    return str(kind.get("kind"))
