"""mlir-cpu's load-time limits (TargetInfo.load_check): what its renderer refuses.

Operand layouts are rendered as packing ops (expand_shape, transpose, collapse_shape:
render.unpack), which exist only for layouts whose tile levels are a mixed-radix split of
the flat buffer (row_major, col_major, {tiled: [r, s]}, and dims whose strides are products
of inner bounds). Other layouts are refused here, naming the input.

The schedule hints are checked against hints.py's rules (the ones the tuner's space uses),
for this host's vectors: a combination IREE would refuse (a register tile past its vector
size limit, registers, divisibility) is refused here, naming the hint.
"""
from __future__ import annotations

import re

from ..limits import Limit


def check(graph, hints: dict) -> list:
    from .render import mixed_radix_problem
    out = []
    for name in graph.inputs:
        x = graph.tensors[name]
        if x.layout is not None:
            problem = mixed_radix_problem(name, x)
            if problem:
                out.append(Limit(*problem, input=name))
    out += _hint_rules(graph, hints)
    return out


def _hint_rules(graph, hints: dict) -> list:
    """The first rule of hints.py the spec's hints break (None set: nothing to check)."""
    if not hints:
        return []
    from ...tune.device import vector_bits
    from ...tune.space import Problem
    from .hints import HINTS
    cfg = HINTS.resolve(hints)
    p = Problem.of(graph, 1, vector_bits())
    for rule in HINTS.rules:
        why = rule.check(cfg, p)
        if not why:
            continue
        valid = rule.fit(cfg, p) if rule.fit else rule.meaning
        named = [h for h in re.findall(r"[a-z_]+", why) if h in hints]
        hint = rule.hint or (named[0] if named else next(iter(hints)))
        return [Limit(f"schedule hints break rule '{rule.name}': {why}", valid, hint=hint)]
    return []
