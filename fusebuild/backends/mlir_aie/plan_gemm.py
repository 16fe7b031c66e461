"""Planning a GEMM chain (see plan.py for the design): group shapes, the A/B/output links,
host transfer patterns, and the core programs."""
from __future__ import annotations

from dataclasses import dataclass

from ...ir import layouts as L
from . import kernels as K
from .plan import EB, MAC, PLANNING, VEC, Fifo, PlanError, Stream, check_core_bytes, dma_op_count, place, tname


@dataclass
class G:
    """A group's resolved shape for this tiling."""
    g: object
    P: int
    n: int
    k: int
    T: int
    KT: int
    panels: int
    tiles: list = None
    parts: list = None      # host operand parts carried in this group's A object: (step tensor, kind, elems)
    a_fifo: Fifo = None
    a_base: dict = None     # operand tensor -> offset of its part in the A object
    b_fifos: list = None
    b_chunks: list = None   # (L3L2 FIFO, chunk index, cores per chunk)
    out_fifos: list = None
    host_outs: list = None  # (core index, L2L3 FIFO)


def plan_gemm(p):
    st, t = p.st, p.t
    groups = st.groups
    if len(t.cores) != len(groups):
        raise PlanError("tiling", f"{len(t.cores)} core counts for {len(groups)} GEMM groups")
    M, m, dt = st.M, t.m, st.dtype
    if m < 1 or M % m:
        raise PlanError("tiling", f"tile_m={m} does not divide M={M}", valid=f"a divisor of {M}")
    r, s, _ = MAC[dt]
    r = r if m % r == 0 else 1
    gs = []
    for g in groups:
        P = t.cores[g.index]
        if P < 1:
            raise PlanError("tiling", f"'{g.out}': {P} cores")
        if g.a_src is None:
            n, k = t.n, t.k
            if g.N % (P * n):
                raise PlanError("tiling", f"'{g.out}': {P} cores x tile_n={n} do not divide N={g.N}")
            if k < 1 or g.K % k or k % s:
                raise PlanError("tiling", f"'{g.out}': tile_k={k} does not divide K={g.K} in multiples of {s}")
            panels = 1
        else:
            src = gs[g.a_src]
            k, panels = src.P * src.n, src.P
            if g.N % P:
                raise PlanError("tiling", f"'{g.out}': {P} cores do not divide N={g.N}")
            n = g.N // P       # a consumer of an on-array A reads each A object once: one column tile per core
        if n % VEC:
            raise PlanError("tiling", f"'{g.out}': tile n={n} is not a multiple of {VEC} (the kernels' vector width)")
        if g.pair is not None:
            src = gs[g.pair]
            if (src.P, src.n) != (P, n):
                raise PlanError("tiling", f"'{g.out}' reads '{src.g.out}' core to core: both need the same cores and "
                                          f"tile_n")
        if dt != "float32" and m % 2 and any(x.kind == "col" for x in g.host_loads):
            raise PlanError("tiling", f"'{g.out}': a column operand of tile_m={m} bf16 values is not whole words")
        gs.append(G(g, P, n, k, g.N // (P * n), g.K // k, panels))
    _operand_parts(gs, m)
    for x in gs:
        _core_memory(gs, x, m, dt)
    tiles = place(p.cols, [x.P for x in gs], {x.g.index: x.g.pair for x in gs if x.g.pair is not None})
    for x in gs:
        x.tiles = tiles[x.g.index]
    nb = M // m
    p.plan.blocks = nb
    for x in gs:
        _a_side(p, gs, x, m)
        _b_side(p, x)
        _outputs(p, gs, x, m)
    for x in gs:
        for j, tile in enumerate(x.tiles):
            p.plan.cores.append({"tile": tname(tile), "group": x.g.out, "body": _body(p, gs, x, j, m, r, nb)})
        p.plan.notes.append(f"{x.g.out} = epilogue({x.g.a} @ {x.g.b}{'^T' if x.g.tb else ''}): M={M} N={x.g.N} "
                            f"K={x.g.K}, tiles {m}x{x.n}x{x.k}, {x.P} cores, "
                            f"{x.T} column tile{'s' if x.T > 1 else ''} per core")
    _streams(p, gs, m, nb)
    _check_shim_bds(p)
    return p.plan


def _operand_parts(gs, m):
    """Host epilogue operands ride in the A object: groups reading one host A with the same
    loop structure share it (SwiGLU's gate and up), and their parts are appended in order."""
    for x in gs:
        x.parts = []
        for step in x.g.host_loads:
            if all(step.tensor != t for t, _, _ in x.parts):
                x.parts.append((step.tensor, step.kind, {"row": x.P * x.n, "col": m, "scalar": 1}[step.kind]))


def _sharing(gs, x):
    """The host-A groups that share x's A object (same tensor, same k and steps)."""
    return [y for y in gs if y.g.a_src is None and y.g.a == x.g.a and (y.k, y.T, y.KT) == (x.k, x.T, x.KT)]


def _a_elems(gs, x, m) -> int:
    if x.g.a_src is None:
        base = m * x.k
        share = _sharing(gs, x)
    else:
        base = gs[x.g.a_src].P * m * gs[x.g.a_src].n
        share = [x]
    return base + sum(e for y in share for _, _, e in y.parts)


def _core_memory(gs, x, m, dt):
    eb, depth = EB[dt], PLANNING["depth"]
    parts = [(_a_elems(gs, x, m), eb, depth), (x.n * x.k, eb, depth), (m * x.n, eb, depth)]
    if dt != "float32":
        parts.append((m * x.n, 4, 1))       # the fp32 accumulator
    check_core_bytes(f"'{x.g.out}' (A {m}x{x.k}, B {x.n}x{x.k}, C {m}x{x.n})", parts)


def _a_side(p, gs, x, m):
    if x.a_fifo is not None:
        return
    share = _sharing(gs, x) if x.g.a_src is None else [x]
    cores = [t for y in share for t in y.tiles]
    home = cores[0][0]
    total = _a_elems(gs, x, m)
    ins = []
    if x.g.a_src is None:
        n_in = 1 + sum(len(y.parts) for y in share)
        mem = p.mem_for(home, n_in, 1, total * p.eb * PLANNING["depth"])
        ins.append(p.fifo(f"{x.g.a}_L3L2", p.shim_for(mem[0], False), [mem], m * x.k))
    else:
        src = gs[x.g.a_src]
        n_in = src.P + len(x.parts)
        mem = p.mem_for(home, n_in, 1, total * p.eb * PLANNING["depth"])
        src.out_fifos = []
        for j, tile in enumerate(src.tiles):
            f = p.fifo(f"{src.g.out}_L1L2_{j}", tile, [mem], m * src.n)
            p.core_ends(f)
            src.out_fifos.append(f)
            ins.append(f)
    for y in share:
        y.a_base = {}
        for tensor, kind, e in y.parts:
            y.a_base[tensor] = sum(f.elems for f in ins)
            ins.append(p.fifo(f"{tensor}_L3L2", p.shim_for(mem[0], False), [mem], e))
            ins[-1].stream = (tensor, kind, y)
    out = p.fifo(f"{x.g.a}_L2L1", mem, cores, total)
    p.link(ins, [out], mem)
    p.core_ends(out)
    for y in share:
        y.a_fifo = out


def _b_side(p, x):
    chunk = PLANNING["chunk"]
    n_chunks = -(-x.P // chunk)
    q = -(-x.P // n_chunks)
    if x.P % q:
        q = next(c for c in range(chunk, 0, -1) if x.P % c == 0)
    x.b_fifos, x.b_chunks = [], []
    for c in range(x.P // q):
        cores = x.tiles[c * q:(c + 1) * q]
        mem = p.mem_for(cores[0][0], 1, q, q * x.n * x.k * p.eb * PLANNING["depth"])
        src = p.fifo(f"{x.g.b}_L3L2", p.shim_for(mem[0], False), [mem], q * x.n * x.k)
        outs = [p.fifo(f"{x.g.b}_L2L1", mem, [tile], x.n * x.k) for tile in cores]
        p.link([src], outs, mem)
        for f in outs:
            p.core_ends(f)
        x.b_fifos += outs
        x.b_chunks.append((src, c, q))


def _outputs(p, gs, x, m):
    role = x.g.out_use
    if role == "A":
        return      # the consumer's A link creates these FIFOs (_a_side)
    if role == "pair":
        cons = next(y for y in gs if y.g.pair == x.g.index)
        x.out_fifos = []
        for j, tile in enumerate(x.tiles):
            f = p.fifo(f"{x.g.out}_L1L1_{j}", tile, [cons.tiles[j]], m * x.n)
            p.core_ends(f, shared=True)
            x.out_fifos.append(f)
        return
    x.out_fifos, x.host_outs = [], []
    for j, tile in enumerate(x.tiles):
        mem = p.mem_for(tile[0], 1, 1, m * x.n * p.eb * PLANNING["depth"])
        f1 = p.fifo(f"{x.g.out}_L1L2_{j}", tile, [mem], m * x.n)
        f2 = p.fifo(f"{x.g.out}_L2L3_{j}", mem, [p.shim_for(mem[0], True)], m * x.n)
        p.link([f1], [f2], mem)
        p.core_ends(f1)
        x.out_fifos.append(f1)
        x.host_outs.append((j, f2))


# --- core programs ------------------------------------------------------------------------------

def _body(p, gs, x, j, m, r, nb):
    dt, g = p.dt, x.g
    tag = tname(x.tiles[j])[len("%tile"):]
    a_ty, b_ty = x.a_fifo.type, x.b_fifos[j].type
    out = x.out_fifos[j]
    out_ty = out.type
    acc_ty = K.memref(m * x.n, "float32")
    acc = f"%out{tag}"
    if dt != "float32":
        acc = f"%acc{tag}"
        p.plan.buffers.append({"ssa": acc, "tile": tname(x.tiles[j]), "type": acc_ty})
        p.take(x.tiles[j], nbytes=m * x.n * 4)
    zero = p.kernel(K.zero(m, x.n), [acc_ty])
    mm = p.kernel(K.matmul(dt, m, x.k, x.n, g.tb, x.panels, x.a_fifo.elems), [a_ty, b_ty, acc_ty])

    def step_k(v=""):
        a, b = f"%a{v}{tag}", f"%b{v}{tag}"
        return [{"op": "acquire", "fifo": x.a_fifo.name, "port": "Consume", "ssa": a, "type": a_ty},
                {"op": "acquire", "fifo": x.b_fifos[j].name, "port": "Consume", "ssa": b, "type": b_ty},
                {"op": "call", "func": mm, "args": [a, b, acc], "types": [a_ty, b_ty, acc_ty]}]

    rel_a = {"op": "release", "fifo": x.a_fifo.name, "port": "Consume"}
    rel_b = {"op": "release", "fifo": x.b_fifos[j].name, "port": "Consume"}
    body = [{"op": "acquire", "fifo": out.name, "port": "Produce", "ssa": f"%out{tag}", "type": out_ty},
            {"op": "call", "func": zero, "args": [acc], "types": [acc_ty]}]
    keep_a = bool(x.parts)     # host operands ride in the A object: hold the last one for the epilogue
    loop = x.KT - 1 if keep_a else x.KT
    if loop:
        body.append({"op": "for", "count": loop, "var": f"%kt{tag}", "body": step_k() + [rel_a, rel_b]})
    if keep_a:      # the last step, peeled: its A object (with the operands) stays held
        body += step_k("l") + [rel_b]
    pair = gs[g.pair].out_fifos[j] if g.pair is not None else None
    if pair is not None:
        body.append({"op": "acquire", "fifo": pair.name, "port": "Consume", "ssa": f"%pair{tag}", "type": pair.type})
    for st in g.steps:
        if not st.kind:
            name = p.kernel(K.epilogue(st.op, st.attrs, dt, m, x.n), [acc_ty])
            body.append({"op": "call", "func": name, "args": [acc], "types": [acc_ty]})
            continue
        if st.kind == "pair":
            obj, ty, off, elems = f"%pair{tag}", pair.type, 0, pair.elems
        else:
            obj, ty, elems = f"%al{tag}", a_ty, x.a_fifo.elems
            off = x.a_base[st.tensor] + (j * x.n if st.kind == "row" else 0)
        name = p.kernel(K.epilogue(st.op, (), dt, m, x.n, st.kind, off, elems), [acc_ty, ty])
        body.append({"op": "call", "func": name, "args": [acc, obj], "types": [acc_ty, ty]})
    if dt != "float32":
        st_name = p.kernel(K.store(dt, m, x.n), [acc_ty, out_ty])
        body.append({"op": "call", "func": st_name, "args": [acc, f"%out{tag}"], "types": [acc_ty, out_ty]})
    if keep_a:
        body.append(rel_a)
    if pair is not None:
        body.append({"op": "release", "fifo": pair.name, "port": "Consume"})
    body.append({"op": "release", "fifo": out.name, "port": "Produce"})
    return [{"op": "for", "count": nb * x.T, "var": f"%it{tag}", "body": body}]


# --- host transfers -----------------------------------------------------------------------------

def _lay(p, name):
    t = p.st_tensors[name]
    return t.layout or L.row_major(t.shape)


def _streams(p, gs, m, nb):
    seen = set()
    for x in gs:
        fifo_a = x.a_fifo
        if x.g.a_src is None and id(fifo_a) not in seen:
            seen.add(id(fifo_a))
            share = _sharing(gs, x)
            link = next(lk for lk in p.plan.links if fifo_a.name in lk["dsts"])
            src = next(f for f in p.plan.fifos if f.name == link["srcs"][0])
            p.plan.streams.append(Stream(x.g.a, src.name, src.producer, False,
                                         [[_a_block(p, x, i, m)] for i in range(nb)]))
            for y in share:
                _operand_streams(p, y, link, m, nb)
        elif x.g.a_src is not None and x.parts:
            link = next(lk for lk in p.plan.links if fifo_a.name in lk["dsts"])
            _operand_streams(p, x, link, m, nb)
        for src, c, q in x.b_chunks:
            blk = _b_block(p, x, c, q)
            p.plan.streams.append(Stream(x.g.b, src.name, src.producer, False, [[blk] for _ in range(nb)]))
        for j, f2 in x.host_outs or []:
            p.plan.streams.append(Stream(x.g.out, f2.name, f2.consumers[0], True,
                                         [[_out_block(p, x, j, i, m)] for i in range(nb)]))


def _a_block(p, x, i, m):
    a, K_ = x.g.a, x.g.K
    lay = _lay(p, a)
    rows = L.region_loops(lay, 0, i * m, m, a)
    kt, cols = L.split_loops(L.region_loops(lay, 1, 0, K_, a), x.k)
    return lay.offset((i * m, 0)), [(x.T, 0)] + kt + rows + cols


def _operand_streams(p, y, link, m, nb):
    fifos = {f.name: f for f in p.plan.fifos}
    for name in link["srcs"]:
        f = fifos[name]
        spec = f.stream
        if spec is None or spec[2] is not y:
            continue
        tensor, kind, _ = spec
        p.plan.streams.append(Stream(tensor, f.name, f.producer, False,
                                     [_operand_blocks(p, y, tensor, kind, i, m) for i in range(nb)]))


def _operand_blocks(p, y, tensor, kind, i, m):
    t = p.st_tensors[tensor]
    lay = _lay(p, tensor)
    nd = len(t.shape)
    reps = y.T * y.KT
    if kind == "row":
        width = y.P * y.n
        return [(lay.offset((0,) * (nd - 1) + (jj * width,)),
                 [(y.KT, 0)] + L.region_loops(lay, nd - 1, jj * width, width, tensor)) for jj in range(y.T)]
    if kind == "col":
        return [(lay.offset((i * m, 0)), [(reps, 0)] + L.region_loops(lay, 0, i * m, m, tensor))]
    return [(0, [(reps, 0), (1, 1)])]


def _b_block(p, x, c, q):
    b, N, K_, n, k = x.g.b, x.g.N, x.g.K, x.n, x.k
    lay = _lay(p, b)
    if x.g.tb:      # b is [N, K]; a core's tile is n rows x k columns
        outer, inner = L.split_loops(L.region_loops(lay, 0, 0, N, b), x.P * n)
        _, chunk = L.split_loops(inner, q * n)
        kt, cols = L.split_loops(L.region_loops(lay, 1, 0, K_, b), k)
        return lay.offset((c * q * n, 0)), outer + kt + chunk + cols
    kt, rows = L.split_loops(L.region_loops(lay, 0, 0, K_, b), k)     # b is [K, N]: k rows x n columns
    outer, inner = L.split_loops(L.region_loops(lay, 1, 0, N, b), x.P * n)
    _, chunk = L.split_loops(inner, q * n)
    qq, cols = L.split_loops(chunk, n)
    return lay.offset((0, c * q * n)), outer + kt + qq + rows + cols


def _out_block(p, x, j, i, m):
    y, N = x.g.out, x.g.N
    lay = _lay(p, y)
    rows = L.region_loops(lay, 0, i * m, m, y)
    outer, inner = L.split_loops(L.region_loops(lay, 1, 0, N, y), x.P * x.n)
    _, cols = L.split_loops(inner, x.n)
    return lay.offset((i * m, j * x.n)), outer + rows + cols


def _check_shim_bds(p):
    """Runtime BDs held at once per shim tile: every op of one row block (they are released by
    the row block's dma_waits)."""
    count = {}
    for s in p.plan.streams:
        count[s.shim] = count.get(s.shim, 0) + dma_op_count(s.tensor, s.blocks[0], EB[p.dt])
    for shim, n in count.items():
        if n > PLANNING["bds"]["shim"]:
            raise PlanError("buffer descriptors", f"shim tile {shim} needs {n} runtime buffer descriptors per row "
                                                  f"block; it has {PLANNING['bds']['shim']}")
