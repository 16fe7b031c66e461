"""A strict parser of the MLIR-AIE subset fusebuild emits (no mlir-aie needed).

Every line of a rendered design must match one rule of `RULES` in a context where it is
allowed (device body, core body, runtime sequence); anything else is an error with its
line number. The result is a `Design`: plain data that the checker (`rules.py`) judges
and the emulator (`emulate.py`) executes. What is checked and run is the text, never the
Python objects it was rendered from.

The subset is the mlir-aie v1.3.1 form (version.py): `aie.runtime_sequence`,
func-level `link_with`, `aie.objectfifo` with optional `dimensionsToStream`,
`aie.objectfifo.link` with join/distribute offsets, `aiex.npu.dma_memcpy_nd` /
`aiex.npu.dma_wait`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from math import prod

from ...errors import FusebuildError

ELEM_BYTES = {"f32": 4, "bf16": 2, "f16": 2, "i32": 4}
TYPE = r"memref<(?:\d+x)+(?:f32|bf16|f16|i32)>"
SSA = r"%[A-Za-z0-9_]+"
SYM = r"@[A-Za-z0-9_]+"
LIST = r"\[\s*(-?\d+(?:\s*,\s*-?\d+)*)\s*\]"
OPT_LIST = r"\[\s*((?:-?\d+(?:\s*,\s*-?\d+)*)?)\s*\]"


class AieCheckError(FusebuildError):
    """A rendered design that is not well formed or breaks an mlir-aie rule."""


def mtype(text):
    """'memref<2x8xf32>' -> ((2, 8), 'f32')."""
    m = re.fullmatch(r"memref<((?:\d+x)+)(f32|bf16|f16|i32)>", text)
    if not m:
        raise ValueError(text)
    return tuple(int(x) for x in m[1].rstrip("x").split("x")), m[2]


def numel(text) -> int:
    return prod(mtype(text)[0])


def nbytes(text) -> int:
    shape, et = mtype(text)
    return prod(shape) * ELEM_BYTES[et]


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
class Link:
    srcs: list
    dsts: list
    src_offsets: list
    dst_offsets: list
    line: int


@dataclass
class Design:
    device: str = ""
    kernels: dict = field(default_factory=dict)       # name -> {"types", "link_with", "line"}
    tiles: dict = field(default_factory=dict)         # ssa -> (col, row)
    tile_lines: dict = field(default_factory=dict)    # ssa -> line
    buffers: dict = field(default_factory=dict)       # ssa -> (tile, type)
    buffer_lines: dict = field(default_factory=dict)
    fifos: dict = field(default_factory=dict)         # name -> Fifo
    links: list = field(default_factory=list)         # Link
    cores: list = field(default_factory=list)         # {"ssa", "tile", "body", "stack", "line"}
    args: list = field(default_factory=list)          # (ssa, type)
    sequence: list = field(default_factory=list)      # {"op": memcpy|wait, ...}
    sequence_line: int = 0


RULES = {
    "module": re.compile(r"module \{"),
    "device": re.compile(r"aie\.device\((\w+)\) \{"),
    "func": re.compile(rf"func\.func private ({SYM})\(((?:{TYPE})(?:, {TYPE})*)\) attributes "
                       rf"\{{link_with = \"([\w.]+)\"\}}"),
    "tile": re.compile(rf"({SSA}) = aie\.tile\((\d+), (\d+)\)"),
    "buffer": re.compile(rf"({SSA}) = aie\.buffer\(({SSA})\) \{{sym_name = \"(\w+)\"\}} : ({TYPE})"),
    "fifo": re.compile(rf"aie\.objectfifo ({SYM})\(({SSA})(?: dimensionsToStream \[((?:<size = \d+, stride = \d+>)"
                       rf"(?:, <size = \d+, stride = \d+>)*)\])?, \{{((?:{SSA})(?:, {SSA})*)\}}, (\d+) : i32\) : "
                       rf"!aie\.objectfifo<({TYPE})>"),
    "link": re.compile(rf"aie\.objectfifo\.link \[((?:{SYM})(?:, {SYM})*)\] -> \[((?:{SYM})(?:, {SYM})*)\]"
                       rf"\({OPT_LIST} {OPT_LIST}\)"),
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
    "core_close": re.compile(r"\} \{stack_size = (\d+) : i32\}"),
    "sequence": re.compile(rf"aie\.runtime_sequence\(((?:{SSA}: {TYPE})(?:, {SSA}: {TYPE})*)\) \{{"),
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
    if len(stack) != 1:
        raise AieCheckError(f"unclosed region: {stack[-1][0]}", path=path, line=len(text.splitlines()))
    return d


def _fail(msg, line=None):
    raise AieCheckError(msg, line=line)


def _ints(text):
    return [int(v) for v in text.split(",")] if text.strip() else []


def _apply(d: Design, stack, rule, m, no):
    ctx, payload = stack[-1]
    if rule == "close":
        stack.pop()
        return
    if rule == "core_close":
        payload["stack"] = int(m[1])
        stack.pop()
        return
    if rule == "device":
        d.device = m[1]
    elif rule == "func":
        d.kernels[m[1][1:]] = {"types": re.findall(TYPE, m[2]), "link_with": m[3], "line": no}
    elif rule == "tile":
        if m[1] in d.tiles:
            _fail(f"{m[1]} defined twice")
        d.tiles[m[1]] = (int(m[2]), int(m[3]))
        d.tile_lines[m[1]] = no
    elif rule == "buffer":
        d.buffers[m[1]] = (m[2], m[4])
        d.buffer_lines[m[1]] = no
    elif rule == "fifo":
        dims = [(int(a), int(b)) for a, b in re.findall(r"<size = (\d+), stride = (\d+)>", m[3] or "")]
        name = m[1][1:]
        if name in d.fifos:
            _fail(f"object FIFO @{name} defined twice")
        d.fifos[name] = Fifo(name, m[2], re.findall(SSA, m[4]), int(m[5]), m[6], dims, no)
    elif rule == "link":
        d.links.append(Link([s[1:] for s in re.findall(SYM, m[1])], [s[1:] for s in re.findall(SYM, m[2])],
                            _ints(m[3]), _ints(m[4]), no))
    elif rule == "core":
        core = {"ssa": m[1], "tile": m[2], "body": [], "consts": set(), "line": no, "stack": None}
        d.cores.append(core)
        stack.append(("core", core))
        return
    elif rule == "const":
        if m[1] != m[2]:
            _fail(f"%c{m[1]} holds {m[2]}")
        payload["consts"].add(int(m[2]))
    elif rule == "for":
        core = next(p for c, p in reversed(stack) if c == "core")
        for v in (m[2], m[3], m[4]):
            if int(v) not in core["consts"]:
                _fail(f"%c{v} is used before it is defined")
        if int(m[2]) != 0 or int(m[4]) != 1:
            _fail("loops must run from 0 with step 1")
        loop = {"op": "for", "var": m[1], "count": int(m[3]), "body": [], "line": no}
        payload["body"].append(loop)
        stack.append(("for", loop))
        return
    elif rule == "acquire":
        payload["body"].append({"op": "acquire", "ssa": m[1], "fifo": m[2][1:], "port": m[3], "type": m[4], "line": no})
    elif rule == "access":
        body = payload["body"]
        if (not body or body[-1]["op"] != "acquire" or body[-1]["ssa"] != m[2] or m[3] != m[4]
                or m[3] != body[-1]["type"]):
            _fail(f"subview.access of {m[2]}_sv must follow its acquire, with the same type")
        body[-1]["value"] = m[1]
    elif rule == "release":
        payload["body"].append({"op": "release", "fifo": m[1][1:], "port": m[2], "line": no})
    elif rule == "call":
        payload["body"].append({"op": "call", "func": m[1][1:], "args": re.findall(SSA, m[2]),
                                "types": re.findall(TYPE, m[3]), "line": no})
    elif rule == "end":
        payload["ended"] = True
    elif rule == "sequence":
        d.args = [tuple(x.split(": ")) for x in re.findall(rf"{SSA}: {TYPE}", m[1])]
        d.sequence_line = no
        stack.append(("sequence", None))
        return
    elif rule == "memcpy":
        vals = [_ints(m[i]) for i in (2, 3, 4)]
        if any(len(v) != 4 for v in vals):
            _fail("dma_memcpy_nd takes 4 offsets, 4 sizes and 4 strides")
        d.sequence.append({"op": "memcpy", "arg": m[1], "offsets": vals[0], "sizes": vals[1], "strides": vals[2],
                           "id": int(m[5]), "fifo": m[6][1:], "token": bool(m[7]), "type": m[8], "line": no})
    elif rule == "wait":
        d.sequence.append({"op": "wait", "fifo": m[1][1:], "line": no})
    if rule in OPENS:
        stack.append((OPENS[rule], None))


def walk(body):
    """Every statement of a core body, loops included, in order."""
    for s in body:
        yield s
        if s["op"] == "for":
            yield from walk(s["body"])
