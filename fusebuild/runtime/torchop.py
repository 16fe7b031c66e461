"""Each loaded spec as a torch custom op: `torch.ops.fusebuild.<spec>`.

The op is defined once per process with the spec's schema, `(Tensor x, Tensor w, ...) ->
Tensor` (a tuple of Tensors for several outputs), through torch.library.custom_op, so
torch.compile(fullgraph=True) traces it as one opaque node (no graph break) and CUDA
graph capture records the kernel it launches. Its fake implementation computes output
shapes from the manifests (Op.fake) without loading or running anything.

Both the real and the fake implementation call the op most recently loaded for the
spec (`fusebuild.load` again replaces it: another out folder, another target); a load
whose inputs or outputs differ from the defined schema is refused. Outputs do not track
gradients: these are inference kernels (a backward through them raises).
"""
from __future__ import annotations

import torch

from ..errors import UseError

NAMESPACE = "fusebuild"
_LOADED: dict = {}          # spec -> the Op calls go to
_SCHEMAS: dict = {}         # spec -> schema it was defined with
_DEFS: dict = {}            # spec -> torch CustomOpDef (kept alive with the process)


def schema(op) -> str:
    outs = "Tensor" if len(op.outputs) == 1 else "(" + ", ".join("Tensor" for _ in op.outputs) + ")"
    return "(" + ", ".join(f"Tensor {n}" for n in op.inputs) + f") -> {outs}"


def register(op):
    """Define (first time) or rebind torch.ops.fusebuild.<spec> to `op`; returns the op packet."""
    text = schema(op)
    if op.spec in _SCHEMAS:
        if _SCHEMAS[op.spec] != text:
            raise UseError(f"torch.ops.{NAMESPACE}.{op.spec} is already defined as {_SCHEMAS[op.spec]} in this process; "
                           f"this load has {text}", path=str(op.out / op.spec),
                           valid="one signature per spec name per process")
        _LOADED[op.spec] = op
        return getattr(getattr(torch.ops, NAMESPACE), op.spec)
    spec = op.spec

    def run(*args):
        return _LOADED[spec](*args)

    def fake(*args):
        return _LOADED[spec].fake(*args)

    try:
        custom = torch.library.custom_op(f"{NAMESPACE}::{spec}", run, mutates_args=(), schema=text)
    except (RuntimeError, ValueError) as err:   # e.g. an input name the schema parser reserves
        raise UseError(f"cannot define torch.ops.{NAMESPACE}.{spec} {text}: {err}", path=str(op.out / spec)) from None
    custom.register_fake(fake)
    _DEFS[spec], _SCHEMAS[spec], _LOADED[spec] = custom, text, op
    return getattr(getattr(torch.ops, NAMESPACE), spec)
