"""Lay a plan (plan.py) out as the data the design templates print.

Only identifiers and numbers reach the text: tensor and node names (checked
identifiers of the spec), kernel names (kernels.py), numbers. The runtime sequence
issues, per row block, the host-bound transfers first (their buffer descriptors wait
for data), then the host-to-array ones, then a dma_wait per host-bound FIFO; BD ids
count up per shim tile within a row block and are free again after its waits. Each
transfer's offset is written in mlir-aie's model (NpuDmaMemcpyNdOp::getOffsetInBytes:
sum of offset[i] * stride[i]), on a dimension of stride 1.
"""
from __future__ import annotations

from math import prod

from ...ir import layouts as L
from .plan import EB, PLANNING, Plan, tname
from .structure import DesignError
from .version import KERNEL_OBJECT, MLIR_AIE


def offsets_for(offset: int, strides: list) -> list:
    """Offsets (outermost first) whose sum of offset[i] * stride[i] is `offset`."""
    out = [0] * len(strides)
    ones = [i for i in range(len(strides) - 1, -1, -1) if strides[i] == 1]
    if ones:
        out[ones[0]] = offset
        return out
    rem = offset
    for i, s in enumerate(strides):
        if s > 0:
            out[i], rem = rem // s, rem % s
    if rem:
        raise DesignError(f"offset {offset} cannot be written on strides {strides}")
    return out


def context(plan: Plan, graph) -> dict:
    t = graph.tensors
    args = list(graph.inputs) + list(graph.outputs)
    arg_types = {x: f"memref<{t[x].layout.size if t[x].layout else prod(t[x].shape)}x"
                    f"{'f32' if t[x].dtype == 'float32' else 'bf16'}>" for x in args}
    dt = next(iter({x.dtype for x in t.values()}))
    seq = []
    for i in range(plan.blocks):
        ids = {}
        for st in sorted(plan.streams, key=lambda s: not s.out):
            for offset, loops in st.blocks[i]:
                for off, sizes, strides in L.dma_ops(offset, loops, EB[dt], L.NPU_SHIM_DMA, st.tensor):
                    bd = ids.get(st.shim, 0)
                    ids[st.shim] = bd + 1
                    seq.append({"op": "memcpy", "arg": f"%arg{args.index(st.tensor)}",
                                "offsets": offsets_for(off, strides),
                                "sizes": sizes, "strides": strides, "fifo": st.fifo, "id": bd,
                                "type": arg_types[st.tensor], "token": st.out})
        seq += [{"op": "wait", "fifo": st.fifo} for st in plan.streams if st.out]
    used = {f.producer for f in plan.fifos} | {c for f in plan.fifos for c in f.consumers}
    used |= {tuple(int(v) for v in c["tile"].split("_")[1:]) for c in plan.cores}
    return {
        "mlir_aie": MLIR_AIE,
        "device": plan.device,
        "notes": plan.notes,
        "graph_lines": [f"{n.output} = {n.op}({', '.join(n.inputs)})" for n in graph.nodes],
        "tiles": [{"ssa": tname(x), "col": x[0], "row": x[1]} for x in sorted(used, key=lambda x: (x[1], x[0]))],
        "kernels": [{"name": k, "types": v, "object": KERNEL_OBJECT} for k, v in sorted(plan.kernels.items())],
        "fifos": [{"name": f.name, "producer": tname(f.producer), "consumers": [tname(c) for c in f.consumers],
                   "depth": f.depth, "type": f.type, "dims": f.dims} for f in plan.fifos],
        "links": [{"src": lk["srcs"], "dst": lk["dsts"], "src_offsets": lk["src_offsets"],
                   "dst_offsets": lk["dst_offsets"]} for lk in plan.links],
        "buffers": [dict(b, name=b["ssa"][1:]) for b in plan.buffers],
        "cores": [{"tile": c["tile"], "ssa": "%core" + c["tile"][len("%tile"):], "body": c["body"],
                   "group": c["group"], "stack": PLANNING["stack"]} for c in plan.cores],
        "args": [{"ssa": f"%arg{i}", "name": x, "type": arg_types[x]} for i, x in enumerate(args)],
        "sequence": seq,
    }
