"""Per-tile kernel functions of the AIE designs: one naming rule, read both ways.

A design calls `func.func private` kernels by name; the name says what the kernel
computes (and nothing else: shapes and blocking come from the memref types of the
call). The renderer writes names with `kernel_name`; the emulator reads them back with
`parse_kernel` and runs the op's torch reference from ops.OPS.

  zero_<dt>_<m>x<n>                          out = 0
  matmul_<dt>_<m>x<k>x<n>                     c += a @ b        (b tile k x n)
  matmul_bt_<dt>_<m>x<k>x<n>                  c += a @ b^T      (b tile n x k)
  <op>[_<attr value>]_<dt>_<m>x<n>            out = op(in...)   (elementwise ops)
"""
from __future__ import annotations

import re

from ...ir.dtypes import DTYPES

DT = {name: d.short for name, d in DTYPES.items()}
DT_BACK = {v: k for k, v in DT.items()}
_RE = re.compile(r"^(?P<op>[a-z]+(?:_bt)?)(?:_(?P<attr>exact|tanh))?_(?P<dt>f32|bf16|f16)_(?P<dims>\d+(?:x\d+)+)$")


def kernel_name(op: str, dtype: str, dims, attrs: dict | None = None) -> str:
    attr = attrs.get("approximate") if attrs else None
    return f"{op}{'_' + attr if attr else ''}_{DT[dtype]}_{'x'.join(str(d) for d in dims)}"


def parse_kernel(name: str) -> dict:
    """'matmul_bt_f32_16x32x64' -> {op: matmul, transpose_b: True, attrs: {}, dtype: float32}."""
    m = _RE.match(name)
    if not m:
        raise ValueError(f"'{name}' is not a fusebuild AIE kernel name")
    op, attrs = m["op"], {}
    if m["attr"]:
        attrs["approximate"] = m["attr"]
    transpose_b = op == "matmul_bt"
    if transpose_b:
        op = "matmul"
    return {"op": op, "transpose_b": transpose_b, "attrs": attrs, "dtype": DT_BACK[m["dt"]],
            "dims": [int(d) for d in m["dims"].split("x")]}
