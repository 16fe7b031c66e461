"""Limits on what one spec may ask for, so loading it is bounded work and a spec that
`fusebuild check` accepts does not fail later for a reason known when it loads.

A spec of a few hundred bytes could otherwise ask for billions of YAML values (aliases),
millions of variants, a 10^10-element tensor, or an epilogue whose rendered text doubles
with every op. Each limit below is far above what a fused operator needs and says why it
is where it is; breaking one is an ordinary spec error (`file:line: field: message`).
"""
from __future__ import annotations

# --- the file and its YAML --------------------------------------------------------------
MAX_FILE_BYTES = 1 << 20      # a spec is a page of YAML; this bounds everything read
MAX_YAML_DEPTH = 32           # nesting of mappings and lists (the deepest field, a layout, needs 7)
MAX_YAML_VALUES = 100_000     # values once aliases are expanded (alias bombs)
MAX_INT_DIGITS = 20           # an integer literal: 2**64 has 20 digits (sizes, seeds)

# --- what a spec expands to -------------------------------------------------------------
MAX_VARIANTS = 256            # variants of one spec (the product of its parameter lists)
MAX_VARIANT_NAME_BYTES = 255  # a variant is a folder name: a file name is at most 255 bytes
MAX_EXPR_CHARS = 256          # one shape expression (its parse and evaluation recurse)
MAX_RANK = 8                  # dimensions of a tensor
MAX_GRAPH_NODES = 256         # graph nodes after epilogue expansion (checks and fusion walk them)
MAX_ELEMENTS = 2**31 - 1      # elements of a tensor: generated kernels index with int32 arithmetic
MAX_SEED = 2**64 - 1          # validation seeds: the generator takes 64 bits

# A fused group's store is one expression; renderers that write it as text (TVMScript,
# TileLang) repeat an op's operand as often as its formula uses it (silu: x * sigmoid(x)),
# so the text of a chain grows like the product of those counts. USES is the most any
# shipped renderer repeats an operand; MAX_FUSED_TERMS bounds the product over a chain
# (also keeping the expression far below Python's recursion and parser nesting limits).
USES = {"relu": 1, "sigmoid": 1, "silu": 2, "gelu": 5, "add": 1, "sub": 1, "mul": 1}
MAX_FUSED_TERMS = 4096
MAX_FUSED_DEPTH = 64          # elementwise ops chained in one fused store

# Tolerance overrides are added to the modelled bound (run/validate.py). Beyond these a
# wrong output passes: rtol >= 1 accepts 0 for every element, a large atol accepts noise.
MAX_RTOL = 0.1
MAX_ATOL = 1.0

