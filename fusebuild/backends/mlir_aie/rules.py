"""The checker: mlir-aie's verifier and target-model rules, applied to a parsed design.

Each rule in `RULES` names the mlir-aie source it follows (see facts.py for the file
list) and reads its numbers from `facts.py` only: never from the generator, so a
wrong planning number cannot be checked against itself. `check` raises the first
violation as an AieCheckError whose message names the construct (object FIFO, tile,
core, runtime-sequence op), what is wrong, and the rule:

    @w_L2L1_0: ... (rule <key>: <statement> [<mlir-aie source>])

Model of resources, as mlir-aie's object-FIFO lowering (OFT) allocates them:
- a FIFO needs DMAs unless it has one consumer, no `dimensionsToStream`, is in no
  link, and producer and consumer are compute tiles that share memory (isSharedMemory:
  AIE2 cores reach the memory of their north, south, east and west neighbours); then
  one buffer set lives on the producer when the consumer can reach it, else on the
  consumer;
- with DMAs, the producer uses one MM2S channel and `depth` objects and BDs on its
  tile, each consumer one S2MM channel, `depth` objects and BDs on its tile; a link
  tile holds the objects of only the bigger FIFO (join: the output, distribute: the
  input, 1:1: the bigger element) and each linked FIFO end uses a channel there;
- every FIFO end that holds buffers takes 2 locks on its tile (semaphore locks);
- data memory of a core = stack (`stack_size`, at address 0) + its buffers + the FIFO
  objects it holds (AB basicAllocation; bank-aware allocation falls back to it).
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod

from . import facts as F
from .aieparse import ELEM_BYTES, AieCheckError, Design, mtype, nbytes, numel, walk


@dataclass(frozen=True)
class Rule:
    statement: str
    source: str


RULES = {
    "tile-in-device": Rule("tiles lie inside the device's columns and rows",
                           "AIEDialect.cpp TileOp::verify"),
    "core-on-compute-tile": Rule("aie.core only on a compute tile", "AIEDialect.cpp CoreOp::verify"),
    "kernel-link-with": Rule("kernels are declared with a func-level link_with (mlir-aie >= PR #2922)",
                             "AIEAssignCoreLinkFiles.cpp"),
    "fifo-ends": Rule("an object FIFO joins defined tiles, depth >= 1, never shim to shim",
                      "AIEDialect.cpp ObjectFifoCreateOp::verify"),
    "no-shim-dims": Rule("dimensionsToStream is not supported on shim tile producers",
                         "AIEDialect.cpp ObjectFifoCreateOp::verify"),
    "link-point": Rule("a link's FIFOs meet at one shared tile (a mem tile in fusebuild designs), each FIFO in "
                       "at most one link, never join and distribute at once",
                       "AIEDialect.cpp ObjectFifoLinkOp::verify, getOptionalSharedTile"),
    "link-offsets": Rule("join gives one source offset per input and distribute one destination offset per "
                         "output; the pieces tile the bigger object exactly",
                         "AIEDialect.cpp ObjectFifoLinkOp::verify, getJoinTransferLengths"),
    "distribute-dims": Rule("the input FIFO of a distribute has no dimensionsToStream",
                            "AIEDialect.cpp ObjectFifoLinkOp::verify"),
    "bd-dims": Rule("a BD has at most 4 dimensions on a mem tile and 3 on a compute tile",
                    "AIEDialect.cpp DMABDOp::verify"),
    "bd-dim-size": Rule("each BD dimension size is at most 512 (the verifier refuses sizes >= 513)",
                        "AIEDialect.cpp DMABDOp::verify"),
    "bd-dim-stride": Rule("each BD stride is 1 .. 2^19-1 elements and at most the buffer's length",
                          "AIEDialect.cpp DMABDOp::verify"),
    "bd-in-bounds": Rule("a BD's sizes and strides stay inside its buffer", "AIEDialect.cpp DMABDOp::verify"),
    "bd-inner-stride": Rule("for elements narrower or wider than 32 bits the innermost stride is 1",
                            "AIEDialect.cpp DMABDOp::verify"),
    "bd-fields": Rule("BD wrap and step fields: wrap 10 bits (shim, mem tile) or 8 bits (compute tile), "
                      "step 20/17/13 bits (shim/mem tile/compute tile) in 32-bit words",
                      "AIEXDialect.cpp verifyStridesWraps"),
    "bd-whole-object": Rule("a dimensionsToStream pattern moves each object exactly once, whole 32-bit words",
                            "AIEDialect.cpp DMABDOp::verify (len multiple of 4 bytes); fusebuild data model"),
    "channels": Rule("DMA channels per tile: compute tile 2 S2MM + 2 MM2S, mem tile 6 + 6, shim 2 + 2",
                     "AIEObjectFifoStatefulTransform.cpp ('number of input/output DMA channel exceeded!'); "
                     "AIETargetModel.cpp getNum{Dest,Source}{Switchbox,ShimMux}Connections(DMA)"),
    "bds": Rule("buffer descriptors per tile: compute tile 16, mem tile 48 (24 per channel parity), shim 16",
                "AIETargetModel.h getNumBDs, isBdChannelAccessible"),
    "locks": Rule("locks per tile: compute tile 16, mem tile 64, shim 16 (2 per FIFO end holding buffers)",
                  "AIETargetModel.h getNumLocks; AIEObjectFifoStatefulTransform.cpp createObjectFifoLocks"),
    "local-memory": Rule("a compute tile's data memory (64 KiB) holds its stack, buffers and FIFO objects",
                         "AIETargetModel.h getLocalMemorySize; AIEAssignBuffers.cpp basicAllocation"),
    "mem-tile-memory": Rule("a mem tile's 512 KiB hold the objects of the links through it",
                            "AIETargetModel.h getMemTileSize; AIEObjectFifoStatefulTransform.cpp "
                            "createObjectFifoElements"),
    "core-ports": Rule("a core produces only FIFOs whose producer is its tile and consumes only those it is a "
                       "consumer of; acquire and release balance, at most depth objects held",
                       "AIEDialect.cpp ObjectFifoAcquireOp::verify, ObjectFifoReleaseOp::verify"),
    "kernel-calls": Rule("func.call targets a declared kernel with its declared types, on defined values",
                         "mlir/lib/Dialect/Func/IR/FuncOps.cpp CallOp::verifySymbolUses (upstream MLIR)"),
    "npu-elem-width": Rule("dma_memcpy_nd buffers have elements of at most 32 bits and at least 32 bits in all",
                           "AIEXDialect.cpp NpuDmaMemcpyNdOp::verify"),
    "npu-sizes": Rule("dma_memcpy_nd sizes are positive; the inner size is whole 32-bit words",
                      "AIEXDialect.cpp verifyStridesWraps"),
    "npu-stride0": Rule("stride 0 (a repeat) only on the outermost dimension; inner strides >= 1 when the size > 1",
                        "AIEXDialect.cpp verifyStridesWraps"),
    "npu-granule": Rule("dma_memcpy_nd strides are whole 32-bit words (except an innermost stride of 1)",
                        "AIEXDialect.cpp verifyStridesWraps"),
    "npu-wraps": Rule("shim d0 (in words) and d1 sizes <= 1023 unless the transfer is linear [*,1,1,N][*,0,0,1]; "
                      "repeat size <= 64; strides <= 2^20 words",
                      "AIEXDialect.cpp verifyStridesWraps, NpuDmaMemcpyNdOp::verify; BdLowering.h"),
    "npu-offset": Rule("the byte offset sum(offset[i] * stride[i]) * element size is 4-byte aligned",
                       "AIEXDialect.cpp NpuDmaMemcpyNdOp::getOffsetInBytes, NpuDmaMemcpyNdOp::verify"),
    "npu-in-bounds": Rule("a transfer stays inside its runtime-sequence argument",
                          "fusebuild data model (mlir-aie does not check host buffer bounds)"),
    "npu-bd-ids": Rule("runtime BD ids are 0..15 per shim tile and an id is not reissued before a dma_wait "
                       "ends the transfers that hold it",
                       "AIETargetModel.h getNumBDs; AIERuntimeBdLiveness.h computePeakBdLiveness"),
    "sequence": Rule("transfers name a FIFO with a shim end and a declared argument of the same type; every "
                     "host-bound FIFO is awaited (dma_wait) after its last transfer",
                     "AIEXDialect.cpp NpuDmaWaitOp::verify; fusebuild data model"),
}


def _fail(construct, problem, rule, line=None):
    r = RULES[rule]
    raise AieCheckError(f"{construct}: {problem} (rule {rule}: {r.statement} [{r.source}])", line=line)


def kind(d: Design, tile: str) -> str:
    row = d.tiles[tile][1]
    return "shim" if row == 0 else "mem" if row == F.MEM_ROW else "core"


def where(d: Design, tile: str) -> str:
    c, r = d.tiles[tile]
    return f"{kind(d, tile)} tile ({c}, {r})"


def check(d: Design, path: str = "design.mlir") -> dict:
    """Raise AieCheckError (with the line) for the first rule the design breaks; else a summary."""
    try:
        return _check(d)
    except AieCheckError as err:
        err.path = path
        raise


def _check(d: Design) -> dict:
    _tiles(d)
    _kernels(d)
    linked = _links(d)
    for f in d.fifos.values():
        _fifo(d, f)
    uses = _endpoints(d, linked)
    _channels(d, uses)
    _bds_and_locks(d, uses)
    l1 = _memory(d, uses)
    for core in d.cores:
        _core(d, core)
    summary = _sequence(d)
    return dict(summary, device=d.device, cores=len(d.cores), fifos=len(d.fifos),
                l1_bytes_max=max(l1.values(), default=0))


# --- tiles, kernels ---------------------------------------------------------------------------

def _tiles(d):
    if d.device not in F.DEVICES:
        _fail(f"aie.device({d.device})", f"unknown device; known: {sorted(F.DEVICES)}", "tile-in-device", 1)
    cols = F.DEVICES[d.device].value
    seen = {}
    for ssa, (c, r) in d.tiles.items():
        if not (0 <= c < cols and 0 <= r < F.ROWS.value):
            _fail(f"{ssa} = aie.tile({c}, {r})", f"outside {d.device} ({cols} columns, rows 0..{F.ROWS.value - 1})",
                  "tile-in-device", d.tile_lines[ssa])
        if (c, r) in seen:
            _fail(f"{ssa} = aie.tile({c}, {r})", f"same tile as {seen[(c, r)]}", "tile-in-device", d.tile_lines[ssa])
        seen[(c, r)] = ssa
    for core in d.cores:
        if core["tile"] not in d.tiles or kind(d, core["tile"]) != "core":
            _fail(f"aie.core({core['tile']})", "not on a compute tile", "core-on-compute-tile", core["line"])
    for ssa, (tile, _ty) in d.buffers.items():
        if tile not in d.tiles or kind(d, tile) != "core":
            _fail(f"aie.buffer {ssa}", f"on {tile}, not a compute tile", "core-on-compute-tile", d.buffer_lines[ssa])


def _kernels(d):
    for name, k in d.kernels.items():
        if not k["link_with"].endswith(".o"):
            _fail(f"func.func @{name}", f"link_with = {k['link_with']!r} is not an object file", "kernel-link-with",
                  k["line"])


# --- object FIFOs and links -------------------------------------------------------------------

def _fifo(d, f):
    construct = f"@{f.name}"
    for t in [f.producer, *f.consumers]:
        if t not in d.tiles:
            _fail(construct, f"uses undefined tile {t}", "fifo-ends", f.line)
    if f.depth < 1:
        _fail(construct, f"depth {f.depth}", "fifo-ends", f.line)
    if kind(d, f.producer) == "shim" and any(kind(d, c) == "shim" for c in f.consumers):
        _fail(construct, "connects two shim tiles", "fifo-ends", f.line)
    if f.dims:
        pk = kind(d, f.producer)
        if pk == "shim":
            _fail(construct, f"dimensionsToStream on {where(d, f.producer)}", "no-shim-dims", f.line)
        _dims(d, f, pk)


def _dims(d, f, pk):
    construct = f"@{f.name} dimensionsToStream on {where(d, f.producer)}"
    shape, et = mtype(f.type)
    n, eb = prod(shape), ELEM_BYTES[et]
    if len(f.dims) > F.BD_DIMS[pk]:
        _fail(construct, f"{len(f.dims)} dimensions, a {pk} tile BD has {F.BD_DIMS[pk]}", "bd-dims", f.line)
    wrap, step = (1 << F.WRAP_BITS[pk]) - 1, 1 << F.STEP_BITS[pk]
    for i, (size, stride) in enumerate(f.dims):
        if size > F.BD_MAX_SIZE:
            _fail(construct, f"<size = {size}> > {F.BD_MAX_SIZE}", "bd-dim-size", f.line)
        if stride < 1 or stride > F.BD_MAX_STRIDE or stride > n:
            _fail(construct, f"<stride = {stride}> outside 1..min({F.BD_MAX_STRIDE}, {n})", "bd-dim-stride", f.line)
        words = size * eb // F.GRANULE_BYTES if i == len(f.dims) - 1 else size
        if words > wrap:
            _fail(construct, f"<size = {size}> is {words} in the {F.WRAP_BITS[pk]}-bit wrap field (max {wrap})",
                  "bd-fields", f.line)
        if stride * eb // F.GRANULE_BYTES > step:
            _fail(construct, f"<stride = {stride}> is {stride * eb // 4} words, the {pk} tile step field holds "
                             f"{step}", "bd-fields", f.line)
    if eb != 4 and f.dims[-1][1] != 1:
        _fail(construct, f"innermost stride {f.dims[-1][1]} for {8 * eb}-bit elements", "bd-inner-stride", f.line)
    last = sum((s - 1) * t for s, t in f.dims)
    if last >= n:
        _fail(construct, f"reaches element {last} of a {n}-element object", "bd-in-bounds", f.line)
    moved = prod(s for s, _ in f.dims)
    if moved != n or f.dims[-1][0] * eb % F.GRANULE_BYTES:
        _fail(construct, f"moves {moved} elements ({f.dims[-1][0]} innermost) per object of {n}",
              "bd-whole-object", f.line)


def _links(d) -> dict:
    """name -> (link, side 'in'|'out'); checks each link's shape."""
    linked = {}
    for L in d.links:
        srcs, dsts = ", ".join("@" + s for s in L.srcs), ", ".join("@" + s for s in L.dsts)
        construct = f"aie.objectfifo.link [{srcs}] -> [{dsts}]"
        for n in L.srcs + L.dsts:
            if n not in d.fifos:
                _fail(construct, f"names undefined object FIFO @{n}", "link-point", L.line)
            if n in linked:
                _fail(construct, f"@{n} is already in the link at line {linked[n][0].line}", "link-point", L.line)
        for n in L.srcs:
            linked[n] = (L, "in")
        for n in L.dsts:
            linked[n] = (L, "out")
        if len(L.srcs) > 1 and len(L.dsts) > 1:
            _fail(construct, "joins and distributes at once", "link-point", L.line)
        points = {c for n in L.srcs for c in d.fifos[n].consumers} | {d.fifos[n].producer for n in L.dsts}
        ins_ok = all(len(d.fifos[n].consumers) == 1 for n in L.srcs)
        if len(points) != 1 or not ins_ok or kind(d, next(iter(points))) != "mem":
            _fail(construct, "its FIFOs do not meet at one mem tile", "link-point", L.line)
        sizes_in = [numel(d.fifos[n].type) for n in L.srcs]
        sizes_out = [numel(d.fifos[n].type) for n in L.dsts]
        if len(L.srcs) > 1:
            _pieces(construct, L.src_offsets, sizes_in, sizes_out[0], L.dst_offsets, "join", L.line)
        elif len(L.dsts) > 1:
            _pieces(construct, L.dst_offsets, sizes_out, sizes_in[0], L.src_offsets, "distribute", L.line)
            if d.fifos[L.srcs[0]].dims:
                _fail(construct, f"input @{L.srcs[0]} has dimensionsToStream", "distribute-dims", L.line)
        elif L.src_offsets or L.dst_offsets:
            _fail(construct, "offsets on a 1-to-1 link", "link-offsets", L.line)
        elif sizes_in[0] % sizes_out[0] and sizes_out[0] % sizes_in[0]:
            _fail(construct, f"objects of {sizes_in[0]} and {sizes_out[0]} elements", "link-offsets", L.line)
    for f in d.fifos.values():
        touches_mem = kind(d, f.producer) == "mem" or any(kind(d, c) == "mem" for c in f.consumers)
        if touches_mem and f.name not in linked:
            _fail(f"@{f.name}", "reaches a mem tile but is in no link", "link-point", f.line)
    return linked


def _pieces(construct, offsets, sizes, whole, other, what, line):
    if other or len(offsets) != len(sizes):
        _fail(construct, f"a {what} of {len(sizes)} FIFOs with offsets {offsets} / {other}", "link-offsets", line)
    ends = offsets[1:] + [whole]
    if offsets[0] != 0 or any(e - o != s for o, e, s in zip(offsets, ends, sizes)):
        _fail(construct, f"pieces of {sizes} elements at offsets {offsets} do not tile the {whole}-element object",
              "link-offsets", line)


# --- resources --------------------------------------------------------------------------------

def shares_memory(d, a: str, b: str) -> bool:
    """True if the core on tile b can reach tile a's memory (AIE2 isLegalMemAffinity: itself,
    north, south (not a mem tile), east, west)."""
    (ca, ra), (cb, rb) = d.tiles[a], d.tiles[b]
    if kind(d, a) != "core" or kind(d, b) != "core":
        return False
    return (ca, ra) == (cb, rb) or (ca == cb and abs(ra - rb) == 1) or (ra == rb and abs(ca - cb) == 1)


def _endpoints(d, linked) -> list:
    """One record per (FIFO, tile) end: {tile, dir, dma, objects, bytes, fifo, link}."""
    uses = []
    for f in d.fifos.values():
        size = nbytes(f.type)
        shared = (len(f.consumers) == 1 and not f.dims and f.name not in linked
                  and (shares_memory(d, f.producer, f.consumers[0]) or shares_memory(d, f.consumers[0], f.producer)))
        if shared:   # OFT: one buffer set, on the producer if the consumer reaches it (share_direction)
            holder = f.producer if shares_memory(d, f.producer, f.consumers[0]) else f.consumers[0]
            uses.append({"tile": holder, "dir": None, "dma": False, "depth": f.depth, "bytes": size * f.depth,
                         "fifo": f.name, "line": f.line})
            continue
        for t, direction in [(f.producer, "MM2S")] + [(c, "S2MM") for c in f.consumers]:
            hold = size * f.depth
            if kind(d, t) == "shim":
                hold = 0
            elif kind(d, t) == "mem":
                L, _ = linked[f.name]
                hold = _link_bytes(d, L) if _link_owner(d, L) == f.name else 0
            uses.append({"tile": t, "dir": direction, "dma": True, "depth": f.depth, "bytes": hold,
                         "fifo": f.name, "line": f.line})
    return uses


def _link_owner(d, L) -> str:
    """The FIFO whose objects a link tile holds (OFT createObjectFifoElements)."""
    if len(L.srcs) > 1:
        return L.dsts[0]
    if len(L.dsts) > 1:
        return L.srcs[0]
    i, o = L.srcs[0], L.dsts[0]
    return i if numel(d.fifos[i].type) >= numel(d.fifos[o].type) else o


def _link_bytes(d, L) -> int:
    f = d.fifos[_link_owner(d, L)]
    return nbytes(f.type) * f.depth


def _channels(d, uses):
    count = {}
    for u in uses:
        if not u["dma"]:
            continue
        key = (u["tile"], u["dir"])
        count.setdefault(key, []).append(u)
    for (tile, direction), us in sorted(count.items(), key=lambda kv: min(u["line"] for u in kv[1])):
        k = kind(d, tile)
        limit = F.CHANNELS[k].value
        if len(us) > limit:
            names = ", ".join("@" + u["fifo"] for u in us)
            word = "input" if direction == "S2MM" else "output"
            _fail(f"{where(d, tile)} ({tile})", f"{len(us)} {word} ({direction}) DMA channels for {names}; a {k} tile "
                  f"has {limit}", "channels", max(u["line"] for u in us))


def _bds_and_locks(d, uses):
    per_tile = {}
    for u in uses:
        per_tile.setdefault(u["tile"], []).append(u)
    for tile, us in per_tile.items():
        k = kind(d, tile)
        locks = 2 * len(us)
        if locks > F.LOCKS[k].value:
            _fail(f"{where(d, tile)} ({tile})", f"needs {locks} locks for {len(us)} FIFO ends", "locks",
                  max(u["line"] for u in us))
        if k == "shim":
            continue   # shim BDs are the runtime sequence's (npu-bd-ids)
        dma = [u for u in us if u["dma"]]
        bds = sum(u["depth"] for u in dma)
        if bds > F.BDS[k].value:
            _fail(f"{where(d, tile)} ({tile})", f"needs {bds} buffer descriptors", "bds", max(u["line"] for u in dma))
        if k == "mem":   # channels numbered per direction in FIFO order; even/odd halves of the BD pool
            parity = [0, 0]
            for direction in ("S2MM", "MM2S"):
                for ch, u in enumerate(sorted((u for u in dma if u["dir"] == direction), key=lambda u: u["line"])):
                    parity[ch % 2] += u["depth"]
            if max(parity) > F.BDS["mem"].value // 2:
                _fail(f"{where(d, tile)} ({tile})", f"needs {parity[0]} BDs on even and {parity[1]} on odd channels",
                      "bds", max(u["line"] for u in dma))


def _memory(d, uses) -> dict:
    used = {}
    for u in uses:
        used[u["tile"]] = used.get(u["tile"], 0) + u["bytes"]
    for tile, ty in d.buffers.values():
        used[tile] = used.get(tile, 0) + nbytes(ty)
    stack = {c["tile"]: c["stack"] or 0 for c in d.cores}
    l1 = {}
    for tile, b in sorted(used.items(), key=lambda kv: d.tiles[kv[0]]):
        k = kind(d, tile)
        if k == "core":
            total = b + stack.get(tile, 0)
            l1[tile] = total
            if total > F.LOCAL_MEMORY.value:
                _fail(f"{where(d, tile)} ({tile})", f"needs {total} bytes of data memory ({stack.get(tile, 0)} stack + "
                      f"{b} buffers and FIFO objects); it has {F.LOCAL_MEMORY.value}", "local-memory",
                      d.tile_lines[tile])
        elif k == "mem" and b > F.MEM_TILE_MEMORY.value:
            _fail(f"{where(d, tile)} ({tile})", f"holds {b} bytes of link objects; it has {F.MEM_TILE_MEMORY.value}",
                  "mem-tile-memory", d.tile_lines[tile])
    return l1


# --- core bodies --------------------------------------------------------------------------------

def _core(d, core):
    if not core.get("ended"):
        _fail(f"aie.core({core['tile']})", "body without aie.end", "core-ports", core["line"])
    _body(d, core, core["body"], set(d.buffers), {})
    used = {(s["fifo"], s["port"]) for s in walk(core["body"]) if s["op"] == "acquire"}
    for f in d.fifos.values():
        if f.producer == core["tile"] and (f.name, "Produce") not in used:
            _fail(f"@{f.name}", f"its producer core {core['tile']} never produces it", "core-ports", f.line)
        if core["tile"] in f.consumers and (f.name, "Consume") not in used:
            _fail(f"@{f.name}", f"its consumer core {core['tile']} never consumes it", "core-ports", f.line)


def _body(d, core, body, defined, held):
    defined, held = set(defined), dict(held)
    for s in body:
        line = s["line"]
        if s["op"] == "for":
            if _body(d, core, s["body"], defined, held) != held:
                _fail(f"scf.for in aie.core({core['tile']})", "acquire/release not balanced in the loop body",
                      "core-ports", line)
        elif s["op"] == "acquire":
            f = d.fifos.get(s["fifo"])
            if f is None:
                _fail(f"acquire @{s['fifo']}", "undefined object FIFO", "core-ports", line)
            if s["type"] != f.type:
                _fail(f"acquire @{f.name}", f"as {s['type']}, it holds {f.type}", "core-ports", line)
            ok = f.producer == core["tile"] if s["port"] == "Produce" else core["tile"] in f.consumers
            if not ok:
                _fail(f"acquire @{f.name}({s['port']})", f"on {core['tile']}: producer {f.producer}, consumers "
                      f"{', '.join(f.consumers)}", "core-ports", line)
            key = (f.name, s["port"])
            held[key] = held.get(key, 0) + 1
            if held[key] > f.depth:
                _fail(f"acquire @{f.name}", f"{held[key]} objects held at once, depth {f.depth}", "core-ports", line)
            if "value" not in s:
                _fail(f"acquire @{f.name}", "no subview.access", "core-ports", line)
            defined.add(s["value"])
        elif s["op"] == "release":
            key = (s["fifo"], s["port"])
            if held.get(key, 0) < 1:
                _fail(f"release @{s['fifo']}({s['port']})", "the core does not hold an object", "core-ports", line)
            held[key] -= 1
            if not held[key]:
                del held[key]
        elif s["op"] == "call":
            k = d.kernels.get(s["func"])
            if k is None:
                _fail(f"func.call @{s['func']}", "undeclared kernel", "kernel-calls", line)
            if s["types"] != k["types"] or len(s["args"]) != len(s["types"]):
                _fail(f"func.call @{s['func']}", f"types {s['types']}, declared {k['types']}", "kernel-calls", line)
            for a, ty in zip(s["args"], s["types"]):
                if a not in defined:
                    _fail(f"func.call @{s['func']}", f"{a} is used before it is defined", "kernel-calls", line)
                if a in d.buffers and d.buffers[a][1] != ty:
                    _fail(f"func.call @{s['func']}", f"{a} is {d.buffers[a][1]}, passed as {ty}", "kernel-calls", line)
    return held


# --- runtime sequence ----------------------------------------------------------------------------

def _shim_end(d, f):
    if kind(d, f.producer) == "shim":
        return f.producer, "in"
    for c in f.consumers:
        if kind(d, c) == "shim":
            return c, "out"
    return None, None


def _sequence(d) -> dict:
    args = dict(d.args)
    pending, moved, live = set(), {}, {}
    for op in d.sequence:
        line = op["line"]
        f = d.fifos.get(op["fifo"])
        construct = f"aiex.npu.{'dma_wait' if op['op'] == 'wait' else 'dma_memcpy_nd'} @{op['fifo']}"
        if f is None:
            _fail(construct, "undefined object FIFO", "sequence", line)
        shim, direction = _shim_end(d, f)
        if op["op"] == "wait":
            if direction != "out":
                _fail(construct, "the FIFO does not flow to the host", "sequence", line)
            pending.discard(f.name)
            live.clear()    # the awaited output depends on every transfer issued before it
            continue
        if shim is None:
            _fail(construct, "the FIFO has no shim tile end", "sequence", line)
        if op["arg"] not in args or args[op["arg"]] != op["type"]:
            _fail(construct, f"on {op['arg']} : {op['type']}, the sequence declares "
                  f"{args.get(op['arg'], 'no such argument')}", "sequence", line)
        _memcpy(d, op, construct)
        if not 0 <= op["id"] < F.BDS["shim"].value:
            _fail(construct, f"id {op['id']} outside 0..{F.BDS['shim'].value - 1}", "npu-bd-ids", line)
        key = (shim, op["id"])
        if key in live:
            _fail(construct, f"id {op['id']} on {where(d, shim)} is still held by the transfer at line {live[key]}",
                  "npu-bd-ids", line)
        live[key] = line
        if direction == "out":
            pending.add(f.name)
        moved[f.name] = moved.get(f.name, 0) + prod(op["sizes"])
    if pending:
        name = sorted(pending)[0]
        _fail(f"aie.runtime_sequence @{name}", "no dma_wait after its last transfer", "sequence", d.sequence_line)
    for f in d.fifos.values():
        if _shim_end(d, f)[0] is not None and not moved.get(f.name):
            _fail(f"@{f.name}", "has a shim end but the runtime sequence never moves data on it", "sequence", f.line)
    return {"dma_ops": sum(1 for op in d.sequence if op["op"] == "memcpy")}


def _memcpy(d, op, construct):
    line = op["line"]
    shape, et = mtype(op["type"])
    eb = ELEM_BYTES[et]
    if eb * 8 > 32 or prod(shape) * eb < F.GRANULE_BYTES:
        _fail(construct, f"buffer {op['type']}", "npu-elem-width", line)
    sizes, strides, offsets = op["sizes"], op["strides"], op["offsets"]   # outermost first
    s3, s2, s1, s0 = sizes
    t3, t2, t1, t0 = strides
    if min(sizes) < 1:
        _fail(construct, f"sizes {sizes}", "npu-sizes", line)
    if s0 * eb % F.GRANULE_BYTES:
        _fail(construct, f"inner size {s0} x {eb} bytes is not whole 32-bit words", "npu-sizes", line)
    for i, (s, t) in enumerate(zip(sizes[1:], strides[1:]), 1):
        if s > 1 and t < 1:
            _fail(construct, f"stride {t} on dimension {3 - i} (size {s}); sizes {sizes} strides {strides}",
                  "npu-stride0", line)
    if t3 < 0 or min(offsets) < 0:
        _fail(construct, f"strides {strides} offsets {offsets}", "npu-stride0", line)
    for t in (t3, t2, t1) + ((t0,) if t0 != 1 else ()):
        if t * eb % F.GRANULE_BYTES:
            _fail(construct, f"stride {t} x {eb} bytes is not whole 32-bit words", "npu-granule", line)
    if eb < 4 and s0 > 1 and t0 != 1:
        _fail(construct, f"innermost stride {t0} for {8 * eb}-bit elements", "npu-granule", line)
    linear = s2 == 1 and s1 == 1 and t0 == 1
    words0 = s0 * eb // F.GRANULE_BYTES
    wrap = (1 << F.WRAP_BITS["shim"]) - 1
    if not linear and (words0 > wrap or s1 > wrap):
        _fail(construct, f"sizes {sizes}: d0 {words0} words, d1 {s1} (max {wrap})", "npu-wraps", line)
    if s3 > 1 << F.ITER_BITS:
        _fail(construct, f"repeat size {s3} > {1 << F.ITER_BITS}", "npu-wraps", line)
    for s, t in zip(sizes, strides):
        if s > 1 and t * eb // F.GRANULE_BYTES > 1 << F.STEP_BITS["shim"]:
            _fail(construct, f"stride {t} ({t * eb // 4} words) > {1 << F.STEP_BITS['shim']}", "npu-wraps", line)
    offset = sum(o * t for o, t in zip(offsets, strides))
    if offset * eb % F.GRANULE_BYTES:
        _fail(construct, f"byte offset {offset * eb} is not 4-byte aligned", "npu-offset", line)
    last = offset + sum((s - 1) * t for s, t in zip(sizes, strides))
    if last >= prod(shape):
        _fail(construct, f"reaches element {last} of {op['arg']} ({prod(shape)} elements)", "npu-in-bounds", line)


def offset_of(op) -> int:
    """mlir-aie's offset model (NpuDmaMemcpyNdOp::getOffsetInBytes), in elements."""
    return sum(o * t for o, t in zip(op["offsets"], op["strides"]))
