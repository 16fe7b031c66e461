"""mlir-aie's schedule hints (see design.py for how each is used)."""
from ..hints import Hint, table

HINTS = table(
    Hint("tile_m", "rows of a core's output tile", None, 1, 512),
    Hint("tile_n", "columns of a core's output tile", None, 1, 512),
    Hint("tile_k", "reduction depth of one A/B tile pair", None, 1, 512),
    Hint("npu", "NPU generation: 1 (npu1, 4 columns) or 2 (npu2, 8 columns)", None, choices=(1, 2)),
)
