"""Execute a parsed, rules-checked design (aieparse.Design) on host buffers.

Model: a Kahn process network with unbounded FIFOs, which gives the array's data for
any design that does not deadlock there (the checker bounds what a core holds by the
FIFO depth). Each object FIFO is a stream of objects:
  host -> array   a FIFO fed by `dma_memcpy_nd`s: its elements are the host elements the
                  transfers' offset/sizes/strides address, in order (mlir-aie's offset
                  model, rules.offset_of);
  links           join concatenates one object of each input, distribute slices the
                  input object, a 1-to-1 link re-chunks; a `dimensionsToStream` on the
                  output re-reads each (owner) object through its pattern;
  cores           produce their FIFOs' objects (below);
  array -> host   a FIFO drained by `dma_memcpy_nd`s scatters its elements to the host
                  addresses of the transfers.
Streams are lazy: an object is computed when a consumer asks for it, so weights that a
design re-reads for every row block are never copied whole.

A core runs its whole program at once, vectorized over loop iterations: every acquire
gets, for each iteration of its enclosing loops, the index of the object it takes
(counting acquires through the loop nest), and every kernel call runs on all
iterations together; a matmul called inside a loop nested deeper than its accumulator
adds the iterations of that loop one by one, in order, as the core does. The kernels'
arithmetic is numerics.py. Every object a consumer takes must have been produced and
every produced object taken (no underflow, no leftovers), and every host access stays
inside its buffer; a wrong offset, size or stride therefore fails here or in the
comparison against the torch reference.
"""
from __future__ import annotations

from math import prod

from ...errors import FusebuildError
from . import kernels as KN
from . import numerics as NUM
from .aieparse import Design, mtype, numel, walk
from .rules import kind, offset_of


class EmulationError(FusebuildError):
    """The design moves data inconsistently (underflow, leftovers, out of bounds), or uses a
    pattern the emulator does not execute."""


def _torch():
    import torch
    return torch


# --- streams ---------------------------------------------------------------------------------

class Stream:
    """A FIFO's objects: `count` objects of `size` elements, computed by `get(indices)`.
    The last requests are remembered: the cores of a broadcast, and the pieces of a
    distribute, ask for the same objects one after the other."""

    def __init__(self, name, size, count, get, sliced=None, canon=None):
        self.name, self.size, self.count, self._get = name, size, count, get
        self._sliced = sliced          # get(idx, lo, hi): only elements lo..hi-1 of each object
        self.canon = canon             # canon(idx): equal ids for objects of equal data (re-reads), or None
        self._recent = []

    def get(self, idx, lo=0, hi=None):
        torch = _torch()
        hi = self.size if hi is None else hi
        idx = torch.as_tensor(idx, dtype=torch.int64)
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= self.count):
            raise EmulationError(f"@{self.name}: object {int(idx.max())} is read but only {self.count} were sent")
        key = (tuple(idx.shape), hash(idx.numpy().tobytes()), lo, hi)
        for k, v in self._recent:
            if k == key:
                return v
        flat = idx.reshape(-1)
        if self._sliced is not None:
            out = self._sliced(flat, lo, hi)
        else:
            out = self._get(flat)[:, lo:hi]
        out = out.reshape(*idx.shape, hi - lo)
        self._recent = [(key, out)] + self._recent[:1]
        return out


def _host_positions(ops, pos):
    """Host element offsets of stream positions `pos` through a list of transfers."""
    torch = _torch()
    counts = torch.tensor([prod(op["sizes"]) for op in ops], dtype=torch.int64)
    starts = torch.cumsum(counts, 0) - counts
    which = torch.searchsorted(starts, pos, right=True) - 1
    local = pos - starts[which]
    sizes = torch.tensor([op["sizes"] for op in ops], dtype=torch.int64)[which]
    strides = torch.tensor([op["strides"] for op in ops], dtype=torch.int64)[which]
    base = torch.tensor([offset_of(op) for op in ops], dtype=torch.int64)[which]
    out = base.clone()
    for d in range(3, -1, -1):
        out += (local % sizes[:, d]) * strides[:, d]
        local = local // sizes[:, d]
    return out


def _host_in(name, ops, host, size):
    """The stream of a host-fed FIFO. Each transfer is read as a strided view of the host
    buffer (a leading repeat read once), copied once and indexed per request."""
    torch = _torch()
    if len({op["arg"] for op in ops}) != 1:
        raise EmulationError(f"@{name}: transfers from several arguments")
    buf = host[ops[0]["arg"]]
    counts = [prod(op["sizes"]) for op in ops]
    total = sum(counts)
    if total % size:
        raise EmulationError(f"@{name}: the transfers move {total} elements, not whole objects of {size}")
    starts = torch.tensor([sum(counts[:i]) for i in range(len(ops))], dtype=torch.int64)
    cache = {}

    def data(i):
        op = ops[i]
        key = (offset_of(op), tuple(op["sizes"]), tuple(op["strides"]))
        if key not in cache:
            offset, sizes, strides = key
            if strides[0] == 0 and sizes[0] > 1:      # a repeat: one pass, read modulo
                sizes, strides = (1,) + sizes[1:], (0,) + strides[1:]
            last = offset + sum((s - 1) * t for s, t in zip(sizes, strides))
            if offset < 0 or last >= buf.numel():
                raise EmulationError(f"@{name}: a transfer reaches element {last} of a {buf.numel()}-element buffer")
            cache[key] = buf.as_strided(sizes, strides, offset).reshape(-1)
        return cache[key]

    aligned = all(c % size == 0 for c in counts)
    first = starts // size

    def sliced(idx, lo, hi):
        """Every transfer moves whole objects: index objects, not elements."""
        which = torch.searchsorted(first, idx.contiguous(), right=True) - 1
        ops_hit = torch.unique(which).tolist()
        if len(ops_hit) == 1:
            rows = data(ops_hit[0]).reshape(-1, size)
            return rows[:, lo:hi].index_select(0, (idx - first[ops_hit[0]]) % rows.shape[0])
        out = torch.empty((idx.numel(), hi - lo), dtype=buf.dtype)
        for w in ops_hit:
            sel = which == w
            rows = data(w).reshape(-1, size)
            out[sel] = rows[:, lo:hi].index_select(0, (idx[sel] - first[w]) % rows.shape[0])
        return out

    keys = {}
    op_key = torch.tensor([keys.setdefault((offset_of(op), tuple(op["sizes"]), tuple(op["strides"])), len(keys))
                           for op in ops], dtype=torch.int64)
    reps = torch.tensor([prod(op["sizes"][1:]) // size if op["strides"][0] == 0 and op["sizes"][0] > 1
                         else c // size for op, c in zip(ops, counts)], dtype=torch.int64)

    def canon(idx):
        """Objects of transfers with the same pattern (a re-read) get the same id."""
        which = torch.searchsorted(first, idx.contiguous(), right=True) - 1
        return op_key[which] * (int(reps.max()) + 1) + (idx - first[which]) % reps[which]

    def get(idx):
        if aligned:
            return sliced(idx, 0, size)
        pos = (idx[:, None] * size + torch.arange(size)[None, :]).reshape(-1)
        which = torch.searchsorted(starts, pos, right=True) - 1
        out = torch.empty(pos.numel(), dtype=buf.dtype)
        for w in torch.unique(which).tolist():
            sel = which == w
            flat = data(w)
            out[sel] = flat[(pos[sel] - starts[w]) % flat.numel()]
        return out.reshape(len(idx), size)
    return Stream(name, size, total // size, get, sliced if aligned else None, canon if aligned else None)


def _pattern(dims):
    torch = _torch()
    idx = torch.zeros(1, dtype=torch.int64)
    for s, t in dims:
        idx = (idx[:, None] + torch.arange(s)[None, :] * t).reshape(-1)
    return idx


def _link(d, L, streams):
    """Streams of a link's output FIFOs from its (complete) input streams."""
    torch = _torch()
    ins = [streams[n] for n in L.srcs]
    if len(ins) > 1:          # join: one object of every input, side by side
        count = ins[0].count
        if any(s.count != count for s in ins):
            raise EmulationError(f"join into @{L.dsts[0]}: inputs carry {[s.count for s in ins]} objects")
        owner = Stream(L.dsts[0], sum(s.size for s in ins), count,
                       lambda idx: torch.cat([s.get(idx) for s in ins], dim=-1))
        pieces = [(L.dsts[0], 0, owner.size)]
    else:
        owner = ins[0]
        if len(L.dsts) > 1:   # distribute: slices of each input object
            ends = L.dst_offsets[1:] + [owner.size]
            pieces = [(n, o, e - o) for n, o, e in zip(L.dsts, L.dst_offsets, ends)]
        else:
            out_size = numel(d.fifos[L.dsts[0]].type)
            total = owner.count * owner.size
            if total % out_size:
                raise EmulationError(f"@{L.dsts[0]}: {total} elements are not whole objects of {out_size}")
            if out_size != owner.size:
                flat = owner
                owner = Stream(L.dsts[0], out_size, total // out_size, lambda idx: _rechunk(flat, idx, out_size))
            pieces = [(L.dsts[0], 0, out_size)]
    for name, off, size in pieces:
        dims = d.fifos[name].dims
        sel = _pattern(dims) if dims else torch.arange(size)
        if int(sel.max()) >= size or sel.numel() != numel(d.fifos[name].type):
            raise EmulationError(f"@{name}: dimensionsToStream reads {sel.numel()} elements within {size}")
        if dims:
            streams[name] = Stream(name, sel.numel(), owner.count,
                                   lambda idx, o=owner, off=off, sel=sel: o.get(idx)[:, off + sel])
        else:       # a plain slice: ask the owner for just these elements
            streams[name] = Stream(name, size, owner.count, lambda idx, o=owner, off=off, size=size:
                                   o.get(idx, off, off + size),
                                   lambda idx, lo, hi, o=owner, off=off: o.get(idx, off + lo, off + hi), owner.canon)


def _rechunk(src, idx, size):
    torch = _torch()
    pos = (idx[:, None] * size + torch.arange(size)[None, :]).reshape(-1)
    objs, inv = torch.unique(pos // src.size, return_inverse=True)
    return src.get(objs)[inv, pos % src.size].reshape(len(idx), size)


# --- the network -------------------------------------------------------------------------------

def emulate(d: Design, host: dict) -> dict:
    """host: {arg ssa: flat torch tensor}; host-bound transfers write into those tensors."""
    streams, taken = {}, {}
    memcpys = [op for op in d.sequence if op["op"] == "memcpy"]
    for f in d.fifos.values():
        if kind(d, f.producer) == "shim":
            ops = [op for op in memcpys if op["fifo"] == f.name]
            streams[f.name] = _host_in(f.name, ops, host, numel(f.type))
    pending = [("link", L) for L in d.links] + [("core", c) for c in d.cores]
    while pending:
        ready = [p for p in pending if all(n in streams for n in _reads(d, p))]
        if not ready:
            raise EmulationError("no process can run (a cycle of FIFOs): " +
                                 ", ".join(f"{k} {_label(p)}" for k, p in pending))
        for p in ready:
            if p[0] == "link":
                _link(d, p[1], streams)
            else:
                _core(d, p[1], streams, taken)
            pending.remove(p)
    for f in d.fifos.values():
        for c in f.consumers:
            if kind(d, c) == "shim":
                _host_out(d, f, streams[f.name], [op for op in memcpys if op["fifo"] == f.name], host)
    for (name, tile), n in taken.items():
        if n != streams[name].count:
            raise EmulationError(f"@{name}: {streams[name].count} objects were sent but the core on {tile} took {n}")
    return host


def _reads(d, p):
    kind_, x = p
    if kind_ == "link":
        return x.srcs
    return sorted({s["fifo"] for s in walk(x["body"]) if s["op"] == "acquire" and s["port"] == "Consume"})


def _label(p):
    return f"@{p[1].dsts[0]}" if p[0] == "link" else p[1]["tile"]


def _host_out(d, f, stream, ops, host):
    torch = _torch()
    total = sum(prod(op["sizes"]) for op in ops)
    if total != stream.count * stream.size:
        raise EmulationError(f"@{f.name}: {stream.count * stream.size} elements arrive, the transfers take {total}")
    buf = host[ops[0]["arg"]]
    data = stream.get(torch.arange(stream.count)).reshape(-1)
    where = _host_positions(ops, torch.arange(total))
    if where.numel() and (int(where.min()) < 0 or int(where.max()) >= buf.numel()):
        raise EmulationError(f"@{f.name}: a transfer reaches element {int(where.max())} of a {buf.numel()}-element "
                             f"buffer")
    buf[where] = data.to(buf.dtype)


# --- cores ----------------------------------------------------------------------------------------

class _Val:
    """A value over the iteration space of its loop depth: a tensor, or lazy (stream, indices)."""

    def __init__(self, depth, tensor=None, stream=None, idx=None):
        self.depth, self.tensor, self.stream, self.idx = depth, tensor, stream, idx

    def at(self, sel=None):
        """The objects (fp32), for all iterations or one slice of the innermost loop axes."""
        if self.tensor is not None:
            return self.tensor
        idx = self.idx if sel is None else self.idx[sel]
        return self.stream.get(idx).float()


def _core(d, core, streams, taken):
    torch = _torch()
    tile = core["tile"]
    values, produced = {}, {}
    for ssa, (t, ty) in d.buffers.items():
        if t == tile:
            values[ssa] = _Val(0, torch.full((numel(ty),), float("nan")))

    def per_iter(body):
        n = {}
        for s in body:
            if s["op"] == "acquire":
                key = (s["fifo"], s["port"])
                n[key] = n.get(key, 0) + 1
            elif s["op"] == "for":
                for key, c in per_iter(s["body"]).items():
                    n[key] = n.get(key, 0) + c * s["count"]
        return n

    def run(body, depth, shape, counter):
        for s in body:
            if s["op"] == "for":
                c = s["count"]
                per = per_iter(s["body"])
                inner = {key: (counter.get(key, torch.zeros(shape, dtype=torch.int64))[..., None]
                               + torch.arange(c) * per.get(key, 0)) for key in set(counter) | set(per)}
                run(s["body"], depth + 1, shape + (c,), inner)
                for key, n in per.items():
                    counter[key] = counter.get(key, torch.zeros(shape, dtype=torch.int64)) + c * n
            elif s["op"] == "acquire":
                key = (s["fifo"], s["port"])
                idx = counter.get(key, torch.zeros(shape, dtype=torch.int64))
                counter[key] = idx + 1
                if s["port"] == "Consume":
                    values[s["value"]] = _Val(depth, stream=streams[s["fifo"]], idx=idx)
                else:
                    values[s["value"]] = _Val(depth)
                    produced.setdefault(s["fifo"], []).append((idx, s["value"]))
            elif s["op"] == "call":
                _call(d, s, values, depth, shape)

    top = {}
    run(core["body"], 0, (), top)
    for (name, port), n in top.items():
        if port == "Consume":
            taken[(name, tile)] = int(n)
    for name, items in produced.items():
        size = numel(d.fifos[name].type)
        total = int(top[(name, "Produce")])
        out = torch.full((total, size), float("nan"))
        for idx, ssa in items:
            v = values[ssa]
            if v.tensor is None:
                raise EmulationError(f"@{name}: core {tile} releases an object no kernel wrote")
            out[idx.reshape(-1)] = v.tensor.reshape(-1, size)
        dtype = mtype(d.fifos[name].type)[1]
        streams[name] = Stream(name, size, total, lambda idx, out=out: out[idx])
        streams[name].dtype = dtype


def _call(d, s, values, depth, shape):
    torch = _torch()
    k = KN.parse(s["func"])
    args = [values[a] for a in s["args"]]
    if "obj" in k:      # the name's _o<E>: the object the operand is read from
        ty = s["types"][0 if k["kind"] == "matmul" else 1]
        if numel(ty) != k["obj"]:
            raise EmulationError(f"line {s['line']}: @{s['func']} reads a {k['obj']}-element object; it is passed "
                                 f"a {ty}")
    q = NUM.mode(k["dtype"])
    kind_ = k["kind"]
    if kind_ == "zero":
        args[0].tensor, args[0].depth = torch.zeros(shape + (numel(s["types"][0]),)), depth
    elif kind_ == "matmul":
        _matmul(k, args, depth, shape, s)
    elif kind_ == "store":
        acc, out = args
        _same_depth(s, acc, depth)
        out.tensor, out.depth = NUM.store(acc.tensor, k["dtype"]), depth
    elif kind_ == "epilogue":
        acc = args[0]
        _same_depth(s, acc, depth)
        m, n = k["dims"]
        x = acc.tensor.reshape(shape + (m, n))
        if len(args) == 1:
            y = NUM.unary(k["op"], k["attrs"], x, q)
        else:
            obj, off = args[1].at(), k["offset"]
            part = {"row": lambda: obj[..., off:off + n].reshape(shape + (1, n)),
                    "col": lambda: obj[..., off:off + m].reshape(shape + (m, 1)),
                    "scalar": lambda: obj[..., off:off + 1].reshape(shape + (1, 1)),
                    "pair": lambda: obj[..., off:off + m * n].reshape(shape + (m, n))}[k["operand"]]()
            y = NUM.binary(k["op"], x, part, q)
        acc.tensor = y.reshape(shape + (m * n,))
    elif kind_ == "ew":
        r, c = k["dims"]
        view = {"full": (r, c), "row": (1, c), "col": (r, 1), "scalar": (1, 1)}
        ins = [a.at().reshape(shape + view[kk]) for a, kk in zip(args[:-1], k["kinds"])]
        y = NUM.unary(k["op"], k["attrs"], ins[0], q) if len(ins) == 1 else NUM.binary(k["op"], ins[0], ins[1], q)
        out = args[-1]
        out.tensor, out.depth = NUM.store(y.expand(shape + (r, c)).reshape(shape + (r * c,)), k["dtype"]), depth


def _same_depth(s, v, depth):
    if v.tensor is None or v.depth != depth:
        raise EmulationError(f"line {s['line']}: @{s['func']} reads a value not written in this loop (the batched "
                             f"emulator runs kernels on values of their own loop depth)")


def _matmul(k, args, depth, shape, s):
    """acc += a @ b on the kernel's tiles. The iterations of loops inside the accumulator's
    depth (the K steps) are added one by one, in order, as the core does; the tile
    products themselves are computed in batches (CHUNK elements of operands at a time)."""
    torch = _torch()
    a, b, acc = args
    m, kk, n = k["dims"]
    P = k["panels"]
    if acc.tensor is None or acc.depth > depth:
        raise EmulationError(f"line {s['line']}: @{s['func']} accumulates into a value that is not initialized")
    if a.tensor is not None or b.tensor is not None:
        raise EmulationError(f"line {s['line']}: matmul operands must come from FIFOs")
    outer, inner = shape[:acc.depth], shape[acc.depth:]
    n_out, n_in = prod(outer), prod(inner)
    ia, ib = a.idx.reshape(n_out, n_in), b.idx.reshape(n_out, n_in)
    acc_t = acc.tensor.reshape(n_out, m * n)
    # an operand re-read with a period (weights for every row block) is gathered once and broadcast
    pb = _period(b.stream, ib)
    pa = _period(a.stream, ia) if pb == n_out else n_out
    per = min(pa, pb)
    step = max(per, CHUNK // (n_in * (a.stream.size + b.stream.size + m * n)) // per * per)
    parts = []
    for o in range(0, n_out, step):
        rows = min(step, n_out - o)
        A = a.stream.get(ia[:pa] if pa < n_out else ia[o:o + rows], 0, m * kk).float()
        B = b.stream.get(ib[:pb] if pb < n_out else ib[o:o + rows], 0, n * kk).float()
        A = A.reshape(-1, n_in, P, m, kk // P).permute(0, 1, 3, 2, 4).reshape(-1, n_in, m, kk)
        B = B.reshape(-1, n_in, n, kk).transpose(2, 3) if k["tb"] else B.reshape(-1, n_in, kk, n)
        if pb < n_out:
            prods = A.reshape(rows // pb, pb, n_in, m, kk) @ B
        elif pa < n_out:
            prods = A @ B.reshape(rows // pa, pa, n_in, kk, n)
        else:
            prods = A @ B
        prods = prods.reshape(rows, n_in, m * n)
        c = acc_t[o:o + rows]
        for i in range(n_in):
            c = c + prods[:, i]
        parts.append(c)
    acc.tensor = torch.cat(parts).reshape(outer + (m * n,))


CHUNK = 1 << 23          # elements of operands gathered at once by the matmul emulation


def _period(stream, ix) -> int:
    """The smallest p such that the objects of outer iteration i are those of i mod p (re-reads
    of the same data, e.g. weights for every row block); len(ix) when there is none."""
    n_out = ix.shape[0]
    if stream.canon is None or n_out == 1:
        return n_out
    keys = stream.canon(ix.reshape(-1)).reshape(ix.shape)
    for p in range(1, n_out):
        if n_out % p == 0 and bool((keys.reshape(n_out // p, p, -1) == keys[:p]).all()):
            return p
    return n_out


