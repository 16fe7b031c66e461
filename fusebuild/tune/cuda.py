"""tir-cuda's tuning space adapter: candidate values and constraints stated without TileLang.

tir-cuda's hints.py declares candidate values for its block shape and stages; this adds
values for the hints it declares without any (threads, split-K, swizzle, the SwiGLU
kernel's own tiles) and the constraints between them that follow from Hopper itself:
  shared memory   stages * (block_m + block_n) * block_k * bytes <= 227 KiB per CTA
                  (dual kernel: two B tiles per stage, block_m + 2 * block_n)
  registers       fp32 accumulators per thread, block_m * block_n / threads, at most 128
                  (dual: two accumulators) and at least 4 (a warpgroup's smallest wgmma,
                  m64n8, already gives each thread 4: fewer threads would idle)
  pipelining      split-K must leave every CTA at least `stages` K tiles to pipeline
  shape           a tile no larger than the problem rounded to 64 (M and N)
  divides         the x-side tile divides M (when M is at least a tile) and split_k *
                  block_k divides K: a ragged tile there is a partial tile wasted. The
                  weight-side tile need not divide N: the kernels clip their tails, and a
                  ragged last W tile can fill the SMs' waves where a dividing one cannot
                  (600 x 4096: 22 W tiles of 192 rows make 110 CTAs, 16 of 256 only 80)
It is data keyed by hint name: a hint the backend does not declare is ignored, a value
outside the declared range is never tried (Space.of drops adapter values the declaration
would refuse), and whatever the rules cannot see is left to the backend: its load-time
check (program.check) runs on every candidate taken, and a candidate it still refuses to
render is recorded as failed and never wins. `seeds` puts the backend's own candidate list
(tiles.candidates) right after the base.
"""
from __future__ import annotations

from ..backends.hints import Rule
from .space import Adapter

SMEM_PER_CTA = 227 * 1024          # bytes of shared memory one CTA can use on sm_90
MAX_ACC_PER_THREAD = 128
MIN_ACC_PER_THREAD = 4

VALUES = {
    "threads": (128, 256),
    "split_k": (1, 2, 4),
    "swizzle": (4, 10),
    "min_blocks": (1, 2),
    "dual_block_k": (64, 128),
    "dual_block_m": (64, 128),
    "dual_block_n": (64, 128, 256),
    "dual_stages": (2, 3, 4),
    "dual_threads": (128, 256),
}


# (hint prefix, B tiles per stage = accumulators per output) of each launch kind
LAUNCHES = (("", 1), ("dual_", 2), ("down_", 1))


def _smem(cfg, p):
    for prefix, b_tiles in LAUNCHES:
        bm, bn = cfg.get(prefix + "block_m"), cfg.get(prefix + "block_n")
        bk, st = cfg.get(prefix + "block_k", cfg.get("block_k")), cfg.get(prefix + "stages")
        if None in (bm, bn, bk, st):
            continue
        need = st * (bm + b_tiles * bn) * bk * p.bytes
        if need > SMEM_PER_CTA:
            return f"{prefix}stages*({prefix}block_m+{b_tiles}*{prefix}block_n)*block_k*{p.bytes} = {need} B " \
                   f"> {SMEM_PER_CTA} B of shared memory"
    return None


def _registers(cfg, p):
    for prefix, accs in LAUNCHES:
        bm, bn, th = cfg.get(prefix + "block_m"), cfg.get(prefix + "block_n"), cfg.get(prefix + "threads")
        if None in (bm, bn, th):
            continue
        per = accs * bm * bn // th
        if per > MAX_ACC_PER_THREAD:
            return f"{per} fp32 accumulators per thread ({prefix}block {bm}x{bn}, {th} threads) > {MAX_ACC_PER_THREAD}"
        if per < MIN_ACC_PER_THREAD:
            return f"{per} accumulators per thread: {th} threads for a {bm}x{bn} tile leave warps idle"
    return None


def _split_k(cfg, p):
    sk, bk, st = cfg.get("split_k"), cfg.get("block_k"), cfg.get("stages")
    if not sk or sk == 1 or bk is None:
        return None
    k = max((g.k for g in p.gemms), default=0)
    tiles = k // sk // bk
    if tiles < (st or 2):
        return f"K={k} split {sk} ways leaves {tiles} K tiles of {bk} per CTA, fewer than {st or 2} stages"
    return None


def _shape(cfg, p):
    for g in p.gemms:
        for prefix, _ in LAUNCHES:
            swap = _swap(cfg, g, prefix)
            for hint, size in (("block_m", g.n if swap else g.m), ("block_n", g.m if swap else g.n)):
                v = cfg.get(prefix + hint)
                if v is not None and size >= 64 and v > -(-size // 64) * 64:
                    return f"{prefix}{hint}={v} is larger than the {size} rows it tiles, rounded up to 64"
    return None


def seeds(graph) -> list:
    """The backend's own candidates for each launch (tiles.candidates, as hints through
    tiles.config_hints); [] where it has none to offer (an unrecognized graph, a dynamic M)."""
    from ..backends.tir_cuda import program as P
    from ..backends.tir_cuda import tiles as T
    try:
        out = []
        for kind, m, n, k, _where in P.launches(graph, P.recognize(graph)):
            out += [T.config_hints(c, T.PREFIX[kind]) for c in T.candidates(kind, m, n, k)]
        return out
    except Exception:  # noqa: BLE001 - seeds are a head start for the search, never required
        return []


def _swap(cfg, g, prefix="") -> bool:
    """Whether the launch runs swap-AB (W rows on the wgmma M side): by hint, else the
    shape class's default (decode: M at most tiles.DECODE_MAX)."""
    if cfg.get(prefix + "swap_ab"):
        return True
    if cfg.get(prefix + "direct"):
        return False
    from ..backends.tir_cuda.tiles import DECODE_MAX
    return g.m <= DECODE_MAX


def _divides(cfg, p):
    for g in p.gemms:
        for prefix, _ in LAUNCHES:
            swap = _swap(cfg, g, prefix)
            bm, bn = cfg.get(prefix + "block_m"), cfg.get(prefix + "block_n")
            x_tile = bn if swap else bm
            if x_tile and g.m >= x_tile and g.m % x_tile:
                return f"{prefix}{'block_n' if swap else 'block_m'}={x_tile} does not divide M={g.m}"
        bk, sk = cfg.get("block_k"), cfg.get("split_k") or 1
        if bk and g.k % (bk * sk):
            return f"split_k*block_k = {sk}*{bk} does not divide K={g.k}"
    return None


def _dual_pair(p) -> bool:
    a = [g.a for g in p.gemms]
    return len(a) >= 2 and a[0] == a[1]


def relevant(name: str, p) -> bool:
    """SwiGLU's gate/up kernel takes the dual_* hints; a plain launch (a GEMM, or SwiGLU's
    down projection) the others."""
    if name.startswith("dual_"):
        return _dual_pair(p)
    if name in ("fast_math",):
        return True
    return not _dual_pair(p) or len(p.gemms) >= 3


ADAPTER = Adapter(
    values=VALUES,
    rules=(Rule("shared-memory", "pipeline stages of A and B tiles fit one CTA's shared memory", _smem),
           Rule("registers", "accumulators per thread between a warpgroup's minimum and the register file", _registers),
           Rule("split-k", "each split keeps enough K tiles to fill the pipeline", _split_k),
           Rule("shape", "tiles no larger than the problem", _shape),
           Rule("divides", "x tiles divide M and K splits divide K (no ragged x or K tiles)", _divides)),
    relevant=relevant,
    seeds=seeds)
