"""Graph IR and fusion.

A variant of a spec lowers to a `Graph`: typed tensors and primitive nodes in
topological order (a matmul's `epilogue:` list is sugar for elementwise nodes after it).

`fuse(graph)` groups the nodes into kernels: a matmul plus the chain of elementwise
nodes that consume its result (each intermediate used once, not a graph output) becomes
one `Group` whose stored value is an expression tree over the accumulator (`Acc`) and
other tensors (`Load`). Backends render groups; they never re-derive fusion.

Dynamic dimensions (ir/symbols.py): a dimension may equal a dynamic parameter such as M,
declared with a range [lo, hi]. `Tensor.symbols` names it per dimension (None: static) and
`Tensor.shape` holds `hi` there; `Graph.ranges` holds the ranges (`Graph.dynamic` as a
dict). `Graph.specialize({M: 77})` gives the static graph of one size, which is what a
reference is computed on and what a static build of that size would be.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..hashing import digest as _digest
from .ops import OPS


@dataclass(frozen=True)
class Tensor:
    name: str
    shape: tuple
    dtype: str
    layout: object = None  # layouts.Layout or None (row-major)
    symbols: tuple = ()    # per dimension: the dynamic parameter it equals (shape holds its hi), else None

    def __post_init__(self):
        if len(self.symbols) != len(self.shape):
            if self.symbols:
                raise ValueError(f"tensor {self.name}: {len(self.symbols)} symbols for {len(self.shape)} dimensions")
            object.__setattr__(self, "symbols", (None,) * len(self.shape))

    @property
    def dynamic(self) -> bool:
        return any(s is not None for s in self.symbols)

    @property
    def memory_shape(self) -> tuple:
        """Shape of the buffer in memory: flat when a layout reorders elements."""
        return (self.layout.size,) if self.layout is not None else self.shape


@dataclass(frozen=True)
class Node:
    op: str
    inputs: tuple
    output: str
    attrs: tuple = ()      # sorted (name, value) pairs: hashable and canonical
    line: int = 0          # spec line, for messages

    @property
    def attr(self) -> dict:
        return dict(self.attrs)


@dataclass(frozen=True)
class Graph:
    tensors: dict          # name -> Tensor (inputs, intermediates, outputs)
    inputs: tuple          # graph input names, in spec order
    nodes: tuple           # Node, topological order
    outputs: tuple
    ranges: tuple = ()     # ((param, lo, hi), ...) of the dynamic parameters its tensors use, sorted

    @property
    def dynamic(self) -> dict:
        """{param: (lo, hi)}: empty for a static graph."""
        return {p: (lo, hi) for p, lo, hi in self.ranges}

    def specialize(self, values: dict) -> Graph:
        """The static graph at one value of each dynamic parameter (keys that are not
        dynamic here are ignored). Raises ValueError for a missing or out-of-range value."""
        for p, (lo, hi) in self.dynamic.items():
            v = values.get(p)
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                raise ValueError(f"{p}={v!r} is not in its range [{lo}, {hi}]")
        tensors = {}
        for name, t in self.tensors.items():
            shape = tuple(values[s] if s is not None else n for n, s in zip(t.shape, t.symbols))
            tensors[name] = Tensor(t.name, shape, t.dtype, t.layout)
        return Graph(tensors, self.inputs, self.nodes, self.outputs)

    def consumers(self, name: str) -> list:
        return [n for n in self.nodes if name in n.inputs]

    def subgraph(self, node: Node) -> Graph:
        """The one-node graph used by separate/compare modes."""
        ins = tuple(dict.fromkeys(node.inputs))
        keep = {n: self.tensors[n] for n in (*ins, node.output)}
        used = {s for t in keep.values() for s in t.symbols}
        return Graph(keep, ins, (node,), (node.output,), tuple(r for r in self.ranges if r[0] in used))

    def canonical(self) -> dict:
        """Everything that defines the computation, as plain JSON data (for cache keys)."""
        def t(x: Tensor):
            out = {"shape": list(x.shape), "dtype": x.dtype,
                   "layout": x.layout.canonical() if x.layout is not None else None}
            if x.dynamic:        # only then: static graphs keep the digests they always had
                out["symbols"] = list(x.symbols)
            return out
        out = {"tensors": {k: t(v) for k, v in sorted(self.tensors.items())},
               "inputs": list(self.inputs), "outputs": list(self.outputs),
               "nodes": [{"op": n.op, "inputs": list(n.inputs), "output": n.output,
                          "attrs": [list(a) for a in n.attrs]} for n in self.nodes]}
        if self.ranges:
            out["dynamic"] = {p: [lo, hi] for p, lo, hi in self.ranges}
        return out

    def digest(self) -> str:
        return _digest(self.canonical())


# --- expressions stored by a fused group ------------------------------------------------

@dataclass(frozen=True)
class Acc:
    """The matmul accumulator at the current output index."""


@dataclass(frozen=True)
class Load:
    tensor: str            # broadcast to the group's output index (right-aligned)


@dataclass(frozen=True)
class Call:
    op: str
    args: tuple
    attrs: tuple = ()


@dataclass(frozen=True)
class Group:
    output: str
    matmul: Node | None
    expr: object           # Acc | Load | Call
    nodes: tuple = field(default=())

    def loads(self) -> list:
        """Tensors read by the epilogue expression, in first-use order."""
        found = []

        def walk(e):
            if isinstance(e, Load) and e.tensor not in found:
                found.append(e.tensor)
            elif isinstance(e, Call):
                for a in e.args:
                    walk(a)
        walk(self.expr)
        return found


def fuse(graph: Graph) -> tuple:
    """Group nodes into fused kernels (see module doc). Returns groups in execution order."""
    groups: list[Group] = []
    owner: dict[str, int] = {}          # tensor -> index of the group that produces it
    for node in graph.nodes:
        op = OPS[node.op]
        if op.elementwise:
            target = _fusable_into(graph, node, groups, owner)
            if target is not None:
                g = groups[target]
                args = tuple(g.expr if i == g.output else Load(i) for i in node.inputs)
                groups[target] = Group(node.output, g.matmul, Call(node.op, args, node.attrs), g.nodes + (node,))
                del owner[g.output]
                owner[node.output] = target
                continue
            expr = Call(node.op, tuple(Load(i) for i in node.inputs), node.attrs)
            groups.append(Group(node.output, None, expr, (node,)))
        else:
            groups.append(Group(node.output, node, Acc(), (node,)))
        owner[node.output] = len(groups) - 1
    return tuple(groups)


def _fusable_into(graph: Graph, node: Node, groups: list, owner: dict):
    """Index of the latest group this elementwise node can be appended to, or None."""
    out_shape = graph.tensors[node.output].shape
    candidates = sorted({owner[i] for i in node.inputs if i in owner}, reverse=True)
    for gi in candidates:
        g = groups[gi]
        if graph.tensors[g.output].shape != out_shape or g.output in graph.outputs:
            continue
        if len(graph.consumers(g.output)) != 1 or node.inputs.count(g.output) != 1:
            continue
        # every other operand must already be materialized before group gi runs
        others = [i for i in node.inputs if i != g.output]
        if all(i not in owner or owner[i] < gi for i in others):
            return gi
    return None


def fold(expr, acc, load, call):
    """Evaluate an epilogue expression bottom-up: acc(), load(tensor), call(op, args, attrs).

    Renderers pass three small functions that return text (or SSA names); the tree
    walk lives here once.
    """
    if isinstance(expr, Acc):
        return acc()
    if isinstance(expr, Load):
        return load(expr.tensor)
    return call(expr.op, [fold(a, acc, load, call) for a in expr.args], dict(expr.attrs))


def broadcast_index(shape: tuple, out_vars: list, zero="0") -> list:
    """Index expressions of a tensor broadcast into an output indexed by out_vars.

    numpy rules, right-aligned: a size-1 dimension is read at `zero`.
    """
    offset = len(out_vars) - len(shape)
    return [zero if n == 1 else out_vars[offset + d] for d, n in enumerate(shape)]
