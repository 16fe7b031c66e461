"""Specs: YAML files describing one fused operator each.

  yamlio.py   safe YAML that remembers the line of every value
  exprs.py    shape expressions (parsed, never eval'd)
  fields.py   the one table of valid fields (loader, schema and docs read it)
  load.py     load + check + expand parameters into variants
  schema.py   the JSON Schema of the format (`fusebuild schema`)
"""
from .load import Spec, Variant, load_spec, parse_spec, variant_name

__all__ = ["Spec", "Variant", "load_spec", "parse_spec", "variant_name"]
