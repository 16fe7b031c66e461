"""Tile configurations of tir-cuda launches: shape buckets, defaults, hints and their checks.

Pure Python (no TileLang, no torch): `fusebuild check` calls `check_hints` when a spec loads.

A launch is one of three kinds: "gemm" (one GEMM + its epilogue), "dual" (SwiGLU gate/up: two
accumulators sharing each x tile) and "down" (a GEMM of the dual's result). Its `TileConfig`:
  mode        "direct": x rows on the wgmma M side (prefill, M > 64);
              "swap_ab": W rows on the wgmma M side, the few rows of x on its N side (decode:
              each W tile is read once, by one CTA, and multiplied by all rows of x)
  block_M     rows on the wgmma M side (x rows in direct mode, W rows in swap_ab)
  block_N     rows on the wgmma N side (W rows in direct mode, x rows in swap_ab)
  block_K, num_stages, threads (consumer threads; TileLang adds a 128-thread TMA producer),
  split_k (K slices in CTAs along z, fp32 partials, one reduce launch applies the epilogue),
  swizzle_panel, policy, min_blocks (CTAs per SM: bounds smem and registers), bias_smem,
  inline_reduce  (split-K) 0: a separate reduce kernel sums the fp32 partials and applies the
              epilogue; 1: the last K split of each tile to finish does it in-kernel (it finds out
              through an atomic arrival counter per tile, reset by that split). A candidate, not
              the default: on an H200 it was 0-14% slower at every split-K benchmark shape (the
              reduce falls on one CTA per tile, after its own K loop, instead of a wide grid).
  persistent  (direct mode, no split-K) one CTA per SM loops over the output tiles
              (T.Persistent, rasterized in panels of swizzle_panel or 8 tile columns)
              instead of one CTA per tile: a candidate the tuner measures, not a default.
  ws          (direct mode, no split-K; the default at M > 512) the hand-written warp-specialized
              kernel instead of TileLang's T.Pipelined one: a TMA producer warpgroup and the
              consumers synchronize through full/empty mbarrier rings (lane 0 of each consumer
              warp releases a stage), the epilogue is staged in its own shared tile, and CTAs walk
              panels of 8 W tiles two x tiles at a time (launch.pair_walk). Its loads are TMA
              only: K (and N) must be multiples of 8 (16-byte row strides).

Tails: every M, N, K >= 1 is legal. Grids are ceil-divided and TileLang 0.1.15 predicates what
falls outside a buffer: TMA loads zero-fill out-of-bounds boxes, TMA stores clip, and where a
global stride is not 16-byte aligned (odd K for x and w, odd N for y) it lowers T.copy to
guarded element copies instead of TMA (seen in the lowered CUDA; tests pin it). Zero-filled K
tails add nothing to the accumulators. Epilogue reads are guarded by TileLang's safe-access
pass, and our own element stores carry explicit row/column guards.

Shape buckets: a config depends on M only through m_bucket(M): 16, 32, 64 for decode (M <= 64),
M rounded up to 128 rows in (512, 1024] and to 256 in (1024, 2048] (the count of 128-row x tiles
decides how full the SMs' waves are: `_width` picks the W-tile width there), else the next power
of two >= 128. A dynamic-M artifact builds one kernel per bucket its range
crosses (merging neighbours with equal configs) and picks one at run time by M, so at every M
it runs exactly the kernel the static artifact of that M runs.

Defaults come from the TileLang prototype's H100 sweeps (proto_tilelang/results/) for M >= 128
with N, K in {4096, 14336}; a CTA-count model (`_fill`) replaces them only where their waves
would leave more than a quarter of the SMs idle (small N or M, or a short last wave). At
M > 512 a one-pass direct tile runs as the hand-written kernel (`ws`; `_hand_written`). Every
config is data: `candidates()` lists what a tuner may try; `check_hints` says why a hinted
config cannot run and what would.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ...errors import FusebuildError

NUM_SMS = 132                       # H100 / H200 SXM
SMEM_PER_SM = 227 * 1024            # dynamic shared memory one SM can give its CTAs (sm_90)
MAX_ACC_PER_THREAD = 128            # fp32 accumulators per consumer thread before spilling
DECODE_MAX = 64                     # M <= this: the swap-AB (decode) path
KINDS = ("gemm", "dual", "down")


class TileError(FusebuildError):
    """A tile configuration that cannot run a launch of the given shape."""


@dataclass(frozen=True)
class Problem:
    """Why a hinted config cannot run: the hint to change, the rule, what would apply."""
    hint: str | None
    message: str
    valid: str = ""

    def __str__(self) -> str:
        return self.message + (f" (valid: {self.valid})" if self.valid else "")


@dataclass(frozen=True)
class TileConfig:
    mode: str = "direct"
    block_M: int = 128
    block_N: int = 256
    block_K: int = 64
    num_stages: int = 3
    threads: int = 256
    split_k: int = 1
    swizzle_panel: int = 0
    policy: str = "Square"
    min_blocks: int = 0             # 0: TileLang's default (one CTA per SM for warp-specialized kernels)
    bias_smem: bool = False         # stage 1-D epilogue operands (bias) in shared memory (direct, no split-K)
    persistent: int = 0             # 1: NUM_SMS CTAs loop over the tiles (direct, no split-K, one CTA per SM)
    inline_reduce: int = 0          # split-K: 0 a separate reduce kernel, 1 the last split reduces in-kernel
    ws: int = 0                     # 1: the hand-written warp-specialized kernel (direct, no split-K)

    def short(self) -> str:
        s = f"{self.mode}_{self.block_M}x{self.block_N}x{self.block_K}_s{self.num_stages}_t{self.threads}_{self.policy}"
        s += f"_sk{self.split_k}" if self.split_k > 1 else ""
        s += f"_sw{self.swizzle_panel}" if self.swizzle_panel else ""
        s += f"_mb{self.min_blocks}" if self.min_blocks else ""
        s += "_ir" if self.split_k > 1 and self.inline_reduce else ""
        return s + ("_bs" if self.bias_smem else "") + ("_p" if self.persistent else "") + ("_ws" if self.ws else "")

    def registers(self) -> tuple:
        """(producer, consumer) setmaxnreg counts for `min_blocks` CTAs per SM, or (0, 0) for TileLang's.

        TileLang raises the consumers to 240 registers by default; with two CTAs per SM that asks
        for more than the producers free and the consumers stall, so the split is computed: the
        per-thread cap of `min_blocks` CTAs of (threads + 128) threads, producers down to 24.
        """
        if self.min_blocks <= 1:
            return 0, 0
        total = self.threads + 128
        cap = 65536 // (self.min_blocks * total) // 8 * 8
        consumer = min(240, (cap * total - 24 * 128) // self.threads // 8 * 8)
        return 24, consumer

    def annotations(self) -> list:
        out = [f"T.annotate_min_blocks_per_sm({self.min_blocks})"] if self.min_blocks > 1 else []
        producer, consumer = self.registers()
        if producer:
            out += [f"T.annotate_producer_reg_dealloc({producer})", f"T.annotate_consumer_reg_alloc({consumer})"]
        return out

    def k_tiles(self, K: int) -> int:
        return -(-K // self.block_K)

    def k_iters(self, K: int) -> int:
        """K iterations of one split (the last split may run past K: zero-filled)."""
        return -(-self.k_tiles(K) // self.split_k)

    def grid(self, M: int, N: int) -> tuple:
        if self.mode == "swap_ab":
            return -(-N // self.block_M), -(-M // self.block_N), self.split_k
        return -(-N // self.block_N), -(-M // self.block_M), self.split_k

    def smem(self, dual: bool = False) -> int:
        """Bytes of shared memory of the K pipeline, and of the epilogue's 16-bit staging tile where
        it cannot reuse the pipeline's (ws: TileLang allocates it apart)."""
        b_rows = self.block_N * (2 if dual and self.mode == "direct" else 1)
        a_rows = self.block_M * (2 if dual and self.mode == "swap_ab" else 1)
        staging = self.block_M * self.block_N * 2 if self.ws else 0
        return self.num_stages * (a_rows + b_rows) * self.block_K * 2 + staging + 1024


C = TileConfig

# hint name (after the kind's prefix) -> TileConfig field; `swap_ab: 1` / `direct: 1` pick the mode
FIELDS = {"block_m": "block_M", "block_n": "block_N", "block_k": "block_K", "stages": "num_stages",
          "threads": "threads", "split_k": "split_k", "swizzle": "swizzle_panel", "min_blocks": "min_blocks",
          "persistent": "persistent", "inline_reduce": "inline_reduce", "ws": "ws"}
MODE_HINTS = ("swap_ab", "direct")
PREFIX = {"gemm": "", "down": "down_", "dual": "dual_"}   # "down_" hints fall back to the plain ones
GLOBAL_HINTS = ("fast_math",)


def hint_names() -> tuple:
    """Every schedule hint tir-cuda reads (the TARGETS table in fusebuild/backends lists the same)."""
    plain = [*FIELDS, *MODE_HINTS]
    dual = [f"dual_{h}" for h in plain if h not in ("split_k", "inline_reduce")]
    down = [f"down_{h}" for h in plain]
    return (*plain, *dual, *down, *GLOBAL_HINTS)


# --- shape buckets ------------------------------------------------------------------------

def m_bucket(M: int) -> int:
    """The M a config is chosen for: 16/32/64 for decode; M rounded up to 128 rows in (512, 1024] and
    to 256 in (1024, 2048], where the count of 128-row x tiles decides how full the SMs' waves are
    (`_width`); else the next power of two >= 128."""
    if M <= DECODE_MAX:
        return 16 if M <= 16 else 32 if M <= 32 else 64
    if 512 < M <= 2048:
        step = 128 if M <= 1024 else 256
        return -(-M // step) * step
    return max(128, 1 << (M - 1).bit_length())


def buckets(lo: int, hi: int) -> list:
    """[(lo, hi, rep)]: the M buckets that cover [lo, hi], each with the M its config is chosen for."""
    out, m = [], lo
    while m <= hi:
        rep = m_bucket(m)
        top = min(hi, rep)
        out.append((m, top, rep))
        m = top + 1
    return out


# --- defaults -------------------------------------------------------------------------------

def _decode(rep: int, N: int, K: int, dual: bool) -> TileConfig:
    """Swap-AB for M <= 64: 64 W rows per CTA, all rows of x on the wgmma N side, two CTAs per SM
    and 64-wide K tiles in as many stages as fit (measured on an H200 at 16 x 14336 x 4096: 3.78 TB/s
    of weights, 90% of its copy bandwidth, against 3.54-3.66 with one CTA per SM or 128-wide K
    tiles), and split-K only where N gives too few CTAs to keep the memory system busy."""
    rows, bk = 64, 64
    per_stage = ((2 if dual else 1) * rows + rep) * bk * 2
    stages = max(2, min(8, (SMEM_PER_SM // 2 - 1024) // per_stage))
    sk, k_tiles = (1 if dual else _swap_split(N, K)), -(-K // bk)
    return C("swap_ab", rows, rep, bk, min(stages, -(-k_tiles // sk)), 128, sk, 0, "Square", 2)


def _swap_split(N: int, K: int, rows: int = 64, bk: int = 64) -> int:
    """Split-K of a swap-AB launch: only where N gives too few CTAs of `rows` W rows to keep the
    memory system busy (each split keeps >= 4 K tiles)."""
    tiles, k_tiles, sk = -(-N // rows), -(-K // bk), 1
    while tiles * sk < 0.75 * NUM_SMS and k_tiles // (2 * sk) >= 4 and sk < 8:
        sk *= 2
    return sk


# Per-CTA speed of a one-pass 128-row tile by its W-tile width (rows of w), relative to 256, with
# 3 stages at 224 and 256 and 4 below (3 made 160 rows 18% slower): fitted to an H200 sweep of
# the hand-written kernel at M = 600, where 160..256 rows run one wave at N = 4096, and checked
# against the sweep's other shapes (bench/results/gpu_mid_m_widths_h200.log). Narrow tiles
# re-read x per FLOP and lose more than their width; the dual kernel's two accumulators make 112
# almost as good as 128. (128 rows take the FullRow warp split the fill model measured there.)
_WIDTH_EFF = {256: 1.0, 224: 0.90, 192: 0.89, 160: 0.82, 128: 0.74}
_DUAL_WIDTH_EFF = {128: 1.0, 112: 0.98}


def _width(rep: int, N: int, eff: dict) -> int:
    """The W-tile width whose full waves of CTAs (one per SM, 128 rows of x each) take the least
    time by `eff` (ties to the wider): e.g. 600 x 4096 takes 160 rows (130 CTAs, one wave) rather
    than 256 (80 CTAs, 52 SMs idle)."""
    def cost(bn):
        ctas = -(-rep // 128) * -(-N // bn)
        return -(-ctas // NUM_SMS) * bn / eff[bn]
    return min(sorted(eff, reverse=True), key=cost)


def _between(rep: int) -> bool:
    """A bucket between two powers of two (640, 768, 896, 1280, 1536, 1792): its W-tile width comes
    from `_width`; the power-of-two buckets keep the widths measured and tuned there."""
    return bool(rep & (rep - 1))


def _tiled_gemm(rep: int, N: int, K: int) -> TileConfig:
    if rep > 512:
        bn = _width(rep, N, _WIDTH_EFF) if _between(rep) else 224 if (N == 14336 and rep == 1024) else 256
        return C("direct", 128, bn, 64, 3 if bn > 192 else 4, 256, 1, 10, "Square" if bn > 128 else "FullRow",
                 bias_smem=True)
    if N >= 8192:
        return C("direct", 128, 112, 64, 4, 256, 1, 0, "FullRow", bias_smem=True)
    if K >= 8192:
        return C("direct", 128, 128, 64, 4, 256, 4, 0, "FullRow")
    return C("direct", 64, 128, 64, 4, 128, 2, 0, "Square")


def _swap_128(N: int, K: int) -> TileConfig:
    """Swap-AB at M = 65..128: 64 W rows per CTA, the 128 rows of x on the wgmma N side, one CTA
    per SM in 7 stages, split-K as for decode (4 at N = 2048, 2 at 4096): W is read once.
    Measured on an H200 for GEMM + bias + GELU at M = 128 (bench/results/gpu_m128_experiment_h200.log),
    against the direct tiles it replaces: 14.4 vs 15.9-17.4 us at 8192 x 2048, 2048 x 8192 and
    4096 x 4096, 37.4 vs 38.9 at 4096 x 14336; but 46.4 vs 36.4 at 14336 x 4096 (224 CTAs: two
    waves of one), hence one wave at most. The consolidated bench confirmed it at all 12 rows."""
    return _fit_k(C("swap_ab", 64, 128, 64, 7, 128, _swap_split(N, K), 0, "Square", 1), K)


def _swaps_at_128(kind: str, rep: int, N: int, K: int) -> bool:
    return kind == "gemm" and rep == 128 and 2048 <= N and -(-N // 64) <= NUM_SMS and K >= 2048


def default(kind: str, M: int, N: int, K: int) -> TileConfig:
    """The config a launch gets without hints (depends on M only through m_bucket)."""
    rep = m_bucket(M)
    if rep <= DECODE_MAX:
        return _decode(rep, N, K, dual=kind == "dual")
    if _swaps_at_128(kind, rep, N, K):
        return _swap_128(N, K)
    return _hand_written(_direct(kind, rep, N, K), kind, rep, N, K)


def _direct(kind: str, rep: int, N: int, K: int) -> TileConfig:
    """The direct-mode default at M bucket `rep` (>= 128), in T.Pipelined form (`default` may make
    it the hand-written kernel)."""
    if kind == "dual":
        if rep > 512:
            bn = _width(rep, N, _DUAL_WIDTH_EFF) if _between(rep) else 128
            cfg = C("direct", 128, bn, 64, 4, 256, 1, 10, "FullRow")
        else:
            cfg = C("direct", 128, 64, 64, 3, 128, 1, 0, "Square", 2)
        return _fit_k(cfg, K)
    if kind == "down" and rep <= 512 and K >= 8192:
        cfg = C("direct", 128, 128, 64, 4, 256, 2, 0, "FullRow")
    else:
        cfg = _tiled_gemm(rep, N, K)
        cfg = dataclasses.replace(cfg, bias_smem=cfg.bias_smem and kind == "gemm")
    gx, gy, _ = cfg.grid(rep, N)
    if cfg.split_k > 1 and gx * gy >= NUM_SMS:      # enough CTAs without split-K: skip its reduce
        cfg = dataclasses.replace(cfg, split_k=1)
    return _fill(_fit_k(cfg, K), rep, N, K)


def _hand_written(cfg: TileConfig, kind: str, rep: int, N: int, K: int) -> TileConfig:
    """At M > 512, a one-pass direct tile runs as the hand-written kernel (`ws`) where TMA can
    load it: measured on an H200, the same tiles 3% faster than T.Pipelined's kernel and 5% with
    its pair walk (bench/gpu_ws_experiment.py), then 0.99-1.09x at the benchmark's 37 GEMM rows
    and 1.01-1.05x for SwiGLU's gate/up kernel (bench/results/gpu_ws_*_ab_h200.log)."""
    if rep <= 512 or cfg.split_k > 1 or cfg.mode != "direct" or K % 8 or N % 8:
        return cfg
    return _as_hand_written(cfg, K, kind == "dual")


def _as_hand_written(cfg: TileConfig, K: int, dual: bool) -> TileConfig:
    """`cfg`'s tiles in the hand-written kernel: its own CTA walk (no swizzle), one CTA per SM, and
    the stages that fit beside its staging tile."""
    return _fit_stages(dataclasses.replace(cfg, ws=1, swizzle_panel=0, min_blocks=0), K, dual)


def _fit_k(cfg: TileConfig, K: int) -> TileConfig:
    """Short K: fewer splits (each split keeps >= 2 tiles) and no more stages than iterations."""
    sk = cfg.split_k
    while sk > 1 and cfg.k_tiles(K) < 2 * sk:
        sk //= 2
    cfg = dataclasses.replace(cfg, split_k=sk)
    return dataclasses.replace(cfg, num_stages=max(1, min(cfg.num_stages, cfg.k_iters(K))))


# Relative tensor-core efficiency of a tile shape (smaller tiles re-read more per FLOP); a coarse
# model for `_fill`, not a measurement: a tuner replaces it (issue 13).
_EFF = {(128, 256): 1.0, (128, 224): 0.98, (128, 128): 0.92, (128, 112): 0.9, (128, 64): 0.8,
        (64, 256): 0.85, (64, 128): 0.8, (64, 112): 0.78, (64, 64): 0.65}
_PER_SM_FLOPS = 650e12 / NUM_SMS    # what one SM sustains on a good tile (bf16, ~power-capped clock)


def estimate_seconds(cfg: TileConfig, M: int, N: int, K: int) -> float:
    """Rough time of a direct-mode config: full waves of CTAs, each at its tile's efficiency, plus
    the split-K reduce (a launch and the fp32 partials' round trip)."""
    gx, gy, gz = cfg.grid(M, N)
    per_sm = max(1, cfg.min_blocks)
    waves = -(-(gx * gy * gz) // (NUM_SMS * per_sm))
    eff = _EFF.get((cfg.block_M, cfg.block_N), 0.6)
    t = waves * 2 * cfg.block_M * cfg.block_N * cfg.k_iters(K) * cfg.block_K * per_sm / (_PER_SM_FLOPS * eff)
    if cfg.split_k > 1:
        t += 3e-6 + M * N * (4 * cfg.split_k + 2) / 3e12
    return t


def _fill(cfg: TileConfig, rep: int, N: int, K: int) -> TileConfig:
    """Keep the tuned config unless its waves leave more than a quarter of the SMs idle (e.g. 80
    CTAs on 132 SMs: Phi-2's fc2 at M = 1024; 74: 8192 x 2048 at M = 128); then take the
    candidate the model says is fastest (only if >= 15% faster). Between powers of two, where
    `_width` already chose the width for the waves, only below half: at 600 x 2048 x 8192 the
    80 CTAs of 128 x 128 ran 46 us on an H200 and the model's split-K 128 x 112 51 us
    (bench/results/gpu_mid_m_ab_h200.log)."""
    gx, gy, gz = cfg.grid(rep, N)
    ctas = gx * gy * gz
    if ctas / (-(-ctas // NUM_SMS) * NUM_SMS) >= (0.5 if _between(rep) else 0.75):
        return cfg
    best, best_t = cfg, estimate_seconds(cfg, rep, N, K) / 1.15
    for bm, bn in ((128, 256), (128, 128), (128, 112), (128, 64), (64, 128), (64, 112), (64, 64)):
        for sk in (1, 2, 4):
            cand = _fit_k(C("direct", bm, bn, 64, 4, 128 if bm == 64 else 256, sk, 0,
                            "Square" if bm == 64 else "FullRow", bias_smem=cfg.bias_smem and sk == 1), K)
            if cand.split_k != sk:
                continue
            t = estimate_seconds(cand, rep, N, K)
            if t < best_t:
                best, best_t = cand, t
    return best


def candidates(kind: str, M: int, N: int, K: int) -> list:
    """Configs a tuner may measure for this launch (the default first); each passes check_config.
    Where the default is the hand-written kernel, its tiles in T.Pipelined form come next, then
    the hand-written kernel on the other tiles, then the T.Pipelined ones (a small budget compares
    the two kernel forms first)."""
    base = default(kind, M, N, K)
    pipelined = _direct(kind, m_bucket(M), N, K) if base.ws else base
    out, tiles = [base, pipelined], []
    if base.mode == "swap_ab":       # one or two CTAs per SM, split-K or not, K tile
        for mb in (1, 2):
            for bk in (64, 128):
                for sk in ((1,) if kind == "dual" else (1, 2, 4, 8)):
                    c = dataclasses.replace(base, min_blocks=mb, block_K=bk, split_k=sk, num_stages=8)
                    tiles.append(_fit_stages(_fit_k(c, K), K, kind == "dual"))
    else:
        for bm, bn, th in ((128, 256, 256), (128, 128, 256), (128, 112, 256), (64, 128, 128)):
            for sk in ((1,) if kind == "dual" else (1, 2, 4)):
                tiles.append(_fit_k(dataclasses.replace(pipelined, block_M=bm, block_N=bn, threads=th, split_k=sk,
                                                        bias_smem=pipelined.bias_smem and sk == 1), K))
    one_pass = [c for c in [pipelined, *tiles] if c.split_k == 1] if base.mode != "swap_ab" else []
    out += [_as_hand_written(c, K, kind == "dual") for c in one_pass]
    out += tiles
    # split-K: the in-kernel reduce by the last split as the alternative to the reduce kernel
    out += [dataclasses.replace(c, inline_reduce=1) for c in list(out) if c.split_k > 1]
    # the same tiles as persistent kernels (one CTA per SM, no split-K)
    out += [dataclasses.replace(c, persistent=1, min_blocks=0) for c in one_pass]
    seen, unique = set(), []
    for c in out:
        if c not in seen and not check_config(c, kind, M, N, K):
            seen.add(c)
            unique.append(c)
    return unique


def config_hints(cfg: TileConfig, prefix: str = "") -> dict:
    """Schedule hints that select `cfg` for a launch whose hints carry `prefix` ("", "dual_", "down_")."""
    dual = prefix == "dual_"
    out = {prefix + ("swap_ab" if cfg.mode == "swap_ab" else "direct"): 1}
    if cfg.mode == "direct":                # ws: 0 too, or the default's kernel form would take it over
        out[prefix + "ws"] = cfg.ws
    for hint, field in FIELDS.items():
        if hint == "ws":
            continue
        if hint == "inline_reduce":         # only with split-K (and there is none in the dual kernel)
            if cfg.split_k > 1 and cfg.inline_reduce and not dual:
                out[prefix + "inline_reduce"] = 1
        elif getattr(cfg, field) and not (dual and hint == "split_k"):
            out[prefix + hint] = getattr(cfg, field)
    return out


# --- hints and checks -------------------------------------------------------------------------

def _hinted(kind: str, M: int, N: int, K: int, hints: dict):
    """(config, the hints that set it, problems found while applying them).

    A "down" launch (SwiGLU's down GEMM, every later GEMM of a chain) takes the plain hints,
    each replaced by its `down_` form where one is given (a `down_` mode replaces the plain mode):
    so the GEMMs of an MLP can be tiled apart, and plain hints alone still set them all."""
    known = (*FIELDS, *MODE_HINTS)
    plain = {k: v for k, v in hints.items() if k in known}
    if kind == "gemm":
        mine, names = plain, {k: k for k in plain}
    else:
        prefix = PREFIX[kind]
        own = {k[len(prefix):]: v for k, v in hints.items() if k.startswith(prefix) and k[len(prefix):] in known}
        base = {} if kind == "dual" else {k: v for k, v in plain.items()
                                          if not (k in MODE_HINTS and any(m in own for m in MODE_HINTS))}
        mine = {**base, **own}
        names = {k: prefix + k if k in own else k for k in mine}
    problems = []
    if kind == "dual" and "split_k" in mine:
        problems.append(Problem(names["split_k"], "split_k does not apply to the dual gate/up kernel", "leave it out"))
        mine.pop("split_k")
    cfg = default(kind, M, N, K)
    form = cfg
    if mine.get("swap_ab") and mine.get("direct"):
        problems.append(Problem(names["direct"], f"{names['swap_ab']} and {names['direct']} both set", "one of them"))
    elif mine.get("swap_ab") and cfg.mode != "swap_ab":
        cfg = _decode(min(64, max(16, -(-M // 16) * 16)), N, K, dual=kind == "dual")
    elif mine.get("direct") and cfg.mode != "direct":
        cfg = _direct(kind, max(128, m_bucket(M)), N, K)
    changes = {FIELDS[k]: v for k, v in mine.items() if k in FIELDS}
    if changes:
        cfg = dataclasses.replace(cfg, **changes)
        if cfg.split_k > 1 or cfg.mode != "direct":
            cfg = dataclasses.replace(cfg, bias_smem=False)
        if cfg.persistent and cfg.mode == "direct" and "min_blocks" not in changes:   # one CTA per SM
            cfg = dataclasses.replace(cfg, min_blocks=0)
        if cfg.ws and "ws" in changes:  # one K pass, its own walk and registers, unless set (then refused below)
            cfg = dataclasses.replace(cfg, min_blocks=changes.get("min_blocks", 0), split_k=changes.get("split_k", 1),
                                      swizzle_panel=changes.get("swizzle_panel", 0))
        if "num_stages" not in changes:     # stages the user did not set follow the tiles they did
            cfg = _fit_stages(cfg, K, dual=kind == "dual")
        if cfg.ws and "ws" not in changes:
            # the default's hand-written kernel gives way to hints it cannot take (split-K, a swizzle, ...)
            pipelined = dataclasses.replace(cfg, ws=0)
            if check_config(cfg, kind, M, N, K):
                cfg = pipelined if "num_stages" in changes else _fit_stages(pipelined, K, kind == "dual")
        if form.ws and not cfg.ws and "swizzle_panel" not in changes:   # T.Pipelined's walk, as it was tuned
            cfg = dataclasses.replace(cfg, swizzle_panel=_direct(kind, m_bucket(M), N, K).swizzle_panel)
    return cfg, names, problems


def _fit_stages(cfg: TileConfig, K: int, dual: bool) -> TileConfig:
    budget = SMEM_PER_SM // max(1, cfg.min_blocks)
    stages = min(cfg.num_stages, max(1, cfg.k_iters(K)))
    while stages > 1 and dataclasses.replace(cfg, num_stages=stages).smem(dual) > budget:
        stages -= 1
    return dataclasses.replace(cfg, num_stages=stages)


def check_config(cfg: TileConfig, kind: str, M: int, N: int, K: int, names: dict | None = None) -> list:
    """Problems that stop `cfg` from running an M x N x K launch of `kind` (empty: it runs).

    `names` maps a field's hint (block_m, ...) to the hint the user wrote (dual_block_m, ...);
    problems name those hints, and say what would apply.
    """
    names = names or {}
    n = lambda h: names.get(h, PREFIX[kind] + h)        # noqa: E731  the hint as the user spells it
    dual = kind == "dual"
    out = []
    if cfg.mode not in ("direct", "swap_ab"):
        out.append(Problem(None, f"mode {cfg.mode}", "direct, swap_ab"))
        return out
    wgs = cfg.threads // 128
    if cfg.threads not in (128, 256):
        out.append(Problem(n("threads"), f"{n('threads')}={cfg.threads}: consumer threads are whole warpgroups",
                           "128, 256"))
    elif cfg.block_M % 64 or not 64 <= cfg.block_M <= 256 or (cfg.block_M // 64) % wgs:
        ok = [b for b in (64, 128, 192, 256) if (b // 64) % wgs == 0]
        out.append(Problem(n("block_m"), f"{n('block_m')}={cfg.block_M}: rows on the tensor-core M side come in "
                           f"64-row wgmma tiles, split evenly over {wgs} warpgroup(s) of {n('threads')}={cfg.threads}",
                           ", ".join(map(str, ok))))
    if cfg.block_N % 16 or not 16 <= cfg.block_N <= 256:
        out.append(Problem(n("block_n"), f"{n('block_n')}={cfg.block_N}: the wgmma N side is 16..256 in steps of 16",
                           "16, 32, 48, ..., 256"))
    if cfg.block_K not in (32, 64, 128, 256):
        out.append(Problem(n("block_k"), f"{n('block_k')}={cfg.block_K}", "32, 64, 128, 256"))
        return out
    k_tiles = cfg.k_tiles(K)
    if dual and cfg.split_k != 1:
        out.append(Problem(None, "split-K does not apply to the dual gate/up kernel", "split_k 1"))
    elif cfg.split_k > k_tiles:
        out.append(Problem(n("split_k"), f"{n('split_k')}={cfg.split_k} > the {k_tiles} K tile(s) of "
                           f"{n('block_k')}={cfg.block_K} (K={K})", f"{n('split_k')} <= {k_tiles}"))
    iters = cfg.k_iters(K)
    if not 1 <= cfg.num_stages <= 8 or cfg.num_stages > max(iters, 1):
        out.append(Problem(n("stages"), f"{n('stages')}={cfg.num_stages}: a split runs {iters} K iteration(s)",
                           f"1..{min(8, max(iters, 1))}"))
    if not 0 <= cfg.min_blocks <= 4:
        out.append(Problem(n("min_blocks"), f"{n('min_blocks')}={cfg.min_blocks}", "1, 2, 3, 4"))
    if cfg.persistent and (cfg.mode != "direct" or cfg.split_k > 1 or cfg.min_blocks > 1):
        out.append(Problem(n("persistent"), f"{n('persistent')}=1 runs one CTA per SM over the direct-mode "
                           f"tiles of one K pass; this launch is {cfg.short()}",
                           f"leave {n('persistent')} out, or direct mode with split_k 1 and min_blocks <= 1"))
    if cfg.ws and (cfg.mode != "direct" or cfg.split_k > 1 or cfg.persistent or cfg.min_blocks > 1):
        out.append(Problem(n("ws"), f"{n('ws')}=1 is the hand-written kernel of one direct-mode GEMM tile per CTA "
                           f"and one K pass; this launch is {kind} {cfg.short()}",
                           f"leave {n('ws')} out, or direct mode with split_k 1, min_blocks <= 1, not persistent"))
    elif cfg.ws and cfg.swizzle_panel:
        out.append(Problem(n("swizzle"), f"{n('swizzle')} does not apply to the hand-written kernel ({n('ws')}=1): "
                           "it walks its CTAs in pairs of x tiles over panels of 8 W tiles",
                           f"leave {n('swizzle')} out"))
    elif cfg.ws and (K % 8 or N % 8):
        out.append(Problem(n("ws"), f"{n('ws')}=1 loads x and w by TMA only, which needs 16-byte row strides: "
                           f"K={K} and N={N} must be multiples of 8", f"leave {n('ws')} out"))
    per_sm = max(1, cfg.min_blocks)
    acc = cfg.block_M * cfg.block_N * (2 if dual else 1) // cfg.threads
    limit = min(MAX_ACC_PER_THREAD, cfg.registers()[1] - 64) if cfg.registers()[1] else MAX_ACC_PER_THREAD
    if acc > limit:
        out.append(Problem(n("block_n"), f"a {cfg.block_M}x{cfg.block_N} tile{' (x2 accumulators)' if dual else ''} "
                           f"on {cfg.threads} threads holds {acc} fp32 accumulators per thread (spills)",
                           f"block_m * block_n{' * 2' if dual else ''} / threads <= {limit}"))
    budget = SMEM_PER_SM // per_sm
    need = cfg.smem(dual) + (cfg.block_N * 2 if cfg.bias_smem else 0)
    if need > budget:
        fit = max(0, (budget - 1024) // max(1, need // cfg.num_stages))
        out.append(Problem(n("stages"), f"{cfg.num_stages} stages of {cfg.short()} need {need // 1024} KiB of shared "
                           f"memory, {per_sm} CTA(s) per SM have {budget // 1024} KiB",
                           f"{n('stages')} <= {fit}, or smaller tiles" if fit else "smaller tiles"))
    return out


def check_hints(kind: str, M: int, N: int, K: int, hints: dict) -> list:
    """Problems with `hints` for one launch (empty if the hinted config runs). Pure and cheap."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} (valid: {', '.join(KINDS)})")
    if min(M, N, K) < 1:
        return [Problem(None, f"shape {M}x{N}x{K}: every dimension must be >= 1", "M, N, K >= 1")]
    cfg, names, problems = _hinted(kind, M, N, K, hints)
    return problems + check_config(cfg, kind, M, N, K, names)


def choose(kind: str, M: int, N: int, K: int, hints: dict, where: str) -> TileConfig:
    """The config of one launch: the default for M's bucket, with the hints applied; checked."""
    cfg, names, problems = _hinted(kind, M, N, K, hints)
    problems += check_config(cfg, kind, M, N, K, names)
    if problems:
        raise TileError(f"tile config {cfg.short()} cannot run {where} ({M}x{N}x{K}): "
                        + "; ".join(p.message for p in problems),
                        valid="; ".join(p.valid for p in problems if p.valid) or None)
    return cfg
