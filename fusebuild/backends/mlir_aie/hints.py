"""mlir-aie's schedule hints (fit.py searches the tilings; a hint fixes one choice and is
checked against the device's limits when the spec loads)."""
from ..hints import Hint, table

HINTS = table(
    Hint("tile_m", "rows of a core's output tile", None, 1, 512),
    Hint("tile_n", "columns of a core's output tile", None, 1, 512),
    Hint("tile_k", "reduction depth of one A/B tile pair", None, 1, 512),
    Hint("cores", "compute cores a GEMM's columns are spread over (the device bounds it: npu2 32, npu1 16)",
         None, 1, 64),
    Hint("npu", "NPU generation: 1 (npu1, 4 columns) or 2 (npu2, 8 columns)", None, choices=(1, 2)),
)
