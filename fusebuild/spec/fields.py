"""The spec format as data: the one table of valid fields, read by the loader, the JSON
schema (`fusebuild schema`) and the docs alike.

Names (spec, tensors, parameters) are plain identifiers, matched in full (a trailing
newline is not a name); parameter values are positive integers or plain words.
"""
from __future__ import annotations

import re

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
VALUE_RE = re.compile(r"[A-Za-z0-9_]+")
MAX_NAME = 64             # characters of a name (variant folder names stay far below 255 bytes)
MODES = ("fused", "separate", "reference", "compare")
DEFAULT_TARGETS = ("tir-cpu",)     # when a spec names none


def is_name(value) -> bool:
    return isinstance(value, str) and len(value) <= MAX_NAME and NAME_RE.fullmatch(value) is not None


def is_word(value) -> bool:
    return isinstance(value, str) and len(value) <= MAX_NAME and VALUE_RE.fullmatch(value) is not None


# field -> (required, type, what it is); the one table of valid top-level fields
SPEC_FIELDS = {
    "name": (True, str, "the operator's name (a plain identifier; its output folder)"),
    "description": (False, str, "one line for people"),
    "params": (False, dict, ("parameters; a list value expands into variants; {dynamic: [lo, hi]} is a size "
                             "known at run time")),
    "inputs": (True, dict, "input tensors: {shape, dtype, layout}"),
    "graph": (True, list, "nodes: {op, inputs, output, <attributes>}"),
    "outputs": (True, list, "names of the tensors the operator returns"),
    "targets": (False, (list, dict), "targets to build: [tir-cpu], or {tir-cpu: {dtype: [float32]}}"),
    "tolerance": (False, dict, "per-dtype overrides: {float32: {atol, rtol}}"),
    "seed": (False, int, "random seed of the validation inputs"),
    "schedule": (False, dict, "per-target schedule hints: {tir-cpu: {tile_m: 64}}"),
    "mode": (False, str, "dispatch mode: " + ", ".join(MODES)),
}
# sub-fields: what an input and a node may hold
INPUT_FIELDS = {
    "shape": "list of sizes: integers or expressions of parameters (M, 2*N, K // 4)",
    "dtype": "element type, or $param",
    "layout": "row_major | col_major | {tiled: [r, s]} | {dims: [[[stride, bound], ...], ...]}",
}
NODE_FIELDS = {
    "op": "the op (see the op table)",
    "inputs": "input tensor names",
    "output": "the name of the tensor it defines",
}
EPILOGUE_FIELD = "matmul only: elementwise steps applied to the accumulator, e.g. [{add: bias}, silu]"
TOLERANCE_FIELDS = ("atol", "rtol")
