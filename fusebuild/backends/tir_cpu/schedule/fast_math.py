"""Rewrite libm transcendental calls in epilogue stores into vectorizable polynomials.

exp/sigmoid/tanh in epilogues become a Cephes-style polynomial exp (about 1e-7 relative
error, pure arithmetic, so LLVM vectorizes it): libm `expf` calls would not vectorize and
cost as much as the GEMM's last 20 %. `prepare` also moves the rendered function's
`T.alloc_buffer`s into the root block, so the schedule can shrink them to register tiles.
"""
from __future__ import annotations

import tvm
from tvm import s_tir, tirx


def _f32(v: float):
    return tirx.FloatImm("float32", v)


def _let(name, value, body_fn):
    var = tirx.Var(name, "float32")
    return tirx.Let(var, value, body_fn(var))


def _fast_exp(x):
    """Cephes exp: 2^n * P(r), ~1e-7 relative error; pure arithmetic, so it vectorizes."""

    def with_n(xc, n):
        def with_r(r):
            p = _f32(1.9875691500e-4)
            for c in (1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1):
                p = p * r + _f32(c)
            two_n = tirx.reinterpret(
                "float32",
                tirx.shift_left(tirx.Cast("int32", n) + tirx.IntImm("int32", 127), tirx.IntImm("int32", 23)),
            )
            return (p * r * r + r + _f32(1.0)) * two_n

        return _let("r", xc - n * _f32(0.693359375) + n * _f32(2.12194440e-4), with_r)

    clamp = tirx.Max(tirx.Min(x, _f32(88.3762626647950)), _f32(-88.3762626647949))
    return _let("xc", clamp, lambda xc: _let("n", tirx.floor(xc * _f32(1.4426950408889634) + _f32(0.5)),
                                             lambda n: with_n(xc, n)))


def _fast_tanh(x):
    # Each Let-bound value is used through its var only: a Let (and its vars) may
    # appear once in the tree, or TIR's well-formedness check rejects the function.
    def body(v):
        ax = tirx.Max(v, _f32(0.0) - v)
        v2 = v * v  # Taylor series near 0, where 1 - t cancels
        small = v * (_f32(1.0) + v2 * (_f32(-1.0 / 3) + v2 * (_f32(2.0 / 15) + v2 * _f32(-17.0 / 315))))
        big = _let("t", _fast_exp(_f32(-2.0) * ax), lambda t: (_f32(1.0) - t) / (_f32(1.0) + t))
        signed = _let("tb", big, lambda b: tirx.Select(v < _f32(0.0), _f32(0.0) - b, b))
        return tirx.Select(ax < _f32(0.125), small, signed)

    return _let("tx", x, body)


_FAST_MATH = {
    "tirx.exp": _fast_exp,
    "tirx.sigmoid": lambda x: _f32(1.0) / (_f32(1.0) + _fast_exp(_f32(0.0) - x)),
    "tirx.tanh": _fast_tanh,
}
_BINARY = (tirx.Add, tirx.Sub, tirx.Mul, tirx.Div, tirx.Mod, tirx.FloorDiv, tirx.FloorMod, tirx.Min,
           tirx.Max, tirx.EQ, tirx.NE, tirx.LT, tirx.LE, tirx.GT, tirx.GE, tirx.And, tirx.Or)


def _rewrite_expr(e):
    """Replace libm transcendental calls by _FAST_MATH; unknown nodes are left untouched."""
    if isinstance(e, _BINARY):
        a, b = _rewrite_expr(e.a), _rewrite_expr(e.b)
        return e if a.same_as(e.a) and b.same_as(e.b) else type(e)(a, b)
    if isinstance(e, tirx.Not):
        return tirx.Not(_rewrite_expr(e.a))
    if isinstance(e, tirx.Cast):
        return tirx.Cast(str(e.ty), _rewrite_expr(e.value))
    if isinstance(e, tirx.Select):
        return tirx.Select(_rewrite_expr(e.condition), _rewrite_expr(e.true_value), _rewrite_expr(e.false_value))
    if isinstance(e, tvm.ir.Call):
        args = [_rewrite_expr(a) for a in e.args]
        name, dtype = getattr(e.op, "name", ""), str(e.ty)
        if name in _FAST_MATH and len(args) == 1 and dtype in ("float32", "float16", "bfloat16"):
            arg = args[0] if dtype == "float32" else tirx.Cast("float32", args[0])
            out = _FAST_MATH[name](arg)
            return out if dtype == "float32" else tirx.Cast(dtype, out)
        if all(a.same_as(b) for a, b in zip(args, e.args)):
            return e
        return tvm.ir.Call(e.op, args, e.attrs, e.ty_args, ret_ty=e.ty)
    return e


def _rewrite_stmt(s, blocks: set[str]):
    """Walk the rendered loop nests and apply _rewrite_expr to the stores of `blocks`."""
    if isinstance(s, tirx.SeqStmt):
        return tirx.SeqStmt([_rewrite_stmt(x, blocks) for x in s.seq])
    if isinstance(s, tirx.IfThenElse):      # a dynamic kernel's rows/tiles dispatch
        return tirx.IfThenElse(s.condition, _rewrite_stmt(s.then_case, blocks),
                               _rewrite_stmt(s.else_case, blocks) if s.else_case is not None else None)
    if isinstance(s, tirx.For):
        return tirx.For(s.loop_var, s.min, s.extent, s.kind, _rewrite_stmt(s.body, blocks),
                        s.thread_binding, s.annotations, s.step)
    if isinstance(s, s_tir.SBlockRealize):
        b = s.block
        body = _rewrite_stmt(b.body, blocks) if b.name_hint in blocks else b.body
        nb = s_tir.SBlock(b.iter_vars, b.reads, b.writes, b.name_hint, body, b.init,
                          b.alloc_buffers, b.match_buffers, b.annotations)
        return s_tir.SBlockRealize(s.iter_values, s.predicate, nb)
    if isinstance(s, tirx.BufferStore):
        return tirx.BufferStore(s.buffer, _rewrite_expr(s.value), s.indices)
    return s


def prepare(func: tirx.PrimFunc, fast_math_blocks: set[str]) -> tirx.PrimFunc:
    """Make the rendered function schedulable.

    TVM 0.27 parses a function-level ``T.alloc_buffer`` as a flat ``AllocBuffer``
    statement, which the schedule treats as external memory (no compute_inline /
    compaction).  Moving those buffers into the root block's ``alloc_buffers``
    makes them block-local scratch that can shrink to a register tile.
    """
    root = func.body.block
    stmts = list(root.body.seq) if isinstance(root.body, tirx.SeqStmt) else [root.body]
    allocs = [s.buffer for s in stmts if isinstance(s, tirx.AllocBuffer)]
    rest = [s for s in stmts if not isinstance(s, tirx.AllocBuffer)]
    body = tirx.SeqStmt(rest) if len(rest) > 1 else rest[0]
    body = _rewrite_stmt(body, fast_math_blocks)
    new_root = s_tir.SBlock(root.iter_vars, root.reads, root.writes, root.name_hint, body, root.init,
                            list(root.alloc_buffers) + allocs, root.match_buffers, root.annotations)
    return func.with_body(s_tir.SBlockRealize([], True, new_root))
