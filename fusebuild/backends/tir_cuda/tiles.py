"""Tile configurations of tir-cuda GEMM launches: tuned defaults by shape class, spec hints, fitting.

The defaults are the per-shape-class winners of the TileLang prototype's sweeps on an H100
(bf16, 132 SMs; the sweep scripts were not kept):
  M >= 1024        direct 128x256x64, 3 stages, 256 threads, swizzle 10, bias in smem;
                   N = 14336 at M = 1024: 128x224 tiles (512 tiles = 3.9 waves of 132
                   CTAs instead of 448 = 3.4: less wave-quantisation loss)
  64 <= M < 1024   N >= 8192: direct 128x112x64, 4 stages (more CTAs than SMs);
                   K >= 8192: direct 128x128x64 split-K 4; else 64x128x64 split-K 2
  M < 64           swap-AB 64x16x128, 6 stages (W on the wgmma M side, the few rows of x on
                   its N side); split-K 2 unless N >= 8192
  SwiGLU gate/up   M >= 1024: 128x128x64, 4 stages, 256 threads; else 128x64x64, two CTAs
                   per SM (setmaxnreg 24/232) so one CTA's epilogue overlaps the other's MMAs
A config that does not divide the shape is fitted (smaller tiles, less split-K, swap-AB
for ragged M); explicit spec hints are used as given and must divide the shape.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ...errors import FusebuildError


class TileError(FusebuildError):
    """A tile configuration that does not fit a GEMM's shape."""


@dataclass(frozen=True)
class TileConfig:
    mode: str = "direct"        # "direct" | "swap_ab"
    block_M: int = 128          # direct: rows of x per tile; swap_ab: rows of w per tile
    block_N: int = 256          # direct: rows of w per tile; swap_ab: rows of x per tile
    block_K: int = 64
    num_stages: int = 3
    threads: int = 256
    split_k: int = 1
    swizzle_panel: int = 0      # 0: off, else T.use_swizzle(panel)
    policy: str = "Square"      # T.GemmWarpPolicy.<policy>
    min_blocks: int = 0         # >0: T.annotate_min_blocks_per_sm
    producer_regs: int = 0
    consumer_regs: int = 0
    bias_smem: bool = False     # stage 1-D epilogue operands (bias) in shared memory (direct mode)

    def short(self) -> str:
        s = f"{self.mode}_{self.block_M}x{self.block_N}x{self.block_K}_s{self.num_stages}_t{self.threads}_{self.policy}"
        s += f"_sk{self.split_k}" if self.split_k > 1 else ""
        s += f"_sw{self.swizzle_panel}" if self.swizzle_panel else ""
        s += f"_mb{self.min_blocks}r{self.producer_regs}-{self.consumer_regs}" if self.min_blocks else ""
        return s + ("_bs" if self.bias_smem else "")

    def annotations(self) -> list:
        out = [f"T.annotate_min_blocks_per_sm({self.min_blocks})"] if self.min_blocks else []
        out += [f"T.annotate_producer_reg_dealloc({self.producer_regs})"] if self.producer_regs else []
        out += [f"T.annotate_consumer_reg_alloc({self.consumer_regs})"] if self.consumer_regs else []
        return out


C = TileConfig
_FIELDS = {"block_m": "block_M", "block_n": "block_N", "block_k": "block_K", "stages": "num_stages",
           "threads": "threads", "split_k": "split_k", "swizzle": "swizzle_panel"}


def default_gemm(M: int, N: int, K: int) -> TileConfig:
    if M >= 1024:
        bn = 224 if (N == 14336 and M == 1024) else 256
        return C("direct", 128, bn, 64, 3, 256, 1, 10, "Square", bias_smem=True)
    if M >= 64:
        if N >= 8192:
            return C("direct", 128, 112, 64, 4, 256, 1, 0, "FullRow", bias_smem=True)
        if K >= 8192:
            return C("direct", 128, 128, 64, 4, 256, 4, 0, "FullRow")
        return C("direct", 64, 128, 64, 4, 128, 2, 0, "Square")
    return C("swap_ab", 64, 16, 128, 6, 128, 1 if N >= 8192 else 2, 0, "Square")


def default_dual(M: int, N: int, K: int) -> TileConfig:
    if M >= 1024:
        return C("direct", 128, 128, 64, 4, 256, 1, 10, "FullRow")
    return C("direct", 128, 64, 64, 3, 128, 1, 0, "Square", 2, 24, 232)


def default_down(M: int, N: int, K: int) -> TileConfig:
    if 64 <= M < 1024 and K >= 8192:
        return C("direct", 128, 128, 64, 4, 256, 2, 0, "FullRow")
    return dataclasses.replace(default_gemm(M, N, K), bias_smem=False)


def with_hints(cfg: TileConfig, hints: dict, prefix: str = "") -> TileConfig:
    changes = {_FIELDS[k[len(prefix):]]: v for k, v in hints.items()
               if k.startswith(prefix) and k[len(prefix):] in _FIELDS and (prefix or not k.startswith("dual_"))}
    if not prefix and hints.get("swap_ab"):
        changes["mode"] = "swap_ab"
    return dataclasses.replace(cfg, **changes) if changes else cfg


def problems(cfg: TileConfig, M: int, N: int, K: int, dual: bool = False) -> list:
    """Why `cfg` cannot compute an M x N x K GEMM (empty if it can)."""
    out = []
    if cfg.mode not in ("direct", "swap_ab") or (dual and cfg.mode != "direct"):
        out.append(f"mode {cfg.mode} (valid: direct{'' if dual else ', swap_ab'})")
    rows_w = cfg.block_M if cfg.mode == "swap_ab" else cfg.block_N
    if N % rows_w:
        out.append(f"N={N} is not a multiple of the weight tile {rows_w}")
    if cfg.mode == "direct" and M % cfg.block_M:
        out.append(f"M={M} is not a multiple of block_m={cfg.block_M}")
    if dual and cfg.split_k != 1:
        out.append("split_k must be 1 for the dual gate/up kernel")
    if K % (cfg.split_k * cfg.block_K):
        out.append(f"K={K} is not a multiple of split_k*block_k={cfg.split_k}*{cfg.block_K}")
    if cfg.split_k > 1 and N % 64:
        out.append(f"split-K reduce needs N % 64 == 0, got N={N}")
    return out


def fit(cfg: TileConfig, M: int, N: int, K: int, dual: bool = False) -> TileConfig:
    """The nearest config that divides the shape (defaults only; hints are checked, not fitted)."""
    if cfg.mode == "direct" and M % cfg.block_M:
        if M % 64 == 0:
            cfg = dataclasses.replace(cfg, block_M=64, block_N=128, threads=128, policy="Square", num_stages=4,
                                      min_blocks=0, producer_regs=0, consumer_regs=0)
        elif not dual:
            cfg = C("swap_ab", 64, 16, 128, 4, 128, cfg.split_k, 0, "Square")
    rows_w = "block_M" if cfg.mode == "swap_ab" else "block_N"
    if N % getattr(cfg, rows_w):
        for n in (256, 224, 128, 112, 64):
            if n <= getattr(cfg, rows_w) and N % n == 0:
                cfg = dataclasses.replace(cfg, **{rows_w: n})
                break
    while cfg.split_k > 1 and K % (cfg.split_k * cfg.block_K):
        cfg = dataclasses.replace(cfg, split_k=cfg.split_k // 2)
    if K % cfg.block_K and K % 64 == 0:
        cfg = dataclasses.replace(cfg, block_K=64)
    return cfg


def choose(kind: str, M: int, N: int, K: int, hints: dict, where: str) -> TileConfig:
    """The config of one launch: tuned default (fitted) unless hints set fields; checked."""
    default = {"gemm": default_gemm, "dual": default_dual, "down": default_down}[kind](M, N, K)
    prefix = "dual_" if kind == "dual" else ""
    cfg = with_hints(default, hints, prefix)
    if cfg == default:
        cfg = fit(cfg, M, N, K, dual=kind == "dual")
    bad = problems(cfg, M, N, K, dual=kind == "dual")
    if bad:
        raise TileError(f"tile config {cfg.short()} does not fit {where} ({M}x{N}x{K}): " + "; ".join(bad),
                        valid="schedule hints tir-cuda: {block_m, block_n, block_k, split_k} that divide M, N, K")
    return cfg
