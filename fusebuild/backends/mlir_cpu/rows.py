"""mlir-cpu's dynamic M as row splits: `main` runs the graph compiled at powers of two.

IREE compiles dynamic shapes, but its code for a dynamic-M GEMM ran 1.6-1.8x slower than
for the same static GEMM here (1024^3, IREE 3.13: masked tiles, fewer FMAs per
instruction). A graph whose every dynamic dimension is the rows of its tensors (`row_param`)
is row-wise: output rows depend only on the same input rows. Its `main` then takes any M,
writes M in binary (M = sum of powers of two <= hi), and for each set bit slices those rows
of every row input (`tensor.extract_slice`, static size), calls the graph compiled at that
static size (a private function: IREE's static code), and inserts the rows into the outputs
(`scf.if` per bit; offsets accumulate). Outputs of one type start from distinct values (see
`split_main`: IREE would otherwise alias them). M = 1 or 1024 is one call of the static code;
any other M is at most log2(hi) + 1 calls. Other dynamic graphs keep `?` dimensions.

Tile hints (a tuned winner's lowering_config) shape the row functions they fit: one with
fewer rows than the workgroup tile (`dist_m`) keeps IREE's own tiles for its size, since a
tile mostly of padding only slows it (tuning the 1..4096 gemm_bias_silu: a 32-row tile made
the 1-row call 1.4x slower than IREE's choice). So one winner tuned for large M costs small M
nothing.
"""
from __future__ import annotations

import dataclasses

from ..base import part_label
from .hints import TILE_HINTS
from .render import arg, elem, size_var, ssa, ttype, vtype


def row_param(graph):
    """The one dynamic parameter if every dynamic dimension is dimension 0 and every output has it; else None."""
    if len(graph.dynamic) != 1:
        return None
    (param,) = graph.dynamic
    for t in graph.tensors.values():
        if any(s is not None for s in t.symbols[1:]):
            return None
    if not all(graph.tensors[o].symbols[0] == param for o in graph.outputs):
        return None
    return param


def powers(hi: int) -> list:
    """Powers of two <= hi, largest first: the parts any M <= hi splits into."""
    out, p = [], 1
    while p <= hi:
        out.append(p)
        p *= 2
    return out[::-1]


def fitting(hints: dict, rows: int) -> dict:
    """The hints of a row function of `rows` rows: without the tile hints when its rows are
    fewer than the workgroup tile's (IREE then picks the tiles for that size)."""
    if hints.get("dist_m") is None or rows >= hints["dist_m"]:
        return hints
    return {k: v for k, v in hints.items() if k not in TILE_HINTS}


def part_graph(graph, param, rows: int):
    """The graph at `rows` rows. A part may be smaller than the range's minimum (M = 17 is 16 + 1)."""
    whole = dataclasses.replace(graph, ranges=tuple((p, 1 if p == param else lo, hi) for p, lo, hi in graph.ranges))
    return whole.specialize({param: rows})


def parts(graph) -> tuple:
    """The static problems a row-wise dynamic graph's `main` calls: ({M: 4096}, graph), ..., ({M: 1}, graph)."""
    param = row_param(graph)
    return () if param is None else tuple(({param: n}, part_graph(graph, param, n))
                                          for n in powers(graph.dynamic[param][1]))


def part_hints(job, param, rows: int) -> dict:
    """A row function's hints: the static problem's tuned winner where the build found one
    (tune/select.py: that function is exactly the static graph), else the artifact's, fitted."""
    return job.parts.get(part_label({param: rows})) or fitting(job.hints, rows)


def split_main(job, param, renderer, opmacros) -> tuple:
    """(private functions, the context of rows.j2's `main`)."""
    g, t = job.graph, job.graph.tensors
    lo, hi = g.dynamic[param]
    sizes = powers(hi)
    funcs = [renderer(dataclasses.replace(job, graph=part_graph(g, param, n), hints=part_hints(job, param, n)),
                      opmacros).function(f"main_rows{n}", private=True) for n in sizes]
    rows_in = [n for n in g.inputs if t[n].symbols[0] == param]
    source = rows_in[0]
    var = size_var(param)
    outputs = []
    for o in g.outputs:
        # IREE 3.13 merges identical `tensor.empty` ops and then writes two outputs of one type
        # into one buffer (the first output came back holding the second's rows): each further
        # output of an already-seen type starts from a fill with a value of its own instead.
        same = sum(1 for p in outputs if p["type"] == vtype(t[o]))
        outputs.append({"name": o, "type": vtype(t[o]), "first": ssa(o, "0"),
                        "fill": f"{float(same)}" if same else None, "elem": elem(t[o].dtype)})
    c0 = ssa(param, "c0")
    parts, current, off = [], [o["first"] for o in outputs], c0
    for i, n in enumerate(sizes):
        nxt = [ssa(o, str(i + 1)) for o in g.outputs]
        new_off = ssa(param, f"off{i + 1}")
        then, args = [], []
        for name in g.inputs:
            x = t[name]
            if name in rows_in:
                static = ttype((n, *x.shape[1:]), x.dtype)
                then.append(f"{ssa(name, f'rows{n}')} = tensor.extract_slice {ssa(name)}{_region(off, n, x.shape)} : "
                            f"{vtype(x)} to {static}")
                args.append((ssa(name, f"rows{n}"), static))
            elif x.layout is None:
                args.append((ssa(name), vtype(x)))
            else:
                args.append((ssa(name, "packed"), ttype(x.memory_shape, x.dtype)))
        results = [ttype((n, *t[o].shape[1:]), t[o].dtype) for o in g.outputs]
        part = ssa(param, f"part{n}")
        call = part + (f":{len(results)}" if len(results) > 1 else "")
        then.append(f"{call} = func.call @main_rows{n}({', '.join(a for a, _ in args)}) : "
                    f"({', '.join(ty for _, ty in args)}) -> ({', '.join(results)})")
        for j, o in enumerate(g.outputs):
            value = part + (f"#{j}" if len(results) > 1 else "")
            then.append(f"{ssa(o, f'put{n}')} = tensor.insert_slice {value} into {current[j]}"
                        f"{_region(off, n, t[o].shape)} : {results[j]} into {vtype(t[o])}")
        c = ssa(param, f"c{n}")
        then.append(f"{ssa(param, f'next{n}')} = arith.addi {off}, {c} : index")
        parts.append({"size": n, "then": then, "results": nxt + [new_off], "c": c, "bit": ssa(param, f"bit{n}"),
                      "has": ssa(param, f"has{n}"), "types": [o["type"] for o in outputs] + ["index"],
                      "yield_then": [ssa(o, f"put{n}") for o in g.outputs] + [ssa(param, f"next{n}")],
                      "yield_else": current + [off]})
        current, off = nxt, new_off
    rows = {"param": param, "lo": lo, "hi": hi, "sizes": sizes, "var": var, "c0": c0, "source": ssa(source),
            "source_type": vtype(t[source]), "outputs": outputs, "parts": parts, "returns": current,
            "args": [arg(n, t[n]) for n in g.inputs],
            "results": [o["type"] for o in outputs]}
    return funcs, rows


def _region(off: str, rows: int, shape) -> str:
    """`[off, 0, ...] [rows, d1, ...] [1, ...]`: `rows` rows from `off`, whole other dimensions."""
    rest = shape[1:]
    return (f"[{', '.join([off] + ['0'] * len(rest))}] [{', '.join(str(d) for d in (rows, *rest))}] "
            f"[{', '.join(['1'] * (1 + len(rest)))}]")
