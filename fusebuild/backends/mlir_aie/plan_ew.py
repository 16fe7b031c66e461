"""Planning one elementwise node (separate/compare modes render each node alone).

The output, as rows x cols, is cut into r x c tiles; P cores (one per column, row 2)
own the column tiles jj*P + j, every row block. Operands and result stream between
the core and the shim of its column directly (no mem tile): a binary op uses 2 of the
shim's MM2S channels and 1 S2MM. An operand that broadcasts is sent as what the tile
needs: a row operand c values per tile, a column operand r values, a scalar 1.

One node calls one `ew_` kernel. A fused chain (structure.py) reads each input tensor
once per tile and runs on an fp32 accumulator (the output object in float32, an
`aie.buffer` in bfloat16): zero it, add the seed tile (exact), then one epilogue
kernel per node (a full-shape operand read as a `pair` tile), and for bfloat16 round
once into the output, as a GEMM's epilogue does.
"""
from __future__ import annotations

from ...ir import layouts as L
from . import kernels as K
from .plan import EB, PLANNING, VEC, PlanError, Stream, check_core_bytes, dma_op_count, tname


def plan_elementwise(p):
    st, t = p.st, p.t
    ew = st.ew
    node, (R, C), kinds = ew.node, ew.shape, ew.kinds
    rm, cn, P = t.m, t.n, t.cores[0]
    if rm < 1 or R % rm:
        raise PlanError("tiling", f"tile_m={rm} does not divide {R} rows", valid=f"a divisor of {R}")
    if cn % VEC or C % (P * cn):
        raise PlanError("tiling", f"{P} cores x tile_n={cn} do not divide {C} columns in multiples of {VEC}")
    if P > p.cols:
        raise PlanError("cores", f"{P} cores: an elementwise design uses one core per column ({p.cols} columns)")
    if st.dtype != "float32" and rm % 2 and "col" in kinds:
        raise PlanError("tiling", f"a column operand of tile_m={rm} bf16 values is not whole words")
    T, nb = C // (P * cn), R // rm
    sizes = [{"full": rm * cn, "row": cn, "col": rm, "scalar": 1}[k] for k in kinds]
    eb, depth = EB[st.dtype], PLANNING["depth"]
    acc = [(rm * cn, 4, 1)] if ew.steps and st.dtype != "float32" else []      # a chain's fp32 accumulator
    check_core_bytes(f"'{node.output}' ({rm}x{cn} tiles)", [(s, eb, depth) for s in sizes + [rm * cn]] + acc)
    p.plan.blocks = nb
    name = None if ew.steps else K.elementwise(node.op, node.attrs, st.dtype, rm, cn, kinds)
    out_t = p.st_tensors[node.output]
    for j in range(P):
        tile, shim = (j, 2), (j, 0)
        ins = []
        for x, kind, size in zip(ew.inputs, kinds, sizes):
            f = p.fifo(f"{x}_L3L1_{j}", shim, [tile], size)
            p.take(shim, mm2s=1, locks=2)
            p.core_ends(f)
            ins.append(f)
            p.plan.streams.append(Stream(x, f.name, shim, False,
                                         [_blocks(p, x, kind, i, j, rm, cn, P, T) for i in range(nb)]))
        out = p.fifo(f"{node.output}_L1L3_{j}", tile, [shim], rm * cn)
        p.take(shim, s2mm=1, locks=2)
        p.core_ends(out)
        p.plan.streams.append(Stream(node.output, out.name, shim, True,
                                     [_blocks(p, node.output, "full", i, j, rm, cn, P, T) for i in range(nb)]))
        tag = f"_{j}_2"
        body = [{"op": "acquire", "fifo": f.name, "port": "Consume", "ssa": f"%in{i}{tag}", "type": f.type}
                for i, f in enumerate(ins)]
        body.append({"op": "acquire", "fifo": out.name, "port": "Produce", "ssa": f"%out{tag}", "type": out.type})
        if ew.steps:
            body += _chain_calls(p, ew, ins, out, tile, tag, rm, cn)
        else:
            types = [f.type for f in ins] + [out.type]
            p.kernel(name, types)
            body.append({"op": "call", "func": name, "args": [f"%in{i}{tag}" for i in range(len(ins))]
                         + [f"%out{tag}"], "types": types})
        body += [{"op": "release", "fifo": f.name, "port": "Consume"} for f in ins]
        body.append({"op": "release", "fifo": out.name, "port": "Produce"})
        p.plan.cores.append({"tile": tname(tile), "group": node.output,
                             "body": [{"op": "for", "count": nb * T, "var": f"%it{tag}", "body": body}]})
    what = f"{node.op}({', '.join(node.inputs)})" if not ew.steps else \
        f"{' -> '.join(s.op for s in ew.steps)} on {ew.seed} (fused chain, fp32 accumulator)"
    p.plan.notes.append(f"{node.output} = {what}: {R}x{C} in {rm}x{cn} tiles, "
                        f"{P} cores, {T} column tiles per core ({out_t.dtype})")
    for shim in {s.shim for s in p.plan.streams}:
        n = sum(dma_op_count(s.tensor, s.blocks[0], eb) for s in p.plan.streams if s.shim == shim)
        if n > PLANNING["bds"]["shim"]:
            raise PlanError("buffer descriptors", f"shim tile {shim} needs {n} runtime buffer descriptors per row "
                                                  f"block; it has {PLANNING['bds']['shim']}")
    return p.plan


def _chain_calls(p, ew, ins, out, tile, tag, rm, cn) -> list:
    """The kernel calls of a fused chain on one tile: seed the accumulator, one epilogue
    kernel per step, and for bfloat16 the one rounding into the output object."""
    dt = p.dt
    acc_ty = K.memref(rm * cn, "float32")
    acc = f"%out{tag}"
    if dt != "float32":
        acc = f"%acc{tag}"
        p.plan.buffers.append({"ssa": acc, "tile": tname(tile), "type": acc_ty})
        p.take(tile, nbytes=rm * cn * 4)
    obj = {x: (f"%in{i}{tag}", f) for i, (x, f) in enumerate(zip(ew.inputs, ins))}

    def call(func, args, types):
        return {"op": "call", "func": p.kernel(func, types), "args": args, "types": types}

    seed, seed_f = obj[ew.seed]
    calls = [call(K.zero(rm, cn), [acc], [acc_ty]),
             call(K.epilogue("add", (), dt, rm, cn, "pair", 0, seed_f.elems), [acc, seed], [acc_ty, seed_f.type])]
    for s in ew.steps:
        if not s.tensor:
            calls.append(call(K.epilogue(s.op, s.attrs, dt, rm, cn), [acc], [acc_ty]))
            continue
        x, f = obj[s.tensor]
        kind = "pair" if s.kind == "full" else s.kind
        calls.append(call(K.epilogue(s.op, (), dt, rm, cn, kind, 0, f.elems), [acc, x], [acc_ty, f.type]))
    if dt != "float32":
        calls.append(call(K.store(dt, rm, cn), [acc, f"%out{tag}"], [acc_ty, out.type]))
    return calls


def _blocks(p, x, kind, i, j, rm, cn, P, T):
    """(offset, loops) of tensor x for row block i of core j, in the core's tile order."""
    t = p.st_tensors[x]
    lay = t.layout or L.row_major(t.shape)
    nd = len(t.shape)
    if kind == "scalar":
        return [(0, [(T, 0), (1, 1)])]
    if kind == "col":
        return [(lay.offset((i * rm,) + (0,) * (nd - 1)), [(T, 0)] + L.region_loops(lay, 0, i * rm, rm, x))]
    last = nd - 1
    outer, inner = L.split_loops(L.region_loops(lay, last, 0, t.shape[last], x), P * cn)
    _, cols = L.split_loops(inner, cn)
    if kind == "row" or nd == 1:
        return [(lay.offset((0,) * last + (j * cn,)), outer + cols)]
    rows = L.region_loops(lay, 0, i * rm, rm, x)
    return [(lay.offset((i * rm, j * cn)), outer + rows + cols)]
