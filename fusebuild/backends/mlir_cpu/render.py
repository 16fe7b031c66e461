"""mlir-cpu's renderer: a fused graph -> the context of templates/mlir/kernel.mlir.j2.

Each fused group (graph.fuse) is a `linalg.matmul` (transposed B through its indexing
maps) followed by one `linalg.generic` holding the whole epilogue, or a lone
`linalg.generic` for an elementwise group; a plain GEMM stores its accumulator with no
generic at all. An input with a layout arrives as a flat buffer and is unpacked
(expand_shape, transpose, collapse_shape) from the same ir.layouts.Layout the other
backends use.

A dynamic dimension (ir/symbols.py) is `?` in its tensor type; its size is read once at
the top of `main` from the first input that has it (`%M.dim = tensor.dim %x, %M.axis`) and
passed to every `tensor.empty` of that shape, so one module takes any M (IREE compiles
dynamic shapes).

Names (`ssa`): a tensor is `%<name>`, and every value the renderer makes is `%<name>.<role>`,
named after the tensor or parameter it is made from (`%y.acc`, `%y.empty`, `%w.packed`,
`%M.dim`; in a linalg.generic body `%x.in`, `%y.acc.in`, `%y.out`, `%y.v0`). Spec names never
contain a dot, so a spec name (`acc`, `y_acc`, `in_x`, `v0`, `c0`) cannot meet a generated
one, and no two generated names share a (name, role) pair (MLIR would reject a body value
redefining a name of the enclosing function).
"""
from __future__ import annotations

from ...errors import ToolchainError
from ...ir.dtypes import DTYPES
from ...ir.graph import broadcast_index, fold, fuse
from ..text import group_comment, header
from .hints import TILE_HINTS


def elem(dtype: str) -> str:
    return DTYPES[dtype].short


def ttype(shape, dtype, symbols=()) -> str:
    dims = [str(n) if not symbols or symbols[d] is None else "?" for d, n in enumerate(shape)]
    return f"tensor<{'x'.join(dims)}x{elem(dtype)}>"


def vtype(x) -> str:
    return ttype(x.shape, x.dtype, x.symbols)


def ssa(name: str, *role: str) -> str:
    """`%y` (a tensor), `%y.acc.empty` (a value made from it): the one way a tensor or parameter
    name reaches the MLIR text as an SSA name."""
    return "%" + ".".join((name, *role))


def size_var(param: str) -> str:
    return ssa(param, "dim")


def empty_sizes(symbols) -> str:
    """The dynamic sizes `tensor.empty` needs, in dimension order: `%M.dim`."""
    return ", ".join(size_var(s) for s in symbols if s is not None)


class GenericBody:
    """The operands and body lines of one group's `linalg.generic`, filled while the
    group's expression tree is folded (graph.fold)."""

    def __init__(self, out: str, dims: list, opmacros, ty: str):
        self.out, self.dims, self.ops, self.ty = out, dims, opmacros, ty
        self.ins, self.body, self.loaded, self.count = [], [], {}, 0

    def operand(self, value, tensor_type, element, index) -> str:
        """Add input `value` (an SSA name) to the generic; its block argument is `<value>.in`."""
        dims, arg = ", ".join(self.dims), value + ".in"
        self.ins.append({"value": value, "type": tensor_type, "arg": f"{arg}: {element}",
                         "map": f"affine_map<({dims}) -> ({', '.join(index)})>"})
        return arg

    def load(self, x) -> str:
        if x.name not in self.loaded:
            self.loaded[x.name] = self.operand(ssa(x.name), vtype(x), elem(x.dtype),
                                               broadcast_index(x.shape, self.dims))
        return self.loaded[x.name]

    def call(self, op, args, attrs) -> str:
        res = ssa(self.out, f"v{self.count}")
        self.count += 1
        text = str(getattr(self.ops, op)(res, *args, ty=self.ty, **attrs))
        self.body.extend(line.strip() for line in text.split("\n") if line.strip())
        return res

    def context(self, result) -> dict:
        dims = ", ".join(self.dims)
        return {"ins": self.ins, "out_map": f"affine_map<({dims}) -> ({dims})>",
                "out_arg": f"{ssa(self.out, 'out')}: {self.ty}",
                "iterators": ", ".join(['"parallel"'] * len(self.dims)), "body": self.body, "result": result}


class MlirRenderer:
    def __init__(self, job, opmacros):
        self.job, self.g, self.t, self.ops = job, job.graph, job.graph.tensors, opmacros

    def group(self, g) -> dict:
        out = self.t[g.output]
        dims = [f"d{i}" for i in range(len(out.shape))]
        item = {"out": g.output, "type": vtype(out), "elem": elem(out.dtype), "dims": ", ".join(dims),
                "comment": group_comment(g), "sizes": empty_sizes(out.symbols)}
        body = GenericBody(g.output, dims, self.ops, elem(out.dtype))
        acc = None
        if g.matmul is not None:
            a, b = g.matmul.inputs
            acc_dtype = g.matmul.attr["acc_dtype"]
            item.update(template="gemm.j2", attrs=compilation_info(self.job.hints), a=ssa(a), a_type=vtype(self.t[a]),
                        b=ssa(b), b_type=vtype(self.t[b]),
                        acc=ssa(g.output, "acc"), acc_type=ttype(out.shape, acc_dtype, out.symbols),
                        acc_elem=elem(acc_dtype),
                        b_map="(d0, d1, d2) -> (d1, d2)" if g.matmul.attr["transpose_b"] else
                              "(d0, d1, d2) -> (d2, d1)")

            def acc():
                return body.operand(item["acc"], item["acc_type"], item["acc_elem"], dims)
        else:
            item.update(template="elementwise.j2")
        result = fold(g.expr, acc, lambda name: body.load(self.t[name]), body.call)
        item["epilogue"] = None if not body.body and g.matmul is not None else body.context(result)
        return item

    def sizes(self) -> list:
        """Where each dynamic size is read from: the first input with that dimension."""
        out = []
        for p in self.g.dynamic:
            name, d = next((n, self.t[n].symbols.index(p)) for n in self.g.inputs if p in self.t[n].symbols)
            out.append({"var": size_var(p), "axis": ssa(p, "axis"), "tensor": ssa(name), "dim": d,
                        "type": vtype(self.t[name]),
                        "param": p, "range": list(self.g.dynamic[p])})
        return out

    def function(self, name="main", private=False) -> dict:
        """The context of one func.func (templates/mlir/function.j2) computing the graph."""
        g, t = self.g, self.t
        return {"name": name, "visibility": "private " if private else "",
                "args": [arg(n, t[n]) for n in g.inputs],
                "results": [vtype(t[n]) for n in g.outputs], "returns": [ssa(n) for n in g.outputs],
                "unpacks": [unpack(n, t[n]) for n in g.inputs if t[n].layout is not None],
                "sizes": self.sizes(), "groups": [self.group(grp) for grp in fuse(g)]}

    def context(self) -> dict:
        """One function `main`; for a dynamic M whose graph is row-wise, `main` splits M
        into powers of two and calls the graph compiled at each (rows.py)."""
        from .rows import row_param, split_main
        param = row_param(self.g)
        if param is None:
            return dict(header(self.job, "mlir-cpu"), functions=[self.function()], rows=None, ssa=ssa)
        funcs, rows = split_main(self.job, param, type(self), self.ops)
        return dict(header(self.job, "mlir-cpu"), functions=funcs, rows=rows, ssa=ssa)


def arg(name, x) -> str:
    """`%x: tensor<...>`, or `%w.packed: tensor<N>` for an input with a layout (unpacked into `%w`)."""
    if x.layout is not None:
        return f"{ssa(name, 'packed')}: {ttype(x.memory_shape, x.dtype)}"
    return f"{ssa(name)}: {vtype(x)}"

def _levels(x) -> tuple:
    """(levels, levels by decreasing stride): (stride, bound, dimension, level) of a layout."""
    levels = [(stride, bound, d, j) for d, lv in enumerate(x.layout.dims)
              for j, (stride, bound) in enumerate(lv) if bound > 1]
    for d in range(x.layout.rank):
        if not any(lv[2] == d for lv in levels):
            levels.append((0, 1, d, 0))            # a dimension of size 1 still needs a place
    return levels, sorted(levels, key=lambda lv: -lv[0])


def mixed_radix_problem(name, x):
    """(message, valid) if the layout of input `name` is not a mixed-radix split of its
    buffer (what `unpack` can render), else None. Pure: the load-time check uses it too."""
    radix = 1
    for stride, bound, _, _ in reversed(_levels(x)[1]):
        if bound > 1 and stride != radix:
            return ((f"mlir-cpu renders layouts whose tile levels are a mixed-radix split of the buffer; the layout "
                     f"of '{name}' ({x.layout.form}) is not"),
                    "row_major, col_major, {tiled: [r, s]}, or dims with strides that are products of inner bounds")
        radix *= bound
    return None


def compilation_info(hints: dict) -> str:
    """The `{compilation_info = ...}` attribute the tile hints ask for ('' if none is set):
    IREE's CPUDoubleTilingExpert pipeline with our workgroup, register and reduction tiles."""
    given = {h: hints[h] for h in TILE_HINTS if hints.get(h) is not None}
    if not given:
        return ""
    if len(given) != len(TILE_HINTS):
        raise ToolchainError(f"mlir-cpu tile hints go together: {', '.join(sorted(given))} set, "
                             f"{', '.join(h for h in TILE_HINTS if h not in given)} not",
                             valid=f"all of {', '.join(TILE_HINTS)} in `schedule: {{mlir-cpu: ...}}`, or none")
    dm, dn, vm, vn, vk = (int(given[h]) for h in TILE_HINTS)
    return ("{compilation_info = #iree_codegen.compilation_info<lowering_config = #iree_cpu.lowering_config<"
            f"distribution = [{dm}, {dn}, 0], vector_common_parallel = [{vm}, {vn}, 0], "
            f"vector_reduction = [0, 0, {vk}]>, translation_info = #iree_codegen.translation_info<"
            "pipeline = #iree_cpu.pipeline<DoubleTilingExpert>>>} ")


def unpack(name, x) -> dict:
    """How a laid-out input becomes its logical tensor: the flat buffer is expanded into
    one dimension per tile level (ordered by stride: a mixed-radix number), transposed so
    each tensor dimension's levels are adjacent (outer to inner), and collapsed back.
    This is the packing view of ir.layouts.Layout; IREE cannot tile the equivalent
    floordiv/mod indexing map."""
    problem = mixed_radix_problem(name, x)
    if problem:
        raise ToolchainError(problem[0], valid=problem[1])
    levels, by_stride = _levels(x)
    logical = sorted(levels, key=lambda lv: (lv[2], lv[1] == 1 and lv[0] == 0, lv[3]))
    expanded = [lv[1] for lv in by_stride]
    groups, k = [], 0
    for d in range(x.layout.rank):
        n = sum(1 for lv in logical if lv[2] == d)
        groups.append(list(range(k, k + n)))
        k += n
    return {"name": name, "packed": ttype(x.memory_shape, x.dtype), "type": vtype(x),
            "expanded": ttype(expanded, x.dtype), "expanded_shape": expanded,
            "transposed": ttype([lv[1] for lv in logical], x.dtype),
            "permutation": [by_stride.index(lv) for lv in logical], "groups": groups,
            "form": x.layout.form}
