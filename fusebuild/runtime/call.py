"""Calling an artifact: the one code path from torch tensors to a kernel and back.

Validation (Backend.run of tir-cpu and mlir-cpu) and a loaded op (runtime/op.py) both
run artifacts through `Call`: inputs made contiguous and packed into their operand
layouts, outputs allocated (NaN-filled when `poison`, so an element the kernel never
writes cannot pass validation), the kernel run, layouts unpacked.

A kernel (one per loader module, runtime/targets.py) is built as
`Kernel(folder, signature, manifest, device)` and has:
  allocates_outputs   True: kernel(inputs, None) returns fresh output buffers (IREE);
                      False: kernel(inputs, outputs) writes into the given buffers
  logical             True: it takes and returns tensors in their logical shapes and
                      packs layouts itself (the mlir-aie emulator); False: memory layout
  kernel(inputs, outputs) -> list of output buffers
"""
from __future__ import annotations

import functools
from pathlib import Path

import torch

from .signature import Signature
from .targets import TARGETS


@functools.lru_cache(maxsize=64)
def _layout_index(dims: tuple):
    """Memory offset of each element in row-major order (ir.layouts: one type, cached here
    because packing a weight on every call must not recompute it)."""
    from ..ir.layouts import Layout
    return torch.as_tensor(Layout(dims).offsets())


def _dtype(name: str):
    return getattr(torch, name)


class Call:
    """A prepared call of one kernel for one binding of the signature's dynamic dims."""

    def __init__(self, kernel, signature: Signature, values: dict, device, poison: bool = False):
        self.kernel, self.signature, self.device, self.poison = kernel, signature, device, poison
        self.shapes = signature.output_shapes(values)
        self.dtypes = [_dtype(t.dtype) for t in signature.outputs]
        packs = not getattr(kernel, "logical", False)
        self.in_layouts = [t.layout if packs else None for t in signature.inputs]
        self.out_layouts = [t.layout if packs else None for t in signature.outputs]
        self.plain = not any(self.in_layouts) and not any(self.out_layouts)
        self.alloc = [((int(torch.Size(s).numel()),) if lay is not None else tuple(s), d)   # memory shapes
                      for s, d, lay in zip(self.shapes, self.dtypes, self.out_layouts)]

    def _outputs(self) -> list:
        if self.poison:
            return [torch.full(s, float("nan"), dtype=d, device=self.device) for s, d in self.alloc]
        return [torch.empty(s, dtype=d, device=self.device) for s, d in self.alloc]

    def __call__(self, tensors: list) -> list:
        """tensors: contiguous inputs in spec order, on the kernel's device. Returns outputs."""
        outs = None if self.kernel.allocates_outputs else self._outputs()
        if self.plain:
            return self.kernel(tensors, outs)
        args = [t if lay is None else pack(t, lay) for t, lay in zip(tensors, self.in_layouts)]
        got = self.kernel(args, outs)
        return [b if lay is None else unpack(b, lay, shape)
                for b, lay, shape in zip(got, self.out_layouts, self.shapes)]


def pack(t, dims):
    """A tensor (logical shape) -> the flat buffer of its layout (`dims`, as Layout.dims)."""
    index = _layout_index(dims).to(t.device)
    flat = torch.empty(index.numel(), dtype=t.dtype, device=t.device)
    flat[index] = t.reshape(-1)
    return flat


def unpack(flat, dims, shape):
    return flat[_layout_index(dims).to(flat.device)].reshape(tuple(shape))


def run(target: str, folder, graph, inputs: dict, poison: bool = True) -> dict:
    """Run the artifact in `folder` on `inputs` ({name: tensor}) -> {output: tensor}.

    What Backend.run does for tir-cpu and mlir-cpu (validation), through the same
    kernels and `Call` a loaded op uses."""
    sig = Signature.of_graph(graph)
    tensors = [inputs[n].contiguous() for n in sig.input_names]
    values = sig.bind([t.shape for t in tensors], [str(t.dtype).removeprefix("torch.") for t in tensors])
    kernel = TARGETS[target].kernel_class()(Path(folder), sig, None)
    outs = Call(kernel, sig, values, tensors[0].device, poison)(tensors)
    return dict(zip(sig.output_names, outs))
