"""Operand layouts: one tiled-strided type that every backend consumes.

A layout gives, for each tensor dimension, a list of (stride, bound) pairs from the
outermost tile level to the element (IRON's TiledStridedLayout). An index `i` along a
dimension is split into mixed-radix digits by the bounds (outermost first); the memory
offset is the sum of digit * stride over all levels of all dimensions.

Short forms: `row_major`, `col_major`, `{tiled: [r, s]}` (r x s tiles, tiles row-major,
each tile row-major). Long form: `{dims: [[[stride, bound], ...], ...]}`.

Backends read the same object: TIR renders `offset_terms` as index arithmetic on a flat
buffer, validation packs host tensors with `pack`, AIE turns levels into DMA patterns
(`region_loops` -> `split_loops` -> `merge_loops` -> `dma_ops`).

Padding is not supported: tiles must divide the shape (a clear error says so).

DMA limits (`DmaLimits`, `NPU_SHIM_DMA`) are those of mlir-aie's verifier of
`aiex.npu.dma_memcpy_nd` (lib/Dialect/AIEX/IR/AIEXDialect.cpp, NpuDmaMemcpyNdOp::verify):
at most 4 dimensions; counted in 32-bit words, the two innermost sizes <= 1023, the
outermost (repeat) size <= 64, every stride <= 1M (0x100000); a stride of 0 (a repeat)
only on the outermost dimension; offsets, strides and the innermost transfer a multiple
of 4 bytes. A spec whose targets carry limits is checked
when it loads (`check_dma`: the whole-tensor pattern of the layout after merging);
each transfer a backend renders is checked again by `dma_ops`.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod

from ..errors import LayoutError
from .dtypes import nbytes


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
        """Bijection onto a dense buffer of the tensor's size; tiles divide the shape.

        Checked arithmetically, without an index array (a 10^10-element layout costs
        nothing to check): the offsets sum digit * stride over all levels, digits in
        [0, bound). That is a bijection onto [0, numel) exactly when, levels of bound > 1
        sorted by stride, each stride is the product of the bounds of the levels before
        it (1, b0, b0*b1, ...): a mixed-radix number. A smaller stride than that product
        repeats an offset the levels below already reach; a larger one skips that product.
        """
        if self.rank != len(shape):
            raise LayoutError(f"layout of '{operand}' has {self.rank} dimensions but the tensor has {len(shape)}")
        if self.shape != tuple(shape):
            raise LayoutError(f"layout of '{operand}' covers {list(self.shape)} but the tensor is {list(shape)}",
                              valid="tile bounds whose product along each dimension equals its size")
        expect = 1
        for stride, bound in sorted((s, b) for levels in self.dims for s, b in levels if b > 1):
            if stride != expect:
                what = "repeats offsets" if stride < expect else "leaves offsets unused"
                raise LayoutError(f"layout of '{operand}' is not a bijection onto its buffer: the level (stride "
                                  f"{stride}, bound {bound}) {what} (sorted by stride, each stride must be the "
                                  f"product of the bounds before it: {expect})",
                                  valid="strides that place every element exactly once in [0, numel)")
            expect *= bound


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
        raise LayoutError(f"tile {r}x{s} does not divide shape {list(shape)} (padding is not supported)",
                          valid=f"positive tile sizes dividing {m} and {n}")
    return Layout((((r * n, m // r), (s, r)), ((r * s, n // s), (1, s))), f"tiled[{r},{s}]")


def parse_layout(value, shape, operand: str) -> Layout:
    """Spec value -> checked Layout. Raises LayoutError (the caller adds file/line)."""
    if value in (None, "row_major"):
        layout = row_major(shape)
    elif value == "col_major":
        layout = col_major(shape)
    elif isinstance(value, dict) and set(value) == {"tiled"}:
        tile = value["tiled"]
        if not (isinstance(tile, list) and len(tile) == 2
                and all(isinstance(t, int) and not isinstance(t, bool) for t in tile)):
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
            isinstance(p, list) and len(p) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in p)
            for p in levels) for levels in dims)
    if not ok:
        raise LayoutError(f"layout dims of '{operand}' must be a list per dimension of [stride, bound] pairs",
                          valid="e.g. {dims: [[[256, 4], [8, 32]], [[32, 8], [1, 8]]]}")
    if any(b == 0 for levels in dims for _, b in levels):
        raise LayoutError(f"layout of '{operand}' has a zero bound")
    return tuple(tuple((s, b) for s, b in levels) for levels in dims)


# --- access patterns: a region of a tensor as nested (size, stride) loops ---------------

def region_loops(layout: Layout, d: int, origin: int, extent: int, operand: str = "tensor") -> list:
    """Loops [(size, stride)] outer -> inner that visit indices [origin, origin+extent) of
    dim d in order. The region must be aligned to the layout's levels (a tile that cuts
    a level in a way no stride can express raises LayoutError)."""
    loops, covered = [], 1
    for stride, bound in reversed(layout.dims[d]):
        if covered == extent:
            break
        if covered * bound <= extent:
            loops.append((bound, stride))
            covered *= bound
        else:
            part = extent // covered
            if extent % covered or bound % part:
                break
            loops.append((part, stride))
            covered *= part
    if covered != extent or origin % extent:
        levels = [list(p) for p in layout.dims[d]]
        raise LayoutError(f"'{operand}': rows/cols [{origin}, {origin + extent}) of dimension {d} do not align with "
                          f"its layout levels {levels}",
                          valid="tile sizes that are products of the layout's inner bounds")
    return loops[::-1]


def split_loops(loops: list, inner: int) -> tuple:
    """(outer, inner) loops: the inner ones cover `inner` consecutive indices."""
    out, ins, covered = list(loops), [], 1
    while covered < inner:
        size, stride = out.pop()
        if covered * size <= inner:
            ins.insert(0, (size, stride))
            covered *= size
        else:
            part = inner // covered
            if size % part:
                raise LayoutError(f"a tile of {inner} does not split a loop of {size}")
            ins.insert(0, (part, stride))
            out.append((size // part, stride * part))
            covered *= part
    if covered != inner:
        raise LayoutError(f"a tile of {inner} does not split loops {loops}")
    return out, ins


def merge_loops(loops: list) -> list:
    """Drop size-1 loops; fuse an outer loop into the next when it continues it."""
    out = []
    for size, stride in loops:
        if size == 1:
            continue
        if out and out[-1][1] == size * stride:
            out[-1] = (out[-1][0] * size, stride)
        else:
            out.append((size, stride))
    return out or [(1, 1)]


@dataclass(frozen=True)
class DmaLimits:
    """One DMA engine's address generator (all numbers in `word_bytes` units)."""
    name: str
    dims: int = 4
    word_bytes: int = 4
    inner_sizes: int = 1023        # two innermost sizes (inner one counted in words)
    repeat: int = 64               # outermost size of a 4-D pattern
    stride: int = 0x100000         # every stride, in words
    source: str = ""


NPU_SHIM_DMA = DmaLimits("npu shim DMA (aiex.npu.dma_memcpy_nd)",
                         source="mlir-aie lib/Dialect/AIEX/IR/AIEXDialect.cpp NpuDmaMemcpyNdOp::verify")


def whole_loops(layout: Layout) -> list:
    """The layout's levels in logical row-major order: the pattern that reads the tensor."""
    return [(b, s) for levels in layout.dims for s, b in levels]


def dma_ops(offset: int, loops: list, elem_bytes: int, limits: DmaLimits, operand: str) -> list:
    """Fit one transfer (loops outer -> inner) into DMA ops of `limits.dims` dimensions.

    Merges loops, factors an innermost size over the limit, splits an outermost loop over
    the repeat limit into chunks, and unrolls outer loops into several ops when more
    dimensions are needed or a repeat (stride 0) would sit inside another loop. Returns [(offset, sizes, strides)], each
    padded to `limits.dims` (outermost first). Raises LayoutError naming the rule broken.
    """
    loops = _factor(merge_loops(loops), elem_bytes, limits)
    # a stride-0 loop (a repeat) is legal only as the outermost dimension: unroll what is outside it
    repeat_inside = any(t == 0 and s > 1 for s, t in loops[1:])
    outermost = len(loops) == limits.dims or loops[0][1] == 0      # a repeat is always placed outermost
    if outermost and loops[0][0] > limits.repeat and not repeat_inside:
        size, stride = loops[0]     # an outermost loop over the limit: chunks of `repeat` iterations
        return [op for start in range(0, size, limits.repeat)
                for op in dma_ops(offset + start * stride, [(min(limits.repeat, size - start), stride)] + loops[1:],
                                  elem_bytes, limits, operand)]
    if len(loops) > limits.dims or repeat_inside:
        size, stride = loops[0]
        return [op for v in range(size) for op in dma_ops(offset + v * stride, loops[1:], elem_bytes, limits, operand)]
    pad = [(1, 0)] * (limits.dims - len(loops))
    # a repeat goes to the outermost dimension, the padding inside it
    loops = loops[:1] + pad + loops[1:] if loops[0][1] == 0 and loops[0][0] > 1 else pad + loops
    _check_op(offset, loops, elem_bytes, limits, operand)
    return [(offset, [s for s, _ in loops], [t for _, t in loops])]


def _factor(loops, elem_bytes, limits):
    """Split an innermost size (words) above the limit into two loops when it factors."""
    out = list(loops)
    for pos in (len(out) - 1, len(out) - 2):
        if pos < 0:
            continue
        size, stride = out[pos]
        words = size * elem_bytes // limits.word_bytes if pos == len(out) - 1 else size
        if words <= limits.inner_sizes:
            continue
        cap = limits.inner_sizes * limits.word_bytes // elem_bytes if pos == len(out) - 1 else limits.inner_sizes
        inner = max((f for f in range(1, cap + 1) if size % f == 0), default=1)
        out[pos:pos + 1] = [(size // inner, stride * inner), (inner, stride)]
        return _factor(out, elem_bytes, limits) if len(out) <= 8 else out
    return out


def _check_op(offset, loops, elem_bytes, limits, operand):
    def fail(rule):
        pattern = f"sizes {[s for s, _ in loops]} strides {[t for _, t in loops]} offset {offset}"
        raise LayoutError(f"'{operand}': DMA pattern {pattern} breaks the {limits.name} rule: {rule}",
                          valid=f"limits from {limits.source}" if limits.source else None)
    wb = limits.word_bytes
    (s3, _), (s1, t1), (s0, t0) = loops[0], loops[-2], loops[-1]
    if s3 > limits.repeat:
        fail(f"outermost (repeat) size {s3} > {limits.repeat}")
    for size, stride in loops[1:]:
        if size > 1 and stride == 0:
            fail(f"stride 0 on an inner dimension (size {size}): only the outermost dimension repeats")
    if t1 and s1 > limits.inner_sizes:
        fail(f"size of dimension 1 is {s1} > {limits.inner_sizes}")
    if s0 * elem_bytes % wb:
        fail(f"innermost transfer {s0} x {elem_bytes} bytes is not a multiple of {wb} bytes")
    if t0 and s0 * elem_bytes // wb > limits.inner_sizes:
        fail(f"innermost size {s0 * elem_bytes // wb} words > {limits.inner_sizes}")
    if elem_bytes < wb and s0 > 1 and t0 != 1:
        fail(f"innermost stride must be 1 for {elem_bytes}-byte elements, got {t0}")
    for _, t in loops[:-1]:
        if t * elem_bytes % wb:
            fail(f"stride {t} x {elem_bytes} bytes is not a multiple of {wb} bytes")
        if t * elem_bytes // wb > limits.stride:
            fail(f"stride {t * elem_bytes // wb} words > {limits.stride}")
    if offset * elem_bytes % wb:
        fail(f"offset {offset} x {elem_bytes} bytes is not {wb}-byte aligned")


def check_dma(layout: Layout, dtype: str, operand: str, limits: DmaLimits) -> None:
    """Spec-time check of a layout against a target's DMA: its levels, merged, must fit
    in `limits.dims` dimensions with strides in range (sizes are checked per transfer at
    render time, when the tiles are known)."""
    loops = merge_loops(whole_loops(layout))
    eb = nbytes(dtype)
    if len(loops) > limits.dims:
        raise LayoutError(f"layout of '{operand}' needs {len(loops)} DMA dimensions after merging "
                          f"({[list(x) for x in loops]}), the {limits.name} has {limits.dims}",
                          valid=f"at most {limits.dims} (size, stride) levels that do not merge")
    for i, (_size, stride) in enumerate(loops):
        inner_unit = i == len(loops) - 1 and stride == 1
        if (stride * eb % limits.word_bytes and not inner_unit) or stride * eb // limits.word_bytes > limits.stride:
            raise LayoutError(f"layout of '{operand}' has stride {stride} ({stride * eb} bytes): the {limits.name} "
                              f"needs strides that are multiples of {limits.word_bytes} bytes and <= "
                              f"{limits.stride} words")
