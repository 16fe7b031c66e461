"""The GEMM rule's tile arithmetic, without TVM: what tiles a GEMM gets from its hints.

schedule/gemm.py applies these tiles; hints.py uses the same arithmetic to tell a tuner
which hint configurations build the same kernel (the schedule reduces a hint to whole
vectors, under the stack limit, to whole micro tiles dividing the padded shape, and
halves tile_m until every thread has 4 tiles), so it builds each kernel once.
"""
from __future__ import annotations

from dataclasses import dataclass, field

STACK_LIMIT = 4096            # bytes: scratch buffers up to this stay allocas (registers): lower.py
GEMV_ROWS = 4                 # rows of x per GEMV step: 4 x 4 vector accumulators with 4 rows of W
GEMV_MIN_K = 1024             # shorter K: 16 horizontal sums per output outweigh the packing saved
                              # (M = 32..64 on 2 AVX-512 cores: GEMV 1.04-1.44x faster at K = 1024-4096,
                              # 1.5x slower at K = 512, 2.5x at K = 333)


def gemv_below(hints: dict, k: int) -> int:
    """An (N, K) weight with fewer rows of x than this takes the GEMV rule (no packing): rows
    below micro_m cannot fill a register tile, and up to gemv_max_m rows the packing copy of
    the weight costs more than the product saves, if K is long enough to amortize the GEMV's
    horizontal sums (schedule/gemv.py)."""
    return max(hints["micro_m"], hints["gemv_max_m"] + 1) if k >= GEMV_MIN_K else hints["micro_m"]


def k_unroll(k: int, hint: int) -> int:
    """K steps the micro kernel's loop body holds: the largest divisor of K up to the hint (no
    remainder loop, no predicate). Two steps per body ran 1024^3 5-7% faster than one on 2
    AVX-512 cores, four 2-3% (interleaved A/B runs, docs/tuning.md)."""
    return largest_divisor_at_most(k, max(1, hint))


def gemv_row_tile(m: int | None) -> int:
    """Rows of x the GEMV rule multiplies per step (None: a dynamic M, padded to whole steps)."""
    return GEMV_ROWS if m is None else min(GEMV_ROWS, m)


def ceil_to(x: int, m: int) -> int:
    return -(-x // m) * m


def largest_divisor_at_most(n: int, cap: int) -> int:
    return max(d for d in range(1, max(1, min(n, cap)) + 1) if n % d == 0)


@dataclass(frozen=True)
class Tiles:
    micro_m: int
    micro_n: int
    padded: tuple             # (M, N) padded to whole micro tiles (M None: dynamic)
    tile_m: int = 0
    tile_n: int = 0
    notes: list = field(default_factory=list, compare=False)


def micro(m: int, micro_m: int, micro_n: int, lanes: int, nbytes: int, dynamic: str | None = None) -> Tiles:
    """The register tile: whole vectors, under the stack limit, no taller than a static M
    (`dynamic`: the name of M's dynamic parameter, `m` its maximum; then no padded M)."""
    notes = []
    nr = max(lanes, micro_n // lanes * lanes)
    if nr != micro_n:
        notes.append(f"micro_n {micro_n} -> {nr}: whole {lanes}-lane vectors")
    mr = micro_m
    while mr * nr * nbytes >= STACK_LIMIT and mr > 1:
        mr -= 1
    if mr != micro_m:
        notes.append(f"micro_m {micro_m} -> {mr}: the {mr + 1}x{nr} register tile would pass the "
                     f"{STACK_LIMIT // 1024} KiB stack limit")
    if dynamic is not None:
        return Tiles(mr, nr, (None, 0), notes=notes)
    if m < mr:                # tiny M on a (K, N) weight: shrink the micro tile instead of padding
        notes.append(f"micro_m {mr} -> {m}: M is {m}")
        mr = m
    return Tiles(mr, nr, (ceil_to(m, mr), 0), notes=notes)


def tiles(m: int, n: int, hints: dict, lanes: int, nbytes: int, threads: int, dynamic: str | None = None) -> Tiles:
    """Register and cache tiles of an M x N GEMM (`hints` resolved: every tile hint set).
    Cache tiles are whole micro tiles dividing the padded sizes, tile_m halved while there
    are fewer than 4 tiles per thread; with a dynamic M, tile_m whole micro tiles (M is
    unknown: no divisor search, no halving)."""
    t = micro(m, hints["micro_m"], hints["micro_n"], lanes, nbytes, dynamic)
    mr, nr, notes = t.micro_m, t.micro_n, list(t.notes)
    mp, np_ = t.padded[0], ceil_to(n, nr)
    tn = nr * largest_divisor_at_most(np_ // nr, max(1, hints["tile_n"] // nr))
    if mp is None:
        tm = mr * max(1, hints["tile_m"] // mr)
        if tm != hints["tile_m"]:
            notes.append(f"tile_m {hints['tile_m']} -> {tm}: whole micro tiles")
        notes.append(f"M is dynamic ({dynamic}): tile_m stays {tm} (a static build fits it to M)")
    else:
        tm = mr * largest_divisor_at_most(mp // mr, max(1, hints["tile_m"] // mr))
    for name, got, dim, size in (("tile_m", tm, "M", mp), ("tile_n", tn, "N", np_)):
        if got != hints[name] and (name == "tile_n" or mp is not None):
            notes.append(f"{name} {hints[name]} -> {got}: whole micro tiles dividing the padded {dim} ({size})")
    first = tm
    while mp is not None and threads > 1 and (mp // tm) * (np_ // tn) < 4 * threads and tm > mr:
        tm = mr * largest_divisor_at_most(mp // mr, max(1, tm // mr // 2))    # enough parallel tiles
    if tm != first:
        notes.append(f"tile_m {first} -> {tm}: at least 4 parallel tiles per thread ({threads} threads)")
    return Tiles(mr, nr, (mp, np_), tm, tn, notes)
