"""tir-cpu's schedule hints (see schedule/ for how each is used), and what a tuner needs to know.

The schedule reduces hints it cannot use as given (to whole vectors, under the stack
limit, to whole micro tiles dividing the padded shape, halving tile_m until every thread
has 4 tiles: tiling.py), so many configurations build the same kernel. `effective` is that
arithmetic: a tuner builds one candidate per effective configuration. The one rule is the
register file: a micro kernel that would spill is not tried.
"""
from ..hints import Hint, Rule, table
from . import tiling

TILE_HINTS = ("tile_m", "tile_n", "micro_m", "micro_n", "gemv_max_m", "k_unroll")   # what `gemms` below captures


def _gemm_path(g, cfg) -> bool:
    """schedule.is_gemv's test: an (N, K) weight with M below tiling.gemv_below takes the GEMV rule."""
    return not (g.transpose_b and g.m < tiling.gemv_below(cfg, g.k))


def _effective(cfg, p) -> dict:
    """The tiles each GEMM gets (or `gemv`), and the hints that are not tiles."""
    threads = cfg.get("threads") or p.cores
    tiles = [list(_tiles(g, cfg, p, threads)) if _gemm_path(g, cfg) else "gemv" for g in p.gemms]
    return dict({k: v for k, v in cfg.items() if k not in TILE_HINTS}, gemms=tiles)


def _tiles(g, cfg, p, threads):
    t = tiling.tiles(g.m, g.n, cfg, p.lanes, p.bytes, threads)
    return t.micro_m, t.micro_n, t.tile_m, t.tile_n, tiling.k_unroll(g.k, cfg["k_unroll"])


def _registers(cfg, p):
    for g in p.gemms:
        if not _gemm_path(g, cfg):
            continue
        t = tiling.micro(g.m, cfg["micro_m"], cfg["micro_n"], p.lanes, p.bytes)
        vecs = t.micro_n // p.lanes
        need = t.micro_m * vecs + vecs + 1                # accumulators, B vectors, the A broadcast
        if need > p.vector_registers:
            return f"a {t.micro_m}x{t.micro_n} micro kernel needs {need} vector registers, " \
                   f"the CPU has {p.vector_registers}"
    return None


HINTS = table(
    Hint("tile_m", "rows of a parallel cache tile (rounded to whole micro tiles; halved while there are "
                   "fewer than 4 tiles per thread)", 256, 1, 4096, tune=(64, 128, 256, 512)),
    Hint("tile_n", "columns of a parallel cache tile (rounded to whole micro tiles)", 96, 1, 4096,
         tune=(48, 96, 192, 384)),
    Hint("micro_m", "register tile rows: broadcasts of A per k step (reduced while the register tile would "
                    "exceed 4 KiB)", 8, 1, 16, tune=(2, 4, 6, 8)),
    Hint("micro_n", "register tile columns (rounded down to whole SIMD vectors)", 48, 1, 256, tune=(16, 32, 48, 64)),
    Hint("k_unroll", "K steps per body of the micro kernel's loop (the largest divisor of K up to this)", 2, 1, 8,
         tune=(1, 2, 4)),
    Hint("gemv_max_m", "largest M an (N, K) weight multiplies without packing it (the GEMV rule: dot products "
                       "along K, 4 rows of x by 4 rows of W per step; with K >= 1024); 0: only M below micro_m",
         64, 0, 4096, tune=(0, 16, 64, 128)),
    Hint("threads", "worker threads of the kernel (default: the host's cores)", None, 1, 1024),
    rules=(Rule("registers", "accumulators + B vectors + the A broadcast fit the vector register file", _registers),),
    effective=_effective,
)
