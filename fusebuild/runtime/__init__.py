"""The runtime: what a model imports to call the operators fusebuild built.

  fusebuild.load(spec, target=None, out="out", specs="specs", allow_unvalidated=False)
      -> Op: op(*inputs) or op(name=tensor, ...) runs the built variant that takes the
      inputs' shapes, dtypes and device; op.variants, op.report(...), op.tolerance(...)
  torch.ops.fusebuild.<spec>   the same op for torch.compile and CUDA graphs (torchop.py)
  Fused / Linear / MLP         nn.Modules holding the weights (modules.py)
  fusebuild export DEST        a self-contained folder that load(out=DEST) reads (export.py)

Modules: signature (what an artifact takes and returns), manifest (what validation
records for the runtime), targets (loader table, device kinds), call (the one code path
from tensors to a kernel, validation included), tir_cpu / mlir_cpu / tir_cuda / mlir_aie
(one loader each), op (discovery and dispatch), torchop, modules, export.

Importing this package imports nothing else; loading and calling an op needs torch and
the target's runtime only (TVM's runtime library, IREE's runtime, or the CUDA .so), never
doit, Jinja, TileLang or a compiler. docs/runtime.md has the user's view.
"""
from __future__ import annotations

_LAZY = {"load": "op", "Op": "op", "Fused": "modules", "Linear": "modules", "MLP": "modules"}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
