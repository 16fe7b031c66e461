"""Operand layouts: one tiled-strided type that every backend consumes.

A layout gives, for each tensor dimension, a list of (stride, bound) pairs from the
outermost tile level to the element (IRON's TiledStridedLayout). An index `i` along a
dimension is split into mixed-radix digits by the bounds (outermost first); the memory
offset is the sum of digit * stride over all levels of all dimensions.

Short forms: `row_major`, `col_major`, `{tiled: [r, s]}` (r x s tiles, tiles row-major,
each tile row-major). Long form: `{dims: [[[stride, bound], ...], ...]}`.

Backends read the same object: TIR renders `offset_terms` as index arithmetic on a flat
buffer, validation packs host tensors with `pack`, AIE turns levels into DMA patterns.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod

from .errors import LayoutError


@dataclass(frozen=True)
class Layout:
    dims: tuple                # per tensor dim: ((stride, bound), ...) outer -> inner
    form: str = "custom"       # how the user wrote it (for messages and readable output)

    @property
    def rank(self) -> int:
        return len(self.dims)

    def is_row_major(self) -> bool:
        return self.dims == row_major(self.shape).dims

    @property
    def shape(self) -> tuple:
        return tuple(prod(b for _, b in levels) for levels in self.dims)

    @property
    def size(self) -> int:
        return prod(self.shape)

    def offset_terms(self, d: int) -> list:
        """[(divisor, bound, stride)] for dim d: offset += (i // divisor % bound) * stride."""
        levels, terms = self.dims[d], []
        for j, (stride, bound) in enumerate(levels):
            divisor = prod(b for _, b in levels[j + 1:])
            terms.append((divisor, bound, stride))
        return terms

    def offset(self, index) -> int:
        return sum((i // div % bound) * stride
                   for d, i in enumerate(index) for div, bound, stride in self.offset_terms(d))

    def offsets(self):
        """numpy array, in the tensor's row-major element order, of each element's offset."""
        import numpy as np
        total = np.zeros(self.shape, dtype=np.int64)
        for d in range(self.rank):
            idx = np.arange(self.shape[d]).reshape([-1 if k == d else 1 for k in range(self.rank)])
            for div, bound, stride in self.offset_terms(d):
                total = total + (idx // div % bound) * stride
        return total.reshape(-1)

    def pack(self, tensor):
        """Host tensor (logical shape) -> flat buffer in this layout."""
        import torch
        flat = torch.empty(self.size, dtype=tensor.dtype)
        flat[torch.as_tensor(self.offsets())] = tensor.reshape(-1)
        return flat

    def unpack(self, flat):
        return flat[self.offsets()].reshape(self.shape)

    def canonical(self) -> list:
        return [[list(p) for p in levels] for levels in self.dims]

    def check(self, shape: tuple, operand: str) -> None:
        """Bijection onto a dense buffer of the tensor's size; tiles divide the shape."""
        if self.rank != len(shape):
            raise LayoutError(f"layout of '{operand}' has {self.rank} dimensions but the tensor has {len(shape)}")
        if self.shape != tuple(shape):
            raise LayoutError(f"layout of '{operand}' covers {list(self.shape)} but the tensor is {list(shape)}",
                              valid="tile bounds whose product along each dimension equals its size")
        import numpy as np
        offs = self.offsets()
        if offs.min(initial=0) < 0 or not np.array_equal(np.sort(offs), np.arange(offs.size)):
            dup = offs.size - np.unique(offs).size
            raise LayoutError(f"layout of '{operand}' is not a bijection onto its buffer: "
                              f"{dup} elements share an offset, max offset {int(offs.max())} for {offs.size} elements",
                              valid="strides that place every element exactly once in [0, numel)")


def row_major(shape) -> Layout:
    strides = [prod(shape[d + 1:]) for d in range(len(shape))]
    return Layout(tuple(((s, n),) for s, n in zip(strides, shape)), "row_major")


def col_major(shape) -> Layout:
    if len(shape) != 2:
        raise LayoutError(f"col_major needs a 2-D tensor, got {len(shape)}-D")
    m, n = shape
    return Layout((((1, m),), ((m, n),)), "col_major")


def tiled(shape, r: int, s: int) -> Layout:
    if len(shape) != 2:
        raise LayoutError(f"tiled needs a 2-D tensor, got {len(shape)}-D")
    m, n = shape
    if r <= 0 or s <= 0 or m % r or n % s:
        raise LayoutError(f"tile {r}x{s} does not divide shape {list(shape)}",
                          valid=f"tile sizes dividing {m} and {n}")
    return Layout((((r * n, m // r), (s, r)), ((r * s, n // s), (1, s))), f"tiled[{r},{s}]")


def parse_layout(value, shape, operand: str) -> Layout:
    """Spec value -> checked Layout. Raises LayoutError (the caller adds file/line)."""
    if value in (None, "row_major"):
        layout = row_major(shape)
    elif value == "col_major":
        layout = col_major(shape)
    elif isinstance(value, dict) and set(value) == {"tiled"}:
        tile = value["tiled"]
        if not (isinstance(tile, list) and len(tile) == 2 and all(isinstance(t, int) and not isinstance(t, bool) for t in tile)):
            raise LayoutError(f"tiled: expects [r, s] integers, got {tile!r}")
        layout = tiled(shape, *tile)
    elif isinstance(value, dict) and set(value) == {"dims"}:
        layout = Layout(_parse_dims(value["dims"], operand), "custom")
    else:
        raise LayoutError(f"unknown layout {value!r} for '{operand}'",
                          valid="row_major, col_major, {tiled: [r, s]}, {dims: [[[stride, bound], ...], ...]}")
    layout.check(tuple(shape), operand)
    return layout


def _parse_dims(dims, operand):
    ok = isinstance(dims, list) and all(
        isinstance(levels, list) and levels and all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in p)
            for p in levels) for levels in dims)
    if not ok:
        raise LayoutError(f"layout dims of '{operand}' must be a list per dimension of [stride, bound] pairs",
                          valid="e.g. {dims: [[[256, 4], [8, 32]], [[32, 8], [1, 8]]]}")
    if any(b == 0 for levels in dims for _, b in levels):
        raise LayoutError(f"layout of '{operand}' has a zero bound")
    return tuple(tuple((s, b) for s, b in levels) for levels in dims)
