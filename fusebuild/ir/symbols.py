"""Dynamic dimensions: how a symbol (a dynamic parameter such as M) flows through shape rules.

A tensor dimension is either static (a size) or equal to a dynamic parameter, declared
with a range `[lo, hi]`: `Tensor.symbols[d]` names it and `Tensor.shape[d]` holds `hi`,
so size arithmetic that only needs a bound (buffer sizes, tolerances) keeps working.

Two dimensions agree when they are the same static size or the same symbol; a symbol
never agrees with a static size (not even `hi`: at run time M can be anything in its
range), except that a static 1 broadcasts against it. These rules mirror ops.broadcast
and ops.matmul_shape, which check the sizes; this module checks the symbols.
"""
from __future__ import annotations

from .ops import ShapeError


def _dim(shape, symbols, d) -> str:
    return symbols[d] if symbols[d] is not None else str(shape[d])


def broadcast(a_shape, a_sym, b_shape, b_sym) -> tuple:
    """Symbols of numpy-broadcasting two shapes (right-aligned); raises ShapeError."""
    out = []
    for i in range(1, max(len(a_shape), len(b_shape)) + 1):
        x = (a_shape[-i], a_sym[-i]) if i <= len(a_shape) else (1, None)
        y = (b_shape[-i], b_sym[-i]) if i <= len(b_shape) else (1, None)
        if x[1] == y[1]:
            out.append(x[1])
        elif x == (1, None) or y == (1, None):
            out.append(x[1] if y == (1, None) else y[1])
        else:
            show = [s if s is not None else str(n) for n, s in (x, y)]
            raise ShapeError(f"dimension -{i}: {show[0]} vs {show[1]}: a dynamic dimension only matches the "
                             "same parameter, or a static 1 that broadcasts")
    return tuple(reversed(out))


def matmul(a_shape, a_sym, b_shape, b_sym, transpose_b: bool, names=("a", "b")) -> tuple:
    """Symbols of a matmul's output (M, N); its K dimensions must agree symbolically."""
    kb = 1 if transpose_b else 0
    if a_sym[1] != b_sym[kb]:
        raise ShapeError(f"K mismatch: {names[0]} has K={_dim(a_shape, a_sym, 1)} but {names[1]} has "
                         f"K={_dim(b_shape, b_sym, kb)}: a dynamic K must be the same parameter on both sides")
    return a_sym[0], b_sym[0 if transpose_b else 1]
