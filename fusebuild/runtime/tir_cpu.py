"""tir-cpu loader: a kernel.so built by TVM, called through TVM's runtime with torch tensors.

TVM's own `tvm.runtime.load_module` is `tvm_ffi.load_module` after `import tvm` has
loaded libtvm_runtime.so with RTLD_GLOBAL (the kernel's parallel loops and workspaces
call into it). Importing the `tvm` package also loads its compiler (about 4 s); this
loader does only the runtime part: it finds libtvm_runtime.so in the installed package
(without executing it), loads it the same way, and loads the kernel with tvm_ffi, which
takes torch tensors directly (DLPack, no copy). If `tvm` is already imported (a build
process), its runtime is reused.
"""
from __future__ import annotations

import ctypes
import functools
import importlib.util
import os
import sys
from pathlib import Path


def _threads() -> None:
    """TVM's thread pool, when TVM_NUM_THREADS is unset, takes half the hardware threads on
    x86 (it assumes hyper-threading): one thread on a 2-vCPU machine, where torch uses two.
    A tir-cpu kernel runs on as many threads as torch does here (torch.get_num_threads(),
    which follows OMP_NUM_THREADS and `doit -n`'s share of the cores); a user's own
    TVM_NUM_THREADS wins. Read by TVM when its pool starts: before the first kernel runs."""
    if "TVM_NUM_THREADS" not in os.environ:
        import torch
        os.environ["TVM_NUM_THREADS"] = str(torch.get_num_threads())


@functools.cache
def _runtime_library() -> str:
    """Path of libtvm_runtime.so, loaded RTLD_GLOBAL as tvm/base.py loads it."""
    _threads()
    if "tvm" in sys.modules:
        return "(loaded by tvm)"
    import tvm_ffi  # noqa: F401  (loads libtvm_ffi.so, which libtvm_runtime.so links against)
    spec = importlib.util.find_spec("tvm")
    dirs = [Path(os.environ["TVM_LIBRARY_PATH"])] if os.environ.get("TVM_LIBRARY_PATH") else []
    dirs += [Path(p) / "lib" for p in (spec.submodule_search_locations or [])] if spec else []
    for d in dirs:
        lib = d / "libtvm_runtime.so"
        if lib.is_file():
            try:
                ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
            except OSError as err:
                raise ImportError(f"cannot load TVM's runtime {lib}: {err}") from None
            return str(lib)
    raise ImportError("TVM's runtime (libtvm_runtime.so) was not found: tir-cpu artifacts need the apache-tvm "
                      "package (pip install apache-tvm)")


def load_module(path):
    """TVM's load_module, without importing the compiler."""
    _runtime_library()
    import tvm_ffi
    return tvm_ffi.load_module(str(path))


class Kernel:
    allocates_outputs = False

    def __init__(self, folder, signature, manifest=None, device=None):
        self.fn = load_module(Path(folder) / "kernel.so")["main"]

    def __call__(self, inputs, outputs):
        self.fn(*inputs, *outputs)
        return outputs
