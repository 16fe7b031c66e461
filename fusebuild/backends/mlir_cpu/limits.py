"""mlir-cpu's load-time limits (TargetInfo.load_check): what its renderer refuses.

Operand layouts are rendered as packing ops (expand_shape, transpose, collapse_shape:
render.unpack), which exist only for layouts whose tile levels are a mixed-radix split of
the flat buffer (row_major, col_major, {tiled: [r, s]}, and dims whose strides are products
of inner bounds). Other layouts are refused here, naming the input.
"""
from __future__ import annotations

from ..limits import Limit


def check(graph, hints: dict) -> list:
    from .render import mixed_radix_problem
    out = []
    for name in graph.inputs:
        x = graph.tensors[name]
        if x.layout is not None:
            problem = mixed_radix_problem(name, x)
            if problem:
                out.append(Limit(*problem, input=name))
    return out
