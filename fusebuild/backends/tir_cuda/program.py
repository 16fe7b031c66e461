"""What tir-cuda renders for a graph: its launches, their shapes, the kernel parameters. Pure.

From graph.fuse()'s groups (the backend never re-derives fusion):
  one matmul group      [("gemm", g)]: GEMM with its epilogue on the fp32 accumulator
  SwiGLU                [("dual", g1, g2)]: two matmul groups sharing A (and K) where the second
                        group's epilogue reads the first's output and nothing else does: ONE
                        kernel with two accumulators
  a chain               either of those, then [("down", g), ...]: each a GEMM of the result
                        before it (SwiGLU's down projection; a GELU MLP's fc1 -> fc2), which
                        lives in a workspace between the launches
Anything else is refused (UnsupportedGraph) with the fused groups shown: elementwise work no
matmul absorbs, two matmuls that are neither SwiGLU nor a chain, an intermediate that is also an
output or that an epilogue reads.

`launches` gives each launch's kind and M x N x K (what tiles.py chooses configs for);
`check(graph, hints)` runs recognition and every launch's hint check without rendering, so a
spec's load (`fusebuild check`) finds what render would refuse.
"""
from __future__ import annotations

from ...errors import FusebuildError
from ...ir.graph import fuse
from .tiles import Problem, buckets, check_hints

DTYPES = ("bfloat16", "float16")
MAX_LAUNCHES = 8            # GEMM launches of one artifact (a chain of that many matmul groups)


class UnsupportedGraph(FusebuildError):
    """A graph the tir-cuda target cannot render."""


def recognize(graph) -> list:
    """[("gemm", group)] or [("dual", g1, g2)], then [("down", group), ...]; else UnsupportedGraph."""
    groups = fuse(graph)
    shown = "; ".join(f"{g.output} = " + (f"matmul({', '.join(g.matmul.inputs)})" if g.matmul else "elementwise")
                      + (f" + {len(g.nodes) - 1} fused op(s)" if len(g.nodes) > 1 else "") for g in groups)
    valid = ("a chain of matmuls with fused epilogues (each next matmul's A the result before it: an MLP's "
             "fc1 -> fc2), whose first two may be SwiGLU: two matmuls sharing A, the second's epilogue "
             "reading the first")

    def refuse(why):
        raise UnsupportedGraph(f"tir-cuda cannot render this graph: {why} (fused groups: {shown})", valid=valid)

    for name, t in graph.tensors.items():
        if t.layout is not None:
            refuse(f"tensor {name} has a layout ({t.layout.form}); tir-cuda reads row-major tensors only")
        if t.dtype not in DTYPES:
            refuse(f"tensor {name} is {t.dtype}; tir-cuda computes in {' or '.join(DTYPES)}")
    if len({t.dtype for t in graph.tensors.values()}) > 1:
        refuse("mixed dtypes")
    for g in groups:
        if g.matmul is None:
            refuse(f"{g.output} is elementwise work not fused into a matmul's epilogue")
        if g.matmul.inputs[1] not in graph.inputs:
            refuse(f"{g.output}: matmul B ({g.matmul.inputs[1]}) must be a graph input")
        if len(graph.tensors[g.matmul.inputs[0]].shape) != 2:
            refuse(f"{g.output}: matmul A must be 2-D (rows, K)")
    if len(groups) >= 2 and _is_dual(graph, groups[0], groups[1]):
        g1, g2 = groups[0], groups[1]
        _check_reads(graph, g1, refuse, allowed=())
        _check_reads(graph, g2, refuse, allowed=(g1.output,))
        program, rest = [("dual", g1, g2)], groups[2:]
    else:
        _check_reads(graph, groups[0], refuse, allowed=())
        program, rest = [("gemm", groups[0])], groups[1:]
    for g in rest:              # a chain: each next GEMM multiplies the previous result (MLP: fc1 -> fc2)
        prev = program[-1][-1].output
        if g.matmul.inputs[0] != prev:
            refuse(f"{g.output} does not multiply the previous result {prev} (a chain of GEMMs, or SwiGLU, "
                   "each next matmul's A the result before it)")
        if prev in graph.outputs:
            refuse(f"{prev} is a graph output and the A of the next matmul {g.output}")
        if len(graph.consumers(prev)) > 1:
            refuse(f"{prev} is read by more than the next matmul")
        _check_reads(graph, g, refuse, allowed=())
        program.append(("down", g))
    if len(program) > MAX_LAUNCHES:
        refuse(f"{len(program)} GEMM launches (at most {MAX_LAUNCHES})")
    return program


def _is_dual(graph, g1, g2) -> bool:
    a1, a2 = g1.matmul.inputs[0], g2.matmul.inputs[0]
    return (a1 == a2 and a1 in graph.inputs and g1.output in g2.loads() and g1.output not in graph.outputs
            and graph.tensors[g1.output].shape == graph.tensors[g2.output].shape
            and all(n in g2.nodes for n in graph.consumers(g1.output)))


def _check_reads(graph, g, refuse, allowed):
    for name in g.loads():
        if name not in graph.inputs and name not in allowed:
            refuse(f"the epilogue of {g.output} reads the intermediate {name}")


def mnk(graph, step) -> tuple:
    g = step[2] if step[0] == "dual" else step[1]
    m, n = graph.tensors[g.output].shape
    return m, n, graph.tensors[g.matmul.inputs[0]].shape[1]


def launches(graph, program) -> list:
    """[(kind, M, N, K, where)] of the program's GEMM launches (split-K reduces not counted)."""
    out = []
    for step in program:
        where = (f"the dual gate/up kernel of {step[1].output}, {step[2].output}" if step[0] == "dual"
                 else f"matmul {step[1].output}")
        out.append((step[0], *mnk(graph, step), where))
    return out


def m_dims(graph, program) -> dict:
    """{tensor: dim} of every tensor whose dimension `dim` is the GEMMs' M (the rows of x)."""
    if graph.dynamic:           # the spec says which dimensions are the dynamic size: no guessing
        return {name: t.symbols.index(s) for name, t in graph.tensors.items() for s in t.symbols if s is not None}
    m = mnk(graph, program[0])[0]
    dims = {program[0][1].matmul.inputs[0]: 0}
    for step in program:
        for g in step[1:]:
            dims[g.output] = 0
            for name in g.loads():
                shape = graph.tensors[name].shape
                if len(shape) == 2 and shape[0] == m and m != 1:
                    dims[name] = 0
    return dims


def params(graph, program) -> list:
    """Kernel parameters: graph inputs, workspaces (+ read aliases), graph outputs."""
    t = graph.tensors
    ps = [{"name": f"t_{n}", "role": "input", "tensor": n, "shape": list(t[n].shape), "dtype": t[n].dtype,
           "comment": f"input {n}"} for n in graph.inputs]
    for i, step in enumerate(program[1:], 1):
        h = step[1].matmul.inputs[0]
        # One TMA descriptor per buffer per prim_func (TileLang 0.1.15): the launch that
        # reads h gets its own parameter (same pointer, passed twice by the loader).
        ps.append({"name": f"ws_{h}", "role": "workspace", "tensor": h, "shape": list(t[h].shape),
                   "dtype": t[h].dtype, "comment": f"workspace: {h}, written by launch {i}"})
        ps.append({"name": f"ws_{h}_in", "role": "alias", "alias_of": f"ws_{h}", "alias_of_tensor": h,
                   "tensor": h, "shape": list(t[h].shape), "dtype": t[h].dtype,
                   "comment": f"the same buffer as ws_{h}, read by the next launch"})
    ps += [{"name": f"t_{n}", "role": "output", "tensor": n, "shape": list(t[n].shape), "dtype": t[n].dtype,
            "comment": f"output {n}"} for n in graph.outputs]
    return ps


def check(graph, hints: dict) -> list:
    """Problems tir-cuda would hit rendering `graph` with `hints` (empty: it renders). Pure, cheap."""
    try:
        program = recognize(graph)
    except UnsupportedGraph as err:
        return [Problem(None, err.message, err.valid or "")]
    ranges = list(graph.dynamic.values()) if graph.dynamic else []
    # a dynamic M renders one kernel per M bucket, each with the config of the bucket's M: check them all
    ms = sorted({rep for lo, hi in ranges[:1] for _, _, rep in buckets(lo, hi)}) or [None]
    out, seen = [], set()
    for rep in ms:
        for kind, m, n, k, where in launches(graph, program):
            m = m if rep is None else rep
            for p in check_hints(kind, m, n, k, hints):
                text = f"{where} ({m}x{n}x{k}{'' if rep is None else ', the M bucket of ' + str(m)}): {p.message}"
                if (p.hint, p.message) not in seen:
                    seen.add((p.hint, p.message))
                    out.append(Problem(p.hint, text, p.valid))
    return out
