"""tir-cpu's schedule hints (see schedule.py for how each is used)."""
from ..hints import Hint, table

HINTS = table(
    Hint("tile_m", "rows of a parallel cache tile (rounded to whole micro tiles; halved while there are "
                   "fewer than 4 tiles per thread)", 256, 1, 4096, tune=(64, 128, 256, 512)),
    Hint("tile_n", "columns of a parallel cache tile (rounded to whole micro tiles)", 96, 1, 4096,
         tune=(48, 96, 192, 384)),
    Hint("micro_m", "register tile rows: broadcasts of A per k step (reduced while the register tile would "
                    "exceed 1 KiB)", 4, 1, 16, tune=(2, 4, 6, 8)),
    Hint("micro_n", "register tile columns (rounded down to whole SIMD vectors)", 48, 1, 256, tune=(16, 32, 48, 64)),
    Hint("threads", "worker threads of the kernel (default: the host's cores)", None, 1, 1024),
)
