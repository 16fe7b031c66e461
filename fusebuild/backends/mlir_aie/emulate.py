"""Execute a parsed design (aieparse.Design) on host buffers, with torch as the tiles.

The model is a Kahn process network with unbounded FIFOs, which gives the same data as
the array for any design that does not deadlock there (the checker bounds what each
core holds by the FIFO depth):
  host -> array   each `dma_memcpy_nd` on a shim-fed FIFO gathers host elements with
                  its offsets/sizes/strides and appends them to that FIFO's stream;
  mem tile links  each object of the source FIFO is re-read through the destination's
                  `dimensionsToStream` (or copied) into the destination's stream;
  cores           the core body runs: acquire/release walk the streams, kernels run the
                  op's torch reference (ops.OPS) on the tiles (kernels.parse_kernel);
  array -> host   each `dma_memcpy_nd` on a host-bound FIFO scatters the next elements
                  of its stream to the host addresses of its pattern.
A process runs once every FIFO it reads is complete. Every element a consumer reads must
have been produced (no underflow) and every produced element read (no leftovers); every
host access must stay inside its buffer. A wrong offset, size or stride therefore fails
either here or in the numeric comparison against the torch reference.
"""
from __future__ import annotations

from math import prod

from ...errors import FusebuildError
from ...ir.graph import Node
from ...ir.ops import OPS
from .aieparse import Design, _linear_offset, kind, mtype
from .kernels import parse_kernel


class EmulationError(FusebuildError):
    """The design moves data inconsistently (underflow, leftovers, out of bounds)."""


TORCH_DT = {"f32": "float32", "bf16": "bfloat16", "f16": "float16", "i32": "int32"}


class _Stream:
    def __init__(self, name, consumers):
        self.name, self.chunks, self.data, self.done = name, [], None, False
        self.cursor = {c: 0 for c in consumers}

    def push(self, flat):
        self.chunks.append(flat.reshape(-1))

    def close(self):
        import torch
        self.data = torch.cat(self.chunks) if self.chunks else torch.empty(0)
        self.done = True

    def take(self, consumer, n, what):
        start = self.cursor[consumer]
        if start + n > self.data.numel():
            raise EmulationError(f"@{self.name}: {what} reads elements {start}..{start + n - 1} but only "
                                 f"{self.data.numel()} were sent")
        return self.data[start:start + n]

    def advance(self, consumer, n):
        self.cursor[consumer] += n


def pattern_indices(offset, sizes, strides):
    """Flat element indices of a 4-D (outermost first) access pattern, in stream order."""
    import torch
    idx = torch.tensor([offset], dtype=torch.int64)
    for s, t in zip(sizes, strides):
        idx = (idx[:, None] + torch.arange(s, dtype=torch.int64)[None, :] * t).reshape(-1)
    return idx


def emulate(d: Design, host: dict) -> dict:
    """host: {arg ssa: flat torch tensor}; host-bound transfers write into those tensors."""
    streams = {f.name: _Stream(f.name, f.consumers) for f in d.fifos.values()}
    procs = []          # (name, reads: [fifo], writes: [fifo], fn)
    into = [op for op in d.sequence if op["op"] == "memcpy" and kind(d, d.fifos[op["fifo"]].producer) == "shim"]
    outof = [op for op in d.sequence if op["op"] == "memcpy" and op not in into]
    for name in sorted({op["fifo"] for op in into}):
        ops = [o for o in into if o["fifo"] == name]
        procs.append((f"host->@{name}", [], [name], lambda name=name, ops=ops: _host_in(d, host, streams[name], ops)))
    for src, dst, _ in d.links:
        procs.append((f"link @{src[0]}->@{dst[0]}", src, dst, lambda s=src[0], t=dst[0]: _link(d, streams, s, t)))
    for core in d.cores:
        reads = sorted({s["fifo"] for s in _walk(core["body"]) if s["op"] == "acquire" and s["port"] == "Consume"})
        writes = sorted({s["fifo"] for s in _walk(core["body"]) if s["op"] == "acquire" and s["port"] == "Produce"})
        procs.append((f"core {core['tile']}", reads, writes, lambda c=core: _core(d, streams, c)))
    for name in sorted({op["fifo"] for op in outof}):
        ops = [o for o in outof if o["fifo"] == name]
        procs.append((f"@{name}->host", [name], [], lambda name=name, ops=ops: _host_out(d, host, streams[name], ops)))
    writers = {}
    for pname, _, writes, _ in procs:
        for w in writes:
            writers.setdefault(w, []).append(pname)
    for name in streams:
        if name not in writers:
            raise EmulationError(f"@{name} has no producer in the design or runtime sequence")
    pending = list(procs)
    while pending:
        ready = [p for p in pending if all(streams[r].done for r in p[1])]
        if not ready:
            raise EmulationError("no process can run (a cycle of FIFOs): " + ", ".join(p[0] for p in pending))
        for p in ready:
            p[3]()
            pending.remove(p)
            for w in p[2]:
                if all(q not in pending for q in procs if w in q[2]):
                    streams[w].close()
    for s in streams.values():
        for consumer, used in s.cursor.items():
            if used != s.data.numel():
                raise EmulationError(f"@{s.name}: {s.data.numel()} elements were sent but {consumer} read {used}")
    return host


def _walk(body):
    for s in body:
        yield s
        if s["op"] == "for":
            yield from _walk(s["body"])


def _gather_indices(op, buf_numel, shape):
    idx = pattern_indices(_linear_offset(op["offsets"], shape), op["sizes"], op["strides"])
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= buf_numel):
        raise EmulationError(f"line {op['line']}: DMA on {op['arg']} reaches element {int(idx.max())} of a "
                             f"{buf_numel}-element buffer")
    return idx


def _host_in(d, host, stream, ops):
    for op in ops:
        shape, _ = mtype(op["type"])
        buf = host[op["arg"]]
        stream.push(buf[_gather_indices(op, buf.numel(), shape)])


def _host_out(d, host, stream, ops):
    consumer = next(c for c in d.fifos[stream.name].consumers if kind(d, c) == "shim")
    for op in ops:
        shape, _ = mtype(op["type"])
        buf = host[op["arg"]]
        idx = _gather_indices(op, buf.numel(), shape)
        buf[idx] = stream.take(consumer, idx.numel(), f"line {op['line']} (to host)")
        stream.advance(consumer, idx.numel())


def _link(d, streams, src, dst):
    s, t = streams[src], streams[dst]
    fs, ft = d.fifos[src], d.fifos[dst]
    mem = ft.producer
    n = prod(mtype(fs.type)[0])
    if s.data.numel() % n:
        raise EmulationError(f"@{src}: {s.data.numel()} elements are not whole objects of {n}")
    objs = s.data.reshape(-1, n)
    if ft.dims:
        objs = objs[:, pattern_indices(0, [x for x, _ in ft.dims], [y for _, y in ft.dims])]
    t.push(objs.reshape(-1))
    s.advance(mem, s.data.numel())


def _core(d, streams, core):
    import torch
    env = {ssa: torch.full(mtype(ty)[0], float("nan"), dtype=getattr(torch, TORCH_DT[mtype(ty)[1]]))
           for ssa, (tile, ty) in d.buffers.items() if tile == core["tile"]}
    held = {}             # (fifo, port) -> list of objects (oldest first)
    _run(d, streams, core, core["body"], env, held)


def _run(d, streams, core, body, env, held):
    import torch
    tile = core["tile"]
    for s in body:
        if s["op"] == "for":
            for _ in range(s["count"]):
                _run(d, streams, core, s["body"], env, held)
        elif s["op"] == "acquire":
            shape, et = mtype(s["type"])
            key = (s["fifo"], s["port"])
            objs = held.setdefault(key, [])
            if s["port"] == "Produce":
                obj = torch.full(shape, float("nan"), dtype=getattr(torch, TORCH_DT[et]))
            else:
                st, n = streams[s["fifo"]], prod(shape)
                ahead = sum(o.numel() for o in objs)
                start = st.cursor[tile] + ahead
                if start + n > st.data.numel():
                    raise EmulationError(f"@{s['fifo']}: core {tile} acquires elements {start}..{start + n - 1} "
                                         f"but only {st.data.numel()} were sent (line {s['line']})")
                obj = st.data[start:start + n].reshape(shape)
            objs.append(obj)
            env[s["value"]] = obj
        elif s["op"] == "release":
            obj = held[(s["fifo"], s["port"])].pop(0)
            if s["port"] == "Produce":
                streams[s["fifo"]].push(obj.clone())
            else:
                streams[s["fifo"]].advance(tile, obj.numel())
        elif s["op"] == "call":
            _kernel(s["func"], [env[a] for a in s["args"]])


def _kernel(name, args):
    """Run one per-tile kernel with the op's torch reference (see kernels.py for names)."""
    k = parse_kernel(name)
    op = k["op"]
    if op == "zero":
        args[0].zero_()
        return
    if op == "matmul":
        a, b, c = args
        A, C = _unblock(a), _unblock(c)
        B = _unblock(b)
        node = Node("matmul", ("a", "b"), "c", (("acc_dtype", "float32"), ("transpose_b", k["transpose_b"])))
        C = C + OPS["matmul"].reference([A, B], node.attr).to(C.dtype)
        c.copy_(_block(C, c.shape))
        return
    ins, out = args[:-1], args[-1]
    attrs = {key: adef.default for key, adef in OPS[op].attrs.items()} | k["attrs"]
    out.copy_(OPS[op].reference(list(ins), attrs))   # elementwise: same blocking on every operand


def _unblock(x):
    """(rows/br, cols/bc, br, bc) blocks -> rows x cols."""
    a, b, r, s = x.shape
    return x.permute(0, 2, 1, 3).reshape(a * r, b * s)


def _block(x, shape):
    a, b, r, s = shape
    return x.reshape(a, r, b, s).permute(0, 2, 1, 3)
