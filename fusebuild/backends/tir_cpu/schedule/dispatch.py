"""The rows/tiles dispatch of a dynamic-M kernel: split it, schedule each side, join it back.

A kernel whose M is dynamic and straddles the GEMV threshold is rendered as
`if dim_M < threshold: <rows> else: <tiles>` (render.py). Each side is scheduled as its own
function (`split`): schedule primitives such as pad_einsum place the blocks they create
at the root and rewrite every reader of a buffer, which must not reach across the two
sides. Both sides come from one parsed function, so they share its parameters and its
size variables, and `join` puts the scheduled bodies back under the same condition, each
with the scratch buffers it uses.
"""
from __future__ import annotations

from tvm import s_tir, tirx

from .common import block_regions, buf


def split(func: tirx.PrimFunc) -> tuple:
    """(condition, rows function, tiles function) of a function whose root body is the dispatch."""
    root = func.body.block
    ite = root.body
    if not isinstance(ite, tirx.IfThenElse):
        raise TypeError("expected the rows/tiles dispatch (`if dim_M < threshold: ... else: ...`) at the root")
    return ite.condition, _with_root_body(func, ite.then_case), _with_root_body(func, ite.else_case)


def join(cond, rows: tirx.PrimFunc, tiles: tirx.PrimFunc) -> tirx.PrimFunc:
    """One function running the scheduled `rows` body if `cond`, else the `tiles` body."""
    r, t = rows.body.block, tiles.body.block
    body = tirx.IfThenElse(cond, r.body, t.body)
    root = s_tir.SBlock(t.iter_vars, t.reads, t.writes, t.name_hint, body, t.init,
                        list(r.alloc_buffers) + list(t.alloc_buffers), t.match_buffers, t.annotations)
    return tiles.with_body(s_tir.SBlockRealize([], True, root))


def _with_root_body(func, body):
    root = func.body.block
    used = [buf(r) for r in block_regions(body, reads=True, writes=True)]
    allocs = [b for b in root.alloc_buffers if any(b.same_as(u) for u in used)]
    new_root = s_tir.SBlock(root.iter_vars, root.reads, root.writes, root.name_hint, body, root.init,
                            allocs, root.match_buffers, root.annotations)
    return func.with_body(s_tir.SBlockRealize([], True, new_root))
