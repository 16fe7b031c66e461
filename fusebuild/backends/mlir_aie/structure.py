"""What an mlir-aie design is made of: the graph read as GEMM groups or one elementwise node.

A fused graph (graph.fuse) maps onto the NPU when it is either
- a chain of GEMM groups, each `out = epilogue(A @ B)` where
    B is a host tensor (the weights),
    A is a host tensor or the output of one earlier group (used by nothing else),
    the epilogue reads host tensors that broadcast along rows ([N], [1, N]), along
    columns ([M, 1]) or a scalar ([1], [1, 1]), and at most one earlier group's
    output of the same shape (a "pair": SwiGLU's silu(gate) read by the up GEMM);
- or one elementwise node (what separate/compare modes build per node), or a chain of
  elementwise nodes that graph.fuse made one group (`relu(x + b)`): the core seeds an
  fp32 accumulator with the chain's full-shape operand and runs the chain on it as
  epilogue steps, reading at most two input tensors (a core has 2 input DMA channels).
Anything else is refused with the reason, at load (fit.py calls `analyze`).

An epilogue operand of the output's full shape ([M, N]) would be a third input
stream into each core (a core has 2 input DMA channels): it is refused in a fused
design; `mode: separate` renders such a node alone.
"""
from __future__ import annotations

from dataclasses import dataclass

from ...errors import FusebuildError
from ...ir.graph import Acc, Call, Load, fuse


class DesignError(FusebuildError):
    """The graph or its tiling does not map onto the NPU; `operand`, when set, is the tensor at
    fault (fit.check points the spec loader at the node that reads it)."""
    operand: str | None = None


@dataclass(frozen=True)
class Step:
    """One epilogue step on the fp32 accumulator: unary op, or binary op with an operand."""
    op: str                 # relu, silu, gelu, sigmoid | add, sub, rsub, mul
    attrs: tuple = ()
    tensor: str = ""        # operand tensor of a binary step
    kind: str = ""          # row | col | scalar | pair


@dataclass(frozen=True)
class Gemm:
    index: int
    out: str
    a: str
    a_src: int | None       # index of the group whose output is A, or None (host)
    b: str
    tb: bool
    M: int
    N: int
    K: int
    steps: tuple            # Step, in order
    pair: int | None        # index of the group whose output the epilogue reads
    out_use: str            # host | A | pair

    @property
    def host_loads(self) -> list:
        return [s for s in self.steps if s.kind in ("row", "col", "scalar")]


@dataclass(frozen=True)
class Elementwise:
    node: object            # the (last) node: its output is the design's output
    shape: tuple            # output, as 2-D (rows, cols)
    kinds: tuple            # per input: full | row | col | scalar
    inputs: tuple = ()      # the input tensors, each once (node.inputs for one node)
    seed: str = ""          # a chain: the full-shape input the accumulator starts from
    steps: tuple = ()       # a chain: Steps on the accumulator (kind full | row | col | scalar)


@dataclass(frozen=True)
class Structure:
    kind: str               # gemm | elementwise
    dtype: str
    groups: tuple = ()      # Gemm
    ew: Elementwise | None = None

    @property
    def M(self) -> int:
        return self.groups[0].M if self.groups else self.ew.shape[0]


def _kind(shape, M, N, name, prefer_full=False):
    """How an operand broadcasts into an [M, N] output: full, row, col or scalar."""
    s = (1,) * (2 - len(shape)) + tuple(shape) if len(shape) <= 2 else None
    if s is None or s[0] not in (1, M) or s[1] not in (1, N):
        raise DesignError(f"'{name}' of shape {list(shape)} is not a row, column or scalar operand of a [{M}, {N}] "
                          f"output")
    if prefer_full and s == (M, N):
        return "full"
    for kind, want in (("row", (1, N)), ("col", (M, 1)), ("scalar", (1, 1))):
        if s == want:
            return kind
    return "full"


def analyze(graph) -> Structure:
    """The design structure of a graph, or DesignError with the reason."""
    t = graph.tensors
    dtypes = {x.dtype for x in t.values()}
    dtype = next(iter(dtypes))
    groups = fuse(graph)
    if len(groups) == 1 and groups[0].matmul is None:
        return Structure("elementwise", dtype, ew=_elementwise(graph, groups[0]))
    if any(g.matmul is None for g in groups):
        bad = next(g for g in groups if g.matmul is None)
        raise DesignError(f"'{bad.output}' is an elementwise step that does not fuse into a GEMM; mlir-aie renders a "
                          f"GEMM chain or one elementwise chain per design",
                          valid="mode: separate (one design per node) or a graph whose elementwise steps follow "
                                "their GEMM")
    produced = {g.output: i for i, g in enumerate(groups)}
    users = {}
    for i, g in enumerate(groups):
        for x in (g.matmul.inputs[0], *g.loads()):
            if x in produced:
                users.setdefault(x, []).append(i)
    out = []
    for i, g in enumerate(groups):
        a, b = g.matmul.inputs
        tb = bool(g.matmul.attr.get("transpose_b"))
        M, K = t[a].shape
        N = t[g.output].shape[1]
        if b in produced:
            raise DesignError(f"'{b}' (an earlier GEMM's output) is the B operand of '{g.output}': not supported",
                              valid="weights (B) that are graph inputs")
        steps, pair = _steps(g.expr, t, M, N, produced, i)
        if a in produced and len(users[a]) > 1:
            raise DesignError(f"'{a}' feeds several GEMMs; an on-array intermediate has one consumer group")
        role = "host"
        if g.output in users:
            if g.output in graph.outputs:
                raise DesignError(f"'{g.output}' is both a graph output and used on the array")
            j = users[g.output][0]
            role = "A" if groups[j].matmul.inputs[0] == g.output else "pair"
        out.append(Gemm(i, g.output, a, produced.get(a), b, tb, M, N, K, tuple(steps), pair, role))
    Ms = {g.M for g in out}
    if len(Ms) != 1:
        raise DesignError(f"GEMMs of different M {sorted(Ms)} in one design")
    for g in out:
        if g.pair is not None and out[g.pair].N != g.N:
            raise DesignError(f"'{g.out}' reads '{out[g.pair].out}' of another width")
    _check_scalars(out, dtype)
    return Structure("gemm", dtype, tuple(out))


def _steps(expr, t, M, N, produced, index):
    """The epilogue as a list of Steps on the accumulator (graph.fuse puts the accumulator
    chain in exactly one argument of every call)."""
    if isinstance(expr, Acc):
        return [], None
    if not isinstance(expr, Call):
        raise DesignError("an epilogue that does not use the GEMM result")
    chain = [i for i, a in enumerate(expr.args) if not isinstance(a, Load)]
    if len(chain) != 1:
        raise DesignError(f"epilogue step {expr.op} does not read the accumulator exactly once")
    steps, pair = _steps(expr.args[chain[0]], t, M, N, produced, index)
    if len(expr.args) == 1:
        return steps + [Step(expr.op, tuple(expr.attrs))], pair
    other = expr.args[1 - chain[0]].tensor
    op = "rsub" if expr.op == "sub" and chain[0] == 1 else expr.op
    if other in produced:
        if pair is not None:
            raise DesignError("an epilogue that reads two on-array tensors")
        return steps + [Step(op, (), other, "pair")], produced[other]
    kind = _kind(t[other].shape, M, N, other)
    if kind == "full":
        err = DesignError(f"epilogue operand '{other}' has the output's full shape [{M}, {N}]: in a fused design "
                          f"it would be a third input stream into each core (a compute tile has 2 input DMA "
                          f"channels)", valid="a row ([N]), column ([M, 1]) or scalar operand, or mode: separate")
        err.operand = other
        raise err
    return steps + [Step(op, (), other, kind)], pair


def _check_scalars(groups, dtype):
    if dtype == "float32":
        return
    for g in groups:
        for s in g.host_loads:
            if s.kind == "scalar":
                raise DesignError(f"scalar operand '{s.tensor}' in {dtype} is 2 bytes; DMAs move whole 32-bit words",
                                  valid="a float32 design, or the operand as a row vector")


def _elementwise(graph, grp) -> Elementwise:
    node = grp.nodes[-1]
    t = graph.tensors
    shape = t[node.output].shape
    if len(shape) > 2:
        raise DesignError(f"elementwise '{node.output}' of rank {len(shape)}: mlir-aie renders rank <= 2")
    R, C = (1, shape[0]) if len(shape) == 1 else shape
    if len(grp.nodes) == 1:
        inputs, seed, steps = tuple(node.inputs), "", ()
    else:
        seed, steps = _chain(grp.expr, t, R, C, node.output)
        inputs = tuple(dict.fromkeys([seed] + [s.tensor for s in steps if s.tensor]))
        if len(inputs) > 2:
            raise DesignError(f"the elementwise chain '{node.output}' ({' -> '.join(n.op for n in grp.nodes)}) reads "
                              f"{len(inputs)} input tensors ({', '.join(inputs)}); its core has 2 input DMA "
                              f"channels", valid="an elementwise chain that reads at most two input tensors")
    kinds = tuple(_kind(t[x].shape, R, C, x, prefer_full=True) for x in inputs)
    if "full" not in kinds:
        raise DesignError(f"elementwise '{node.output}': no operand has the output's shape (an outer product)")
    if graph.tensors[node.output].dtype != "float32" and "scalar" in kinds:
        raise DesignError(f"scalar operand of '{node.output}' in bfloat16 is 2 bytes; DMAs move 32-bit words")
    return Elementwise(node, (R, C), kinds, inputs, seed, steps)


def _chain(expr, t, R, C, out):
    """(seed, steps) of a fused elementwise chain: the innermost node's full-shape operand
    seeds the accumulator, every node then is one Step on it (graph.fuse puts the chain in
    exactly one argument of each later node)."""
    chain = [i for i, a in enumerate(expr.args) if isinstance(a, Call)]
    if not chain:           # the first node: all its arguments are inputs
        names = [a.tensor for a in expr.args]
        kinds = [_kind(t[x].shape, R, C, x, prefer_full=True) for x in names]
        if "full" not in kinds:
            raise DesignError(f"elementwise '{out}': no operand of its first node has the output's shape")
        first = kinds.index("full")
        if len(names) == 1:
            return names[0], (Step(expr.op, tuple(expr.attrs)),)
        other = 1 - first
        op = "rsub" if expr.op == "sub" and first == 1 else expr.op
        return names[first], (Step(op, (), names[other], kinds[other]),)
    if len(chain) != 1 or not all(isinstance(a, (Call, Load)) for a in expr.args):
        raise DesignError(f"elementwise '{out}': step {expr.op} does not read the chain exactly once")
    seed, steps = _chain(expr.args[chain[0]], t, R, C, out)
    if len(expr.args) == 1:
        return seed, steps + (Step(expr.op, tuple(expr.attrs)),)
    other = expr.args[1 - chain[0]].tensor
    op = "rsub" if expr.op == "sub" and chain[0] == 1 else expr.op
    return seed, steps + (Step(op, (), other, _kind(t[other].shape, R, C, other, prefer_full=True)),)
