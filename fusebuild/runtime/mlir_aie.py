"""mlir-aie loader: emulates the design on the host (never an NPU run).

Nothing in fusebuild runs an xclbin through XRT yet (docs/npu.md), so the only way to call
an mlir-aie artifact is the emulator validation uses (the backend's `run`): slow, and
loaded only with allow_unvalidated=True, with a warning that it is emulated. It takes
the graph from the manifest and packs layouts itself (`logical`).
"""
from __future__ import annotations

from pathlib import Path


class Kernel:
    allocates_outputs = True
    logical = True

    def __init__(self, folder, signature, manifest, device=None):
        from ..backends import get_backend
        self.backend, self.folder, self.graph = get_backend("mlir-aie"), Path(folder), manifest.graph()
        self.names = signature.input_names

    def __call__(self, inputs, outputs=None):
        out = self.backend.run(self.folder, self.graph, dict(zip(self.names, inputs)))
        return [out[n] for n in self.graph.outputs]
