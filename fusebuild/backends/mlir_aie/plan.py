"""Planning one NPU design for one tiling: cores, object FIFOs, links, host transfers, and
what every tile then uses. Pure Python (no torch, no text), so the fit search (fit.py)
can plan many candidate tilings when a spec loads; `design.py` lays a plan out for the
templates.

The design of a GEMM chain (structure.py), for tiles m x n x k:
- group g runs on `P` cores; core j owns the output column tiles jj*P + j (interleaved,
  so the P cores' tiles of one step are contiguous columns), all M rows in row blocks
  of m: T = N / (P n) column tiles per core, KT = K / k steps per tile;
- A (host) comes shim -> mem tile -> broadcast to every core of the group (and of a
  paired group that shares it), one m x k object per step, re-read for each of the T
  column tiles; the epilogue's host operands (bias rows, columns, scalars) are joined
  into the same object at the mem tile (P n values per step for a row operand), so a
  core never has a third input stream;
- B (host weights) comes shim -> mem tile in one object per step for a chunk of up to 4
  cores and is distributed there, one n x k tile per core;
- A produced on the array (SwiGLU's h): the producer cores' tiles are joined at a mem
  tile into one m x (P_src n) object (P_src row-major panels) and broadcast to the
  consumer group, whose cores then own one column tile each (T = 1);
- an epilogue operand produced on the array (SwiGLU's silu(gate)) goes core to core
  through shared memory: producer core j sits directly below consumer core j;
- host outputs go core -> mem tile -> shim, one stream per core.
Each core keeps an fp32 accumulator (in its output object for float32 designs, in an
`aie.buffer` for bfloat16 ones), runs the epilogue in place and, for bfloat16, rounds
once into the output object.

An elementwise node runs on up to one core per column, its operands and result
streaming shim <-> core directly in r x c tiles.

Planning numbers are the generator's own (`PLANNING`); the checker (rules.py) has its
own table, and a test keeps the two in step.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ...errors import LayoutError
from ...ir import layouts as L
from . import kernels as K
from .structure import DesignError, Structure

PLANNING = {
    "columns": {"npu1": 4, "npu2": 8}, "core_rows": (2, 3, 4, 5), "mem_row": 1,
    "core_bytes": 64 * 1024, "stack": 1024, "mem_bytes": 512 * 1024,
    "channels": {"core": 2, "mem": 6, "shim": 2},
    "bds": {"core": 16, "mem": 48, "shim": 16}, "locks": {"core": 16, "mem": 64, "shim": 16},
    "depth": 2, "chunk": 4,
}
# r x s x t of the kernels' aie::mmul, per data type; bf16 4x8x8 is native on AIE2P (npu2), AIE2
# (npu1) takes 4x8x4 (MMAC_T); float 4x8x4 exists on both only through the AIE API's fp32 emulation
MAC = {"bfloat16": (4, 8, 8), "float32": (4, 8, 4)}
MMAC_T = {("npu1", "bfloat16"): 4}
VEC = 16                                                  # lanes of the kernels' elementwise vectors
EB = {"float32": 4, "bfloat16": 2}


class PlanError(DesignError):
    """A tiling that does not fit; `limit` names the limit, for the fit search's report."""

    def __init__(self, limit: str, message: str, valid: str | None = None):
        super().__init__(message, valid=valid)
        self.limit = limit


@dataclass(frozen=True)
class Tiling:
    m: int
    n: int
    k: int
    cores: tuple            # cores per GEMM group (elementwise: one entry)

    def text(self) -> str:
        return f"tile_m={self.m} tile_n={self.n} tile_k={self.k} cores={'/'.join(map(str, self.cores))}"


@dataclass
class Fifo:
    name: str
    producer: tuple
    consumers: list
    elems: int
    dtype: str
    depth: int = PLANNING["depth"]
    dims: list = field(default_factory=list)
    stream: tuple = None    # (tensor, kind, group) of a host operand FIFO joined into an A object

    @property
    def type(self) -> str:
        return K.memref(self.elems, self.dtype)


@dataclass
class Stream:
    """A host transfer: per row block, (offset, loops) pieces in the FIFO's stream order."""
    tensor: str
    fifo: str
    shim: tuple
    out: bool
    blocks: list            # [[(offset, loops), ...] per row block]


@dataclass
class Plan:
    device: str
    tiling: Tiling
    fifos: list = field(default_factory=list)
    links: list = field(default_factory=list)        # {"srcs", "dsts", "src_offsets", "dst_offsets", "tile"}
    buffers: list = field(default_factory=list)      # {"ssa", "tile", "type"}
    cores: list = field(default_factory=list)        # {"tile", "group", "body"}
    kernels: dict = field(default_factory=dict)      # name -> [types]
    streams: list = field(default_factory=list)
    usage: dict = field(default_factory=dict)        # tile -> Use
    blocks: int = 1
    notes: list = field(default_factory=list)        # one line per group for the design's header


@dataclass
class Use:
    s2mm: int = 0
    mm2s: int = 0
    bds: int = 0
    bd_parity: list = field(default_factory=lambda: [0, 0])
    locks: int = 0
    bytes: int = 0


def tname(tile) -> str:
    return f"%tile_{tile[0]}_{tile[1]}"


class _Planner:
    def __init__(self, st: Structure, t: Tiling, device: str, tensors: dict):
        self.st, self.t, self.device, self.st_tensors = st, t, device, tensors
        self.cols = PLANNING["columns"][device]
        self.plan = Plan(device, t)
        self.dt = st.dtype
        self.eb = EB[self.dt]
        self.names = set()

    # --- resources ---------------------------------------------------------------------------
    def use(self, tile) -> Use:
        return self.plan.usage.setdefault(tile, Use())

    def kind(self, tile) -> str:
        return "shim" if tile[1] == 0 else "mem" if tile[1] == PLANNING["mem_row"] else "core"

    def _fits(self, tile, s2mm=0, mm2s=0, bds=(), nbytes=0, locks=0) -> str:
        """'' if tile can take this much more, else which limit it breaks."""
        u, k = self.use(tile), self.kind(tile)
        ch = PLANNING["channels"][k]
        if u.s2mm + s2mm > ch or u.mm2s + mm2s > ch:
            return f"DMA channels of the {k} tile {tile}"
        if u.locks + locks > PLANNING["locks"][k]:
            return f"locks of the {k} tile {tile}"
        if k == "core":
            if u.bds + sum(d for _, d in bds) > PLANNING["bds"]["core"]:
                return f"buffer descriptors of the compute tile {tile}"
            if u.bytes + nbytes > PLANNING["core_bytes"] - PLANNING["stack"]:
                return f"data memory of the compute tile {tile}"
        if k == "mem":
            if u.bytes + nbytes > PLANNING["mem_bytes"]:
                return f"memory of the mem tile {tile}"
            par = self._parity(u, bds)
            if max(par) > PLANNING["bds"]["mem"] // 2:
                return f"buffer descriptors of the mem tile {tile}"
        return ""

    def _parity(self, u, bds):
        par = list(u.bd_parity)
        s, m = u.s2mm, u.mm2s
        for direction, depth in bds:
            ch = s if direction == "S2MM" else m
            par[ch % 2] += depth
            s, m = (s + 1, m) if direction == "S2MM" else (s, m + 1)
        return par

    def take(self, tile, s2mm=0, mm2s=0, bds=(), nbytes=0, locks=0):
        why = self._fits(tile, s2mm, mm2s, bds, nbytes, locks)
        if why:
            raise PlanError("channels" if "channel" in why else why.split(" of ")[0], f"the design needs more {why}")
        u = self.use(tile)
        if self.kind(tile) == "mem":
            u.bd_parity = self._parity(u, bds)
        u.s2mm += s2mm
        u.mm2s += mm2s
        u.bds += sum(d for _, d in bds)
        u.locks += locks
        u.bytes += nbytes

    def near(self, row, home, **need):
        """The tile of `row` nearest to column `home` that can take `need`."""
        for c in sorted(range(self.cols), key=lambda c: (abs(c - home), c)):
            if not self._fits((c, row), **need):
                return (c, row)
        what = {1: "mem tile", 0: "shim"}[row]
        why = self._fits((home, row), **need)
        k = self.kind((home, row))
        ch = PLANNING["channels"][k]
        size = [f"{need[d]} {w} DMA channel{'s' if need[d] > 1 else ''}" for d, w in (("s2mm", "input"),
                                                                                     ("mm2s", "output")) if need.get(d)]
        size += [f"{need['nbytes']} bytes"] if need.get("nbytes") else []
        raise PlanError("channels" if "channel" in why else why.split(" of ")[0],
                        f"no {what} has room for another {'link' if row else 'transfer'} ({', '.join(size)}): the "
                        f"nearest, {(home, row)}, would exceed its {why.split(' of ')[0]} (a {what} has {ch} input + "
                        f"{ch} output DMA channels, {PLANNING['bds'][k]} buffer descriptors, {PLANNING['locks'][k]} "
                        f"locks" + (f", {PLANNING['mem_bytes']} bytes)" if k == "mem" else ")"))

    def name(self, base) -> str:
        name, i = base, 1
        while name in self.names:
            name, i = f"{base}_{i}", i + 1
        self.names.add(name)
        return name

    # --- FIFOs ---------------------------------------------------------------------------------
    def fifo(self, base, producer, consumers, elems, dims=()) -> Fifo:
        f = Fifo(self.name(base), producer, list(consumers), elems, self.dt, dims=list(dims))
        self.plan.fifos.append(f)
        return f

    def core_ends(self, f: Fifo, shared=False):
        """Account a FIFO's compute-tile ends (DMA, or one shared-memory buffer set)."""
        size = f.elems * self.eb * f.depth
        if shared:
            self.take(f.producer, nbytes=size, locks=2)
            return
        for t, d in [(f.producer, "MM2S")] + [(c, "S2MM") for c in f.consumers]:
            if self.kind(t) == "core":
                self.take(t, s2mm=d == "S2MM", mm2s=d == "MM2S", bds=((d, f.depth),), nbytes=size, locks=2)

    def link(self, ins: list, outs: list, mem):
        """A link at mem tile `mem`: inputs (FIFOs consumed there) -> outputs (produced there)."""
        owner = outs[0] if len(ins) > 1 else ins[0] if len(outs) > 1 else max(ins + outs, key=lambda f: f.elems)
        bds = tuple(("S2MM", f.depth) for f in ins) + tuple(("MM2S", f.depth) for f in outs)
        self.take(mem, s2mm=len(ins), mm2s=len(outs), bds=bds, nbytes=owner.elems * self.eb * owner.depth,
                  locks=2 * len(ins + outs))
        src = _offsets([f.elems for f in ins]) if len(ins) > 1 else []
        dst = _offsets([f.elems for f in outs]) if len(outs) > 1 else []
        self.plan.links.append({"srcs": [f.name for f in ins], "dsts": [f.name for f in outs], "src_offsets": src,
                                "dst_offsets": dst, "tile": mem})

    def mem_for(self, home, n_in, n_out, nbytes):
        bds = tuple(("S2MM", PLANNING["depth"]) for _ in range(n_in)) + \
            tuple(("MM2S", PLANNING["depth"]) for _ in range(n_out))
        return self.near(PLANNING["mem_row"], home, s2mm=n_in, mm2s=n_out, bds=bds, nbytes=nbytes,
                         locks=2 * (n_in + n_out))

    def shim_for(self, home, out):
        tile = self.near(0, home, s2mm=int(out), mm2s=int(not out), locks=2)
        self.take(tile, s2mm=int(out), mm2s=int(not out), locks=2)
        return tile

    def kernel(self, name, types):
        if self.plan.kernels.setdefault(name, types) != types:
            raise DesignError(f"kernel {name} used with two signatures ({self.plan.kernels[name]} and {types}): "
                              f"an internal kernel-naming error of fusebuild's mlir-aie planner")
        return name


def _offsets(sizes):
    out, acc = [], 0
    for s in sizes:
        out.append(acc)
        acc += s
    return out


def dma_op_count(tensor, blocks, eb) -> int:
    try:
        return sum(len(L.dma_ops(off, loops, eb, L.NPU_SHIM_DMA, tensor)) for off, loops in blocks)
    except LayoutError as err:
        raise PlanError("DMA patterns", err.message) from None


def plan(st: Structure, t: Tiling, tensors: dict, device: str = "npu2") -> Plan:
    """The plan of `st` (graph tensors `tensors`) for tiling `t`, or PlanError naming the
    limit that fails."""
    if st.kind == "elementwise":
        from .plan_ew import plan_elementwise
        return plan_elementwise(_Planner(st, t, device, tensors))
    from .plan_gemm import plan_gemm
    return plan_gemm(_Planner(st, t, device, tensors))


def place(cols, n_cores, pairs):
    """Core tiles for each group: `pairs` maps a group to the group whose cores must sit
    directly below its own (shared memory). Paired groups take rows (2, 3) then (4, 5)
    column by column; the others fill the remaining tiles row by row."""
    free = [(c, r) for r in PLANNING["core_rows"] for c in range(cols)]
    tiles = {}
    for gi, src in pairs.items():
        spots = [((c, lo), (c, lo + 1)) for lo in (2, 4) for c in range(cols)
                 if (c, lo) in free and (c, lo + 1) in free]
        if len(spots) < n_cores[gi]:
            raise PlanError("cores", f"{n_cores[gi]} vertically adjacent core pairs needed; {len(spots)} are free")
        tiles[src] = [lo for lo, _ in spots[:n_cores[gi]]]
        tiles[gi] = [hi for _, hi in spots[:n_cores[gi]]]
        for a, b in spots[:n_cores[gi]]:
            free.remove(a)
            free.remove(b)
    for gi, n in enumerate(n_cores):
        if gi in tiles:
            continue
        if len(free) < n:
            raise PlanError("cores", f"the design needs {sum(n_cores)} compute cores; the device has "
                                     f"{cols * len(PLANNING['core_rows'])}")
        tiles[gi], free = free[:n], free[n:]
    return tiles


def core_bytes(parts) -> int:
    """Data memory of a core: stack + each (elements, bytes per element, copies)."""
    return PLANNING["stack"] + sum(e * b * c for e, b, c in parts)


def check_core_bytes(who, parts):
    need = core_bytes(parts)
    if need > PLANNING["core_bytes"]:
        raise PlanError("local memory", f"a core of {who} needs {need} bytes of data memory "
                                        f"({PLANNING['stack']} stack + tiles); a compute tile has "
                                        f"{PLANNING['core_bytes']}")
    return need

