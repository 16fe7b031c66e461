"""Per-tile kernels of the AIE designs: one naming rule, written by the planner and read back
by the emulator and by the kernel-source renderer.

A design calls `func.func private` kernels by name; the name says everything the
kernel computes (shapes included), so the emulator can run a design from its text
alone, and the renderer of `kernels.cc` (kernelsrc.py) writes exactly one C++
function per name. All tiles are row-major in local memory; `acc` is the core's fp32
accumulator (m x n).

  zero_f32_<m>x<n>(acc)                           acc = 0
  matmul[_bt]_<dt>_<m>x<k>x<n>[_p<P>][_o<E>](a, b, acc)
                                                  acc += a @ b     (b is n x k with _bt, else k x n;
                                                                     a is P panels of m x k/P)
  store_<dt>_<m>x<n>(acc, out)                    out = round_to_nearest_even(acc)
  <op>[_exact|_tanh]_<dt>_<m>x<n>(acc)            acc = op(acc)       relu silu gelu sigmoid
  <op>_<dt>_<m>x<n>_<kind><offset>[_o<E>](acc, obj)
                                                  acc = op(acc, x)    add sub rsub mul; x read from
                                                  obj at offset: row (n values), col (m), scalar (1),
                                                  pair (an m x n tile)
  ew_<op>[_exact|_tanh]_<dt>_<r>x<c>[_<k0>_<k1>](in0[, in1], out)
                                                  out = op(in0[, in1]) on an r x c tile; operand kinds
                                                  full | row | col | scalar

`<dt>` (f32 | bf16) is the design's data type: it selects the arithmetic the kernel
and the emulator use (numerics.py). `_o<E>` is the element count of the object the
kernel reads its operand from (matmul: `a`; epilogue: `obj`) when that is more than the
operand itself (an A object that carries joined epilogue operands): the memref types of
a `func.func` declaration are part of its name, so two calls of one name always have
one signature.
"""
from __future__ import annotations

import re

DT = {"float32": "f32", "bfloat16": "bf16"}
DT_BACK = {v: k for k, v in DT.items()}
UNARY = ("relu", "silu", "gelu", "sigmoid")
BINARY = ("add", "sub", "rsub", "mul")


def memref(n: int, dtype: str) -> str:
    return f"memref<{n}x{DT.get(dtype, dtype)}>"


def _approx(attrs) -> str:
    a = dict(attrs).get("approximate")
    return f"_{a}" if a else ""


def zero(m, n) -> str:
    return f"zero_f32_{m}x{n}"


def _obj(elems, own) -> str:
    """The `_o<E>` suffix: the object's size where it is more than the operand's own."""
    return f"_o{elems}" if elems is not None and elems != own else ""


def matmul(dtype, m, k, n, tb, panels=1, a_elems=None) -> str:
    """a_elems: the A object's elements (m * k, or more when epilogue operands ride in it)."""
    return (f"matmul{'_bt' if tb else ''}_{DT[dtype]}_{m}x{k}x{n}" + (f"_p{panels}" if panels > 1 else "")
            + _obj(a_elems, m * k))


def store(dtype, m, n) -> str:
    return f"store_{DT[dtype]}_{m}x{n}"


def epilogue(op, attrs, dtype, m, n, kind="", offset=0, obj_elems=None) -> str:
    """obj_elems: the elements of the object the operand is read from (the A object of a GEMM
    group, a FIFO object of just the operand, or an m x n tile)."""
    base = f"{op}{_approx(attrs)}_{DT[dtype]}_{m}x{n}"
    if not kind:
        return base
    own = {"row": n, "col": m, "scalar": 1, "pair": m * n}[kind]
    if obj_elems is not None and obj_elems < offset + own:
        raise ValueError(f"{base}: a {kind} operand at element {offset} of a {obj_elems}-element object")
    return f"{base}_{kind}{offset}" + _obj(obj_elems, own)


def elementwise(op, attrs, dtype, r, c, kinds=()) -> str:
    base = f"ew_{op}{_approx(attrs)}_{DT[dtype]}_{r}x{c}"
    return base + ("_" + "_".join(kinds) if len(kinds) > 1 else "")


_DIMS = r"(?P<dims>\d+(?:x\d+)+)"
_PATTERNS = [
    ("zero", re.compile(rf"^zero_f32_{_DIMS}$")),
    ("matmul", re.compile(rf"^matmul(?P<bt>_bt)?_(?P<dt>f32|bf16)_{_DIMS}(?:_p(?P<panels>\d+))?(?:_o(?P<obj>\d+))?$")),
    ("store", re.compile(rf"^store_(?P<dt>f32|bf16)_{_DIMS}$")),
    ("ew", re.compile(rf"^ew_(?P<op>[a-z]+)(?:_(?P<approx>exact|tanh))?_(?P<dt>f32|bf16)_{_DIMS}"
                      rf"(?:_(?P<k0>full|row|col|scalar)_(?P<k1>full|row|col|scalar))?$")),
    ("epilogue", re.compile(rf"^(?P<op>[a-z]+)(?:_(?P<approx>exact|tanh))?_(?P<dt>f32|bf16)_{_DIMS}"
                            rf"(?:_(?P<kind>row|col|scalar|pair)(?P<offset>\d+)(?:_o(?P<obj>\d+))?)?$")),
]


def parse(name: str) -> dict:
    """'matmul_bt_bf16_16x64x32_p4' -> {kind: matmul, dtype: bfloat16, dims: [16, 64, 32], tb: True, panels: 4}."""
    for kind, rx in _PATTERNS:
        m = rx.match(name)
        if not m:
            continue
        g = m.groupdict()
        out = {"kind": kind, "dims": [int(x) for x in g["dims"].split("x")],
               "dtype": DT_BACK.get(g.get("dt") or "f32")}
        if kind == "matmul":
            out.update(tb=bool(g["bt"]), panels=int(g["panels"] or 1))
        if g.get("obj"):
            out.update(obj=int(g["obj"]))
        if kind in ("ew", "epilogue"):
            op = g["op"]
            arity = 1 if op in UNARY else 2 if op in BINARY else 0
            if not arity or (kind == "ew" and op == "rsub"):
                break
            out.update(op=op, attrs={"approximate": g["approx"]} if g["approx"] else {})
            if kind == "epilogue":
                if (arity == 2) != bool(g["kind"]):
                    break
                out.update(operand=g["kind"], offset=int(g["offset"] or 0))
            else:
                kinds = [g["k0"], g["k1"]] if g["k0"] else ["full"]
                if len(kinds) != arity:
                    break
                out.update(kinds=kinds)
        return out
    raise ValueError(f"'{name}' is not a fusebuild AIE kernel name")
