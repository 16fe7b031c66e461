"""Template contexts of tir-cuda launches: grids, tile loads, GEMMs, stores and their guards.

One function per launch kind turns (graph group(s), TileConfig, M) into the dict gemm.j2
lays out, plus the launch's record for plan.json and the fp32 split-K workspace it needs.
M is an int (static artifact) or the text "M" (a dynamic-M part: TileLang's symbolic M);
every M-dependent grid size, workspace shape and guard is written from it here, so the
templates never decide anything.

Guards: TileLang predicates T.copy and reads past a buffer's end, but element stores written
as `Y[row, col] = ...` (swap-AB outputs, split-K partials, the reduce) get an explicit guard
whenever a tile can cross the buffer's edge. With a symbolic M, element stores and split-K
partials branch once per CTA: a tile whose rows all lie below M stores with no row guard, as the
static kernel of a tile-multiple M does (the guards cost the dynamic kernel up to 22% at M = 64
on an H200: 11 of 70 benchmark points were over 5% slower than static; none with this branch).
"""
from __future__ import annotations

import dataclasses

from .tiles import NUM_SMS


def ceil_text(size, block: int):
    """Blocks covering `size`: an int, or TileLang's T.ceildiv for the symbolic M."""
    return -(-size // block) if isinstance(size, int) else f"T.ceildiv({size}, {block})"


def _guard(row, rows, col, cols, row_block, col_block) -> str:
    parts = []
    if rows is not None and (not isinstance(rows, int) or rows % row_block):
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
            "persistent": None, "fix": None, "ws": None,
            "annotations": cfg.annotations(), "smem_loads": [], "comment": comment, "config": cfg.short()}


def _record(cfg) -> dict:
    """The config as plan.json records it; `persistent`, `inline_reduce` and `ws` only when set, so plans
    (and the compile keys that read them) of the tilings that existed before them stay byte-identical."""
    out = dataclasses.asdict(cfg)
    for field in ("persistent", "inline_reduce", "ws"):
        if not out[field]:
            del out[field]
    return out


def comment(g) -> str:
    return " ; ".join(f"{n.output} = {n.op}({', '.join(n.inputs)})" for n in g.nodes)


def _tiles(ctx, cfg, M, n, x, ws) -> tuple:
    """Grid, tile loads and GEMMs of one launch, and the output index (row, col) of acc[i, j].

    x: the x operand's parameter; ws: [(W parameter, accumulator, W is [K, N])], one per GEMM
    sharing the x tile. direct: x rows on the wgmma M side (acc[i, j] is y[row i, col j]); swap-AB:
    W rows there (acc[i, j] is y[row j, col i]), stored element by element under a guard. A W in
    nn.Linear layout [N, K] is loaded as [rows, K step] tiles and multiplied transposed; one
    stored [K, N] (transpose_b: false, e.g. GPT-2's Conv1D) as [K step, rows] tiles, not transposed
    (in swap-AB it is the A operand: transpose_A, which wgmma reads for 16-bit types).
    """
    bm, bn = cfg.block_M, cfg.block_N
    k_at = f"{ctx['g']['k_base']}k * {cfg.block_K}"

    def load(smem, src, rows, at, kn=False):
        k_to, at_to = f"{k_at} + {cfg.block_K}", f"{at} + {rows}"
        return {"smem": smem, "src": src, "shape": f"{cfg.block_K}, {rows}" if kn else f"{rows}, {cfg.block_K}",
                "index": f"{k_at}, {at}" if kn else f"{at}, {k_at}",
                "region": f"{src}[{k_at}:{k_to}, {at}:{at_to}]" if kn else f"{src}[{at}:{at_to}, {k_at}:{k_to}]"}
    w_smem = ["B_s"] if len(ws) == 1 else [f"B{i}_s" for i in range(1, len(ws) + 1)]
    if cfg.mode == "direct":
        ctx["grid"] = [ceil_text(n, bn), ceil_text(M, bm)]
        if cfg.persistent:      # NUM_SMS CTAs walk the (by, bx) tiles; the panel width rasterizes them
            ctx.update(persistent={"ctas": NUM_SMS, "domain": ctx["grid"][::-1], "group": cfg.swizzle_panel or 8},
                       swizzle=0)
        ctx["loads"] = [load("A_s", x, bm, f"by * {bm}")] + [
            load(s, w, bn, f"bx * {bn}", kn) for s, (w, _, kn) in zip(w_smem, ws)]
        ctx["gemms"] = [{"a": "A_s", "b": s, "acc": acc, "ta": False, "tb": not kn}
                        for s, (_, acc, kn) in zip(w_smem, ws)]
        ctx.update(row0=f"by * {bm}", col0=f"bx * {bn}", full_tile=_full_tile(M, bm))
        return f"by * {bm} + i", f"bx * {bn} + j"
    w_smem = [s.replace("B", "W") for s in w_smem]
    ctx["grid"] = [ceil_text(n, bm), ceil_text(M, bn)]
    ctx["loads"] = [load(s, w, bm, f"bx * {bm}", kn) for s, (w, _, kn) in zip(w_smem, ws)] + [
        load("X_s", x, bn, f"by * {bn}")]
    ctx["gemms"] = [{"a": s, "b": "X_s", "acc": acc, "ta": kn, "tb": True} for s, (_, acc, kn) in zip(w_smem, ws)]
    row, col = f"by * {bn} + j", f"bx * {bm} + i"
    ctx.update(row=row, col=col, guard=_guard(row, M, col, n, bn, bm), full_tile=_full_tile(M, bn),
               full_guard=_guard(row, None, col, n, bn, bm))
    return row, col


PANEL = 8          # W tiles per panel of the pair walk
PRODUCER_REGS = 40  # registers the hand-written kernel's TMA producer warpgroup keeps (setmaxnreg)


def pair_walk(gx, gy) -> list:
    """Lines binding (bx, by) to `pid` of a 1-D grid of gx * gy CTAs (gy an int or a symbolic text):
    panels of PANEL W tiles (bx) one after another; in a panel, two x tiles (by) at a time, over its
    W tiles. Measured on an H200 (1024 x 14336 x 4096 bias + SiLU, bench/gpu_ws_experiment.py): 2.3%
    faster than T.use_swizzle(10)'s walk in two runs, with either warp policy. A panel of fewer W
    tiles (the last one) and an odd x tile out (the last row) take the general form.

    With a symbolic M, bx and by are computed once, into registers: as plain expressions TileLang
    inlines them into every TMA coordinate of the K loop, each with divisions by a run-time value,
    and the dynamic kernels ran 4-19% behind the static ones (H200, SwiGLU at M = 600..1536).
    With a static M they stay expressions: in registers the static kernels of 160- and 192-row W
    tiles ran 10-15% slower in the same run, for no reason the SASS showed
    (bench/results/gpu_mid_m_ab_h200.log)."""
    p = PANEL
    per_panel = p * gy if isinstance(gy, int) else f"{p} * {gy}"
    lines = [f"panel = pid // ({per_panel})", f"at = pid % ({per_panel})"]
    if isinstance(gy, int) and gx % p == 0 and gy % 2 == 0:
        bx, by = f"panel * {p} + at % {2 * p} // 2", f"at // {2 * p} * 2 + at % 2"
    else:
        width = p if gx % p == 0 else f"T.min({p}, {gx} - panel * {p})"
        pairs = gy // 2 if isinstance(gy, int) else f"{gy} // 2"
        lines += [f"width = {width}", f"paired = ({pairs}) * 2 * width"]
        bx = f"panel * {p} + T.if_then_else(at < paired, at % (2 * width) // 2, (at - paired) % width)"
        by = f"T.if_then_else(at < paired, at // (2 * width) * 2 + at % 2, ({pairs}) * 2 + (at - paired) // width)"
    if isinstance(gy, int):
        return lines + [f"bx = {bx}", f"by = {by}"]
    return lines + [f'bx = T.alloc_var("int32", init={bx})', f'by = T.alloc_var("int32", init={by})']


def _ws(cfg, ctx, acc: str) -> dict:
    """The hand-written kernel's launch: CTAs, their walk, barrier arrivals, register split, and
    the accumulator its epilogue stores (`acc`)."""
    gx, gy = ctx["grid"][:2]
    consumers = (65536 - 128 * PRODUCER_REGS) // cfg.threads // 8 * 8
    s = cfg.num_stages
    return {"ctas": gx * gy if isinstance(gy, int) else f"{gx} * {gy}", "walk": pair_walk(gx, gy),
            "threads": cfg.threads + 128, "arrivals": cfg.threads // 32, "producer_regs": PRODUCER_REGS,
            "consumer_regs": min(240, consumers), "stage": f"k % {s}", "phase": f"(k // {s}) & 1", "acc": acc,
            "layouts": ", ".join(f"{ld['smem']}: make_swizzled_layout({ld['smem']})" for ld in ctx["loads"])}


def w_kn(g) -> bool:
    """The group's W is stored [K, N] (transpose_b: false), not in nn.Linear layout [N, K]."""
    return not g.matmul.attr["transpose_b"]


def _full_tile(M, rows: int) -> str:
    """With a symbolic M: the condition under which a CTA's x rows all lie below M (its stores then
    need no row guard: TileLang proves the bounds of a T.copy inside it too); '' for a static M."""
    return "" if isinstance(M, int) else f"(by + 1) * {rows} <= {M}"


def gemm(graph, g, cfg, M, pname, epi, kind, a_name=None) -> tuple:
    """(ctx, plan record, workspace or None) of one GEMM launch (+ its split-K reduce)."""
    a, b = g.matmul.inputs
    n = graph.tensors[g.output].shape[1]
    k = graph.tensors[a].shape[1]
    sk = cfg.split_k
    ctx = {**_common(cfg, comment(g)), "kind": "gemm", "Y": pname[g.output], "out_dtype": graph.tensors[g.output].dtype,
           "g": _g(cfg, k, graph.tensors[a].dtype, cfg.block_M, cfg.block_N)}
    row, col = _tiles(ctx, cfg, M, n, a_name or pname[a], [(pname[b], "C_l", w_kn(g))])
    ctx["ws"] = _ws(cfg, ctx, "C_l") if cfg.ws else None
    ctx["grid"].append(sk)
    smem = {}
    if cfg.mode == "direct" and cfg.bias_smem and sk == 1:
        for name in g.loads():
            if graph.tensors[name].shape == (n,):
                smem[name] = f"S_{name}"
                ctx["smem_loads"].append({"name": f"S_{name}", "size": cfg.block_N, "dtype": graph.tensors[name].dtype,
                                          "src": pname[name], "offset": f"bx * {cfg.block_N}"})
    record = {"kind": kind, "group": g.output, "M": M, "N": n, "K": k, "config": _record(cfg)}
    workspace = None
    if sk == 1:
        ctx["epi"] = epi(g.expr, "C_l[i, j]", row, col, smem)
    elif cfg.inline_reduce:        # the last split to arrive reduces: no second kernel
        part, tick = f"ws_part_{g.output}", f"ws_tick_{g.output}"
        ctx.update(Part=part, fix={"tick": tick,
                                   "guard": ctx.get("guard") if cfg.mode == "swap_ab" else
                                   _guard(row, M, col, n, cfg.block_M, cfg.block_N)},
                   epi=epi(g.expr, "C_l[i, j]", row, col))
        if cfg.mode == "direct":
            ctx.update(row=row, col=col)
        workspace = {"name": part, "split_k": sk, "M": M, "N": n, "group": g.output,
                     "tick": tick, "tiles_n": ctx["grid"][0]}
        record["workspace"] = part
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
    ctx = {**_common(cfg, f"{comment(g1)} | {comment(g2)} (two accumulators, one x tile)"), "kind": "dual",
           "Y": out_name, "out_dtype": graph.tensors[g2.output].dtype,
           "g": _g(cfg, k, graph.tensors[x].dtype, cfg.block_M, cfg.block_N)}
    row, col = _tiles(ctx, cfg, M, n, pname[x], [(pname[w1], "C1_l", w_kn(g1)), (pname[w2], "C2_l", w_kn(g2))])
    ctx["ws"] = _ws(cfg, ctx, "C2_l") if cfg.ws else None
    first = epi(g1.expr, "C1_l[i, j]", row, col) or "C1_l[i, j]"
    ctx["epi"] = epi(g2.expr, "C2_l[i, j]", row, col, inline={g1.output: first})
    record = {"kind": "dual", "group": g2.output, "first": g1.output, "M": M, "N": n, "K": k,
              "config": _record(cfg)}
    return ctx, record
