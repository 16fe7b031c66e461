"""The JSON Schema of the spec format, generated from the tables the loader uses.

Fields (spec/fields.py), ops and their attributes (ir/ops.py), dtypes (ir/dtypes.py),
targets and their declared hints (the backend registry): the schema cannot drift from
the loader. Editors check specs as they are typed with the header line
`# yaml-language-server: $schema=<path or URL of fusebuild-spec.schema.json>`.
The schema checks structure; the loader still checks what a schema cannot (shapes
that agree, names defined before use, layouts that are bijections).
"""
from __future__ import annotations

from ..ir.dtypes import DTYPES
from ..ir.ops import OPS
from . import limits
from .dynamic import FIELDS as DYNAMIC_FIELDS
from .fields import INPUT_FIELDS, MODES, NODE_FIELDS, SPEC_FIELDS

NAME = {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$", "maxLength": 64}
PARAM_REF = {"type": "string", "pattern": r"^\$[A-Za-z_][A-Za-z0-9_]*$"}


def _one_or_list(item: dict) -> dict:
    return {"oneOf": [item, {"type": "array", "items": item, "minItems": 1}]}


def _dtype() -> dict:
    return {"oneOf": [{"enum": list(DTYPES)}, PARAM_REF]}


def _attr(adef) -> dict:
    base = {bool: {"type": "boolean"}, int: {"type": "integer"}, str: {"type": "string"}}.get(adef.type, {})
    if adef.choices:
        base = dict(base, enum=list(adef.choices))
    return {"oneOf": [base, PARAM_REF]}


def _epilogue_step() -> dict:
    unary = [n for n, o in OPS.items() if o.kind == "unary"]
    binary = [n for n, o in OPS.items() if o.kind == "binary"]
    steps = [{"enum": unary}]
    steps += [{"type": "object", "additionalProperties": False, "minProperties": 1, "maxProperties": 1,
               "properties": {b: NAME for b in binary}}]
    with_attrs = {n: {"type": "object", "additionalProperties": False,
                      "properties": {k: _attr(a) for k, a in OPS[n].attrs.items()}}
                  for n in unary if OPS[n].attrs}
    if with_attrs:
        steps.append({"type": "object", "additionalProperties": False, "minProperties": 1, "maxProperties": 1,
                      "properties": with_attrs})
    return {"oneOf": steps}


def _node() -> dict:
    variants = []
    for name, op in OPS.items():
        props = {"op": {"const": name}, "inputs": {"type": "array", "items": NAME, "minItems": op.arity,
                                                    "maxItems": op.arity},
                 "output": NAME, **{k: _attr(a) for k, a in op.attrs.items()}}
        if op.kind == "matmul":
            props["epilogue"] = {"type": "array", "items": _epilogue_step()}
        variants.append({"type": "object", "additionalProperties": False, "required": list(NODE_FIELDS),
                         "properties": props})
    return {"oneOf": variants}


def _dynamic_param() -> dict:
    """`M: {dynamic: [lo, hi], buckets: [...], validate: [...]}` (spec/dynamic.py)."""
    size = {"type": "integer", "minimum": 1}
    return {"type": "object", "additionalProperties": False, "required": ["dynamic"],
            "properties": {k: {"type": "array", "items": size, "minItems": 2 if k == "dynamic" else 1,
                               **({"maxItems": 2} if k == "dynamic" else {}), "description": what}
                           for k, what in DYNAMIC_FIELDS.items()}}


def spec_schema(targets: dict) -> dict:
    """The schema for specs, given the target table (name -> TargetInfo)."""
    dims = {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string"}]}
    param_value = {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": r"^[A-Za-z0-9_]+$"}]}
    tensor = {"type": "object", "additionalProperties": False, "required": ["shape", "dtype"],
              "properties": {"shape": {"type": "array", "items": dims, "minItems": 1,
                                       "description": INPUT_FIELDS["shape"]},
                             "dtype": _dtype(), "layout": {"description": INPUT_FIELDS["layout"]}}}
    filters = {"oneOf": [{"type": "null"}, {"type": "object", "additionalProperties": _one_or_list(param_value)}]}
    props = {
        "name": NAME,
        "description": {"type": "string"},
        "params": {"type": "object", "propertyNames": NAME,
                   "additionalProperties": {"oneOf": [*_one_or_list(param_value)["oneOf"], _dynamic_param()]}},
        "inputs": {"type": "object", "propertyNames": NAME, "additionalProperties": tensor, "minProperties": 1},
        "graph": {"type": "array", "items": _node(), "minItems": 1},
        "outputs": {"type": "array", "items": NAME, "minItems": 1},
        "targets": {"oneOf": [{"type": "array", "items": {"enum": list(targets)}, "minItems": 1},
                              {"type": "object", "additionalProperties": False, "minProperties": 1,
                               "properties": {t: filters for t in targets}}]},
        "tolerance": {"type": "object", "additionalProperties": False,
                      "properties": {d: {"type": "object", "additionalProperties": False, "minProperties": 1,
                                         "properties": {k: {"type": "number", "minimum": 0, "maximum": cap}
                                                        for k, cap in (("atol", limits.MAX_ATOL),
                                                                       ("rtol", limits.MAX_RTOL))}}
                                     for d in DTYPES}},
        "seed": {"type": "integer", "minimum": 0, "maximum": limits.MAX_SEED},
        "schedule": {"type": "object", "additionalProperties": False,
                     "properties": {t: info.hints.schema() for t, info in targets.items()}},
        "mode": {"enum": list(MODES)},
    }
    for key, (_, _, what) in SPEC_FIELDS.items():
        props[key] = dict(props[key], description=what) if "oneOf" not in props[key] else \
            {"description": what, **props[key]}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "fusebuild-spec.schema.json",
            "title": "fusebuild spec", "type": "object", "additionalProperties": False,
            "required": [k for k, (req, _, _) in SPEC_FIELDS.items() if req], "properties": props}
