"""tir-cpu's renderer: a fused graph -> the context of templates/tir/kernel.py.j2.

One `main` PrimFunc: inputs and outputs as buffers (flat when a layout reorders them),
intermediates as scratch buffers, and per fused group either a GEMM (a `<out>_matmul`
reduction block into `<out>_acc`, then a `<out>_epilogue` block storing the epilogue
expression) or an elementwise block `<out>_ew`. An input with a layout is first copied
into a row-major scratch buffer by its own elementwise block: the GEMM schedule packs B
itself and needs an einsum-shaped matmul block (flat index arithmetic inside it is not one).

`plan` is what the scheduler needs (block names, M/N/K, hints); it goes to plan.json.
"""
from __future__ import annotations

from ...ir.graph import broadcast_index, fold, fuse
from ..text import group_comment, header, shape_tuple


class TirRenderer:
    def __init__(self, job, opmacros):
        self.job, self.g, self.t = job, job.graph, job.graph.tensors
        self.ops = opmacros
        self.allocs = [self.t[g.output] for g in fuse(self.g) if g.output not in self.g.outputs]
        self.unpacked = {n: _fresh(f"{n}_rm", self.t) for n in self.g.inputs if self.t[n].layout is not None}
        self.groups, self.gemms, self.ew_blocks = [], [], []

    # --- text of one buffer access ----------------------------------------------------
    def access(self, name, idx, raw=False) -> str:
        x = self.t[name]
        if name in self.unpacked and not raw:
            return f"{self.unpacked[name]}[{', '.join(idx)}]"
        if x.layout is None:
            return f"{name}[{', '.join(idx)}]"
        terms = [_term(i, div, bound, stride) for d, i in enumerate(idx)
                 for div, bound, stride in x.layout.offset_terms(d)]
        return f"{name}[{' + '.join(terms)}]"

    def store_expr(self, group, out_vars, dtype, acc) -> str:
        """The epilogue (or elementwise) expression a group stores, in TVMScript."""
        def load(name):
            return self.access(name, broadcast_index(self.t[name].shape, out_vars))

        def call(op, args, attrs):
            return str(getattr(self.ops, op)(*args, dt=dtype, **attrs))
        return fold(group.expr, lambda: f"{acc}[vi, vj]", load, call)

    # --- blocks -------------------------------------------------------------------------
    def unpack_block(self, name, logical):
        x = self.t[name]
        self.allocs.append(type(x)(logical, x.shape, x.dtype))
        vars_ = [f"v{d}" for d in range(len(x.shape))]
        self.groups.append(_elementwise(logical, x.shape, f"{logical}[{', '.join(vars_)}]",
                                        self.access(name, vars_, raw=True),
                                        f"{name}: {x.layout.form} layout -> row-major copy"))
        self.ew_blocks.append(f"{logical}_ew")

    def gemm_block(self, g):
        out, mm = self.t[g.output], g.matmul
        a, b = mm.inputs
        m, n = self.t[mm.output].shape
        k = self.t[a].shape[1]
        acc, dt, tb = f"{g.output}_acc", mm.attr["acc_dtype"], mm.attr["transpose_b"]
        store = self.store_expr(g, ["vi", "vj"], dt, acc)
        if out.dtype != dt:
            store = f'T.Cast("{out.dtype}", {store})'
        self.groups.append({"template": "gemm.j2", "out": g.output, "store_to": self.access(g.output, ["vi", "vj"]),
                            "store": store, "comment": group_comment(g), "m": m, "n": n, "k": k, "acc": acc,
                            "acc_dtype": dt, "a": self.access(a, ["vi", "vk"]),
                            "b": self.access(b, ["vj", "vk"] if tb else ["vk", "vj"])})
        self.allocs.append(type(out)(acc, (m, n), dt))
        self.gemms.append({"matmul_block": f"{g.output}_matmul", "epilogue_block": f"{g.output}_epilogue",
                           "m": m, "n": n, "k": k, "transpose_b": tb})

    def elementwise_block(self, g):
        out = self.t[g.output]
        out_vars = [f"v{d}" for d in range(len(out.shape))]
        store = self.store_expr(g, out_vars, out.dtype, None)
        self.groups.append(_elementwise(g.output, out.shape, self.access(g.output, out_vars), store,
                                        group_comment(g)))
        self.ew_blocks.append(f"{g.output}_ew")

    def context(self) -> tuple:
        """(template context, scheduler plan)."""
        for name, logical in self.unpacked.items():
            self.unpack_block(name, logical)
        for g in fuse(self.g):
            (self.gemm_block if g.matmul is not None else self.elementwise_block)(g)
        args = [self.t[n] for n in self.g.inputs] + [self.t[n] for n in self.g.outputs]
        ctx = dict(header(self.job, "tir-cpu"), args=[_decl(x) for x in args],
                   allocs=[_decl(x) for x in self.allocs], groups=self.groups)
        plan = {"gemms": self.gemms, "elementwise_blocks": self.ew_blocks, "hints": self.job.hints,
                "args": [x.name for x in args]}
        return ctx, plan


def _decl(x) -> dict:
    return {"name": x.name, "shape": shape_tuple(x.memory_shape), "dtype": x.dtype}


def _elementwise(out: str, shape, store_to: str, store: str, comment: str) -> dict:
    loops = [f"i{d}" for d in range(len(shape))]
    return {"template": "elementwise.j2", "out": out, "store_to": store_to, "store": store, "comment": comment,
            "loops": loops, "extents": [str(s) for s in shape],
            "axes": list(zip([f"v{d}" for d in range(len(shape))], loops, shape))}


def _fresh(name: str, taken) -> str:
    while name in taken:
        name += "_"
    return name


def _term(var, div, bound, stride) -> str:
    if bound == 1:
        return "0"
    text = var if div == 1 else f"{var} // {div}"
    return f"({text} % {bound}) * {stride}"
