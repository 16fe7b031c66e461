"""tir-cuda loader: a kernel.so + kernel.json built by TileLang and nvcc, called with ctypes.

The backend's loader (backends/tir_cuda/loader.py: `Artifact`) owns the calling
convention of the .so (parameters, workspaces, aliases, the stream, a run-time M for
dynamic artifacts); this module only maps the signature's inputs and outputs onto the
manifest's parameter order and launches on the current stream (so CUDA-graph capture
records the launch). One Artifact per CUDA device.
"""
from __future__ import annotations

from pathlib import Path


class Kernel:
    allocates_outputs = False

    def __init__(self, folder, signature, manifest=None, device=None):
        import torch

        from ..backends.tir_cuda.loader import Artifact
        device = torch.device(device) if device is not None else torch.device("cuda", torch.cuda.current_device())
        with torch.cuda.device(device):
            self.art = Artifact(Path(folder) / "kernel.json", device=device)
        self.order = param_order(self.art.tensor_params, signature, folder)

    def __call__(self, inputs, outputs):
        tensors = inputs + outputs
        self.art(*[tensors[i] for i in self.order])
        return outputs


def param_order(tensor_params, signature, folder="") -> list:
    """For each tensor parameter of kernel.json (inputs and outputs, in the .so's order),
    its index in the signature's inputs + outputs."""
    position = {name: i for i, name in enumerate(signature.input_names + signature.output_names)}
    params = [q["tensor"] for q in tensor_params]
    if sorted(params) != sorted(position):
        raise RuntimeError(f"{folder}: kernel.json parameters {params} do not match the signature {list(position)}")
    return [position[name] for name in params]
