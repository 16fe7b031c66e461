"""Call a built artifact many times: load it once, bind it to prepared buffers.

A `Runner` is made once per (target, problem) for the rotation sets of one measuring run
(their buffers shared by every candidate, since candidates run one at a time), then
`bind(folder)` loads one candidate's artifact and returns one zero-argument call per set.
Loading goes through fusebuild.runtime's loaders (the code a model runs); only the call
is bound here more tightly than runtime.call.Call does, so the timer sees the kernel and
not per-call packing, copies or argument checks:
  tir-cpu    runtime.tir_cpu.load_module (TVM's runtime, not its compiler), called on the
             sets' torch buffers (DLPack)
  mlir-cpu   IREE's VM module on runtime.mlir_cpu's one config, called on device arrays
             made once per set (runtime.mlir_cpu.Kernel converts and copies on every call);
             a call returns when the dispatch has finished
  tir-cuda   the artifact's ctypes loader with its launches bound to CUDA tensors once
             (Artifact.bind: pointers resolved once, so launch overhead stays off the GPU)
  torch      the graph in torch, op by op in its own dtypes (what a model runs), on the same
             sets: the baseline of each run (not validation's reference, which accumulates
             16-bit matmuls in float32 on upcast operands and would flatter a bf16 kernel)
Each target's runtime is imported only by its runner.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

from ..backends.base import host_buffers


class TvmRunner:
    def __init__(self, graph, sets: list):
        # TVM's pool spins after each call unless told not to: on 2 cores the spinning workers
        # slowed whatever ran next in the round (torch 1.1-4.6x in tune_cost's runs, IREE up to
        # 1.2x in bench/cpu_gemm.py's). Read when the pool starts, before the first kernel runs.
        os.environ.setdefault("TVM_THREAD_POOL_SPIN_COUNT", "0")
        self.args = [list(host_buffers(graph, s).values()) for s in sets]

    def bind(self, folder) -> list:
        from ..runtime.tir_cpu import load_module
        main = load_module(Path(folder) / "kernel.so")["main"]
        return [functools.partial(main, *args) for args in self.args]


class IreeRunner:
    def __init__(self, graph, sets: list):
        import iree.runtime as rt

        from ..runtime.mlir_cpu import config
        self.config = config()
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


def native(node, args: list):
    """One node as a model runs it: a matmul is torch's own `a @ b.T` in the operands' dtype
    (cuBLAS or oneDNN with their accumulation), not the reference's float32 upcast."""
    from ..ir.ops import OPS
    from ..run.validate import run_node
    if OPS[node.op].kind == "matmul":
        return args[0] @ (args[1].T if node.attr.get("transpose_b") else args[1])
    return run_node(node, args)


class TorchRunner:
    """The graph in torch, op by op (`native`), on the same sets, on the same device."""

    def __init__(self, graph, sets: list, cuda: bool = False):
        self.graph = graph
        self.sets = [{n: x.cuda() for n, x in s.items()} for s in sets] if cuda else sets

    def bind(self, folder=None) -> list:
        from ..run.validate import reference
        return [functools.partial(reference, self.graph, s, run=native) for s in self.sets]


RUNNERS = {"tir-cpu": TvmRunner, "mlir-cpu": IreeRunner, "tir-cuda": CudaRunner}


def runner(target: str, graph, sets: list):
    if target not in RUNNERS:
        raise KeyError(f"no runner for target {target} (valid: {', '.join(RUNNERS)})")
    return RUNNERS[target](graph, sets)
