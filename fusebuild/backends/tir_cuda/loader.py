"""Load and call a tir-cuda artifact (kernel.so + kernel.json) on a GPU: torch + ctypes only.

The .so links cudart statically and resolves the driver's cuTensorMapEncodeTiled through
cudaGetDriverEntryPoint, so it needs no libcuda at build time; TMA descriptors are encoded
inside `call` from the actual pointers. Workspaces (and their read aliases: the same
pointer passed twice) are allocated here from the manifest.
"""
from __future__ import annotations

import ctypes
import json
from pathlib import Path

import torch

_DT = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


class Artifact:
    def __init__(self, manifest_path, device=None):
        p = Path(manifest_path)
        self.manifest = json.loads(p.read_text())
        self.name = str(p.parent)
        self.lib = ctypes.CDLL(str(p.parent / self.manifest["library"]), mode=ctypes.RTLD_LOCAL)
        self.lib.get_last_error.restype = ctypes.c_char_p
        self.lib.call.restype = ctypes.c_int
        self.lib.init.restype = ctypes.c_int
        self.device = device or torch.device("cuda", torch.cuda.current_device())
        torch.cuda.init()          # the primary context must exist before init() touches cudart
        if self.lib.init() != 0:
            raise RuntimeError(f"{self.name}: init failed: {self.lib.get_last_error().decode()}")
        self.params = self.manifest["params"]
        self.tensor_params = [q for q in self.params if q["role"] in ("input", "output")]
        self.workspaces = {q["name"]: torch.empty(q["shape"], dtype=_DT[q["dtype"]], device=self.device)
                           for q in self.params if q["role"] == "workspace"}
        self.lib.call.argtypes = [ctypes.c_void_p] * (len(self.params) + 1)

    def _pointers(self, tensors) -> list:
        if len(tensors) != len(self.tensor_params):
            raise TypeError(f"{self.name}: expected {[q['name'] for q in self.tensor_params]}")
        it, ptrs = iter(tensors), []
        for q in self.params:
            if q["role"] == "workspace":
                ptrs.append(self.workspaces[q["name"]].data_ptr())
            elif q["role"] == "alias":
                ptrs.append(self.workspaces[q["alias_of"]].data_ptr())
            else:
                t = next(it)
                if list(t.shape) != q["shape"] or t.dtype != _DT[q["dtype"]] or not t.is_contiguous() or not t.is_cuda:
                    raise ValueError(f"{self.name}: {q['name']} expects contiguous cuda {q['dtype']}{q['shape']}, "
                                     f"got {t.dtype}{list(t.shape)} on {t.device}")
                ptrs.append(t.data_ptr())
        return ptrs

    def __call__(self, *tensors, stream=None):
        """tensors: the input and output parameters in manifest order."""
        s = (stream or torch.cuda.current_stream(self.device)).cuda_stream
        if self.lib.call(*self._pointers(tensors), s) != 0:
            raise RuntimeError(f"{self.name}: call failed: {self.lib.get_last_error().decode()}")

    def bind(self, *tensors, stream=None):
        """A zero-argument launcher with the pointers resolved once (hot loops, benchmarks)."""
        args = [ctypes.c_void_p(p) for p in self._pointers(tensors)]
        call, err, name = self.lib.call, self.lib.get_last_error, self.name
        dev, cur = self.device, torch.cuda.current_stream

        def launch():   # the stream is looked up per call, so CUDA-graph capture on a side stream works
            s = stream.cuda_stream if stream is not None else cur(dev).cuda_stream
            if call(*args, ctypes.c_void_p(s)) != 0:
                raise RuntimeError(f"{name}: call failed: {err().decode()}")
        return launch
