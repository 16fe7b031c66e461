"""Call a built artifact many times: load it once, bind it to prepared buffers.

A `Runner` is made once per (target, problem) for the rotation sets of one measuring run
(their buffers shared by every candidate, since candidates run one at a time), then
`bind(folder)` loads one candidate's artifact and returns one zero-argument call per set.
  tir-cpu    TVM's runtime module, called on the sets' torch buffers through DLPack
  mlir-cpu   IREE's VM module (one local-task device for all candidates), on device
             arrays made once per set; a call returns when the dispatch finished
  tir-cuda   the artifact's ctypes loader (torch only), launches bound to CUDA tensors
  torch      the graph's torch reference on the same sets: the baseline of each run
Each target's runtime is imported only by its runner (the GPU path imports torch and the
CUDA loader only). When fusebuild.runtime lands (one loader per target for models and
validation), these become thin calls into it.
"""
from __future__ import annotations

import functools
from pathlib import Path

from ..backends.base import host_buffers


class TvmRunner:
    def __init__(self, graph, sets: list):
        import tvm
        self.buffers = [host_buffers(graph, s) for s in sets]        # kept alive: TVM borrows them
        self.args = [[tvm.runtime.from_dlpack(b) for b in bufs.values()] for bufs in self.buffers]

    def bind(self, folder) -> list:
        import tvm
        main = tvm.runtime.load_module(str(Path(folder) / "kernel.so"))["main"]
        return [functools.partial(main, *args) for args in self.args]


@functools.cache
def _iree_config():
    import iree.runtime as rt

    from ..backends.mlir_cpu.backend import DRIVER
    return rt.Config(DRIVER)


class IreeRunner:
    def __init__(self, graph, sets: list):
        import iree.runtime as rt
        self.config = _iree_config()
        self.args = []
        for s in sets:
            bufs = host_buffers(graph, s)
            self.args.append([rt.asdevicearray(self.config.device, bufs[n].numpy()) for n in graph.inputs])

    def bind(self, folder) -> list:
        import iree.runtime as rt
        ctx = rt.SystemContext(config=self.config)
        ctx.add_vm_module(rt.VmModule.copy_buffer(ctx.instance, (Path(folder) / "kernel.vmfb").read_bytes()))
        main = ctx.modules.module["main"]
        return [functools.partial(main, *args) for args in self.args]


class CudaRunner:
    def __init__(self, graph, sets: list):
        import torch
        self.graph = graph
        self.sets = [{n: x.cuda() for n, x in s.items()} for s in sets]
        self.outs = [{n: torch.empty(graph.tensors[n].shape, dtype=getattr(torch, graph.tensors[n].dtype),
                                     device="cuda") for n in graph.outputs} for _ in sets]

    def bind(self, folder) -> list:
        from ..backends.tir_cuda.loader import Artifact
        art = Artifact(Path(folder) / "kernel.json")
        calls = []
        for s, o in zip(self.sets, self.outs):
            tensors = [s[q["tensor"]] if q["role"] == "input" else o[q["tensor"]] for q in art.tensor_params]
            calls.append(art.bind(*tensors))
        return calls


class TorchRunner:
    """The graph's torch reference (eager, op by op) on the same sets, on the same device."""

    def __init__(self, graph, sets: list, cuda: bool = False):
        self.graph = graph
        self.sets = [{n: x.cuda() for n, x in s.items()} for s in sets] if cuda else sets

    def bind(self, folder=None) -> list:
        from ..run.validate import reference
        return [functools.partial(reference, self.graph, s) for s in self.sets]


RUNNERS = {"tir-cpu": TvmRunner, "mlir-cpu": IreeRunner, "tir-cuda": CudaRunner}


def runner(target: str, graph, sets: list):
    if target not in RUNNERS:
        raise KeyError(f"no runner for target {target} (valid: {', '.join(RUNNERS)})")
    return RUNNERS[target](graph, sets)
