"""mlir-cpu loader: a kernel.vmfb built by IREE, called through IREE's runtime.

One IREE runtime config (driver and its task pool) per process, shared by every loaded
module. Inputs go in as numpy views of the torch tensors (no copy on our side; IREE
copies them into its buffers), outputs come back as fresh torch tensors.

IREE's bindings (nanobind) print a page of "leaked instance" warnings if its objects are
still alive when the interpreter shuts down, which they are when an op is held by a
module-level registry (torch.ops): an exit hook, registered with the first kernel,
releases them first.
"""
from __future__ import annotations

import atexit
import functools
import weakref
from pathlib import Path

DRIVER = "local-task"
_LIVE = weakref.WeakSet()


@functools.cache
def config(driver: str = DRIVER):
    import iree.runtime as rt
    atexit.register(_release)
    return rt.Config(driver)


def _release():
    for kernel in list(_LIVE):
        kernel.ctx = kernel.fn = None
    config.cache_clear()


class Kernel:
    allocates_outputs = True

    def __init__(self, folder, signature, manifest=None, device=None):
        import iree.runtime as rt
        self.ctx = rt.SystemContext(config=config())
        self.ctx.add_vm_module(rt.VmModule.copy_buffer(self.ctx.instance, (Path(folder) / "kernel.vmfb").read_bytes()))
        self.fn = self.ctx.modules.module["main"]
        self.single = len(signature.outputs) == 1
        _LIVE.add(self)

    def __call__(self, inputs, outputs=None):
        import numpy as np
        import torch
        results = self.fn(*[t.numpy() for t in inputs])
        if self.single:
            results = (results,)
        return [torch.from_numpy(np.array(r.to_host())) for r in results]
