"""Build an IRON-style design (plain data for the templates) from a fused graph.

Model (one design, one artifact, for the whole graph):
- every fused group (graph.fuse) is a GEMM tile loop with its epilogue; an elementwise
  group on its own is not supported on this target;
- a group runs on one compute core, or, when its A operand is the output of an earlier
  group, on one core per output column tile (that intermediate is broadcast core to
  core, so it never leaves the array: swiglu's gate/up/down chain);
- graph inputs come from the host through shim DMA -> mem tile -> core; the mem tile
  re-tiles row-major tiles into the r x s blocks of the MAC unit (`dimensionsToStream`);
  outputs go core -> mem tile (un-blocking) -> shim -> host;
- the runtime sequence's `npu_dma_memcpy_nd` patterns come from the operands' layouts
  (layouts.region_loops / split_loops / dma_ops): a layout change changes these numbers
  and nothing else.
Tile sizes: hints tile_m/tile_n/tile_k, else the largest divisors <= 16/64/32.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import prod

from ...errors import FusebuildError
from ...ir import layouts as L
from ...ir.dtypes import nbytes
from ...ir.graph import fold, fuse
from .kernels import DT, kernel_name

DEVICES = {"npu1": 4, "npu2": 8}        # columns; rows: 0 shim, 1 mem tile, 2..5 compute
COMPUTE_ROWS = 4
SHIM_CHANNELS = 2                       # MM2S and S2MM channels per shim tile
L1_BYTES = 64 * 1024                    # data memory of an AIE-ML compute tile
MAC = (4, 8, 8)                         # r, s, t of the matmul micro-kernel
DEPTH = 2


class DesignError(FusebuildError):
    """The graph or its tile sizes do not map onto the NPU."""


@dataclass
class Fifo:
    name: str
    producer: str
    consumers: list
    type: str
    dims: list = field(default_factory=list)    # dimensionsToStream on the producer
    depth: int = DEPTH


def memref(shape, dtype) -> str:
    return f"memref<{'x'.join(str(s) for s in shape)}x{DT[dtype]}>"


def _pick(size, cap, unit):
    divs = [d for d in range(1, min(size, cap) + 1) if size % d == 0]
    aligned = [d for d in divs if d % unit == 0]
    return max(aligned or divs)


def infer_loops(seq) -> list:
    """Nested (size, stride) loops, outer -> inner, that generate an integer sequence."""
    import torch
    seq = torch.as_tensor(seq, dtype=torch.int64).reshape(-1)
    loops = []
    while seq.numel() > 1:
        step = int(seq[1] - seq[0])
        size = 2
        while size < seq.numel() and int(seq[size] - seq[size - 1]) == step:
            size += 1
        while seq.numel() % size:
            size -= 1
        rows = seq.reshape(-1, size)
        if size < 2 or not bool((rows - rows[:, :1] == torch.arange(size) * step).all()):
            return []
        loops.insert(0, (size, step))
        seq = rows[:, 0]
    return loops


def retile_dims(rows, cols, order, br, bc):
    """dimensionsToStream (<= 4 dims) that reads a mem tile object holding a tile in the
    stream order `order` (of the rows + cols loops) as (R/br, C/bc, br, bc) blocks."""
    import torch
    loops = rows + cols
    sizes = [s for s, _ in loops]
    l2 = [prod(sizes[q] for q in order[pos + 1:]) for pos in range(len(order))]
    l2_stride = {q: l2[pos] for pos, q in enumerate(order)}

    def positions(dim_loops, first):
        idx = torch.zeros(1, dtype=torch.int64)
        for q, (size, _) in enumerate(dim_loops, first):
            idx = (idx[:, None] + torch.arange(size)[None, :] * l2_stride[q]).reshape(-1)
        return idx
    pr, pc = positions(rows, 0), positions(cols, len(rows))
    R, C = pr.numel(), pc.numel()
    grid = (pr[:, None] + pc[None, :]).reshape(R // br, br, C // bc, bc).permute(0, 2, 1, 3).reshape(-1)
    found = L.merge_loops(infer_loops(grid))
    if found in ([(R * C, 1)], [(1, 1)]):
        return []                  # already in the core's order: no re-tiling
    out = []
    for size, stride in found:     # a mem tile BD dimension counts at most 1023
        while size > 1023:
            f = max(d for d in range(1, 1024) if size % d == 0)
            if f == 1:
                return None
            out.append((size // f, stride * f))
            size = f
        out.append((size, stride))
    return out if len(out) <= 4 else None


def _unblock_dims(rows, cols, br, bc):
    """dimensionsToStream reading (rows/br, cols/bc, br, bc) blocks back in row-major order."""
    return [(rows // br, br * cols), (br, bc), (cols // bc, br * bc), (bc, 1)]


class _Builder:
    def __init__(self, graph, hints):
        self.g, self.hints = graph, hints
        self.device = "npu1" if hints.get("npu") == 1 else "npu2"
        if hints.get("npu") not in (None, 1, 2):
            raise DesignError(f"hint npu: {hints['npu']} is not a known NPU generation", valid="npu: 1 or npu: 2")
        self.cols = DEVICES[self.device]
        self.fifos, self.links, self.cores, self.kernels, self.buffers = [], [], [], {}, []
        self.streams = []        # host transfers: {arg, fifo, per_block: [[op...] per row block], dir}
        self.shim_used = {}      # (col, dir) -> count
        self.ncores = 0

    # --- tiles and channels ------------------------------------------------------------
    def tile(self, col, row):
        return f"%tile_{col}_{row}"

    def new_core(self):
        q = self.ncores
        self.ncores += 1
        col, row = q % self.cols, 2 + q // self.cols
        if row >= 2 + COMPUTE_ROWS:
            raise DesignError(f"the design needs more than {self.cols * COMPUTE_ROWS} compute cores of {self.device}",
                              valid="larger tile_n (fewer column cores)")
        return self.tile(col, row)

    def shim_col(self, direction):
        for c in range(self.cols):
            if self.shim_used.get((c, direction), 0) < SHIM_CHANNELS:
                self.shim_used[(c, direction)] = self.shim_used.get((c, direction), 0) + 1
                return c
        n = sum(v for (c, d), v in self.shim_used.items() if d == direction) + 1
        raise DesignError(f"the design needs {n} shim {direction} channels; {self.device} has "
                          f"{self.cols * SHIM_CHANNELS}", valid="larger tile_n, or npu: 2")

    def kernel(self, name, types):
        if self.kernels.setdefault(name, types) != types:
            raise DesignError(f"kernel {name} used with two signatures")
        return name

    # --- plan ----------------------------------------------------------------------------
    def build(self):
        g, t = self.g, self.g.tensors
        groups = fuse(g)
        if any(grp.matmul is None for grp in groups):
            bad = next(grp for grp in groups if grp.matmul is None)
            raise DesignError(f"'{bad.output}' is an elementwise kernel without a GEMM; mlir-aie renders GEMMs with "
                              f"epilogues (the GEMM family and swiglu)")
        produced = {grp.output: i for i, grp in enumerate(groups)}
        ms = {t[grp.matmul.inputs[0]].shape[0] for grp in groups}
        if len(ms) != 1:
            raise DesignError(f"GEMMs of different M {sorted(ms)} in one design")
        M = ms.pop()
        m = self.hints.get("tile_m") or _pick(M, 16, MAC[0])
        plans = []
        for grp in groups:
            a, b = grp.matmul.inputs
            tb = grp.matmul.attr["transpose_b"]
            K, N = t[a].shape[1], t[grp.output].shape[1]
            n = self.hints.get("tile_n") or _pick(N, 64, MAC[2])
            k = self.hints.get("tile_k") or _pick(K, 32, MAC[1])
            split = a in produced
            if split:
                k = plans[produced[a]]["n"]
            if b in produced:
                raise DesignError(f"'{b}' (an earlier kernel's output) is the B operand of a GEMM: not supported")
            for name, size, tile in (("M", M, m), ("N", N, n), ("K", K, k)):
                if size % tile:
                    raise DesignError(f"tile {tile} does not divide {name}={size} of '{grp.output}' (padding is not "
                                      f"supported)", valid=f"tile_{name.lower()} dividing {size}")
            r = MAC[0] if m % MAC[0] == 0 else 1
            s = MAC[1] if k % MAC[1] == 0 else 1
            tt = MAC[2] if n % MAC[2] == 0 else 1
            if split and (s != plans[produced[a]]["t"]):
                raise DesignError(f"'{a}' is blocked {plans[produced[a]]['t']} wide but read {s} wide")
            plans.append(dict(grp=grp, a=a, b=b, tb=tb, M=M, N=N, K=K, m=m, n=n, k=k, r=r, s=s, t=tt, split=split))
        for p in plans:
            for x in p["grp"].loads():
                if x in produced and (plans[produced[x]]["n"], plans[produced[x]]["split"]) != (p["n"], p["split"]):
                    raise DesignError(f"'{x}' is produced in {plans[produced[x]]['n']}-wide tiles but read "
                                      f"{p['n']}-wide")
        self.plans, self.produced = plans, produced
        self.inter = {}          # intermediate tensor -> fifo
        for p in plans:
            self.group(p)
        return self.context()

    def group(self, p):
        g, t = self.g, self.g.tensors
        grp, dt = p["grp"], t[p["grp"].output].dtype
        m, n, k, r, s, tt = (p[x] for x in "mnkrst")
        ncores = p["N"] // n if p["split"] else 1
        cores = [self.new_core() for _ in range(ncores)]
        a_ty = memref((m // r, k // s, r, s), dt)
        b_shape = (n // tt, k // s, tt, s) if p["tb"] else (k // s, n // tt, s, tt)
        b_ty = memref(b_shape, dt)
        c_ty = memref((m // r, n // tt, r, tt), dt)
        # A: broadcast intermediate, or host input shared by all cores of the group
        if p["split"]:
            a_fifos = [self.inter[p["a"]]] * ncores
            for core in cores:
                self.inter[p["a"]].consumers.append(core)
        else:
            a_fifos = [self.host_in(p["a"], "a", p, None, cores, a_ty, (m, k), (r, s))]
        b_rows = (n, k) if p["tb"] else (k, n)
        b_block = (tt, s) if p["tb"] else (s, tt)
        b_fifos = [self.host_in(p["b"], "b", p, j if p["split"] else None, [core], b_ty, b_rows, b_block)
                   for j, core in enumerate(cores)]
        load_fifos = {}
        for x in grp.loads():
            if x in self.produced:
                self.inter[x].consumers.extend(cores)
                load_fifos[x] = [self.inter[x]] * ncores
            else:
                load_fifos[x] = [self.host_in(x, "load", p, j if p["split"] else None, [core], c_ty, (m, n),
                                              (r, tt)) for j, core in enumerate(cores)]
        out = grp.output
        if out in g.outputs:
            out_fifos = [self.host_out(out, p, j if p["split"] else None, core, c_ty) for j, core in enumerate(cores)]
        else:
            if ncores > 1:
                raise DesignError(f"'{out}' is computed on {ncores} column cores and used by another GEMM: not "
                                  f"supported")
            fifo = Fifo(f"{out}_L1L1", cores[0], [], c_ty)
            self.fifos.append(fifo)
            self.inter[out] = fifo
            out_fifos = [fifo]
        zero = self.kernel(kernel_name("zero", dt, (m, n)), [c_ty])
        mm = self.kernel(kernel_name("matmul_bt" if p["tb"] else "matmul", dt, (m, k, n)), [a_ty, b_ty, c_ty])
        for j, core in enumerate(cores):
            self.cores.append(self.core_body(core, p, a_fifos[j], b_fifos[j], {x: f[j] for x, f in load_fifos.items()},
                                             out_fifos[j], zero, mm, c_ty, a_ty, b_ty, dt))

    def core_body(self, core, p, fa, fb, floads, fout, zero, mm, c_ty, a_ty, b_ty, dt):
        tiles = (p["M"] // p["m"]) * (1 if p["split"] else p["N"] // p["n"])
        ssa = core.replace("%tile", "")
        body = [{"op": "acquire", "fifo": fout.name, "port": "Produce", "ssa": f"%out{ssa}", "type": c_ty},
                {"op": "call", "func": zero, "args": [f"%out{ssa}"], "types": [c_ty]},
                {"op": "for", "count": p["K"] // p["k"], "var": f"%kt{ssa}", "body": [
                    {"op": "acquire", "fifo": fa.name, "port": "Consume", "ssa": f"%a{ssa}", "type": a_ty},
                    {"op": "acquire", "fifo": fb.name, "port": "Consume", "ssa": f"%b{ssa}", "type": b_ty},
                    {"op": "call", "func": mm, "args": [f"%a{ssa}", f"%b{ssa}", f"%out{ssa}"],
                     "types": [a_ty, b_ty, c_ty]},
                    {"op": "release", "fifo": fa.name, "port": "Consume"},
                    {"op": "release", "fifo": fb.name, "port": "Consume"}]}]
        loads = {}
        for i, (x, f) in enumerate(floads.items()):
            loads[x] = f"%ld{i}{ssa}"
            body.append({"op": "acquire", "fifo": f.name, "port": "Consume", "ssa": loads[x], "type": c_ty})
        temps = []

        def call(op, args, attrs):
            target = f"%out{ssa}" if f"%out{ssa}" in args else None
            if target is None:
                target = f"%tmp{len(temps)}{ssa}"
                temps.append(target)
                self.buffers.append({"ssa": target, "tile": core, "name": target[1:], "type": c_ty})
            name = self.kernel(kernel_name(op, dt, (p["m"], p["n"]), attrs), [c_ty] * (len(args) + 1))
            body.append({"op": "call", "func": name, "args": list(args) + [target], "types": [c_ty] * (len(args) + 1)})
            return target

        result = fold(p["grp"].expr, lambda: f"%out{ssa}", lambda x: loads[x], call)
        if result != f"%out{ssa}":   # an epilogue that does not use the accumulator
            raise DesignError(f"epilogue of '{p['grp'].output}' does not use the GEMM result")
        for x in floads:
            body.append({"op": "release", "fifo": floads[x].name, "port": "Consume"})
        body.append({"op": "release", "fifo": fout.name, "port": "Produce"})
        return {"tile": core, "ssa": "%core" + ssa,
                "body": [{"op": "for", "count": tiles, "var": f"%it{ssa}", "body": body}], "group": p["grp"].output}

    # --- host transfers ------------------------------------------------------------------
    def host_in(self, x, role, p, j, cores, l1_type, l2_shape, block):
        """A host tensor streamed to `cores` in the order their loops consume it.

        The shim reads each tile either row by row, or in the order of the operand's
        layout (its inner loops by falling stride: contiguous blocks stay contiguous);
        the mem tile's dimensionsToStream then re-tiles that order into the core's
        (rows/br, cols/bc, br, bc) blocks. The order with fewer DMA ops wins.
        """
        nb = p["M"] // p["m"]
        parts = [self.parts(x, role, p, i, j) for i in range(nb)]
        rows, cols = parts[0][2], parts[0][3]
        logical = list(range(len(rows) + len(cols)))
        by_stride = sorted(logical, key=lambda q: -(rows + cols)[q][1])
        best = None
        for order in ([logical, by_stride] if by_stride != logical else [logical]):
            dims = retile_dims(rows, cols, order, *block)
            if dims is None:
                continue
            inner = [(rows + cols)[q] for q in order]
            blocks = [(off, outer + inner) for off, outer, _, _ in parts]
            eb = nbytes(self.g.tensors[x].dtype)
            try:
                nops = sum(len(L.dma_ops(off, lp, eb, L.NPU_SHIM_DMA, x)) for off, lp in blocks)
            except L.LayoutError:
                continue
            shape = l2_shape if order == logical else (prod(l2_shape),)
            if best is None or nops < best[0]:
                best = (nops, blocks, dims, shape)
        if best is None:
            raise DesignError(f"'{x}': no DMA order of its {role} tiles fits the shim and mem tile DMAs",
                              valid="tile sizes aligned with the operand's layout")
        _, blocks, dims, l2_shape = best
        for f in self.fifos:     # same tensor, same stream: broadcast instead of a second DMA
            if getattr(f, "stream_key", None) == (x, str(blocks), str(dims)) and f.type == l1_type:
                f.consumers.extend(cores)
                return f
        col = self.shim_col("MM2S")
        idx = sum(1 for f in self.fifos if f.name.startswith(f"{x}_L2L1"))
        l2 = Fifo(f"{x}_L3L2_{idx}", self.tile(col, 0), [self.tile(col, 1)], memref(l2_shape, self.g.tensors[x].dtype))
        l1 = Fifo(f"{x}_L2L1_{idx}", self.tile(col, 1), list(cores), l1_type, dims)
        l1.stream_key = (x, str(blocks), str(dims))
        self.fifos += [l2, l1]
        self.links.append(([l2.name], [l1.name]))
        self.streams.append({"tensor": x, "fifo": l2.name, "blocks": blocks, "col": col})
        return l1

    def host_out(self, x, p, j, core, c_ty):
        m, n, r, tt = p["m"], p["n"], p["r"], p["t"]
        col = self.shim_col("S2MM")
        idx = sum(1 for f in self.fifos if f.name.startswith(f"{x}_L1L2"))
        l1 = Fifo(f"{x}_L1L2_{idx}", core, [self.tile(col, 1)], c_ty)
        l2 = Fifo(f"{x}_L2L3_{idx}", self.tile(col, 1), [self.tile(col, 0)], memref((m, n), self.g.tensors[x].dtype),
                  _unblock_dims(m, n, r, tt))
        self.fifos += [l1, l2]
        self.links.append(([l1.name], [l2.name]))
        self.streams.append({"tensor": x, "fifo": l2.name, "out": True, "col": col,
                             "blocks": [self.loops(x, "out", p, i, j) for i in range(p["M"] // p["m"])]})
        return l1

    def loops(self, x, role, p, i, j):
        """(offset, loops) of row block i (and column core j) of operand x, in stream order."""
        offset, outer, rows, cols = self.parts(x, role, p, i, j)
        return offset, outer + rows + cols

    def parts(self, x, role, p, i, j):
        """(offset, outer loops, loops over a tile's rows, loops over its columns)."""
        t = self.g.tensors[x]
        lay = t.layout or L.row_major(t.shape)
        m, n, k, N, K = p["m"], p["n"], p["k"], p["N"], p["K"]
        n0, nn = (j * n, n) if j is not None else (0, N)
        rep = [] if j is not None else [(N // n, 0)]
        if role == "a":
            rows = L.region_loops(lay, 0, i * m, m, x)
            kt, cols = L.split_loops(L.region_loops(lay, 1, 0, K, x), k)
            return lay.offset((i * m, 0)), rep + kt, rows, cols
        if role == "b" and p["tb"]:
            jt, rows = L.split_loops(L.region_loops(lay, 0, n0, nn, x), n)
            kt, cols = L.split_loops(L.region_loops(lay, 1, 0, K, x), k)
            return lay.offset((n0, 0)), jt + kt, rows, cols
        if role == "b":
            kt, rows = L.split_loops(L.region_loops(lay, 0, 0, K, x), k)
            jt, cols = L.split_loops(L.region_loops(lay, 1, n0, nn, x), n)
            return lay.offset((0, n0)), jt + kt, rows, cols
        # an output tile, or an epilogue operand broadcast into the output's m x n tiles
        nd, origin = len(t.shape), []
        if nd == 2 and t.shape[0] != 1:
            rows = L.region_loops(lay, 0, i * m, m, x)
            origin.append(i * m)
        else:
            rows = [(m, 0)]
            origin += [0] * (nd - 1)
        if t.shape[-1] != 1:
            jt, cols = L.split_loops(L.region_loops(lay, nd - 1, n0, nn, x), n)
            origin.append(n0)
        else:
            jt, cols = [(nn // n, 0)], [(n, 0)]
            origin.append(0)
        return lay.offset(tuple(origin)), jt, rows, cols

    # --- context for the templates ------------------------------------------------------
    def context(self):
        g, t = self.g, self.g.tensors
        args = list(g.inputs) + list(g.outputs)
        arg_types = {x: memref((t[x].layout.size if t[x].layout else prod(t[x].shape),), t[x].dtype) for x in args}
        seq, ids = [], {}
        nblocks = len(self.streams[0]["blocks"]) if self.streams else 0
        for i in range(nblocks):
            ids.clear()
            for st in sorted(self.streams, key=lambda s: bool(s.get("out"))):
                offset, loops = st["blocks"][i]
                eb = nbytes(t[st["tensor"]].dtype)
                for off, sizes, strides in L.dma_ops(offset, loops, eb, L.NPU_SHIM_DMA, st["tensor"]):
                    bd = ids.get(st["col"], 0)
                    ids[st["col"]] = bd + 1
                    if bd >= 16:
                        raise DesignError(f"row block {i} needs more than 16 buffer descriptors on shim column "
                                          f"{st['col']}", valid="larger tiles or a simpler layout")
                    seq.append({"op": "memcpy", "arg": f"%arg{args.index(st['tensor'])}", "offset": off,
                                "sizes": sizes, "strides": strides, "fifo": st["fifo"], "id": bd,
                                "type": arg_types[st["tensor"]], "token": bool(st.get("out"))})
            for st in self.streams:
                if st.get("out"):
                    seq.append({"op": "wait", "fifo": st["fifo"]})
        used_tiles = sorted({f.producer for f in self.fifos} | {c for f in self.fifos for c in f.consumers}
                            | {c["tile"] for c in self.cores},
                            key=lambda s: (int(s.split("_")[2]), int(s.split("_")[1])))
        return {
            "device": self.device,
            "tiles": [{"ssa": x, "col": int(x.split("_")[1]), "row": int(x.split("_")[2])} for x in used_tiles],
            "kernels": [{"name": k, "types": v} for k, v in sorted(self.kernels.items())],
            "fifos": [{"name": f.name, "producer": f.producer, "consumers": f.consumers, "depth": f.depth,
                       "type": f.type, "dims": f.dims} for f in self.fifos],
            "links": [{"src": s, "dst": d} for s, d in self.links],
            "buffers": self.buffers,
            "cores": self.cores,
            "args": [{"ssa": f"%arg{i}", "name": x, "type": arg_types[x]} for i, x in enumerate(args)],
            "sequence": seq,
            "plans": [{k: v for k, v in p.items() if k != "grp"} | {"output": p["grp"].output} for p in self.plans],
        }


def build_design(graph, hints: dict) -> dict:
    return _Builder(graph, hints).build()
