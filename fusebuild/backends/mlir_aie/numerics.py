"""The kernels' arithmetic, in torch: what the emulator runs for every kernel call.

The kernel sources (templates/aie/kernels/) do exactly these steps with the AIE API,
in the same order, so the emulation reproduces their rounding. Values are fp32
tensors; `q` is the operand mode of every multiply:

  q = "bf16" (bfloat16 designs): each multiply rounds both operands to bf16 (round to
      nearest even: the kernels set aie::rounding_mode::conv_even, the device default
      being floor) and multiplies them exactly into fp32 (bf16 x bf16 -> accfloat, a
      16-bit product, exact);
  q = "f32"  (float32 designs): fp32 products rounded to nearest even. AIE2P has no
      fp32 multiplier; the AIE API emulates one with bf16 limbs, which differs from the
      IEEE product in the last bit for a few inputs (amd/IRON
      iron/operators/flm/aie2p_math_emulation.py, fmul): float32 emulation is exact up
      to that last bit.
Additions are fp32 (round to nearest even), the accumulator adds of the AIE-ML vector
unit. The GEMM accumulates in fp32: each matmul call adds its tile product (exact
products of bf16 inputs) to the accumulator; the order of the additions inside one
call is the hardware's, here torch's, which differs only at fp32 rounding.

Approximations (the same in both modes; in bf16 mode they are accurate to a few bf16
ulps, in f32 mode to a few fp32 ulps):
  exp(x), x <= 0    t = x log2(e) (log2(e) split in a hi + lo pair); n = rint(t) by the
                    1.5 * 2^23 trick; f = t - n in [-1/2, 1/2]; 2^f by its degree-6
                    Taylor polynomial (Horner); times 2^n by adding n to the exponent
  1/d, d >= 1       d = m 2^e, m in [1, 2); y = 48/17 - 32/17 m; three Newton steps
                    y = y (2 - m y); times 2^-e by the exponent
  sigmoid(x)        z = exp(-|x|); r = 1 / (1 + z); x >= 0 ? r : z r
  silu(x)           x sigmoid(x)
  gelu tanh(x)      x sigmoid(2 sqrt(2/pi) (x + 0.044715 x^3))   (= 0.5 x (1 + tanh(...)))
  gelu exact(x)     x Phi(x), Phi from erf(|x|/sqrt 2) by Abramowitz & Stegun 7.1.26
                    (t = 1 / (1 + p z), a 5-term polynomial in t, times exp(-z^2))
Results are stored: fp32 for float32 designs, rounded to nearest-even bf16 once (the
`store` kernel) for bfloat16 designs.
"""
from __future__ import annotations

import math
import struct

MAGIC = 12582912.0               # 1.5 * 2^23: (t + MAGIC) - MAGIC rounds t to an integer
EXP2_TAYLOR = [math.log(2) ** i / math.factorial(i) for i in range(7)]
AS_P = 0.3275911
AS_A = [0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429]
SPLIT = {"LOG2E": 1 / math.log(2), "GELU_TANH": 2 * math.sqrt(2 / math.pi), "GELU_CUBE": 0.044715,
         "RSQRT2": 1 / math.sqrt(2), "AS_P": AS_P}


def _torch():
    import torch
    return torch


def rne_bf16(x):
    """fp32 -> bf16 (round to nearest even) -> fp32."""
    torch = _torch()
    return x.to(torch.bfloat16).to(torch.float32)


def f32(c: float) -> float:
    """c rounded to fp32 (nearest even), as a Python float."""
    return struct.unpack("<f", struct.pack("<f", c))[0]


def bf16(c: float) -> float:
    """c rounded to fp32, then to bf16 (nearest even), as a Python float."""
    bits = struct.unpack("<I", struct.pack("<f", c))[0]
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return struct.unpack("<f", struct.pack("<I", bits))[0]


def split(c: float, q: str) -> tuple:
    """A constant as hi + lo, each representable in the operand mode."""
    rnd = bf16 if q == "bf16" else f32
    hi = rnd(c)
    return hi, rnd(c - hi)


def constants(q: str) -> dict:
    """Every constant a kernel of operand mode q uses, as fp32 values: the kernel sources
    print exactly these (kernelsrc.py), the emulator computes with them."""
    out = {"MAGIC": MAGIC, "RECIP_A": f32(24 / 17), "RECIP_B": f32(8 / 17)}
    for name, c in SPLIT.items():
        out[name + "_HI"], out[name + "_LO"] = split(c, q)
    for i, c in enumerate(EXP2_TAYLOR):
        out[f"EXP2_C{i}"] = f32(c)
    for i, c in enumerate(AS_A):
        out[f"AS_A{i + 1}"] = f32(c)
    return out


def _c(q):
    return _CONST.setdefault(q, constants(q))


_CONST = {}


def mul(a, b, q):
    if q == "bf16":
        a = bf16(a) if isinstance(a, float) else rne_bf16(a)
        b = bf16(b) if isinstance(b, float) else rne_bf16(b)
    return a * b


def cmul(x, name: str, q):
    """x times a split constant (hi + lo): two products, one fp32 add."""
    c = _c(q)
    return mul(x, c[name + "_HI"], q) + mul(x, c[name + "_LO"], q)


def _scale2(x, n):
    """x * 2^n by the exponent bits (x positive normal, result normal)."""
    torch = _torch()
    return (x.view(torch.int32) + (n.to(torch.int32) << 23)).view(torch.float32)


def exp_neg(x, q):
    """exp(x) for x <= 0."""
    torch = _torch()
    c = _c(q)
    t = torch.clamp(cmul(x, "LOG2E", q), min=-126.0)
    r = t + c["MAGIC"]
    n = r.view(torch.int32) - torch.tensor(c["MAGIC"], dtype=torch.float32).view(torch.int32)
    f = t - (r - c["MAGIC"])
    p = torch.full_like(f, c["EXP2_C6"])
    for i in range(5, -1, -1):
        p = mul(p, f, q) + c[f"EXP2_C{i}"]
    return _scale2(p, n)


def recip(d, q):
    """1 / d for d >= 1."""
    torch = _torch()
    c = _c(q)
    bits = d.view(torch.int32)
    e = (bits >> 23) - 127
    m = ((bits & 0x7FFFFF) | 0x3F800000).view(torch.float32)
    y = c["RECIP_A"] - mul(m, c["RECIP_B"], q)
    for _ in range(3):
        y = mul(y, 2.0 - mul(m, y, q), q)
    return _scale2(y, -e)


def sigmoid(x, q):
    torch = _torch()
    z = exp_neg(-x.abs(), q)
    r = recip(1.0 + z, q)
    return torch.where(x >= 0, r, mul(z, r, q))


def silu(x, q):
    return mul(x, sigmoid(x, q), q)


def gelu_tanh(x, q):
    inner = x + cmul(mul(mul(x, x, q), x, q), "GELU_CUBE", q)
    return mul(x, sigmoid(cmul(inner, "GELU_TANH", q), q), q)


def gelu_exact(x, q):
    torch = _torch()
    c = _c(q)
    z = cmul(x.abs(), "RSQRT2", q)
    t = recip(1.0 + cmul(z, "AS_P", q), q)
    poly = torch.full_like(t, c["AS_A5"])
    for i in range(4, 0, -1):
        poly = mul(poly, t, q) + c[f"AS_A{i}"]
    poly = mul(poly, t, q)
    tail = mul(mul(poly, exp_neg(-mul(z, z, q), q), q), 0.5, q)      # 0.5 (1 - erf(z))
    phi = torch.where(x >= 0, 1.0 - tail, tail)
    return mul(x, phi, q)


def unary(op, attrs, x, q):
    torch = _torch()
    if op == "relu":
        return torch.clamp(x, min=0.0)
    if op == "sigmoid":
        return sigmoid(x, q)
    if op == "silu":
        return silu(x, q)
    if op == "gelu":
        return gelu_tanh(x, q) if attrs.get("approximate") == "tanh" else gelu_exact(x, q)
    raise ValueError(op)


def binary(op, a, b, q):
    if op == "add":
        return a + b
    if op == "sub":
        return a - b
    if op == "rsub":
        return b - a
    if op == "mul":
        return mul(a, b, q)
    raise ValueError(op)


def mode(dtype: str) -> str:
    return "f32" if dtype == "float32" else "bf16"


def store(x, dtype):
    """The value a kernel writes to a tile of `dtype`."""
    return x if dtype == "float32" else rne_bf16(x)
