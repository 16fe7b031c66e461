"""Load and call a tir-cuda artifact (kernel.so + kernel.json) on a GPU: torch + ctypes only.

The .so links cudart statically and resolves the driver's cuTensorMapEncodeTiled through
cudaGetDriverEntryPoint, so it needs no libcuda at build time; TMA descriptors are encoded
inside `call` from the actual pointers (which must be 16-byte aligned: checked here).
Workspaces (and their read aliases: the same pointer passed twice) are allocated here from
the manifest.

Dynamic M: a parameter shape may hold "M" (manifest "dynamic": {"M": [lo, hi]}). The call
takes M from the tensors' shapes (all must agree, lo <= M <= hi), passes it as the `int M`
argument TileLang's host wrapper expects after the pointers, and sizes workspaces for the
largest M seen so far (a larger buffer serves a smaller M: the kernels index by M; the
smaller ones stay allocated, since launchers from `bind` may hold their pointers).
"""
from __future__ import annotations

import ctypes
import json
import math
from pathlib import Path

import torch

_DT = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32, "int32": torch.int32}


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
        self.range = (self.manifest.get("dynamic") or {}).get("M")
        self.workspaces, self._ws_m, self._retired = {}, 0, []
        if not self.range:
            self._workspaces(None)
        self.lib.call.argtypes = ([ctypes.c_void_p] * len(self.params) + ([ctypes.c_int] if self.range else [])
                                  + [ctypes.c_void_p])
        # the per-call path of a static artifact (a model calls it every step): the expected
        # shapes, dtypes and workspace pointers resolved once; anything unexpected takes the
        # checking path below, which raises with the reason
        index = self.device.index if self.device.index is not None else torch.cuda.current_device()
        raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)
        self._stream = ((lambda: raw(index)) if raw is not None
                        else (lambda: torch.cuda.current_stream(self.device).cuda_stream))
        self._fixed = self._expect = None
        if not self.range:
            self._fixed = [self.workspaces[q["name"]].data_ptr() if q["role"] == "workspace" else
                           self.workspaces[q["alias_of"]].data_ptr() if q["role"] == "alias" else None
                           for q in self.params]
            self._expect = [(i, torch.Size(q["shape"]), _DT[q["dtype"]]) for i, q in enumerate(self.params)
                            if q["role"] in ("input", "output")]

    def _workspaces(self, m):
        if self.range and m <= self._ws_m:
            return
        self._retired.append(self.workspaces)    # launchers from bind() may still point into them
        # split-K arrival counters start at zero (the kernel resets them after each use)
        self.workspaces = {q["name"]: (torch.zeros if q.get("zeroed") else torch.empty)(
                               [m if d == "M" else d for d in q["shape"]], dtype=_DT[q["dtype"]], device=self.device)
                           for q in self.params if q["role"] == "workspace"}
        self._ws_m = m or 0

    def _bind_m(self, tensors):
        """The run-time M of a dynamic artifact, read off the tensors' shapes (None if static)."""
        if not self.range:
            return None
        seen = {t.shape[q["shape"].index("M")] for q, t in zip(self.tensor_params, tensors)
                if "M" in q["shape"] and len(t.shape) == len(q["shape"])}
        if len(seen) != 1:
            raise ValueError(f"{self.name}: the tensors disagree on M: {sorted(seen)}")
        m = seen.pop()
        lo, hi = self.range
        if not lo <= m <= hi:
            raise ValueError(f"{self.name}: M={m} is outside this artifact's range [{lo}, {hi}]")
        self._workspaces(m)
        return m

    def _pointers(self, tensors) -> tuple:
        if len(tensors) != len(self.tensor_params):
            raise TypeError(f"{self.name}: expected {[q['name'] for q in self.tensor_params]}")
        m = self._bind_m(tensors)
        it, ptrs = iter(tensors), []
        for q in self.params:
            if q["role"] == "workspace":
                ptrs.append(self.workspaces[q["name"]].data_ptr())
            elif q["role"] == "alias":
                ptrs.append(self.workspaces[q["alias_of"]].data_ptr())
            else:
                t = next(it)
                shape = [m if d == "M" else d for d in q["shape"]]
                if list(t.shape) != shape or t.dtype != _DT[q["dtype"]] or not t.is_contiguous() or not t.is_cuda:
                    raise ValueError(f"{self.name}: {q['name']} expects contiguous cuda {q['dtype']}{shape}, "
                                     f"got {t.dtype}{list(t.shape)} on {t.device}")
                if t.data_ptr() % 16:
                    raise ValueError(f"{self.name}: {q['name']} starts at an address that is not 16-byte aligned "
                                     f"(TMA needs it): pass a fresh tensor or .clone() the view")
                ptrs.append(t.data_ptr())
        return ptrs, m

    def _args(self, tensors) -> list:
        ptrs, m = self._pointers(tensors)
        return [ctypes.c_void_p(p) for p in ptrs] + ([ctypes.c_int(m)] if self.range else [])

    def __call__(self, *tensors, stream=None):
        """tensors: the input and output parameters in manifest order."""
        args = self._fast_args(tensors) if self._expect is not None else None
        if args is None:
            args = self._args(tensors)
        s = stream.cuda_stream if stream is not None else self._stream()
        if self.lib.call(*args, s) != 0:
            raise RuntimeError(f"{self.name}: call failed: {self.lib.get_last_error().decode()}")

    def _fast_args(self, tensors):
        """The pointers of a static artifact's call, or None if any tensor needs the checking path."""
        if len(tensors) != len(self._expect):
            return None
        args = self._fixed.copy()
        for (i, shape, dtype), t in zip(self._expect, tensors):
            if t.shape != shape or t.dtype is not dtype or not t.is_cuda or not t.is_contiguous():
                return None
            p = t.data_ptr()
            if p % 16:
                return None
            args[i] = p
        return args

    def bind(self, *tensors, stream=None):
        """A zero-argument launcher with the pointers (and M) resolved once (hot loops, benchmarks).

        The launcher holds this Artifact: its workspaces (split-K partials, a chain's
        intermediates) and library live as long as the launcher does, even when the caller
        keeps only the launcher (`Artifact(p).bind(...)`); otherwise they were freed and the
        kernel wrote into memory torch had handed out again (an illegal address on an H200)."""
        args = self._args(tensors)
        call, err, name, cur = self.lib.call, self.lib.get_last_error, self.name, self._stream
        owner = self

        def launch():   # the stream is looked up per call, so CUDA-graph capture on a side stream works
            s = stream.cuda_stream if stream is not None else cur()
            if call(*args, s) != 0:
                raise RuntimeError(f"{name}: call failed: {err().decode()}")
        launch.artifact = owner
        return launch

    def workspace_bytes(self) -> int:
        return sum(math.prod(w.shape) * w.element_size() for w in self.workspaces.values())
