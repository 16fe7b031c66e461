"""A strict parser and checker of the MLIR-AIE subset fusebuild emits (no mlir-aie needed).

Every line of a rendered design must match one rule of `RULES` in a context where it is
allowed (device body, core body, runtime sequence); anything else is an error with its
line number. The parsed `Design` is then checked for what mlir-aie's verifiers would
reject or what would deadlock or corrupt data on the array: symbols defined before use,
tiles of the right kind, object FIFO ports used by their own tiles, balanced
acquire/release, call types matching kernel declarations, DMA dimension/size/stride
limits (layouts.NPU_SHIM_DMA for the shim, mem tile 4-D and compute tile 3-D patterns),
shim channel counts, L1 capacity, and every host transfer inside its buffer.

The emulator (emulate.py) executes the parsed `Design`, never the Python objects the
design was rendered from: what is checked and run is the text.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from math import prod

from ...errors import FusebuildError, LayoutError
from ...ir import layouts as L
from .design import COMPUTE_ROWS, DEVICES, L1_BYTES, SHIM_CHANNELS

ELEM_BYTES = {"f32": 4, "bf16": 2, "f16": 2, "i32": 4}
TYPE = r"memref<(?:\d+x)+(?:f32|bf16|f16|i32)>"
SSA = r"%[A-Za-z0-9_]+"
SYM = r"@[A-Za-z0-9_]+"
LIST = r"\[\s*(-?\d+(?:\s*,\s*-?\d+)*)\s*\]"


class AieCheckError(FusebuildError):
    """A rendered design that is not well formed or breaks a hardware rule."""


def mtype(text):
    """'memref<2x8x4x8xf32>' -> ((2, 8, 4, 8), 'f32')."""
    m = re.fullmatch(r"memref<((?:\d+x)+)(f32|bf16|f16|i32)>", text)
    if not m:
        raise ValueError(text)
    return tuple(int(x) for x in m[1].rstrip("x").split("x")), m[2]


@dataclass
class Fifo:
    name: str
    producer: str
    consumers: list
    depth: int
    type: str
    dims: list
    line: int


@dataclass
class Design:
    device: str = ""
    kernels: dict = field(default_factory=dict)       # name -> [types]
    tiles: dict = field(default_factory=dict)         # ssa -> (col, row)
    buffers: dict = field(default_factory=dict)       # ssa -> (tile, type)
    fifos: dict = field(default_factory=dict)         # name -> Fifo
    links: list = field(default_factory=list)         # (src names, dst names, line)
    cores: list = field(default_factory=list)         # {"tile", "body", "line"}
    args: list = field(default_factory=list)          # (ssa, type)
    sequence: list = field(default_factory=list)      # {"op": memcpy|wait, ...}


RULES = {
    "module": re.compile(r"module \{"),
    "device": re.compile(r"aie\.device\((\w+)\) \{"),
    "func": re.compile(rf"func\.func private ({SYM})\(((?:{TYPE})(?:, {TYPE})*)\) "
                       rf"attributes \{{link_with = \"[\w.]+\"\}}"),
    "tile": re.compile(rf"({SSA}) = aie\.tile\((\d+), (\d+)\)"),
    "buffer": re.compile(rf"({SSA}) = aie\.buffer\(({SSA})\) \{{sym_name = \"(\w+)\"\}} : ({TYPE})"),
    "fifo": re.compile(rf"aie\.objectfifo ({SYM})\(({SSA})(?: dimensionsToStream \[((?:<size = \d+, stride = \d+>)"
                       rf"(?:, <size = \d+, stride = \d+>)*)\])?, \{{((?:{SSA})(?:, {SSA})*)\}}, (\d+) : i32\) : "
                       rf"!aie\.objectfifo<({TYPE})>"),
    "link": re.compile(rf"aie\.objectfifo\.link \[((?:{SYM})(?:, {SYM})*)\] -> "
                       rf"\[((?:{SYM})(?:, {SYM})*)\]\(\[\] \[\]\)"),
    "core": re.compile(rf"({SSA}) = aie\.core\(({SSA})\) \{{"),
    "const": re.compile(r"%c(\d+) = arith\.constant (\d+) : index"),
    "for": re.compile(rf"scf\.for ({SSA}) = %c(\d+) to %c(\d+) step %c(\d+) \{{"),
    "acquire": re.compile(rf"({SSA})_sv = aie\.objectfifo\.acquire ({SYM})\((Produce|Consume), 1\) : "
                          rf"!aie\.objectfifosubview<({TYPE})>"),
    "access": re.compile(rf"({SSA}) = aie\.objectfifo\.subview\.access ({SSA})_sv\[0\] : "
                         rf"!aie\.objectfifosubview<({TYPE})> -> ({TYPE})"),
    "release": re.compile(rf"aie\.objectfifo\.release ({SYM})\((Produce|Consume), 1\)"),
    "call": re.compile(rf"func\.call ({SYM})\(((?:{SSA})(?:, {SSA})*)\) : \(((?:{TYPE})(?:, {TYPE})*)\) -> \(\)"),
    "end": re.compile(r"aie\.end"),
    "core_close": re.compile(r"\} \{stack_size = \d+ : i32\}"),
    "sequence": re.compile(rf"aiex\.runtime_sequence\(((?:{SSA}: {TYPE})(?:, {SSA}: {TYPE})*)\) \{{"),
    "memcpy": re.compile(rf"aiex\.npu\.dma_memcpy_nd\(({SSA}){LIST}{LIST}{LIST}\) \{{id = (\d+) : i64, "
                         rf"metadata = ({SYM})(, issue_token = true)?\}} : ({TYPE})"),
    "wait": re.compile(rf"aiex\.npu\.dma_wait \{{symbol = ({SYM})\}}"),
    "close": re.compile(r"\}"),
}
# which rules each context allows; a rule that opens a region names the context it opens
ALLOWED = {
    "top": {"module"},
    "module": {"device", "close"},
    "device": {"func", "tile", "buffer", "fifo", "link", "core", "sequence", "close"},
    "core": {"const", "for", "acquire", "access", "release", "call", "end", "core_close"},
    "for": {"for", "acquire", "access", "release", "call", "close"},
    "sequence": {"memcpy", "wait", "close"},
}
OPENS = {"module": "module", "device": "device", "core": "core", "for": "for", "sequence": "sequence"}


def parse(text: str, path: str = "design.mlir") -> Design:
    d = Design()
    stack = [("top", None)]            # (context, payload)
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("//"):
            continue
        ctx = stack[-1][0]
        rule, m = next(((r, RULES[r].fullmatch(line)) for r in ALLOWED[ctx] if RULES[r].fullmatch(line)), (None, None))
        if rule is None:
            raise AieCheckError(f"unexpected line in {ctx} body: {line[:120]!r}", path=path, line=no,
                                valid="the fusebuild MLIR-AIE subset (see aieparse.RULES)")
        try:
            _apply(d, stack, rule, m, no)
        except AieCheckError as err:
            err.path, err.line = path, err.line or no
            raise
    if stack != [("top", None)] and len(stack) != 1:
        raise AieCheckError(f"unclosed region: {stack[-1][0]}", path=path, line=len(text.splitlines()))
    return d


def _fail(msg, line=None):
    raise AieCheckError(msg, line=line)


def _apply(d: Design, stack, rule, m, no):
    ctx, payload = stack[-1]
    if rule in ("close", "core_close"):
        stack.pop()
        return
    if rule == "device":
        d.device = m[1]
    elif rule == "func":
        d.kernels[m[1][1:]] = [t.strip() for t in re.findall(TYPE, m[2])]
    elif rule == "tile":
        if m[1] in d.tiles:
            _fail(f"{m[1]} defined twice")
        d.tiles[m[1]] = (int(m[2]), int(m[3]))
    elif rule == "buffer":
        d.buffers[m[1]] = (m[2], m[4])
    elif rule == "fifo":
        dims = [(int(a), int(b)) for a, b in re.findall(r"<size = (\d+), stride = (\d+)>", m[3] or "")]
        name = m[1][1:]
        if name in d.fifos:
            _fail(f"object FIFO @{name} defined twice")
        d.fifos[name] = Fifo(name, m[2], re.findall(SSA, m[4]), int(m[5]), m[6], dims, no)
    elif rule == "link":
        d.links.append(([s[1:] for s in re.findall(SYM, m[1])], [s[1:] for s in re.findall(SYM, m[2])], no))
    elif rule == "core":
        core = {"ssa": m[1], "tile": m[2], "body": [], "consts": {}, "line": no}
        d.cores.append(core)
        stack.append(("core", core))
        return
    elif rule == "const":
        if m[1] != m[2]:
            _fail(f"%c{m[1]} holds {m[2]}")
        payload["consts"][int(m[2])] = True
    elif rule == "for":
        core = next(p for c, p in reversed(stack) if c == "core")
        for v in (m[2], m[3], m[4]):
            if int(v) not in core["consts"]:
                _fail(f"%c{v} is used before it is defined")
        if int(m[2]) != 0 or int(m[4]) != 1:
            _fail("loops must run from 0 with step 1")
        loop = {"op": "for", "var": m[1], "count": int(m[3]), "body": [], "line": no}
        _body(stack).append(loop)
        stack.append(("for", loop))
        return
    elif rule == "acquire":
        _body(stack).append({"op": "acquire", "ssa": m[1], "fifo": m[2][1:], "port": m[3], "type": m[4], "line": no})
    elif rule == "access":
        body = _body(stack)
        if (not body or body[-1]["op"] != "acquire" or body[-1]["ssa"] != m[2] or m[3] != m[4]
                or m[3] != body[-1]["type"]):
            _fail(f"subview.access of {m[2]}_sv must follow its acquire, with the same type")
        body[-1]["value"] = m[1]
    elif rule == "release":
        _body(stack).append({"op": "release", "fifo": m[1][1:], "port": m[2], "line": no})
    elif rule == "call":
        _body(stack).append({"op": "call", "func": m[1][1:], "args": re.findall(SSA, m[2]),
                             "types": re.findall(TYPE, m[3]), "line": no})
    elif rule == "end":
        payload["ended"] = True
    elif rule == "sequence":
        d.args = [tuple(x.split(": ")) for x in re.findall(rf"{SSA}: {TYPE}", m[1])]
        stack.append(("sequence", None))
        return
    elif rule == "memcpy":
        vals = [[int(v) for v in m[i].split(",")] for i in (2, 3, 4)]
        if any(len(v) != 4 for v in vals):
            _fail("dma_memcpy_nd takes 4 offsets, 4 sizes and 4 strides")
        d.sequence.append({"op": "memcpy", "arg": m[1], "offsets": vals[0], "sizes": vals[1], "strides": vals[2],
                           "id": int(m[5]), "fifo": m[6][1:], "token": bool(m[7]), "type": m[8], "line": no})
    elif rule == "wait":
        d.sequence.append({"op": "wait", "fifo": m[1][1:], "line": no})
    if rule in OPENS:
        stack.append((OPENS[rule], None))


def _body(stack):
    ctx, payload = stack[-1]
    return payload["body"]


# --- checks --------------------------------------------------------------------------------

def kind(d: Design, tile: str) -> str:
    row = d.tiles[tile][1]
    return "shim" if row == 0 else "mem" if row == 1 else "core"


def check(d: Design, path: str = "design.mlir") -> dict:
    """Raise AieCheckError (with the line) for the first rule the design breaks; else a summary."""
    try:
        return _check(d)
    except AieCheckError as err:
        err.path = path
        raise


def _check(d: Design) -> dict:
    if d.device not in DEVICES:
        _fail(f"unknown device {d.device!r}; expected one of {sorted(DEVICES)}")
    cols = DEVICES[d.device]
    seen = {}
    for ssa, (c, r) in d.tiles.items():
        if not (0 <= c < cols and 0 <= r < 2 + COMPUTE_ROWS):
            _fail(f"{ssa} = aie.tile({c}, {r}) is outside {d.device} ({cols} columns, rows 0..{1 + COMPUTE_ROWS})")
        if (c, r) in seen:
            _fail(f"{ssa} and {seen[(c, r)]} are the same tile ({c}, {r})")
        seen[(c, r)] = ssa
    for ssa, (tile, _ty) in d.buffers.items():
        if tile not in d.tiles or kind(d, tile) != "core":
            _fail(f"buffer {ssa} must live on a compute tile, not {tile}")
    channels = {}
    for f in d.fifos.values():
        line = f.line
        for t in [f.producer, *f.consumers]:
            if t not in d.tiles:
                _fail(f"@{f.name} uses undefined tile {t}", line)
        if f.depth < 1:
            _fail(f"@{f.name} has depth {f.depth}", line)
        shape, et = mtype(f.type)
        if f.dims:
            pk = kind(d, f.producer)
            limit = {"mem": 4, "core": 3}.get(pk, 0)
            if len(f.dims) > limit:
                _fail(f"@{f.name}: dimensionsToStream has {len(f.dims)} dimensions; a {pk} tile DMA has {limit}", line)
            if prod(s for s, _ in f.dims) != prod(shape):
                _fail(f"@{f.name}: dimensionsToStream moves {prod(s for s, _ in f.dims)} elements per object of "
                      f"{prod(shape)}", line)
            if sum((s - 1) * st for s, st in f.dims) >= prod(shape):
                _fail(f"@{f.name}: dimensionsToStream reads past its {prod(shape)}-element buffer", line)
            for s, st in f.dims:
                if s > 1023 or st * ELEM_BYTES[et] // 4 > 0x100000:
                    _fail(f"@{f.name}: <size = {s}, stride = {st}> is outside the DMA range (size <= 1023, "
                          f"stride <= 1M words)", line)
        for t, direction in [(f.producer, "MM2S")] + [(c, "S2MM") for c in f.consumers]:
            if kind(d, t) == "shim":
                channels[(t, direction)] = channels.get((t, direction), 0) + 1
                if channels[(t, direction)] > SHIM_CHANNELS:
                    _fail(f"shim tile {t} has more than {SHIM_CHANNELS} {direction} channels", line)
        if kind(d, f.producer) == "shim" and any(kind(d, c) == "shim" for c in f.consumers):
            _fail(f"@{f.name} connects two shim tiles", line)
    for src, dst, line in d.links:
        for n in src + dst:
            if n not in d.fifos:
                _fail(f"link names undefined object FIFO @{n}", line)
        mids = {c for n in src for c in d.fifos[n].consumers} | {d.fifos[n].producer for n in dst}
        if len(mids) != 1 or kind(d, next(iter(mids))) != "mem":
            _fail(f"link {src} -> {dst} must pass through one mem tile", line)
        if len(src) != 1 or len(dst) != 1:
            _fail("only 1-to-1 links are emitted by fusebuild", line)
        if prod(mtype(d.fifos[src[0]].type)[0]) != prod(mtype(d.fifos[dst[0]].type)[0]):
            _fail(f"link @{src[0]} -> @{dst[0]} joins objects of different sizes", line)
    linked = {n for s, t, _ in d.links for n in s + t}
    for f in d.fifos.values():
        touches_mem = kind(d, f.producer) == "mem" or any(kind(d, c) == "mem" for c in f.consumers)
        if touches_mem and f.name not in linked:
            _fail(f"@{f.name} reaches a mem tile but is not linked", f.line)
    l1 = {}
    for core in d.cores:
        if core["tile"] not in d.tiles or kind(d, core["tile"]) != "core":
            _fail(f"aie.core on {core['tile']}, which is not a compute tile", core["line"])
        if not core.get("ended"):
            _fail("core body without aie.end", core["line"])
        _check_body(d, core, core["body"], set(d.buffers), {})
    for f in d.fifos.values():   # L1: each compute tile holds `depth` objects of every FIFO it touches
        for t in {f.producer, *f.consumers}:
            if kind(d, t) == "core":
                shape, et = mtype(f.type)
                l1[t] = l1.get(t, 0) + f.depth * prod(shape) * ELEM_BYTES[et]
    for tile, ty in d.buffers.values():
        shape, et = mtype(ty)
        l1[tile] = l1.get(tile, 0) + prod(shape) * ELEM_BYTES[et]
    for t, used in l1.items():
        if used > L1_BYTES:
            _fail(f"compute tile {t} needs {used} bytes of data memory; it has {L1_BYTES}")
    used_ports = {(s["fifo"], s["port"], c["tile"]) for c in d.cores for s in _walk(c["body"]) if s["op"] == "acquire"}
    for f in d.fifos.values():
        if kind(d, f.producer) == "core" and (f.name, "Produce", f.producer) not in used_ports:
            _fail(f"@{f.name} is never produced by its core {f.producer}", f.line)
        for c in f.consumers:
            if kind(d, c) == "core" and (f.name, "Consume", c) not in used_ports:
                _fail(f"@{f.name} is never consumed by its core {c}", f.line)
    return _check_sequence(d) | {"device": d.device, "cores": len(d.cores), "fifos": len(d.fifos),
                                 "l1_bytes_max": max(l1.values(), default=0)}


def _walk(body):
    for s in body:
        yield s
        if s["op"] == "for":
            yield from _walk(s["body"])


def _check_body(d, core, body, defined, held):
    defined = set(defined)
    held = dict(held)
    for s in body:
        line = s["line"]
        if s["op"] == "for":
            inner = _check_body(d, core, s["body"], defined, held)
            if inner != held:
                _fail("acquire/release are not balanced in this loop body", line)
        elif s["op"] == "acquire":
            f = d.fifos.get(s["fifo"])
            if f is None:
                _fail(f"acquire of undefined object FIFO @{s['fifo']}", line)
            if s["type"] != f.type:
                _fail(f"acquire of @{f.name} as {s['type']}, but it holds {f.type}", line)
            ok = f.producer == core["tile"] if s["port"] == "Produce" else core["tile"] in f.consumers
            if not ok:
                _fail(f"core on {core['tile']} cannot {s['port']} @{f.name} (producer {f.producer}, consumers "
                      f"{', '.join(f.consumers)})", line)
            key = (f.name, s["port"])
            held[key] = held.get(key, 0) + 1
            if held[key] > f.depth:
                _fail(f"@{f.name}: {held[key]} objects held at once, depth is {f.depth}", line)
            if "value" not in s:
                _fail("acquire without subview.access", line)
            defined.add(s["value"])
        elif s["op"] == "release":
            key = (s["fifo"], s["port"])
            if held.get(key, 0) < 1:
                _fail(f"release of @{s['fifo']}({s['port']}) that this core does not hold", line)
            held[key] -= 1
            if not held[key]:
                del held[key]
        elif s["op"] == "call":
            if s["func"] not in d.kernels:
                _fail(f"call of undeclared kernel @{s['func']}", line)
            if s["types"] != d.kernels[s["func"]] or len(s["args"]) != len(s["types"]):
                _fail(f"call of @{s['func']} with types {s['types']}, declared {d.kernels[s['func']]}", line)
            for a, ty in zip(s["args"], s["types"]):
                if a not in defined:
                    _fail(f"{a} is used before it is defined", line)
                if a in d.buffers and d.buffers[a][1] != ty:
                    _fail(f"{a} is {d.buffers[a][1]}, passed as {ty}", line)
    return held


def _check_sequence(d: Design) -> dict:
    args = dict(d.args)
    pending, moved = set(), {}
    for op in d.sequence:
        line = op["line"]
        f = d.fifos.get(op["fifo"])
        if f is None:
            _fail(f"DMA on undefined object FIFO @{op['fifo']}", line)
        into_array = kind(d, f.producer) == "shim"
        out_of_array = any(kind(d, c) == "shim" for c in f.consumers)
        if op["op"] == "wait":
            if not out_of_array:
                _fail(f"dma_wait on @{f.name}, which does not flow to the host", line)
            pending.discard(f.name)
            continue
        if not (into_array or out_of_array):
            _fail(f"dma_memcpy_nd on @{f.name}, which has no shim tile end", line)
        if op["arg"] not in args or args[op["arg"]] != op["type"]:
            _fail(f"dma_memcpy_nd on {op['arg']} : {op['type']}, but the sequence declares "
                  f"{args.get(op['arg'], 'no such argument')}", line)
        if not 0 <= op["id"] < 16:
            _fail(f"buffer descriptor id {op['id']} outside 0..15", line)
        shape, et = mtype(op["type"])
        eb = ELEM_BYTES[et]
        offset = _linear_offset(op["offsets"], shape)
        loops = list(zip(op["sizes"], op["strides"]))
        try:
            L._check_op(offset, loops, eb, L.NPU_SHIM_DMA, f"{op['arg']} @{f.name}")
        except LayoutError as err:
            _fail(err.message, line)
        if any(s < 1 for s in op["sizes"]) or any(t < 0 for t in op["strides"]):
            _fail("DMA sizes must be >= 1 and strides >= 0", line)
        last = offset + sum((s - 1) * t for s, t in loops)
        if offset < 0 or last >= prod(shape):
            _fail(f"DMA on {op['arg']} reaches element {last} of a {prod(shape)}-element buffer", line)
        if out_of_array:
            if not op["token"]:
                _fail(f"a host-bound DMA on @{f.name} needs issue_token = true to be awaited", line)
            pending.add(f.name)
        moved[f.name] = moved.get(f.name, 0) + prod(op["sizes"])
    if pending:
        _fail(f"no dma_wait after the last transfer of @{sorted(pending)[0]}")
    for f in d.fifos.values():
        ends = kind(d, f.producer) == "shim" or any(kind(d, c) == "shim" for c in f.consumers)
        if ends and not moved.get(f.name):
            _fail(f"@{f.name} has a shim end but the runtime sequence never moves data on it", f.line)
    return {"dma_ops": sum(1 for op in d.sequence if op["op"] == "memcpy")}


def _linear_offset(offsets, shape):
    """Like mlir-aie: offsets (outermost first) on the memref's row-major strides."""
    rank, stride, total = len(shape), 1, 0
    rev = list(reversed(offsets))
    for i in range(rank):
        total += rev[i] * stride
        stride *= shape[rank - 1 - i]
    return total
