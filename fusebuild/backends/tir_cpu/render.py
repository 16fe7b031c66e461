"""tir-cpu's renderer: a fused graph -> the context of templates/tir/kernel.py.j2.

One `main` PrimFunc: inputs and outputs as buffers (flat when a layout reorders them),
intermediates as scratch buffers, and per fused group either a GEMM (a `<out>_matmul`
reduction block into `acc_<out>`, then a `<out>_epilogue` block storing the epilogue
expression) or an elementwise block `<out>_ew`. An input with a layout is first copied
into a row-major scratch buffer `rm_<in>` by its own elementwise block `<in>.rm_ew`: the
GEMM schedule packs B itself and needs an einsum-shaped matmul block (flat index arithmetic
inside it is not one). For the same reason a matmul whose two operands are one tensor
(x @ x^T) reads B from a copy `b_<out>` (block `<out>.b_ew`): a block reading one buffer at
two indices has one merged read region, which is not an einsum.

Names: a tensor's buffer is `t_<name>` (`buffer`: the one way a tensor name becomes a
TVMScript variable), so a spec name (`lambda`, `T`, `i`, `vi`, `acc_y`) never meets a
Python keyword, the TVMScript module `T`, a loop or axis variable (`i`, `vi`, `i0`, `v0`),
a size variable (`dim_M`), a handle (`var_<name>`) or a scratch buffer (`<kind>_<name>`,
kind acc, rm, b; `rows_<...>` in a rows branch), none of which starts with `t_`. A block is
`<base>_<role>` (role matmul, epilogue or ew; templates write the role): the base of a
group's blocks is its output's name, any other base has a dot, which names never have
(`w.rm`, `y.b`, and `.rows` in a rows branch: `y.rows_matmul`), so two blocks never share a name.

Dynamic sizes (ir/symbols.py): a dimension equal to a dynamic parameter M is the
symbolic `dim_M` (`dim_M = T.int32()`; buffers with it are `T.match_buffer`ed from
handles), so one compiled function takes any M. When the range of M straddles the
GEMV threshold (tiling.gemv_below: the static rule's small-M path), the body is
rendered twice under `if dim_M < threshold: ... else: ...`: a rows branch (scratch
`rows_<...>`, blocks `<...>.rows_<role>`, scheduled as GEMV) and a tiles branch (scheduled
as tiled GEMM): the dispatch a static build makes at compile time happens at run time.

`plan` is what the scheduler needs (block names, M/N/K, which M is dynamic, the branch
of each block, hints); it goes to plan.json.
"""
from __future__ import annotations

from ...ir.graph import broadcast_index, fold, fuse
from ..text import group_comment, header
from .tiling import gemv_below


def buffer(tensor: str) -> str:
    """The TVMScript variable of a tensor's buffer: every tensor name reaches kernel.py as code
    through here (see the module docstring for the names it cannot collide with)."""
    return f"t_{tensor}"


def size_var(param: str) -> str:
    """The TVMScript variable of a dynamic parameter (prefixed: a param named `i` or `T`
    must not shadow loop variables or the TVMScript module)."""
    return f"dim_{param}"


class TirRenderer:
    def __init__(self, job, opmacros):
        self.job, self.g, self.t = job, job.graph, job.graph.tensors
        self.ops = opmacros
        self.args = [self.t[n] for n in self.g.inputs] + [self.t[n] for n in self.g.outputs]
        self.unpacked = [n for n in self.g.inputs if self.t[n].layout is not None]
        self.allocs, self.groups, self.gemms, self.ew_blocks = [], [], [], []
        self.rows, self.scratch = False, {}

    # --- names ---------------------------------------------------------------------------
    def name(self, tensor: str) -> str:
        """A tensor's buffer in the branch being rendered (intermediates and row-major copies are per branch)."""
        return self.scratch.get(tensor, buffer(tensor))

    def block(self, tensor: str, *copy: str) -> str:
        """The base of a group's block names (`y`: `y_matmul`, `y_epilogue`, `y_ew`), or of a copy's
        (`w.rm`); `y.rows`, `w.rm.rows` in a rows branch."""
        return ".".join((tensor, *copy, *(("rows",) if self.rows else ())))

    def new_scratch(self, kind: str, tensor: str, shape, dtype, symbols=()) -> str:
        """Allocate scratch buffer `<kind>_<tensor>` (`rows_...` in a rows branch): kind `t` is the
        intermediate tensor itself (`buffer`), `rm`/`b` a copy, `acc` an accumulator (declared in that order)."""
        name = ("rows_" if self.rows else "") + f"{kind}_{tensor}"
        self.allocs.append({"name": name, "shape": _shape(shape, symbols), "dtype": dtype,
                            "order": ("t", "rm", "b", "acc").index(kind)})
        return name

    # --- text of one buffer access -------------------------------------------------------
    def access(self, tensor, idx, raw=False) -> str:
        """`t_x[vi, vk]`: the tensor at logical index `idx`; an input with a layout is read from its
        row-major copy, or (`raw`) from its flat buffer."""
        x = self.t[tensor]
        if x.layout is None or (tensor in self.unpacked and not raw):
            return f"{self.name(tensor)}[{', '.join(idx)}]"
        terms = [_term(i, div, bound, stride) for d, i in enumerate(idx)
                 for div, bound, stride in x.layout.offset_terms(d)]
        return f"{buffer(tensor)}[{' + '.join(terms)}]"

    def store_expr(self, group, out_vars, dtype, acc) -> str:
        """The epilogue (or elementwise) expression a group stores, in TVMScript."""
        def load(name):
            return self.access(name, broadcast_index(self.t[name].shape, out_vars))

        def call(op, args, attrs):
            return str(getattr(self.ops, op)(*args, dt=dtype, **attrs))
        return fold(group.expr, lambda: f"{acc}[vi, vj]", load, call)

    # --- blocks --------------------------------------------------------------------------
    def copy_block(self, tensor, kind, owner, raw, comment):
        """An elementwise copy of `tensor` into scratch `<kind>_<owner>`, block `<owner>.<kind>_ew`."""
        x = self.t[tensor]
        out = self.new_scratch(kind, owner, x.shape, x.dtype, x.symbols)
        vars_ = [f"v{d}" for d in range(len(x.shape))]
        block = self.block(owner, kind)
        self.groups.append(_elementwise(block, _extents(x), f"{out}[{', '.join(vars_)}]",
                                        self.access(tensor, vars_, raw=raw), comment))
        self.ew_blocks.append(f"{block}_ew")
        return out

    def gemm_block(self, g):
        out, mm = self.t[g.output], g.matmul
        a, b = mm.inputs
        m, n = self.t[mm.output].shape
        k = self.t[a].shape[1]
        sym = self.t[mm.output].symbols[0]
        b_text = None
        if a == b:
            b_copy = self.copy_block(a, "b", g.output, False,
                                     f"{a} read as B from a copy ({mm.output} = {a} @ {a}^T)")
            b_text = f"{b_copy}[{'vj, vk' if mm.attr['transpose_b'] else 'vk, vj'}]"
        dt, tb = mm.attr["acc_dtype"], mm.attr["transpose_b"]
        acc = self.new_scratch("acc", g.output, (m, n), dt, (sym, None))
        store = self.store_expr(g, ["vi", "vj"], dt, acc)
        if out.dtype != dt:
            store = f'T.Cast("{out.dtype}", {store})'
        if g.output not in self.g.outputs:
            self.scratch[g.output] = self.new_scratch("t", g.output, out.shape, out.dtype, out.symbols)
        block = self.block(g.output)
        self.groups.append({"template": "gemm.j2", "out": block, "store_to": self.access(g.output, ["vi", "vj"]),
                            "store": store, "comment": group_comment(g), "m": _size(m, sym), "n": n, "k": k,
                            "acc": acc, "acc_dtype": dt, "a": self.access(a, ["vi", "vk"]),
                            "b": b_text or self.access(b, ["vj", "vk"] if tb else ["vk", "vj"])})
        self.gemms.append({"matmul_block": f"{block}_matmul", "epilogue_block": f"{block}_epilogue",
                           "m": m, "n": n, "k": k, "transpose_b": tb, **({"m_dynamic": sym} if sym else {})})

    def elementwise_block(self, g):
        out = self.t[g.output]
        if g.output not in self.g.outputs:
            self.scratch[g.output] = self.new_scratch("t", g.output, out.shape, out.dtype, out.symbols)
        out_vars = [f"v{d}" for d in range(len(out.shape))]
        store = self.store_expr(g, out_vars, out.dtype, None)
        block = self.block(g.output)
        self.groups.append(_elementwise(block, _extents(out), self.access(g.output, out_vars), store,
                                        group_comment(g)))
        self.ew_blocks.append(f"{block}_ew")

    def branch(self, rows: bool) -> dict:
        """Render every group once; in the `rows` branch, scratch and block names say so."""
        self.rows, self.scratch = rows, {}
        self.groups, self.gemms, self.ew_blocks = [], [], []
        for name in self.unpacked:
            x = self.t[name]
            self.scratch[name] = self.copy_block(name, "rm", name, True,
                                                 f"{name}: {x.layout.form} layout -> row-major copy")
        for g in fuse(self.g):
            (self.gemm_block if g.matmul is not None else self.elementwise_block)(g)
        return {"groups": self.groups, "gemms": self.gemms, "elementwise_blocks": self.ew_blocks}

    def context(self) -> tuple:
        """(template context, scheduler plan)."""
        rows_below = self.rows_threshold()
        extra = {}
        if rows_below is not None:
            param, below = rows_below
            lo, hi = self.g.dynamic[param]
            rows = self.branch(True) if lo < below else None
            tiles = self.branch(False) if hi >= below else None
            if rows and tiles:
                branches = [dict(rows, keyword="if", cond=f"{size_var(param)} < {below}", indent=4),
                            dict(tiles, keyword="else", cond=None, indent=4)]
            else:
                branches = [dict(rows or tiles, keyword=None, cond=None, indent=0)]
            extra["rows"] = {"param": param, "below": below, "gemms": rows["gemms"] if rows else [],
                            "elementwise_blocks": rows["elementwise_blocks"] if rows else []}
            tiles = tiles or {"gemms": [], "elementwise_blocks": []}
        else:
            tiles = self.branch(False)
            branches = [dict(tiles, keyword=None, cond=None, indent=0)]
        plan = {"gemms": tiles["gemms"], "elementwise_blocks": tiles["elementwise_blocks"], "hints": self.job.hints,
                "args": [x.name for x in self.args], **extra}
        if self.g.dynamic:
            plan["dynamic"] = {p: list(r) for p, r in self.g.dynamic.items()}
        dyn = list(self.g.dynamic)
        ctx = dict(header(self.job, "tir-cpu"), args=[_decl(x) for x in self.args],
                   allocs=sorted(self.allocs, key=lambda b: b["order"]),
                   branches=branches, size_vars=[size_var(p) for p in dyn],
                   dynamic=[{"var": size_var(p), "lo": lo, "hi": hi, "param": p}
                            for p, (lo, hi) in self.g.dynamic.items()])
        return ctx, plan

    def rows_threshold(self):
        """(param, threshold) when GEMMs with (N, K) weights have a dynamic M: below the
        threshold the static rule would take the GEMV path, so the kernel dispatches at run
        time (the lowest threshold of those GEMMs: none runs as GEMV where its static twin would not)."""
        hints = {h: int(self.job.hints[h]) for h in ("micro_m", "gemv_max_m")}
        found = []
        for mm in (n for n in self.g.nodes if n.op == "matmul" and n.attr["transpose_b"]):
            sym = self.t[mm.output].symbols[0]
            if sym is not None:
                found.append((sym, gemv_below(hints, self.t[mm.inputs[0]].shape[1])))
        return min(found, key=lambda f: f[1]) if found else None


def _size(n, sym) -> str:
    return size_var(sym) if sym is not None else str(n)


def _shape(shape, symbols=()) -> str:
    """(128, dim_M) / (256,): a Python tuple literal, dynamic dimensions by their variable."""
    symbols = symbols or (None,) * len(shape)
    return "(" + ", ".join(_size(n, s) for n, s in zip(shape, symbols)) + ("," if len(shape) == 1 else "") + ")"


def _extents(x) -> list:
    return [_size(n, s) for n, s in zip(x.shape, x.symbols)]


def _decl(x) -> dict:
    shape = x.memory_shape if x.layout is not None else x.shape
    return {"name": buffer(x.name), "handle": f"var_{x.name}",
            "shape": _shape(shape, x.symbols if x.layout is None else ()), "dtype": x.dtype,
            "dynamic": x.layout is None and x.dynamic}


def _elementwise(out: str, extents: list, store_to: str, store: str, comment: str) -> dict:
    loops = [f"i{d}" for d in range(len(extents))]
    return {"template": "elementwise.j2", "out": out, "store_to": store_to, "store": store, "comment": comment,
            "loops": loops, "extents": extents, "axes": list(zip([f"v{d}" for d in range(len(extents))], loops,
                                                                 extents))}


def _term(var, div, bound, stride) -> str:
    if bound == 1:
        return "0"
    text = var if div == 1 else f"{var} // {div}"
    return f"({text} % {bound}) * {stride}"
