"""What a target's load-time limits hook returns (TargetInfo.load_check; spec/load.py reports it).

A `Limit` says what the target would refuse and points at what is at fault: a schedule
hint, an input (its layout or shape line), or a graph node (by its output name); with
none of them the spec's `targets` line is reported. Hooks are pure Python over the graph:
no toolchain is imported to answer them.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    message: str
    valid: str = ""
    hint: str | None = None        # schedule hint at fault
    input: str | None = None       # graph input at fault
    node: str | None = None        # graph node at fault (its output name)


def rows_only(graph, target: str) -> list:
    """Problems for targets that take a dynamic size only as the rows (first dimension)
    of every tensor: the symbolic M of a GEMM, its epilogue operands, row vectors."""
    out = []
    for name, t in graph.tensors.items():
        for d, sym in enumerate(t.symbols):
            if sym is not None and d != 0:
                where = {"input": name} if name in graph.inputs else {"node": name}
                out.append(Limit(f"dynamic {sym} is dimension {d} of '{name}' {list(t.shape)}: {target} takes a "
                                 "dynamic size only as the first dimension (the rows) of each tensor",
                                 f"{sym} as the first dimension ([{sym}, K], [{sym}, N], [{sym}])", **where))
                return out
    return out
