"""Each loaded spec as a torch operator: `torch.ops.fusebuild.<spec>`.

The op is defined once per process with the spec's schema, `(Tensor x, Tensor w, ...) ->
Tensor` (a tuple of Tensors for several outputs), in a torch.library fragment of the
`fusebuild` namespace, with CPU and CUDA kernels and a fake (meta) implementation, so
torch.compile(fullgraph=True) traces it as one opaque node (no graph break) and CUDA
graph capture records the kernel it launches. The fake computes output shapes from the
manifests (Op.fake), loading and running nothing.

The plain torch.library API rather than torch.library.custom_op: custom_op wraps every
call in Python autograd and aliasing checks that cost tens of microseconds (bench/
runtime_bench.py measured both). Gradients are refused by the op itself (runtime/op.py):
a call whose inputs require grad is an error, never a silently missing gradient.

Both kernels and the fake call the op most recently loaded for the spec (`fusebuild.load`
again replaces it: another out folder, another target); a load whose inputs or outputs
differ from the defined schema is refused.
"""
from __future__ import annotations

import torch

from ..errors import UseError

NAMESPACE = "fusebuild"
_LOADED: dict = {}          # spec -> the Op calls go to
_SCHEMAS: dict = {}         # spec -> schema it was defined with
_LIB: list = []             # the torch.library fragment, made with the first op (kept alive)


def schema(op) -> str:
    outs = "Tensor" if len(op.outputs) == 1 else "(" + ", ".join("Tensor" for _ in op.outputs) + ")"
    return "(" + ", ".join(f"Tensor {n}" for n in op.inputs) + f") -> {outs}"


def register(op):
    """Define (first time) or rebind torch.ops.fusebuild.<spec> to `op`; returns the op packet."""
    text = schema(op)
    if op.spec in _SCHEMAS:
        if _SCHEMAS[op.spec] != text:
            raise UseError(f"torch.ops.{NAMESPACE}.{op.spec} is already defined as {_SCHEMAS[op.spec]} "
                           "in this process; "
                           f"this load has {text}", path=str(op.out / op.spec),
                           valid="one signature per spec name per process")
        _LOADED[op.spec] = op
        return getattr(getattr(torch.ops, NAMESPACE), op.spec)
    spec = op.spec
    if not _LIB:
        _LIB.append(torch.library.Library(NAMESPACE, "FRAGMENT"))
    lib = _LIB[0]

    def run(*args):
        return _LOADED[spec](*args)

    def fake(*args):
        return _LOADED[spec].fake(*args)

    try:
        lib.define(spec + text)
    except RuntimeError as err:   # e.g. an input name the schema parser reserves
        raise UseError(f"cannot define torch.ops.{NAMESPACE}.{spec}{text}: {err}", path=str(op.out / spec)) from None
    for key in ("CPU", "CUDA"):
        lib.impl(spec, run, key)
    torch.library.register_fake(f"{NAMESPACE}::{spec}", fake, lib=lib)
    _SCHEMAS[spec], _LOADED[spec] = text, op
    return getattr(getattr(torch.ops, NAMESPACE), spec)
