"""What `kernels.cc` contains: one C++ function (AIE API) per kernel name a design declares.

Decisions live here, the templates (templates/aie/kernels/) only lay the text out:
the C++ element types, the aie::mmul shape per data type and architecture (AIE2P:
bfloat16 4x8x8 native; float 4x8x4 only through the AIE API's fp32 emulation, which
`gemm.cc.j2` requires with an #error otherwise), a row-wise vector path when m is not
a multiple of 4, panel widths of a joined A operand, operand offsets, and the
approximation of each activation (the steps of numerics.py, in the same order).
Every kernel sets round-to-nearest-even for its float -> bf16 conversions.
"""
from __future__ import annotations

from . import kernels as K
from . import numerics as NUM
from .plan import MAC, MMAC_T, VEC
from .version import ARCH

CTYPE = {"float32": "float", "bfloat16": "bfloat16"}


def kernel_context(plan, graph) -> dict:
    out = []
    for name in sorted(plan.kernels):
        k = K.parse(name)
        dt = k["dtype"]
        entry = {"name": name, "kind": k["kind"], "ctype": CTYPE[dt], "q": int(dt != "float32"),
                 "dims": k["dims"], "vec": VEC}
        if k["kind"] == "matmul":
            m, kk, n = k["dims"]
            r, s, t = MAC[dt]
            t = MMAC_T.get((plan.device, dt), t)
            entry.update(m=m, k=kk, n=n, tb=k["tb"], panels=k["panels"], width=kk // k["panels"],
                         r=r if m % r == 0 else 1, s=s, t=t)
        elif k["kind"] in ("epilogue", "ew"):
            entry.update(op=k["op"], approx=k["attrs"].get("approximate", ""),
                         operand=k.get("operand", ""), offset=k.get("offset", 0), kinds=k.get("kinds", []))
        out.append(entry)
    c0, c1 = NUM.constants("f32"), NUM.constants("bf16")
    consts = [{"name": n, "f32": _hexf(c0[n]), "bf16": _hexf(c1[n])} for n in c0]
    return {"kernels": out, "arch": ARCH[plan.device], "device": plan.device, "consts": consts,
            "unary": sorted({k["op"] + ("_" + k["approx"] if k["approx"] else "") for k in out
                             if k["kind"] in ("epilogue", "ew") and k["op"] in K.UNARY})}


def _hexf(x: float) -> str:
    """An exact C++ float literal of an fp32 value."""
    return f"{x.hex()}f" if x else "0.0f"
