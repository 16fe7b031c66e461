"""Template contexts of tir-cuda launches: grids, tile loads, GEMMs, stores and their guards.

One function per launch kind turns (graph group(s), TileConfig, M) into the dict gemm.j2
lays out, plus the launch's record for plan.json and the fp32 split-K workspace it needs.
M is an int (static artifact) or the text "M" (a dynamic-M part: TileLang's symbolic M);
every M-dependent grid size, workspace shape and guard is written from it here, so the
templates never decide anything.

Guards: TileLang predicates T.copy and reads past a buffer's end, but element stores written
as `Y[row, col] = ...` (swap-AB outputs, split-K partials, the reduce) get an explicit guard
whenever a tile can cross the buffer's edge.
"""
from __future__ import annotations

import dataclasses


def ceil_text(size, block: int):
    """Blocks covering `size`: an int, or TileLang's T.ceildiv for the symbolic M."""
    return -(-size // block) if isinstance(size, int) else f"T.ceildiv({size}, {block})"


def _guard(row, rows, col, cols, row_block, col_block) -> str:
    parts = []
    if not isinstance(rows, int) or rows % row_block:
        parts.append(f"{row} < {rows}")
    if cols % col_block:
        parts.append(f"{col} < {cols}")
    return " and ".join(parts)


def _g(cfg, K, dtype, am, an) -> dict:
    iters = cfg.k_iters(K)
    return {"am": am, "an": an, "bk": cfg.block_K, "k_iters": iters, "stages": cfg.num_stages,
            "dtype": dtype, "policy": cfg.policy,
            "k_base": f"bz * {iters * cfg.block_K} + " if cfg.split_k > 1 else ""}


def _common(cfg, comment) -> dict:
    return {"mode": cfg.mode, "threads": cfg.threads, "swizzle": cfg.swizzle_panel, "split_k": cfg.split_k,
            "annotations": cfg.annotations(), "smem_loads": [], "comment": comment, "config": cfg.short()}


def comment(g) -> str:
    return " ; ".join(f"{n.output} = {n.op}({', '.join(n.inputs)})" for n in g.nodes)


def gemm(graph, g, cfg, M, pname, epi, kind, a_name=None) -> tuple:
    """(ctx, plan record, workspace or None) of one GEMM launch (+ its split-K reduce)."""
    a, b = g.matmul.inputs
    n = graph.tensors[g.output].shape[1]
    k = graph.tensors[a].shape[1]
    A, B, Y = a_name or pname[a], pname[b], pname[g.output]
    bm, bn, sk = cfg.block_M, cfg.block_N, cfg.split_k
    ctx = {**_common(cfg, comment(g)), "kind": "gemm", "Y": Y, "out_dtype": graph.tensors[g.output].dtype}
    if cfg.mode == "direct":
        ctx["grid"] = [ceil_text(n, bn), ceil_text(M, bm), sk]
        ctx["loads"] = [{"smem": "A_s", "rows": bm, "src": A, "rows_at": f"by * {bm}"},
                        {"smem": "B_s", "rows": bn, "src": B, "rows_at": f"bx * {bn}"}]
        ctx["gemms"] = [{"a": "A_s", "b": "B_s", "acc": "C_l"}]
        ctx["g"] = _g(cfg, k, graph.tensors[a].dtype, bm, bn)
        row, col = f"by * {bm} + i", f"bx * {bn} + j"
        ctx.update(row0=f"by * {bm}", col0=f"bx * {bn}")
        smem = {}
        if cfg.bias_smem and sk == 1:
            for name in g.loads():
                if graph.tensors[name].shape == (n,):
                    smem[name] = f"S_{name}"
                    ctx["smem_loads"].append({"name": f"S_{name}", "size": bn, "dtype": graph.tensors[name].dtype,
                                              "src": pname[name], "offset": f"bx * {bn}"})
    else:
        ctx["grid"] = [ceil_text(n, bm), ceil_text(M, bn), sk]
        ctx["loads"] = [{"smem": "W_s", "rows": bm, "src": B, "rows_at": f"bx * {bm}"},
                        {"smem": "X_s", "rows": bn, "src": A, "rows_at": f"by * {bn}"}]
        ctx["gemms"] = [{"a": "W_s", "b": "X_s", "acc": "C_l"}]
        ctx["g"] = _g(cfg, k, graph.tensors[a].dtype, bm, bn)
        row, col = f"by * {bn} + j", f"bx * {bm} + i"
        ctx.update(row=row, col=col, guard=_guard(row, M, col, n, bn, bm))
        smem = {}
    record = {"kind": kind, "group": g.output, "M": M, "N": n, "K": k, "config": dataclasses.asdict(cfg)}
    workspace = None
    if sk == 1:
        ctx["epi"] = epi(g.expr, "C_l[i, j]", row, col, smem)
    else:
        part = f"ws_part_{g.output}"
        rn = 256 if n >= 256 else 64
        rm = 4 if not isinstance(M, int) or M >= 4 else 1
        rrow, rcol = f"ry * {rm} + i", f"rx * {rn} + j"
        ctx["Part"] = part
        ctx["r"] = {"grid": [ceil_text(n, rn), ceil_text(M, rm)], "rm": rm, "rn": rn, "row": rrow, "col": rcol,
                    "guard": f"{rrow} < {M} and {rcol} < {n}", "epi": epi(g.expr, "R_l[i, j]", rrow, rcol)}
        workspace = {"name": part, "split_k": sk, "M": M, "N": n, "group": g.output}
        record["workspace"] = part
    return ctx, record, workspace


def dual(graph, g1, g2, cfg, M, pname, epi, out_name) -> tuple:
    """(ctx, plan record) of the SwiGLU gate/up kernel: two accumulators, one x tile per K step."""
    x, w1 = g1.matmul.inputs
    w2 = g2.matmul.inputs[1]
    n = graph.tensors[g2.output].shape[1]
    k = graph.tensors[x].shape[1]
    bm, bn = cfg.block_M, cfg.block_N
    ctx = {**_common(cfg, f"{comment(g1)} | {comment(g2)} (two accumulators, one x tile)"), "kind": "dual",
           "Y": out_name, "out_dtype": graph.tensors[g2.output].dtype, "g": _g(cfg, k, graph.tensors[x].dtype, bm, bn)}
    if cfg.mode == "direct":
        ctx["grid"] = [ceil_text(n, bn), ceil_text(M, bm)]
        ctx["loads"] = [{"smem": "A_s", "rows": bm, "src": pname[x], "rows_at": f"by * {bm}"},
                        {"smem": "B1_s", "rows": bn, "src": pname[w1], "rows_at": f"bx * {bn}"},
                        {"smem": "B2_s", "rows": bn, "src": pname[w2], "rows_at": f"bx * {bn}"}]
        ctx["gemms"] = [{"a": "A_s", "b": "B1_s", "acc": "C1_l"}, {"a": "A_s", "b": "B2_s", "acc": "C2_l"}]
        row, col = f"by * {bm} + i", f"bx * {bn} + j"
        ctx.update(row0=f"by * {bm}", col0=f"bx * {bn}")
    else:
        ctx["grid"] = [ceil_text(n, bm), ceil_text(M, bn)]
        ctx["loads"] = [{"smem": "W1_s", "rows": bm, "src": pname[w1], "rows_at": f"bx * {bm}"},
                        {"smem": "W2_s", "rows": bm, "src": pname[w2], "rows_at": f"bx * {bm}"},
                        {"smem": "X_s", "rows": bn, "src": pname[x], "rows_at": f"by * {bn}"}]
        ctx["gemms"] = [{"a": "W1_s", "b": "X_s", "acc": "C1_l"}, {"a": "W2_s", "b": "X_s", "acc": "C2_l"}]
        row, col = f"by * {bn} + j", f"bx * {bm} + i"
        ctx.update(row=row, col=col, guard=_guard(row, M, col, n, bn, bm))
    first = epi(g1.expr, "C1_l[i, j]", row, col) or "C1_l[i, j]"
    ctx["epi"] = epi(g2.expr, "C2_l[i, j]", row, col, inline={g1.output: first})
    record = {"kind": "dual", "group": g2.output, "first": g1.output, "M": M, "N": n, "K": k,
              "config": dataclasses.asdict(cfg)}
    return ctx, record
