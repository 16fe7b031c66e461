"""The op table: one entry per op, everything else looks ops up here.

Each op states its arity, its attributes (with types, defaults and allowed values), its
shape rule, and its torch reference. Backends only add a macro per op to their own
`ops.j2` (op -> text); tests/test_ir_ops.py fails if one is missing, and runs every op on
every target that validates here. Elementwise ops are the epilogue vocabulary: any chain
of them after a matmul is fused into the matmul's store (see graph.fuse).

torch is imported lazily: loading specs and planning tasks must stay cheap.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class AttrDef:
    type: type
    default: object
    choices: tuple = ()


@dataclass(frozen=True)
class OpDef:
    name: str
    kind: str                      # "matmul" | "unary" | "binary"
    arity: int
    reference: Callable            # (inputs: list[torch.Tensor], attrs: dict) -> torch.Tensor
    attrs: dict = field(default_factory=dict)

    @property
    def elementwise(self) -> bool:
        return self.kind in ("unary", "binary")


class ShapeError(ValueError):
    pass


def broadcast(a: tuple, b: tuple) -> tuple:
    """numpy broadcasting of two shapes; raises ShapeError naming both."""
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else 1
        y = b[-i] if i <= len(b) else 1
        if x != y and 1 not in (x, y):
            raise ShapeError(f"shapes {list(a)} and {list(b)} do not broadcast (dimension -{i}: {x} vs {y})")
        out.append(max(x, y))
    return tuple(reversed(out))


def matmul_shape(a: tuple, b: tuple, attrs: dict, names=("a", "b")) -> tuple:
    if len(a) != 2 or len(b) != 2:
        raise ShapeError(f"matmul takes 2-D operands, got {names[0]}{list(a)} and {names[1]}{list(b)}")
    m, k = a
    n, kb = (b[0], b[1]) if attrs.get("transpose_b") else (b[1], b[0])
    if k != kb:
        which = "dimension 1 (transpose_b)" if attrs.get("transpose_b") else "dimension 0"
        raise ShapeError(f"K mismatch: {names[0]} has K={k} (dimension 1) but {names[1]} has K={kb} ({which})")
    return (m, n)


# --- torch references (lazy torch import) -------------------------------------------

def _torch():
    import torch
    return torch


def _ref_matmul(inputs, attrs):
    torch = _torch()
    a, b = inputs
    acc = getattr(torch, attrs["acc_dtype"])
    bt = b.to(acc).T if attrs["transpose_b"] else b.to(acc)
    return (a.to(acc) @ bt).to(a.dtype)


def _ref_gelu(inputs, attrs):
    approximate = "tanh" if attrs["approximate"] == "tanh" else "none"
    return _torch().nn.functional.gelu(inputs[0], approximate=approximate)


OPS: dict[str, OpDef] = {op.name: op for op in [
    OpDef("matmul", "matmul", 2, _ref_matmul, {
        "transpose_b": AttrDef(bool, False),
        "acc_dtype": AttrDef(str, "float32", ("float32",)),
    }),
    OpDef("add", "binary", 2, lambda i, a: i[0] + i[1]),
    OpDef("sub", "binary", 2, lambda i, a: i[0] - i[1]),
    OpDef("mul", "binary", 2, lambda i, a: i[0] * i[1]),
    OpDef("relu", "unary", 1, lambda i, a: _torch().relu(i[0])),
    OpDef("sigmoid", "unary", 1, lambda i, a: _torch().sigmoid(i[0])),
    OpDef("silu", "unary", 1, lambda i, a: _torch().nn.functional.silu(i[0])),
    OpDef("gelu", "unary", 1, _ref_gelu, {"approximate": AttrDef(str, "exact", ("exact", "tanh"))}),
]}

# Constants some renderers need for gelu; kept here so every backend uses the same ones.
SQRT_HALF = math.sqrt(0.5)
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
